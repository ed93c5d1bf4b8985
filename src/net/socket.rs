//! Binding UDP sockets: buffer sizes, IPv6-only, port sharing between loops, port ranges.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffers asked for: room for a whole window of the largest blocks. The kernel caps
/// the ask (Linux at `net.core.rmem_max`, then doubles it); a refusal keeps the default.
const BUFFER_BYTES: usize = 1 << 20;

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
    let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(BUFFER_BYTES);
    socket.bind(&addr.into())?;
    Ok(socket.into())
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
