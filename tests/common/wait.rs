//! Waiting on a condition (never on the clock alone): a bounded poll.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `f` until it is true or `limit` has passed; returns whether it became true. The
/// pause between polls grows from 1 ms to 20 ms: quick for what comes at once, cheap for
/// what takes seconds.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Like [`wait_until`], failing the test with `what` (evaluated then) when `f` does not
/// become true within `limit`.
pub fn wait_for(limit: Duration, f: impl FnMut() -> bool, what: impl FnOnce() -> String) {
    if !wait_until(limit, f) {
        panic!("waited {limit:?} in vain: {}", what());
    }
}
