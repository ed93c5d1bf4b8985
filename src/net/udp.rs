//! Datagram I/O for the event loop: a non-blocking socket registered with the poller, read
//! and written through `quinn-udp`, which reports the local address each datagram was sent
//! to and sends from a chosen local address (`IP_PKTINFO`).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};

/// Datagrams read per receive call.
const BATCH: usize = 8;
/// Room for the largest datagram, or a burst the kernel coalesced (GRO) of at most 64 KiB.
const RX_BUF: usize = 128 * 1024;
/// What one GSO send may carry in all: the largest UDP payload.
pub(crate) const GSO_BYTES: usize = 65_507;
/// Datagrams per GSO send: half the kernel's limit (`UDP_MAX_SEGMENTS`, 64). A window of
/// small blocks then goes out in two or more sends, and the receiver is at work on the
/// first while the next is sent; one send of the whole window leaves it idle until the
/// last segment is in (measured on loopback: 1468-byte blocks, window 64, about a fifth
/// faster than with 64).
const MAX_SEGMENTS: usize = 32;

/// Where one receive call puts its datagrams, and what it learnt of each.
pub(crate) struct RecvBuffers {
    data: Vec<u8>,
    metas: [RecvMeta; BATCH],
    filled: usize,
}

impl RecvBuffers {
    pub(crate) fn new() -> RecvBuffers {
        RecvBuffers {
            data: vec![0; BATCH * RX_BUF],
            metas: [RecvMeta::default(); BATCH],
            filled: 0,
        }
    }

    /// One receive call on `udp`: up to a batch of datagrams (or coalesced bursts).
    pub(crate) fn recv(&mut self, udp: &Udp) -> io::Result<()> {
        self.filled = 0;
        let mut chunks = self.data.chunks_mut(RX_BUF);
        let mut slices: [IoSliceMut<'_>; BATCH] = std::array::from_fn(|_| {
            IoSliceMut::new(chunks.next().expect("data holds BATCH buffers"))
        });
        self.filled =
            udp.state
                .recv(UdpSockRef::from(&udp.socket), &mut slices, &mut self.metas)?;
        Ok(())
    }

    /// True when the last call found fewer datagrams than it had room for: the queue was
    /// empty then, and a new datagram raises a new readiness event.
    pub(crate) fn drained(&self) -> bool {
        self.filled < BATCH
    }

    /// The datagrams of the last call, bursts split: source, local address, bytes.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, Option<IpAddr>, &[u8])> {
        self.metas
            .iter()
            .take(self.filled)
            .zip(self.data.chunks(RX_BUF))
            .flat_map(|(meta, buf)| {
                let bytes = &buf[..meta.len.min(RX_BUF)];
                bytes
                    .chunks(meta.stride.max(1))
                    .map(move |datagram| (meta.addr, meta.dst_ip, datagram))
            })
    }
}

pub(crate) struct Udp {
    socket: mio::net::UdpSocket,
    state: UdpSocketState,
}

impl Udp {
    /// Wraps a bound, non-blocking socket.
    /// Wraps a bound request socket, which learns the local address each datagram was
    /// sent to (a wildcard socket's answers must leave from it).
    pub(crate) fn listener(socket: std::net::UdpSocket) -> io::Result<Udp> {
        Udp::new(socket, true)
    }

    /// Wraps a bound socket of one transfer, bound to its local address already: the
    /// address each datagram was sent to is not asked for, which spares a control message
    /// per datagram.
    pub(crate) fn transfer(socket: std::net::UdpSocket) -> io::Result<Udp> {
        Udp::new(socket, false)
    }

