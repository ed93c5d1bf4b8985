//! Raw datagrams and raw client sockets, for tests that speak TFTP byte by byte, and the
//! loopback addresses that stand for different client machines.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use super::datagrams::{ack, data, error, request, rrq, wrq};

/// The loopback address of `server`'s family.
pub fn loopback(server: SocketAddr) -> IpAddr {
    match server {
        SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    }
}

/// An address of 127.0.0.1 where nobody listens, for as long as this value lives: a
/// datagram sent there is answered with an ICMP "port unreachable", as from a closed port.
///
/// Race-free: the port stays bound by a socket of ours, so no other socket can take it
/// (none of ours sets `SO_REUSEADDR`); that socket is connected to a second socket of
/// ours, so the kernel delivers it only what comes from that one address, which no one
/// else can send from, and answers everything else as it answers a port with no socket.
/// (A bound socket that merely never reads would swallow the datagrams silently: a test
/// of "nobody listens" would then see a timeout instead.)
pub struct NobodyListens {
    closed: UdpSocket,
    _peer: UdpSocket,
}

impl NobodyListens {
    /// Reserves a port of 127.0.0.1 nobody listens on.
    pub fn new() -> NobodyListens {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        closed.connect(peer.local_addr().unwrap()).unwrap();
        NobodyListens {
            closed,
            _peer: peer,
        }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.closed.local_addr().unwrap()
    }
}

/// A port of 127.0.0.1 held by a socket of ours until [`release`](Self::release), for a
/// test that must give a port number to something that binds it itself (several servers
/// racing for one port, say): release it at the last moment before use.
///
/// Not race-free on its own: it comes from the kernel's ephemeral range, where any port-0
/// bind on this machine may take it between release and use. A test that uses it must
/// treat "address in use" as "try again with another port", a bounded number of times.
pub struct HeldPort(UdpSocket);

impl HeldPort {
    /// A port of 127.0.0.1 the kernel chose, held.
    pub fn new() -> HeldPort {
        HeldPort(UdpSocket::bind("127.0.0.1:0").unwrap())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    /// Lets the port go, and returns it.
    pub fn release(self) -> u16 {
        self.port()
    }
}

/// A range of `n` consecutive UDP ports held by sockets of ours until
/// [`release`](Self::release), for a server's transfer port range (`port_range`,
/// `--port-range`), which the server binds one port at a time, when transfers start.
///
/// Why this is race-free where "a port that was free a moment ago" is not:
/// - the range lies below the kernel's ephemeral range (`ip_local_port_range`), where the
///   kernel never puts a port-0 bind: no client socket of any test, nor any other program
///   binding port 0, can land in it;
/// - every port of it is bound (on the wildcard address, which collides with a bind on any
///   address) until [`release`](Self::release), just before the server starts, and a
///   range with any port taken is skipped;
/// - the ranges handed out in one test process never overlap (a process-wide counter
///   moves on past each one), and different processes start at different places (by PID).
///
/// What remains is a program that binds one of these ports by number in the moment between
/// release and the server's bind; a test that must have every port of the range (to fill
/// it) retries its whole setup on the sign of that, a bounded number of times.
pub struct ReservedPorts {
    range: RangeInclusive<u16>,
    _held: Vec<UdpSocket>,
}

impl ReservedPorts {
    /// Reserves `n` consecutive free ports below the ephemeral range.
    pub fn new(n: u16) -> ReservedPorts {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // Below the ephemeral range, above the ports daemons commonly own.
        const LOW: u32 = 10_000;
        let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
            .unwrap_or(32_768);
        let n32 = u32::from(n.max(1));
        let slots = (high.saturating_sub(LOW) / n32).max(1);
        let offset = std::process::id().wrapping_mul(7919);
        for _ in 0..200 {
            let slot = (offset.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))) % slots;
            let start = LOW + slot * n32;
            let range = start as u16..=(start + n32 - 1) as u16;
            let held: Result<Vec<UdpSocket>, _> = range
                .clone()
                .map(|port| UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))))
                .collect();
            if let Ok(held) = held {
                return ReservedPorts { range, _held: held };
            }
        }
        panic!("no {n} consecutive free ports between {LOW} and {high} in 200 tries");
    }

    /// The range.
    pub fn range(&self) -> RangeInclusive<u16> {
        self.range.clone()
    }

    /// Lets the ports go, and returns the range: call it just before the server starts.
    pub fn release(self) -> RangeInclusive<u16> {
        self.range()
    }
}

/// The `i`-th of many distinct client addresses, as different machines would have:
/// 127.100.0.1, 127.100.0.2, ... (Linux routes all of 127/8 to the loopback interface,
/// so a socket can bind any of them). Host parts 0 and 255 are skipped.
pub fn client_ip(i: u32) -> IpAddr {
    let net = i / 254;
    let host = (i % 254 + 1) as u8;
    assert!(net < 100 * 256, "client_ip({i}): out of addresses");
    Ipv4Addr::new(127, 100 + (net / 256) as u8, (net % 256) as u8, host).into()
}

/// A raw client socket with a bounded wait for answers.
pub struct RawClient {
    /// The socket.
    pub socket: UdpSocket,
}

impl RawClient {
    /// Binds port 0 on the loopback address of `server`'s family.
    pub fn new(server: SocketAddr) -> RawClient {
        RawClient::on(loopback(server))
    }

    /// Binds port 0 on `ip`.
    pub fn on(ip: IpAddr) -> RawClient {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .unwrap_or_else(|e| panic!("cannot bind a client socket on {ip}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        RawClient { socket }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Sends `datagram` to `to`.
    pub fn send(&self, datagram: &[u8], to: SocketAddr) {
        self.socket.send_to(datagram, to).unwrap();
    }

    /// The next datagram and its source; fails the test after the read timeout.
    pub fn recv(&self) -> (Vec<u8>, SocketAddr) {
        self.try_recv()
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", self.addr()))
    }

    /// The next datagram and its source, or the error of the wait (a timeout).
    pub fn try_recv(&self) -> io::Result<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 65_536];
        let (n, from) = self.socket.recv_from(&mut buf)?;
        buf.truncate(n);
        Ok((buf, from))
    }

    /// Sends `datagram` to `server` and returns the first answer and where it came from.
    pub fn ask(&self, datagram: &[u8], server: SocketAddr) -> (Vec<u8>, SocketAddr) {
        self.send(datagram, server);
        self.recv()
    }

    /// Sets how long a receive waits.
    pub fn patience(&self, wait: Duration) {
        self.socket.set_read_timeout(Some(wait)).unwrap();
    }
}
