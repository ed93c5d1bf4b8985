//! Binding UDP sockets: buffer sizes, IPv6-only, port sharing between loops, port ranges.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffers asked for: room for a window of 64 of the largest blocks. The kernel caps
/// the ask at `net.core.rmem_max` (then doubles it for its own bookkeeping) unless the
/// process may force it (`CAP_NET_ADMIN`); a refusal keeps the default.
const BUFFER_BYTES: usize = 4 << 20;

/// Binds a UDP socket. An IPv6 socket is IPv6-only, so that `0.0.0.0:69` and
/// `[::]:69` can be served side by side. With `share_port`, several sockets (one per
/// event loop) bind the same address and the kernel spreads clients over them, each client
/// address and port always to the same one.
pub(crate) fn bind(addr: SocketAddr, share_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    if share_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
    if share_port {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "several loops on one port need SO_REUSEPORT",
        ));
    }
    enlarge_buffers(&socket);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Fails with `AddrInUse` when a socket holds `addr` already, even one that a socket with
/// `SO_REUSEPORT` could join: another server of the same user, which would silently get
/// half of the clients. Port 0 is always free.
pub(crate) fn ensure_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    bind(addr, false).map(drop)
}

/// Binds a transfer socket on `ip`: any free port, or a free one of `range`, tried from a
/// point that moves with each call so that ports are spread.
pub(crate) fn bind_transfer(
    ip: IpAddr,
    range: Option<&RangeInclusive<u16>>,
) -> io::Result<UdpSocket> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(range) = range else {
        return bind(SocketAddr::new(ip, 0), false);
    };
    let (start, end) = (u32::from(*range.start()), u32::from(*range.end()));
    let len = end.saturating_sub(start) + 1;
    let first = NEXT.fetch_add(1, Ordering::Relaxed);
    for i in 0..len {
        let port = start + first.wrapping_add(i) % len;
        match bind(SocketAddr::new(ip, port as u16), false) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            other => return other,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "every port of the transfer port range is in use",
    ))
}

fn enlarge_buffers(socket: &Socket) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::net::sockopt;
        if sockopt::set_socket_recv_buffer_size_force(socket, BUFFER_BYTES).is_err() {
            let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
        }
        if sockopt::set_socket_send_buffer_size_force(socket, BUFFER_BYTES).is_err() {
            let _ = socket.set_send_buffer_size(BUFFER_BYTES);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
        let _ = socket.set_send_buffer_size(BUFFER_BYTES);
    }
}

/// The window, in data bytes, a transfer socket this process binds now would hold: a
/// fresh socket asks for the buffers `bind` asks for. What it is granted depends on the
/// process's privileges (forcing needs `CAP_NET_ADMIN`), so it can differ from what a
/// request socket bound earlier (or by a service manager) holds.
pub(crate) fn transfer_window_bytes(ipv6: bool) -> Option<u32> {
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).ok()?;
    enlarge_buffers(&socket);
    window_bytes(&socket.into())
}

/// The window, in data bytes, a socket's granted receive buffer holds. Linux reports twice
/// what it lets data fill (the rest pays for its bookkeeping), so half of it.
pub(crate) fn window_bytes(socket: &UdpSocket) -> Option<u32> {
    let granted = socket2::SockRef::from(socket).recv_buffer_size().ok()?;
    let usable = if cfg!(any(target_os = "linux", target_os = "android")) {
        granted / 2
    } else {
        granted
    };
    u32::try_from(usable).ok()
}
