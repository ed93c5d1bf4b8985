//! A framed TCP echo server (a thread per client), and a client that sends lines from stdin
//! until `exit`.
//!
//! ```text
//! cargo run --example tcp_echo -- server 127.0.0.1:9002
//! cargo run --example tcp_echo -- client 127.0.0.1:9002
//! ```
//!
//! Every message travels as one frame (`wirekit::frame`, default settings: a 4-byte big-endian
//! length), so the echo comes back whole however TCP splits or joins the bytes.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::thread;

use wirekit::frame::Settings;
use wirekit::net::Framed;

const USAGE: &str = "usage: tcp_echo server ADDR | tcp_echo client ADDR
  server: listens on ADDR (port 0 picks one) and echoes every frame, a thread per client
  client: sends each line of stdin to ADDR as a frame and prints the echo, until `exit`";

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
        Role::Server => TcpListener::bind(addr).and_then(|listener| {
            println!("listening on {}", listener.local_addr()?);
            serve(&listener, None)
        }),
        Role::Client => TcpStream::connect(addr)
            .and_then(|stream| client(stream, BufReader::new(io::stdin()), io::stdout())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp_echo: {e}");
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

/// Accepts clients, forever or `limit` of them, each served by its own thread; with a limit,
/// returns once those clients are done.
pub fn serve(listener: &TcpListener, limit: Option<usize>) -> io::Result<()> {
    let mut handlers = Vec::new();
    while limit.is_none_or(|limit| handlers.len() < limit) {
        let (stream, peer) = listener.accept()?;
        println!("client {peer} connected");
        handlers.push(thread::spawn(move || match echo(stream) {
            Ok(n) => println!("client {peer} left after {n} frames"),
            Err(e) => eprintln!("client {peer}: {e}"),
        }));
    }
    for handler in handlers {
        let _ = handler.join();
    }
    Ok(())
}

/// Sends every frame back until the client closes; returns the number of frames.
pub fn echo(stream: TcpStream) -> io::Result<usize> {
    let mut framed = Framed::new(stream, Settings::default());
    let mut n = 0;
    while let Some(frame) = framed.recv()? {
        framed.send(&frame)?;
        n += 1;
    }
    Ok(n)
}

/// Sends each input line (until `exit` or the end of input) as a frame and prints the echo.
pub fn client(stream: TcpStream, input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let mut framed = Framed::new(stream, Settings::default());
    for line in input.lines() {
        let line = line?;
        if line.trim() == "exit" {
            break;
        }
        framed.send(line.as_bytes())?;
        match framed.read_frame()? {
            Some(echo) => writeln!(output, "echo: {}", String::from_utf8_lossy(echo))?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
        }
        output.flush()?;
    }
    Ok(())
}
