//! A UDP echo server, and a client that sends lines from stdin until `exit`.
//!
//! ```text
//! cargo run --example udp_echo -- server 127.0.0.1:9001
//! cargo run --example udp_echo -- client 127.0.0.1:9001
//! ```
//!
//! The server prints its bound address (port 0 picks one). UDP may lose datagrams: the client
//! waits two seconds for each echo and says so when none comes.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: udp_echo server ADDR | udp_echo client ADDR
  server: binds ADDR (port 0 picks one) and sends every datagram back to its sender
  client: sends each line of stdin to ADDR and prints the echo, until `exit` or end of input";

/// Which side to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The echo server.
    Server,
    /// The line client.
    Client,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((role, addr)) = parse_args(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match role {
        Role::Server => UdpSocket::bind(addr).and_then(|socket| {
            println!("listening on {}", socket.local_addr()?);
            serve(&socket, None, io::stdout())
        }),
        Role::Client => connect(addr)
            .and_then(|socket| client(&socket, BufReader::new(io::stdin()), io::stdout())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `server ADDR` or `client ADDR`, or `None` for a usage error.
pub fn parse_args(args: &[String]) -> Option<(Role, SocketAddr)> {
    let [role, addr] = args else { return None };
    let role = match role.as_str() {
        "server" => Role::Server,
        "client" => Role::Client,
        _ => return None,
    };
    Some((role, addr.to_socket_addrs().ok()?.next()?))
}

/// A socket on a free local port, connected to the server, with a two-second read timeout.
pub fn connect(server: SocketAddr) -> io::Result<UdpSocket> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    Ok(socket)
}

/// Echoes datagrams back to their senders, forever or for `limit` datagrams.
pub fn serve(socket: &UdpSocket, limit: Option<usize>, mut log: impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 65_535];
    let mut served = 0;
    while limit.is_none_or(|limit| served < limit) {
        let (n, from) = socket.recv_from(&mut buf)?;
        socket.send_to(&buf[..n], from)?;
        writeln!(log, "echoed {n} bytes to {from}")?;
        served += 1;
    }
    Ok(())
}

/// Sends each input line (until `exit` or the end of input) and prints the echo.
pub fn client(socket: &UdpSocket, input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 65_535];
    for line in input.lines() {
        let line = line?;
        if line.trim() == "exit" {
            break;
        }
        socket.send(line.as_bytes())?;
        match socket.recv(&mut buf) {
            Ok(n) => writeln!(output, "echo: {}", String::from_utf8_lossy(&buf[..n]))?,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                writeln!(output, "(no echo within 2 s)")?
            }
            Err(e) => return Err(e),
        }
        output.flush()?;
    }
    Ok(())
}
