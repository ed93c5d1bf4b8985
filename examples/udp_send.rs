//! Sends one UDP datagram of UTF-8 text.
//!
//! ```text
//! cargo run --example udp_send -- 127.0.0.1:9000 hello there
//! ```
//!
//! Pair it with `udp_recv`. The logic is in small functions that `tests/examples.rs` calls.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;

const USAGE: &str = "usage: udp_send ADDR TEXT...
  Sends TEXT (the remaining arguments joined by spaces) as one UDP datagram to ADDR,
  for instance: udp_send 127.0.0.1:9000 hello there";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((to, text)) = parse_args(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match send(to, &text) {
        Ok(from) => {
            println!("sent {} bytes from {from} to {to}", text.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("udp_send: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `ADDR TEXT...`: the destination and the text, or `None` for a usage error.
pub fn parse_args(args: &[String]) -> Option<(SocketAddr, String)> {
    let (addr, words) = args.split_first()?;
    if words.is_empty() {
        return None;
    }
    let to = addr.to_socket_addrs().ok()?.next()?;
    Some((to, words.join(" ")))
}

/// Sends `text` as one datagram from a fresh socket; returns the socket's local address.
pub fn send(to: SocketAddr, text: &str) -> io::Result<SocketAddr> {
    let bind: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind)?;
    let sent = socket.send_to(text.as_bytes(), to)?;
    if sent != text.len() {
        return Err(io::Error::other("datagram truncated"));
    }
    socket.local_addr()
}
