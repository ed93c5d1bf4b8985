//! Receives one UDP datagram of UTF-8 text and prints it with the sender's address.
//!
//! ```text
//! cargo run --example udp_recv -- 127.0.0.1:9000
//! ```
//!
//! Port 0 picks a free port; the bound address is printed first. Pair it with `udp_send`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;

const USAGE: &str = "usage: udp_recv ADDR
  Binds ADDR (for instance 127.0.0.1:9000; port 0 picks one), waits for one UDP datagram,
  and prints its text with the sender's address.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(addr) = parse_args(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = UdpSocket::bind(addr).and_then(|socket| {
        println!("listening on {}", socket.local_addr()?);
        recv_one(&socket)
    });
    match result {
        Ok((from, text)) => {
            println!("from {from}: {text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("udp_recv: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `ADDR`: the address to bind, or `None` for a usage error.
pub fn parse_args(args: &[String]) -> Option<SocketAddr> {
    match args {
        [addr] => addr.to_socket_addrs().ok()?.next(),
        _ => None,
    }
}

/// Waits for one datagram; returns its sender and its text (an `InvalidData` error if the
/// datagram is not UTF-8).
pub fn recv_one(socket: &UdpSocket) -> io::Result<(SocketAddr, String)> {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = socket.recv_from(&mut buf)?;
    buf.truncate(n);
    let text = String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((from, text))
}
