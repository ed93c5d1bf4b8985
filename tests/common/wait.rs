//! Waiting on a condition (never on the clock alone): a bounded poll.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `f` until it is true or `limit` has passed; returns whether it became true.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Like [`wait_until`], failing the test with `what` (evaluated then) when `f` does not
/// become true within `limit`.
pub fn wait_for(limit: Duration, f: impl FnMut() -> bool, what: impl FnOnce() -> String) {
    if !wait_until(limit, f) {
        panic!("waited {limit:?} in vain: {}", what());
    }
}
