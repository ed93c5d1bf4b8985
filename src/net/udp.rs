//! Sockets for the server: request sockets that know which local address a request was
//! sent to, and transfer sockets bound to that address.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;

/// Binds a UDP socket with room for a whole window in its receive buffer. An IPv6 socket
/// is IPv6-only, so that `0.0.0.0:69` and `[::]:69` can be served side by side.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = bind_plain(addr)?;
    enlarge_buffers(&socket);
    Ok(socket)
}

/// Asks for 1 MiB socket buffers. The kernel caps the ask (Linux at `net.core.rmem_max`,
/// then doubles it), and a refusal only means the default stays: best effort.
fn enlarge_buffers(socket: &UdpSocket) {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        let _ = setsockopt(socket, sockopt::RcvBuf, &(1 << 20));
        let _ = setsockopt(socket, sockopt::SndBuf, &(1 << 20));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

fn bind_plain(addr: SocketAddr) -> io::Result<UdpSocket> {
    #[cfg(target_os = "linux")]
    if let SocketAddr::V6(v6) = addr {
        use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn6, sockopt};
        use std::os::fd::AsRawFd;
        let fd = socket::socket(
            AddressFamily::Inet6,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
        socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))?;
        return Ok(UdpSocket::from(fd));
    }
    UdpSocket::bind(addr)
}

/// Binds a transfer socket on `ip`: any free port, or the first free one of `range`
/// (tried from a point that moves with each call, so that ports are spread).
pub(crate) fn bind_transfer(
    ip: IpAddr,
    range: Option<&RangeInclusive<u16>>,
) -> io::Result<UdpSocket> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(range) = range else {
        return bind(SocketAddr::new(ip, 0));
    };
    let (start, end) = (u32::from(*range.start()), u32::from(*range.end()));
    let len = end.saturating_sub(start) + 1;
    let first = NEXT.fetch_add(1, Ordering::Relaxed);
    for i in 0..len {
        let port = start + (first.wrapping_add(i) % len);
        match bind(SocketAddr::new(ip, port as u16)) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "every port of the transfer port range is in use",
    ))
}

/// A socket on the request port.
pub(crate) struct RequestSocket {
    pub socket: UdpSocket,
    /// Bound to a wildcard address: ask the kernel where each request was sent.
    wildcard: bool,
}

impl RequestSocket {
    pub fn new(socket: UdpSocket) -> io::Result<RequestSocket> {
        let local = socket.local_addr()?;
        let wildcard = local.ip().is_unspecified();
        #[cfg(target_os = "linux")]
        if wildcard {
            use nix::sys::socket::{setsockopt, sockopt};
            match local {
                SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)?,
                SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?,
            }
        }
        Ok(RequestSocket { socket, wildcard })
    }

    /// Receives a request: its length, its source, and the local address it was sent to.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, IpAddr)> {
        let local = self.socket.local_addr()?.ip();
        if !self.wildcard {
            let (n, peer) = self.socket.recv_from(buf)?;
            return Ok((n, peer, local));
        }
        #[cfg(target_os = "linux")]
        {
            recv_with_destination(&self.socket, buf, local)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (n, peer) = self.socket.recv_from(buf)?;
            Ok((n, peer, local))
        }
    }
}

#[cfg(target_os = "linux")]
fn recv_with_destination(
    socket: &UdpSocket,
    buf: &mut [u8],
    fallback: IpAddr,
) -> io::Result<(usize, SocketAddr, IpAddr)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg};
    use std::io::IoSliceMut;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::os::fd::AsRawFd;

    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo);
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )?;
    let peer = msg.address.as_ref().and_then(|a| match a.family() {
        Some(nix::sys::socket::AddressFamily::Inet) => {
            a.as_sockaddr_in().map(|s| SocketAddr::V4((*s).into()))
        }
        Some(nix::sys::socket::AddressFamily::Inet6) => {
            a.as_sockaddr_in6().map(|s| SocketAddr::V6((*s).into()))
        }
        _ => None,
    });
    let Some(peer) = peer else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "datagram without an IP source",
        ));
    };
    let mut local = fallback;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv4PacketInfo(i) => {
                    let dst = Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr));
                    // A broadcast or multicast request is answered from the interface address.
                    local = IpAddr::V4(if dst.is_broadcast() || dst.is_multicast() {
                        Ipv4Addr::from(u32::from_be(i.ipi_spec_dst.s_addr))
                    } else {
                        dst
                    });
                }
                ControlMessageOwned::Ipv6PacketInfo(i) => {
                    local = IpAddr::V6(Ipv6Addr::from(i.ipi6_addr.s6_addr))
                }
                _ => {}
            }
        }
    }
    Ok((msg.bytes, peer, local))
}
