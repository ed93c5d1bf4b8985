//! Readiness polling that keeps short waits short.
//!
//! - Short timeouts end on time. epoll, under mio, counts timeouts in whole milliseconds
//!   rounded up, so a pause of 300 µs between the bursts of a window lasted one to two
//!   milliseconds. A short wait goes through a timer descriptor (Linux's timerfd) registered
//!   with the poller instead; a long one (a retransmission timeout) keeps the poller's own
//!   timeout, and costs no extra system call.
//! - A peer that answers within microseconds is waited for awake. Going to sleep and being
//!   woken costs a lock-step transfer on loopback about half its rate (on a virtual
//!   machine each sleep leaves the CPU to the host). So while waits end within
//!   [`SPIN_LIMIT`], the next wait first polls without sleeping for that long. A peer
//!   across a network answers later than that: its waits sleep at once, and an idle loop
//!   spins once, for at most the limit, before it sleeps.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};

/// Waits shorter than this are timed by the timer descriptor. Longer ones are
/// retransmission timeouts and dallies, where a millisecond more is nothing.
const PRECISE_BELOW: Duration = Duration::from_millis(5);

/// Waits that end sooner than this are waited awake the next time.
const SPIN_LIMIT: Duration = Duration::from_micros(50);

/// A mio [`Poll`] that keeps sub-millisecond timeouts and waits awake for fast peers.
pub(crate) struct PrecisePoll {
    poll: Poll,
    timer: Option<timer::Timer>,
    /// The last wait ended within [`SPIN_LIMIT`].
    answered_fast: bool,
    /// More than one CPU: with one, a spin only keeps the peer from answering.
    may_spin: bool,
}

impl PrecisePoll {
    /// A poller whose timer, where the system has one, reports as `timer_token`; an event
    /// of that token only means a wait ended.
    pub(crate) fn new(timer_token: Token) -> io::Result<PrecisePoll> {
        let poll = Poll::new()?;
        // Without a timer the waits are only coarser, so a failure here is no error.
        let timer = timer::Timer::new(poll.registry(), timer_token).ok();
        Ok(PrecisePoll {
            poll,
            timer,
            answered_fast: false,
            may_spin: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
        })
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
        let start = Instant::now();
        if !self.answered_fast {
            self.sleep(events, timeout)?;
        } else if !self.spin(events, start, timeout)? {
            self.sleep(events, timeout.map(|t| t.saturating_sub(start.elapsed())))?;
        }
        self.answered_fast = self.may_spin && !events.is_empty() && start.elapsed() < SPIN_LIMIT;
        Ok(())
    }

    /// Collects the events that are ready now, without waiting and without counting it as
    /// a wait.
    pub(crate) fn poll_now(&mut self, events: &mut Events) -> io::Result<()> {
        self.poll.poll(events, Some(Duration::ZERO))
    }

    /// Polls without sleeping until an event, [`SPIN_LIMIT`] or `timeout`; true when it
    /// found an event.
    fn spin(
        &mut self,
        events: &mut Events,
        start: Instant,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        let limit = timeout.map_or(SPIN_LIMIT, |t| t.min(SPIN_LIMIT));
        loop {
            self.poll.poll(events, Some(Duration::ZERO))?;
            if !events.is_empty() {
                return Ok(true);
            }
            if start.elapsed() >= limit {
                return Ok(false);
            }
            // The peer may be waiting for this very CPU (the scheduler put both on it): a
            // spin must not keep it from answering.
            std::thread::yield_now();
        }
    }

    fn sleep(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
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
    fn a_wait_answered_fast_makes_the_next_one_spin_and_a_wait_that_times_out_does_not() {
        let mut poll = PrecisePoll::new(TIMER).unwrap();
        let mut events = Events::with_capacity(4);
        let mut socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut socket, Token(1), mio::Interest::READABLE)
            .unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"x", socket.local_addr().unwrap()).unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(1)));
        assert_eq!(
            poll.answered_fast, poll.may_spin,
            "a datagram already there answers at once (where a spin can help)"
        );
        // The datagram is left unread: readiness is reported once, so this wait times out.
        poll.poll(&mut events, Some(PRECISE_BELOW * 2)).unwrap();
        assert!(events.is_empty());
        assert!(!poll.answered_fast, "an idle wait sleeps the next time");
    }

    #[test]
    fn a_long_wait_keeps_the_pollers_own_timeout() {
        let mut poll = PrecisePoll::new(TIMER).unwrap();
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(PRECISE_BELOW)).unwrap();
        assert!(events.is_empty(), "no timer was armed");
    }
}
