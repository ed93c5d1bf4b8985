//! File descriptors bound how many transfers can run: each holds its file and, with a port
//! per transfer, its socket. A server that ran out of them would answer with silence, so
//! the transfer cap is lowered to what the descriptors allow, and a request beyond it is
//! refused with an ERROR like any other over the cap.

use crate::tftp::server::{Limits, PortMode};

/// Descriptors kept for everything that is not a transfer: request sockets, pollers,
/// wakers, the standard streams, files a commit still holds.
const RESERVE: usize = 32;

/// The limits the server's loops run with, together: `max_transfers` lowered to what the
/// descriptors under the soft limit allow (see [`raise_descriptor_limit`]).
pub(crate) fn fit_to_descriptors(limits: &Limits, ports: PortMode) -> Limits {
    let per_transfer = match ports {
        PortMode::Single => 1,
        _ => 2,
    };
    let total = match free_descriptors() {
        Some(free) => limits
            .max_transfers
            .min(free.saturating_sub(RESERVE) / per_transfer),
        None => limits.max_transfers,
    };
    let mut fitted = *limits;
    fitted.max_transfers = total.max(1);
    fitted
}

/// Raises this process's soft limit on open descriptors to its hard limit, as a server that
/// holds a file (and, with a port per transfer, a socket) for each transfer wants: the
/// usual soft limit of 1024 caps a server near 500 transfers. The `wirekit` program calls it
/// before binding; a library never changes process-wide state unasked, so an application
/// embedding [`Server`](super::Server) calls it when it wants the same. Returns the limit
/// now in force, or `None` where the system has none to raise.
#[cfg(unix)]
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(_) => limit.current,
    }
}

/// See the Unix version: there is nothing to raise here.
#[cfg(not(unix))]
pub fn raise_descriptor_limit() -> Option<u64> {
    None
}

/// The descriptors left under the soft limit in force.
#[cfg(unix)]
fn free_descriptors() -> Option<usize> {
    let current = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    Some(current.saturating_sub(open_descriptors()))
}

#[cfg(not(unix))]
fn free_descriptors() -> Option<usize> {
    None
}

/// Descriptors open now; where the system does not list them, a guess that errs high.
#[cfg(unix)]
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .or_else(|_| std::fs::read_dir("/dev/fd"))
        .map_or(RESERVE, |d| d.count())
}
