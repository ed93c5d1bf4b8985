//! What a network does to datagrams (loss, duplication, reordering, delay), and the seeded
//! generator that decides it datagram by datagram. The same vocabulary as the simulated
//! network of `tests/sim`, so that a schedule means the same on virtual and real sockets.

use std::time::Duration;

/// splitmix64: small, deterministic, good enough to pick faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `permille / 1000`.
    pub fn chance(&mut self, permille: u32) -> bool {
        self.below(1000) < u64::from(permille)
    }

    /// A duration in `0..=max`, uniformly.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.below(nanos.saturating_add(1)))
    }
}

/// What the network does to each datagram, in thousandths, per direction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Datagrams dropped.
    pub loss: u32,
    /// Datagrams delivered twice.
    pub dup: u32,
    /// Datagrams held back behind later ones (by a few times `jitter` more).
    pub reorder: u32,
    /// Base one-way delay.
    pub delay: Duration,
    /// Largest random extra delay added to a datagram.
    pub jitter: Duration,
}

impl Faults {
    /// A perfect network with a 1 ms delay.
    pub fn none() -> Faults {
        Faults {
            delay: Duration::from_millis(1),
            ..Faults::default()
        }
    }

    /// Loss of `loss` thousandths, with 2% duplication, 2% reordering and up to 0.5 ms of
    /// jitter.
    pub fn lossy(loss: u32) -> Faults {
        Faults {
            loss,
            dup: 20,
            reorder: 20,
            delay: Duration::ZERO,
            jitter: Duration::from_micros(500),
        }
    }

    /// Everything dropped.
    pub fn black_hole() -> Faults {
        Faults {
            loss: 1000,
            ..Faults::default()
        }
    }
}
