//! Raw datagrams and raw client sockets, for tests that speak TFTP byte by byte, and the
//! loopback addresses that stand for different client machines.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use wirekit::tftp::Packet;

/// A request datagram: opcode, the name's bytes, NUL, `mode`, NUL, then `opts` as option
/// pairs, byte for byte.
pub fn request(opcode: u8, name: &[u8], mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![0, opcode];
    v.extend_from_slice(name);
    v.push(0);
    v.extend_from_slice(mode.as_bytes());
    v.push(0);
    for (k, val) in opts {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

/// An octet RRQ with `opts` as option pairs.
pub fn rrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    request(1, name.as_bytes(), "octet", opts)
}

/// An octet WRQ with `opts` as option pairs.
pub fn wrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    request(2, name.as_bytes(), "octet", opts)
}

/// An ACK.
pub fn ack(block: u16) -> Vec<u8> {
    Packet::Ack { block }.to_vec().unwrap()
}

/// A DATA packet.
pub fn data(block: u16, data: &[u8]) -> Vec<u8> {
    Packet::Data { block, data }.to_vec().unwrap()
}

/// An ERROR 0 with a message: how a client ends a transfer it no longer wants.
pub fn error(message: &str) -> Vec<u8> {
    let mut v = vec![0, 5, 0, 0];
    v.extend_from_slice(message.as_bytes());
    v.push(0);
    v
}

/// The loopback address of `server`'s family.
pub fn loopback(server: SocketAddr) -> IpAddr {
    match server {
        SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    }
}

/// A UDP port of 127.0.0.1 that was free a moment ago (bound and released): for a test
/// that needs a port nobody listens on, or a fixed port to give several sockets.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
