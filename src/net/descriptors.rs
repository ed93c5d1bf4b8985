//! File descriptors bound how many transfers can run: each holds its file and, with a port
//! per transfer, its socket. A server that ran out of them would answer with silence, so
//! the transfer cap is lowered to what the descriptors allow, and a request beyond it is
//! refused with an ERROR like any other over the cap.

use crate::tftp::server::{Limits, PortMode};

/// Descriptors kept for everything that is not a transfer: request sockets, pollers,
/// wakers, the standard streams, files a commit still holds.
const RESERVE: usize = 32;

/// The limits the server's loops run with, together: `max_transfers` lowered to what the
/// descriptors allow once the soft limit is raised to the hard one.
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

/// Raises the soft descriptor limit to the hard one, and counts the descriptors left.
#[cfg(unix)]
fn free_descriptors() -> Option<usize> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let current = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(_) => limit.current,
    };
    let current = usize::try_from(current?).unwrap_or(usize::MAX);
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
