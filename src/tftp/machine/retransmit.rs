//! The retransmission timer of one transfer: timeout, backoff, and when to give up.

use crate::tftp::Instant;
use core::time::Duration;

/// Retransmission settings of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// First retransmission timeout; a negotiated `timeout` option replaces it.
    pub timeout: Duration,
    /// Backoff doubles the timeout after each retransmission, up to this.
    pub max_timeout: Duration,
    /// Retransmissions of one packet or window before the transfer gives up.
    pub retries: u32,
}

impl Config {
    /// Settings with this first timeout, backoff ceiling and number of retries.
    pub const fn new(timeout: Duration, max_timeout: Duration, retries: u32) -> Config {
        Config {
            timeout,
            max_timeout,
            retries,
        }
    }

    /// How long a peer may stay silent before the transfer gives up: the first timeout
    /// and each doubled one up to `max_timeout`, `retries + 1` waits in all. A transfer
    /// that measured short round trips first resends sooner than that, on timeouts that do
    /// not count against the retries, so it waits a little longer still.
    pub fn patience(&self) -> Duration {
        let cap = self.max_timeout.max(self.timeout);
        let mut waits_left = u64::from(self.retries) + 1;
        let (mut wait, mut total) = (self.timeout, Duration::ZERO);
        while waits_left > 0 && wait < cap {
            total = total.saturating_add(wait);
            wait = wait.saturating_mul(2).min(cap);
            waits_left -= 1;
        }
        let at_cap = u32::try_from(waits_left).unwrap_or(u32::MAX);
        total.saturating_add(cap.saturating_mul(at_cap))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new(Duration::from_secs(1), Duration::from_secs(8), 5)
    }
}

/// What an expired deadline calls for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Send the last packet or window again; the timer is rearmed with backoff.
    Retransmit(Kind),
    /// Every retry is spent.
    GiveUp {
        /// Retries made at the full timeout.
        retries: u32,
    },
}

/// Which timeout an expiry that retransmits ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A measured timeout shorter than the configured one: not counted against the retries.
    Early,
    /// The configured (or negotiated) timeout or its backoff: one of the retries.
    Retry,
}

#[derive(Debug)]
pub(crate) struct Timer {
    config: Config,
    /// The timeout after progress: the configured one, or the negotiated one.
    base: Duration,
    rto: Duration,
    retries: u32,
    deadline: Option<Instant>,
    /// Round trips measured, when no timeout was negotiated: a lost window is then resent
    /// after a few round trips instead of a whole second.
    rtt: Option<Rtt>,
    /// The shortest timeout a measured round trip gives this transfer.
    floor: Duration,
    negotiated: bool,
}

/// A smoothed round trip and its variation (RFC 6298's estimator).
#[derive(Clone, Copy, Debug)]
struct Rtt {
    smoothed: Duration,
    variation: Duration,
}

/// In lock-step, a measured timeout is never shorter than this part of the configured
/// one (200 ms of the default second, Linux TCP's minimum RTO). A peer on a loaded machine
/// answers late now and then, far beyond its usual round trip (200 atftp clients on two
/// cores, from atftp's own load test, answer tens of milliseconds late where the usual
/// round trip is under one), and in lock-step each late answer is a block resent that the
/// peer has already. The configured timeout says how late a peer may answer; a lost block
/// is still resent five times sooner than that.
const LOCK_STEP_FLOOR_DIVISOR: u32 = 5;

/// The shortest timeout a measured round trip gives with windows, and in lock-step under
/// a short configured timeout. A window's bursts overflow a small receive buffer and lose
/// their tail, which only a timeout recovers, on every fast link: a short floor pays there
/// (serving atftp 64 KiB blocks in windows of 16 ran two to three times slower at 200 ms).
/// A window's round trip includes sending it, which gives its timeout room, and a resend
/// the peer shows needless raises the transfer's floor.
const WINDOW_FLOOR: Duration = Duration::from_millis(20);

/// See [`LOCK_STEP_FLOOR_DIVISOR`].
fn lock_step_floor(timeout: Duration) -> Duration {
    (timeout / LOCK_STEP_FLOOR_DIVISOR).max(WINDOW_FLOOR)
}