    fn new(socket: std::net::UdpSocket, destinations: bool) -> io::Result<Udp> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        suit_tftp(&socket)?;
        if !destinations {
            no_destinations(&socket)?;
        }
        Ok(Udp {
            socket: mio::net::UdpSocket::from_std(socket),
            state,
        })
    }

    pub(crate) fn source(&mut self) -> &mut mio::net::UdpSocket {
        &mut self.socket
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Has the kernel report an ICMP "port unreachable" for a datagram this socket sent,
    /// on its next receive (`ConnectionRefused`), though the socket is not connected: a
    /// client learns at once that nobody listens where it asked.
    pub(crate) fn report_unreachable(&self) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let (level, name) = if self.socket.local_addr()?.is_ipv4() {
                (libc::IPPROTO_IP, libc::IP_RECVERR)
            } else {
                (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
            };
            set_int_option(&self.socket, level, name, 1)?;
        }
        Ok(())
    }

    /// Datagrams one send may carry: more than 1 where the kernel does UDP GSO.
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments().min(MAX_SEGMENTS)
    }

    /// Sends one datagram, or several of `segment_size` bytes back to back (the last may be
    /// shorter) in one call where the kernel segments them (GSO), from `source` when given.
    /// Where a batch is refused, its datagrams go one by one.
    pub(crate) fn send(
        &self,
        destination: SocketAddr,
        source: Option<IpAddr>,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> io::Result<()> {
        // A lone datagram from the socket's own address needs none of `sendmsg`'s control
        // messages: a plain `sendto` is shorter on a lock-step transfer's round trip.
        if segment_size.is_none() && source.is_none() {
            return self.socket.send_to(contents, destination).map(drop);
        }
        let transmit = |contents, segment_size| quinn_udp::Transmit {
            destination,
            ecn: None,
            contents,
            segment_size,
            src_ip: source,
        };
        let sent = self.state.try_send(
            UdpSockRef::from(&self.socket),
            &transmit(contents, segment_size),
        );
        match (sent, segment_size) {
            (Err(e), Some(size)) if e.kind() != io::ErrorKind::WouldBlock => {
                for datagram in contents.chunks(size.max(1)) {
                    self.state
                        .try_send(UdpSockRef::from(&self.socket), &transmit(datagram, None))?;
                }
                Ok(())
            }
            (result, _) => result,
        }
    }
}

/// `quinn-udp` sets a socket up for QUIC; two of its choices are wrong for TFTP and are
/// undone. It forbids fragmentation, on which TFTP relies: a DATA of blksize 8192 or 65464
/// is larger than an Ethernet frame and travels as IP fragments, as it does from every
/// other TFTP server. And it asks for a timestamp and the traffic class of every datagram,
/// which TFTP never reads but would pay for on each one.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn suit_tftp(socket: &std::net::UdpSocket) -> io::Result<()> {
    use rustix::net::sockopt;
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 0)?;
    if socket.local_addr()?.is_ipv4() {
        sockopt::set_ip_mtu_discover(socket, sockopt::Ipv4PathMtuDiscovery::DONT)?;
        set_int_option(socket, libc::IPPROTO_IP, libc::IP_RECVTOS, 0)?;
    } else {
        sockopt::set_ipv6_mtu_discover(socket, sockopt::Ipv6PathMtuDiscovery::DONT)?;
        set_int_option(socket, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 0)?;
        set_int_option(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 0)?;
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn suit_tftp(_: &std::net::UdpSocket) -> io::Result<()> {
    Ok(())
}

/// Stops the kernel reporting the local address of each datagram (`quinn-udp` asks for it).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn no_destinations(socket: &std::net::UdpSocket) -> io::Result<()> {
    if socket.local_addr()?.is_ipv4() {
        set_int_option(socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 0)
    } else {
        set_int_option(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 0)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn no_destinations(_: &std::net::UdpSocket) -> io::Result<()> {
    Ok(())
}

/// An integer socket option, for the few that neither rustix nor socket2 sets.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
fn set_int_option(
    socket: &impl std::os::fd::AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the borrow's lifetime, and the option value is a
    // c_int that lives across the call, with its exact size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Errors after which the socket is still usable: an interrupted call, or an ICMP error
/// from an earlier datagram (a peer port that closed).
pub(crate) fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    )
}
