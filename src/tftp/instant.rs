//! The machines' clock reading.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time on the driver's clock: how long after an epoch the driver picked (the
/// start of the program, of the transfer, smoltcp's `Instant::ZERO`). The machines never
/// read a clock: every call that may start or end a wait takes one of these, and every
/// deadline they ask for is one.
///
/// Its own type, rather than a [`Duration`], so that a deadline cannot be passed where a
/// length is meant (a timeout, a grace period) nor the other way round: an instant plus
/// a duration is an instant, and the difference of two instants a duration.
///
/// ```
/// use core::time::Duration;
/// use wirekit::tftp::Instant;
///
/// let start = Instant::ZERO;
/// let deadline = start + Duration::from_millis(200);
/// assert_eq!(deadline.duration_since(start), Duration::from_millis(200));
/// // From a std clock: the time elapsed since the driver's epoch.
/// # #[cfg(feature = "std")] {
/// let epoch = std::time::Instant::now();
/// let now = Instant::from(epoch.elapsed());
/// # let _ = now;
/// # }
/// // From smoltcp's clock: its microseconds.
/// let now = Instant::from_micros(1_500_000);
/// assert_eq!(now, Instant::from_millis(1_500));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant(Duration::from_micros(micros))
    }

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(Duration::from_millis(millis))
    }

    /// `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(Duration::from_secs(secs))
    }

    /// How long after the epoch this is.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this is; zero when it is not after it.
    pub fn duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// This instant plus `length`; the furthest representable instant rather than an
    /// overflow (a deadline that never comes).
    pub fn saturating_add(self, length: Duration) -> Instant {
        Instant(self.0.saturating_add(length))
    }
}

/// The time elapsed since the driver's epoch: `Instant::from(epoch.elapsed())`.
impl From<Duration> for Instant {
    fn from(since_epoch: Duration) -> Instant {
        Instant(since_epoch)
    }
}

/// Saturates, as [`Instant::saturating_add`]: a deadline past the end of time never comes.
impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, length: Duration) -> Instant {
        self.saturating_add(length)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, length: Duration) {
        *self = *self + length;
    }
}

/// Saturates at the epoch.
impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, length: Duration) -> Instant {
        Instant(self.0.saturating_sub(length))
    }
}

/// Saturates at zero, as [`Instant::duration_since`].
impl Sub for Instant {
    type Output = Duration;

    fn sub(self, earlier: Instant) -> Duration {
        self.duration_since(earlier)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