impl Timer {
    /// A timer armed to expire one timeout from `now`.
    pub(crate) fn new(now: Instant, config: Config) -> Timer {
        Timer {
            config,
            base: config.timeout,
            rto: config.timeout,
            retries: 0,
            deadline: Some(now.saturating_add(config.timeout)),
            rtt: None,
            floor: lock_step_floor(config.timeout),
            negotiated: false,
        }
    }

    /// A round trip measured on a window that went out once (Karn's rule: a resent window's
    /// answer could be to either sending).
    pub(crate) fn sample(&mut self, rtt: Duration) {
        if self.negotiated {
            return;
        }
        self.rtt = Some(match self.rtt {
            None => Rtt {
                smoothed: rtt,
                variation: rtt / 2,
            },
            Some(r) => {
                let diff = r.smoothed.abs_diff(rtt);
                Rtt {
                    smoothed: (r.smoothed * 7 + rtt) / 8,
                    variation: (r.variation * 3 + diff) / 4,
                }
            }
        });
    }

    /// The timeout after progress: from the round trips measured, within the configured
    /// timeout, or the configured (or negotiated) one.
    fn fresh_rto(&self) -> Duration {
        match self.rtt {
            Some(r) => (r.smoothed + r.variation * 4)
                .max(self.floor)
                .min(self.base),
            None => self.base,
        }
    }

    /// The transfer sends windows of more than one block: see [`WINDOW_FLOOR`].
    pub(crate) fn windowed(&mut self) {
        self.floor = WINDOW_FLOOR;
    }

    /// A retransmission turned out needless: the peer's answer to the first sending came
    /// `delay` after it, later than the timeout. Timeouts of this transfer are never again
    /// shorter than twice that (RFC 4015's response, kept simple: the late answer is the
    /// round trip to plan for), up to the lock-step floor: a network that duplicates
    /// packets fakes the sign now and then, and must not slow loss recovery for good.
    pub(crate) fn spurious(&mut self, now: Instant, delay: Duration) {
        let raised = delay.saturating_mul(2).min(lock_step_floor(self.base));
        self.floor = self.floor.max(raised);
        self.rto = self.rto.max(self.fresh_rto());
        self.sent(now);
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Waits until `deadline` whatever the backoff says (a dally).
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    pub(crate) fn stop(&mut self) {
        self.deadline = None;
    }

    /// The negotiated `timeout` option replaces the configured first timeout (and no round
    /// trip is measured, so the floor is moot).
    pub(crate) fn set_base(&mut self, seconds: u8) {
        self.base = Duration::from_secs(seconds.into());
        self.rto = self.base;
        self.negotiated = true;
        self.rtt = None;
    }

    pub(crate) fn base(&self) -> Duration {
        self.base
    }

    /// The longest the backoff goes: a negotiated timeout above the ceiling still holds.
    pub(crate) fn max(&self) -> Duration {
        self.config.max_timeout.max(self.base)
    }

    /// Progress was made: the next silence is judged afresh.
    pub(crate) fn progressed(&mut self, now: Instant) {
        self.retries = 0;
        self.rto = self.fresh_rto();
        self.deadline = Some(now.saturating_add(self.rto));
    }

    /// DATA went out: the peer has a whole timeout from the last burst of a window, so
    /// the pauses between bursts are not taken for its silence (a window paced over
    /// longer than the timeout was otherwise resent before its last block went out).
    pub(crate) fn sent(&mut self, now: Instant) {
        if let Some(deadline) = self.deadline {
            self.deadline = Some(deadline.max(now.saturating_add(self.rto)));
        }
    }

    /// True once `now` has reached the deadline.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// The deadline passed: retransmit with a doubled timeout, or give up. Retransmissions
    /// on a measured timeout shorter than the configured one do not count against the
    /// retries: a peer is given up after no less silence than without measurements.
    pub(crate) fn expire(&mut self, now: Instant) -> Expiry {
        let kind = if self.rto >= self.base {
            if self.retries >= self.config.retries {
                self.deadline = None;
                return Expiry::GiveUp {
                    retries: self.retries,
                };
            }
            self.retries += 1;
            Kind::Retry
        } else {
            Kind::Early
        };
        self.rto = self.rto.saturating_mul(2).min(self.max());
        self.deadline = Some(now.saturating_add(self.rto));
        Expiry::Retransmit(kind)
    }
}
