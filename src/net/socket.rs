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
/// half of the clients. Port 0 is always free. Checked under a [`PortClaim`], held until
/// the loops' sockets are bound.
pub(crate) fn ensure_free(addr: SocketAddr, _claim: &PortClaim) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    bind(addr, false).map(drop)
}

/// Held by a server from its check that a port is free until its loops' sockets are bound
/// to it: a second server started at the same instant waits, then finds the port taken,
/// where both could otherwise pass the check and share the port.
///
/// On Linux it is a Unix socket bound to an abstract name made from the port: one per
/// network namespace, as the port is, gone with the process whatever way it ends.
pub(crate) struct PortClaim {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    _held: Vec<std::os::unix::net::UnixDatagram>,
}

/// How long a server waits for another one's claim: binding takes milliseconds.
#[cfg(any(target_os = "linux", target_os = "android"))]
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl PortClaim {
    /// Claims every non-zero port of `addrs`, waiting for a server that holds a claim.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn take(addrs: &[SocketAddr]) -> io::Result<PortClaim> {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};

        let mut ports: Vec<u16> = addrs
            .iter()
            .map(SocketAddr::port)
            .filter(|&p| p != 0)
            .collect();
        // In one order, so that two servers claiming several ports cannot wait on each other.
        ports.sort_unstable();
        ports.dedup();
        let start = std::time::Instant::now();
        let mut held = Vec::with_capacity(ports.len());
        for port in ports {
            let name = UnixAddr::from_abstract_name(format!("wirekit/udp-port/{port}"))?;
            loop {
                match UnixDatagram::bind_addr(&name) {
                    Ok(socket) => {
                        held.push(socket);
                        break;
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::AddrInUse && start.elapsed() < CLAIM_WAIT =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        let why = format!("port {port}: another server is starting on it");
                        return Err(io::Error::new(e.kind(), why));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(PortClaim { _held: held })
    }

    /// Elsewhere the check alone stands: the window it leaves is only as wide as the
    /// binding.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn take(_: &[SocketAddr]) -> io::Result<PortClaim> {
        Ok(PortClaim {})
    }
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
