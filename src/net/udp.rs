//! Datagram I/O for the event loop: a non-blocking socket registered with the poller, read
//! and written through `quinn-udp`, which reports the local address each datagram was sent
//! to and sends from a chosen local address (`IP_PKTINFO`).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};

/// One datagram received: who sent it and where it was sent to. `len` bytes of the buffer
/// hold one datagram, or several of `stride` bytes each (the last may be shorter) when the
/// kernel coalesced a burst (GRO).
pub(crate) struct Received {
    pub source: SocketAddr,
    pub local: Option<IpAddr>,
    pub len: usize,
    pub stride: usize,
}

pub(crate) struct Udp {
    socket: mio::net::UdpSocket,
    state: UdpSocketState,
}

impl Udp {
    /// Wraps a bound, non-blocking socket.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<Udp> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        allow_fragmentation(&socket)?;
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

    /// Receives up to `bufs.len()` datagrams in one call.
    pub(crate) fn recv(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        out: &mut [RecvMeta],
    ) -> io::Result<usize> {
        self.state.recv(UdpSockRef::from(&self.socket), bufs, out)
    }

    /// Sends one datagram, from `source` when given.
    pub(crate) fn send(
        &self,
        destination: SocketAddr,
        source: Option<IpAddr>,
        contents: &[u8],
    ) -> io::Result<()> {
        let transmit = quinn_udp::Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: source,
        };
        self.state
            .try_send(UdpSockRef::from(&self.socket), &transmit)
    }
}

impl Received {
    pub(crate) fn from_meta(meta: &RecvMeta) -> Received {
        Received {
            source: meta.addr,
            local: meta.dst_ip,
            len: meta.len,
            stride: meta.stride.max(1),
        }
    }
}

/// `quinn-udp` forbids fragmentation, as QUIC wants. TFTP relies on it: a DATA of blksize
/// 8192 or 65464 is larger than an Ethernet frame and travels as IP fragments, as it does
/// from every other TFTP server. So the don't-fragment settings are turned back off.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn allow_fragmentation(socket: &std::net::UdpSocket) -> io::Result<()> {
    use rustix::net::sockopt;
    if socket.local_addr()?.is_ipv4() {
        sockopt::set_ip_mtu_discover(socket, sockopt::Ipv4PathMtuDiscovery::DONT)?;
    } else {
        sockopt::set_ipv6_mtu_discover(socket, sockopt::Ipv6PathMtuDiscovery::DONT)?;
        set_ipv6_dontfrag_off(socket)?;
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn allow_fragmentation(_: &std::net::UdpSocket) -> io::Result<()> {
    Ok(())
}

/// `IPV6_DONTFRAG` back to 0. Neither rustix nor socket2 has a setter for it.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
fn set_ipv6_dontfrag_off(socket: &std::net::UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let off: libc::c_int = 0;
    // SAFETY: the descriptor is open for the borrow's lifetime, and the option value is a
    // c_int that lives across the call, with its exact size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_DONTFRAG,
            (&raw const off).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
