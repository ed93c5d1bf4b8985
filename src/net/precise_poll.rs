//! Readiness polling whose short timeouts end on time. epoll, under mio, counts timeouts in
//! whole milliseconds rounded up, so a pause of 300 µs between the bursts of a window
//! lasted one to two milliseconds. A short wait goes through a timer descriptor (Linux's
//! timerfd) registered with the poller instead; a long one (a retransmission timeout)
//! keeps the poller's own timeout, and costs no extra system call.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Registry, Token};

/// Waits shorter than this are timed by the timer descriptor. Longer ones are
/// retransmission timeouts and dallies, where a millisecond more is nothing.
const PRECISE_BELOW: Duration = Duration::from_millis(5);

/// A mio [`Poll`] that keeps sub-millisecond timeouts.
pub(crate) struct PrecisePoll {
    poll: Poll,
    timer: Option<timer::Timer>,
}

impl PrecisePoll {
    /// A poller whose timer, where the system has one, reports as `timer_token`; an event
    /// of that token only means a wait ended.
    pub(crate) fn new(timer_token: Token) -> io::Result<PrecisePoll> {
        let poll = Poll::new()?;
        // Without a timer the waits are only coarser, so a failure here is no error.
        let timer = timer::Timer::new(poll.registry(), timer_token).ok();
        Ok(PrecisePoll { poll, timer })
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Waits for readiness, or until `timeout` has passed (forever when `None`).
    pub(crate) fn poll(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        match (timeout, &self.timer) {
            (Some(t), Some(timer)) if !t.is_zero() && t < PRECISE_BELOW && timer.arm(t).is_ok() => {
                // A wait that ends early for a datagram leaves the timer armed: its later
                // expiry is one spurious wakeup, which every loop takes in its stride.
                self.poll.poll(events, None)
            }
            _ => self.poll.poll(events, timeout),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod timer {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::time::Duration;

    use mio::unix::SourceFd;
    use mio::{Interest, Registry, Token};
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };

    pub(super) struct Timer(OwnedFd);

    impl Timer {
        pub(super) fn new(registry: &Registry, token: Token) -> io::Result<Timer> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
            Ok(Timer(fd))
        }

        /// Expires once, `after` from now. Setting it anew clears a past expiry, so the
        /// descriptor is never read.
        pub(super) fn arm(&self, after: Duration) -> io::Result<()> {
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let value = Timespec {
                tv_sec: after.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: after.subsec_nanos().into(),
            };
            let spec = Itimerspec {
                it_interval: zero,
                it_value: value,
            };
            timerfd_settime(&self.0, TimerfdTimerFlags::empty(), &spec)?;
            Ok(())
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod timer {
    use std::io;
    use std::time::Duration;

    use mio::{Registry, Token};

    /// No timer descriptor here: every wait keeps the poller's millisecond timeout.
    pub(super) struct Timer;

    impl Timer {
        pub(super) fn new(_: &Registry, _: Token) -> io::Result<Timer> {
            Err(io::ErrorKind::Unsupported.into())
        }

        pub(super) fn arm(&self, _: Duration) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::time::Instant;

    use super::*;

    const TIMER: Token = Token(7);

    #[test]
    fn a_short_wait_is_ended_by_the_timer_not_rounded_to_a_millisecond() {
        let mut poll = PrecisePoll::new(TIMER).unwrap();
        let mut events = Events::with_capacity(4);
        let wait = Duration::from_micros(300);
        let start = Instant::now();
        poll.poll(&mut events, Some(wait)).unwrap();
        assert!(start.elapsed() >= wait, "the wait ran its length");
        assert!(
            events.iter().any(|e| e.token() == TIMER),
            "the timer, not epoll's millisecond timeout, ended the wait"
        );
        // Armed anew, it ends the next short wait too.
        poll.poll(&mut events, Some(wait)).unwrap();
        assert!(events.iter().any(|e| e.token() == TIMER));
    }

    #[test]
    fn a_long_wait_keeps_the_pollers_own_timeout() {
        let mut poll = PrecisePoll::new(TIMER).unwrap();
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(PRECISE_BELOW)).unwrap();
        assert!(events.is_empty(), "no timer was armed");
    }
}
