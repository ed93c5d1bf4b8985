//! What a server holds, in total and per client address: the counts its limits are
//! checked against. One endpoint keeps its own; several (a server with one event loop per
//! core) share one, so that a limit holds for the whole process.

use alloc::collections::BTreeMap;
use core::net::IpAddr;

use crate::tftp::machine::policy::Limits;

/// The transfers a server holds, in total and per client address.
#[derive(Debug, Default)]
pub struct Admission {
    transfers: usize,
    by_address: BTreeMap<IpAddr, Load>,
}

/// What one client address holds.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    transfers: usize,
    unanswered: usize,
}

/// Which limit a request would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Over {
    /// [`Limits::max_transfers`]: the server is full.
    Transfers,
    /// [`Limits::max_per_address`].
    PerAddress,
    /// [`Limits::max_unanswered_per_address`].
    Unanswered,
}

impl Admission {
    /// Nothing held.
    pub fn new() -> Admission {
        Admission::default()
    }

    /// Transfers held, in total.
    pub fn transfers(&self) -> usize {
        self.transfers
    }

    /// Takes a place for a transfer from `ip`, not yet answered, if `limits` allow it.
    pub(crate) fn admit(&mut self, ip: IpAddr, limits: &Limits) -> Result<(), Over> {
        if self.transfers >= limits.max_transfers {
            return Err(Over::Transfers);
        }
        let load = self.by_address.get(&ip).copied().unwrap_or_default();
        if load.transfers >= limits.max_per_address {
            return Err(Over::PerAddress);
        }
        if load.unanswered >= limits.max_unanswered_per_address {
            return Err(Over::Unanswered);
        }
        self.transfers += 1;
        let load = self.by_address.entry(ip).or_default();
        load.transfers += 1;
        load.unanswered += 1;
        Ok(())
    }

    /// The client of a transfer from `ip` answered.
    pub(crate) fn answered(&mut self, ip: IpAddr) {
        if let Some(load) = self.by_address.get_mut(&ip) {
            load.unanswered = load.unanswered.saturating_sub(1);
        }
    }

    /// A transfer from `ip` is gone; `answered` says whether [`answered`](Self::answered)
    /// was called for it.
    pub(crate) fn release(&mut self, ip: IpAddr, answered: bool) {
        self.transfers = self.transfers.saturating_sub(1);
        let Some(load) = self.by_address.get_mut(&ip) else {
            return;
        };
        load.transfers = load.transfers.saturating_sub(1);
        if !answered {
            load.unanswered = load.unanswered.saturating_sub(1);
        }
        if load.transfers == 0 {
            self.by_address.remove(&ip);
        }
    }
}

/// An [`Admission`] that several endpoints share, each holding it behind this trait: the
/// std server gives its event loops one `Arc<Mutex<Admission>>`. An endpoint that runs
/// alone keeps its own and needs none of this.
pub trait SharedAdmission: Send + Sync {
    /// Runs `f` on the shared counts, with no other endpoint changing them meanwhile.
    fn with(&self, f: &mut dyn FnMut(&mut Admission));
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        Ipv4Addr::new(127, 0, 0, last).into()
    }

    #[test]
    fn each_limit_is_checked_and_released() {
        let mut limits = Limits::DEFAULT;
        limits.max_transfers = 3;
        limits.max_per_address = 2;
        limits.max_unanswered_per_address = 1;
        let mut a = Admission::new();
        assert_eq!(a.admit(ip(1), &limits), Ok(()));
        assert_eq!(a.admit(ip(1), &limits), Err(Over::Unanswered));
        a.answered(ip(1));
        assert_eq!(a.admit(ip(1), &limits), Ok(()));
        a.answered(ip(1));
        assert_eq!(a.admit(ip(1), &limits), Err(Over::PerAddress));
        assert_eq!(a.admit(ip(2), &limits), Ok(()));
        assert_eq!(a.admit(ip(3), &limits), Err(Over::Transfers));
        a.release(ip(1), true);
        a.release(ip(2), false);
        assert_eq!(a.transfers(), 1);
        assert_eq!(a.admit(ip(2), &limits), Ok(()));
        a.release(ip(1), true);
        a.release(ip(2), false);
        assert_eq!(a.transfers(), 0);
        assert!(
            a.by_address.is_empty(),
            "nothing kept for addresses that hold nothing"
        );
    }
}
