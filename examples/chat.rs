//! Two peers chatting over framed TCP: each line typed is one frame, and a reader thread
//! prints the peer's lines while you type, so neither side waits for the other.
//!
//! ```text
//! cargo run --example chat -- listen 127.0.0.1:9003
//! cargo run --example chat -- connect 127.0.0.1:9003
//! ```
//!
//! Type `exit` (or end the input) to leave: the other side is told and ends too.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::thread;

use wirekit::frame::Settings;
use wirekit::net::Framed;

const USAGE: &str = "usage: chat listen ADDR | chat connect ADDR
  listen:  waits on ADDR (port 0 picks one) for the other peer
  connect: joins the peer listening on ADDR
  Then each line you type is sent; `exit` or the end of input leaves.";

/// Which side to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Wait for the peer.
    Listen,
    /// Join the peer.
    Connect,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((role, addr)) = parse_args(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let stream = match role {
        Role::Listen => TcpListener::bind(addr).and_then(|listener| {
            println!("listening on {}", listener.local_addr()?);
            let (stream, peer) = listener.accept()?;
            println!("* {peer} joined; type lines, `exit` to leave");
            Ok(stream)
        }),
        Role::Connect => TcpStream::connect(addr).inspect(|_| {
            println!("* connected to {addr}; type lines, `exit` to leave");
        }),
    };
    // Returning from main ends the process, and with it the thread still reading stdin.
    match stream.and_then(|s| converse(s, BufReader::new(io::stdin()), io::stdout())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `listen ADDR` or `connect ADDR`, or `None` for a usage error.
pub fn parse_args(args: &[String]) -> Option<(Role, SocketAddr)> {
    let [role, addr] = args else { return None };
    let role = match role.as_str() {
        "listen" => Role::Listen,
        "connect" => Role::Connect,
        _ => return None,
    };
    Some((role, addr.to_socket_addrs().ok()?.next()?))
}

/// Runs one side of the chat until the peer leaves: a writer thread sends the input lines
/// (until `exit` or the end of input, then half-closes the connection so the peer sees a clean
/// end), while this thread prints the peer's lines to `output`.
pub fn converse(
    stream: TcpStream,
    input: impl BufRead + Send + 'static,
    mut output: impl Write,
) -> io::Result<()> {
    let (mut reader, mut writer) = Framed::new(stream, Settings::default()).split()?;
    thread::spawn(move || {
        for line in input.lines() {
            let Ok(line) = line else { break };
            if line.trim() == "exit" || writer.send(line.as_bytes()).is_err() {
                break;
            }
        }
        let _ = writer.get_ref().shutdown(Shutdown::Write);
    });
    while let Some(frame) = reader.read_frame()? {
        writeln!(output, "peer: {}", String::from_utf8_lossy(frame))?;
        output.flush()?;
    }
    writeln!(output, "* the peer has left")?;
    output.flush()?;
    // Close both directions, so that our own writer stops too.
    let _ = reader.get_ref().shutdown(Shutdown::Both);
    Ok(())
}
