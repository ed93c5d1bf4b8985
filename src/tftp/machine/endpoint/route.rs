//! How an endpoint's datagrams come and go: which socket (route), from and to whom.

use core::fmt;
use core::net::{IpAddr, SocketAddr};

#[cfg(doc)]
use super::{Endpoint, EndpointEvent};

/// A transfer of an [`Endpoint`]. Ids are not reused while the endpoint lives long enough
/// for a stale one to matter: a slot's generation changes each time it is freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// Where a server's transfers talk to their clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortMode {
    /// RFC 1350: each transfer answers from a port of its own (its transfer ID), and the
    /// request port only hears requests.
    #[default]
    PerTransfer,
    /// Every transfer answers from the request port and is told apart by the client's
    /// address and port, so that NAT, container port mappings and load balancers, which
    /// only pass replies from the port the client sent to, let the transfer through.
    Single,
}

/// Which socket a datagram arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Inbound {
    /// A request socket; the number is the driver's own, e.g. the index of its listen
    /// address.
    Listener(usize),
    /// A transfer's own socket ([`PortMode::PerTransfer`]), the one its
    /// [`Outbound::Transfer`] asked the driver to open.
    Transfer(TransferId),
}

/// Which socket a datagram is to leave from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Outbound {
    /// A request socket, the one the request came in on ([`PortMode::Single`]).
    Listener(usize),
    /// The transfer's own socket ([`PortMode::PerTransfer`]). The driver opens it on the
    /// first datagram of the transfer, bound to [`Outgoing::source`] (or to the listener's
    /// address when that is `None`), and closes it on [`EndpointEvent::Closed`]. When no
    /// socket can be had, it calls [`Endpoint::port_unavailable`].
    Transfer(TransferId),
    /// A refusal in [`PortMode::PerTransfer`]: sent from a fresh port bound to
    /// [`Outgoing::source`] and closed at once, as the transfer that was not started would
    /// have; from the request socket `listener` when no port can be had.
    OneOff {
        /// The request socket it answers.
        listener: usize,
    },
}

/// A datagram that arrived, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incoming {
    /// The socket it came in on.
    pub route: Inbound,
    /// Who sent it.
    pub source: SocketAddr,
    /// The local address it was sent to, when the socket knows it (`IP_PKTINFO` on a
    /// wildcard socket). Answers leave from this address, as PXE firmware expects.
    pub local: Option<IpAddr>,
}

impl Incoming {
    /// A datagram from `source` on `route`, sent to `local` when the socket knows it.
    pub fn new(route: Inbound, source: SocketAddr, local: Option<IpAddr>) -> Incoming {
        Incoming {
            route,
            source,
            local,
        }
    }
}

/// What the endpoint put in the caller's buffer: one datagram, or with
/// [`Endpoint::poll_transmit_batch`] several of `segment_size` bytes back to back (the
/// last may be shorter), all to one destination from one route: one UDP GSO send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct Outgoing {
    /// The socket to send it from.
    pub route: Outbound,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The local address to send it from: the one the request was sent to.
    pub source: Option<IpAddr>,
    /// Its length, from the start of the buffer.
    pub len: usize,
    /// `Some(n)` when `len` bytes hold several datagrams of `n` bytes each.
    pub segment_size: Option<usize>,
}
