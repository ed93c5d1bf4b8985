//! What this test process holds, read from `/proc/self`: descriptors, the server's
//! threads (by name), memory.

use std::fs;

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
