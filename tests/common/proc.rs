//! What this test process holds, read from `/proc/self`: descriptors, the server's
//! threads (by name), memory.

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::wait::wait_until;

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|r| r.count())
        .unwrap_or(0)
}

/// Threads of the servers in this process: the ones named by `wirekit::net`
/// (`tftp-server`, `tftp-loop`, `tftp-commit`). Client and test threads are not counted.
pub fn server_threads() -> usize {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            fs::read_to_string(t.path().join("comm")).is_ok_and(|name| {
                matches!(name.trim_end(), "tftp-server" | "tftp-loop" | "tftp-commit")
            })
        })
        .count()
}

/// Waits (bounded) until the servers in this process run `n` threads: a server's loops
/// start theirs after it is bound.
pub fn wait_for_server_threads(n: usize) {
    assert!(
        wait_until(Duration::from_secs(5), || server_threads() == n),
        "{} server threads, want {n}",
        server_threads()
    );
}

/// The fewest and the most server threads seen, sampled while a test runs.
pub struct ThreadSpan {
    min: AtomicUsize,
    max: AtomicUsize,
}

impl ThreadSpan {
    pub fn new() -> ThreadSpan {
        ThreadSpan {
            min: AtomicUsize::new(usize::MAX),
            max: AtomicUsize::new(0),
        }
    }

    /// Counts the server threads now.
    pub fn sample(&self) {
        let t = server_threads();
        self.min.fetch_min(t, Ordering::Relaxed);
        self.max.fetch_max(t, Ordering::Relaxed);
    }

    /// The fewest and the most seen.
    pub fn seen(&self) -> (usize, usize) {
        (
            self.min.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
        )
    }
}

/// A field of `/proc/self/status` in its unit (kB for memory), e.g. `VmRSS`, `VmHWM`.
pub fn proc_status(field: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Sizes of the files this process holds open under `dir` (not `dir` itself), found
/// through `/proc/self/fd`: an upload's temporary file has no name on Linux (O_TMPFILE),
/// but its descriptor still leads to it.
pub fn open_file_sizes_under(dir: &std::path::Path) -> Vec<u64> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let Ok(fds) = fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    fds.flatten()
        .filter(|fd| {
            fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(&dir) && target != dir)
        })
        .filter_map(|fd| fs::metadata(fd.path()).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .collect()
}
