//! The example programs, exercised over loopback.
//!
//! How: each example keeps its logic in small functions (`serve`, `client`, `converse`,
//! `parse_args`...) that take sockets, an input (`BufRead`) and an output (`Write`), and its
//! `main` only parses arguments and wires stdin/stdout to them. This test includes the example
//! sources as modules (`#[path]`) and calls those functions on real loopback sockets, with
//! in-memory input and captured output. It is chosen over spawning the example binaries
//! because `cargo test --test examples` does not build examples, and running `cargo` from a
//! test is slow and fights over the build lock; this way the test needs nothing prebuilt, runs
//! in milliseconds, and still drives the same code the binaries run. Every socket has a read
//! timeout, so a broken program fails the test instead of hanging it.

#![cfg(feature = "std")]
#![allow(dead_code)]

// The shared bounded wait, alone: this test needs nothing else of `common`.
#[path = "common/wait.rs"]
mod wait;

use std::io::{self, BufReader, Cursor, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[path = "../examples/chat.rs"]
mod chat;
#[path = "../examples/tcp_echo.rs"]
mod tcp_echo;
#[path = "../examples/udp_echo.rs"]
mod udp_echo;
#[path = "../examples/udp_recv.rs"]
mod udp_recv;
#[path = "../examples/udp_send.rs"]
mod udp_send;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Output shared between the test and a thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits (at most 5 s) until the output contains `needle`.
    fn wait_for(&self, needle: &str) {
        wait::wait_for(
            Duration::from_secs(5),
            || self.text().contains(needle),
            || format!("no {needle:?} in output {:?}", self.text()),
        );
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Typed input: lines arrive when the test sends them; the end of input when it drops the
/// sender.
struct Typed {
    lines: mpsc::Receiver<String>,
    pending: Vec<u8>,
}

fn keyboard() -> (mpsc::Sender<String>, BufReader<Typed>) {
    let (tx, rx) = mpsc::channel();
    let typed = Typed {
        lines: rx,
        pending: Vec::new(),
    };
    (tx, BufReader::new(typed))
}

impl Read for Typed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.lines.recv() {
                Ok(line) => self.pending = format!("{line}\n").into_bytes(),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    assert!(udp_send::parse_args(&args(&[])).is_none());
    assert!(udp_send::parse_args(&args(&["127.0.0.1:9000"])).is_none());
    assert!(udp_send::parse_args(&args(&["nonsense", "hi"])).is_none());
    assert!(udp_recv::parse_args(&args(&["127.0.0.1:9000", "extra"])).is_none());
    assert!(udp_echo::parse_args(&args(&["serve", "127.0.0.1:9000"])).is_none());
    assert!(tcp_echo::parse_args(&args(&["client"])).is_none());
    assert!(chat::parse_args(&args(&["talk", "127.0.0.1:9000"])).is_none());
    let addr: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    assert_eq!(
        udp_send::parse_args(&args(&["127.0.0.1:9000", "hello", "there"])),
        Some((addr, "hello there".to_string()))
    );
    assert_eq!(
        chat::parse_args(&args(&["connect", "127.0.0.1:9000"])),
        Some((chat::Role::Connect, addr))
    );
}

#[test]
fn udp_send_and_recv() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(TIMEOUT).unwrap();
    let to = socket.local_addr().unwrap();
    let receiver = thread::spawn(move || udp_recv::recv_one(&socket));
    let from = udp_send::send(to, "héllo, datagram").unwrap();
    let (seen_from, text) = receiver.join().unwrap().unwrap();
    assert_eq!(text, "héllo, datagram");
    assert_eq!(seen_from.port(), from.port());
    assert_eq!(seen_from.ip(), to.ip());

    // Not UTF-8: an InvalidData error, not a panic.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(TIMEOUT).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(&[0xff, 0xfe], socket.local_addr().unwrap())
        .unwrap();
    let e = udp_recv::recv_one(&socket).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn udp_echo_server_and_client() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(TIMEOUT).unwrap();
    let addr = server.local_addr().unwrap();
    let log = Captured::default();
    let server_log = log.clone();
    let server = thread::spawn(move || udp_echo::serve(&server, Some(2), server_log));
    let client = udp_echo::connect(addr).unwrap();
    let mut out = Vec::new();
    let input = Cursor::new("first line\nsecond line\nexit\nnot sent\n");
    udp_echo::client(&client, input, &mut out).unwrap();
    server.join().unwrap().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "echo: first line\necho: second line\n"
    );
    assert_eq!(log.text().matches("echoed").count(), 2);
}

#[test]
fn tcp_echo_serves_clients_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || tcp_echo::serve(&listener, Some(3)));
    // Three clients connect before any of them sends: the server must serve them together.
    let streams: Vec<TcpStream> = (0..3)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(TIMEOUT).unwrap();
            s
        })
        .collect();
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            thread::spawn(move || {
                let big = "x".repeat(50_000);
                let input = format!("client {i} says hi\n\n{big}\nbye from {i}\nexit\nnot sent\n");
                let mut out = Vec::new();
                tcp_echo::client(stream, Cursor::new(input), &mut out).map(|()| out)
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let out = String::from_utf8(client.join().unwrap().unwrap()).unwrap();
        let big = "x".repeat(50_000);
        assert_eq!(
            out,
            format!("echo: client {i} says hi\necho: \necho: {big}\necho: bye from {i}\n")
        );
    }
    server.join().unwrap().unwrap();
}

#[test]
fn chat_two_peers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (a_keys, a_input) = keyboard();
    let (b_keys, b_input) = keyboard();
    let a_out = Captured::default();
    let b_out = Captured::default();

    let out = a_out.clone();
    let a = thread::spawn(move || {
        let (stream, _) = listener.accept()?;
        stream.set_read_timeout(TIMEOUT)?;
        chat::converse(stream, a_input, out)
    });
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(TIMEOUT).unwrap();
    let out = b_out.clone();
    let b = thread::spawn(move || chat::converse(stream, b_input, out));

    // Both sides talk while the other is still waiting on its keyboard.
    b_keys.send("hi from b".into()).unwrap();
    a_out.wait_for("peer: hi from b\n");
    a_keys.send("hello from a".into()).unwrap();
    a_keys.send("how are you?".into()).unwrap();
    b_out.wait_for("peer: how are you?\n");
    b_keys.send("fine".into()).unwrap();
    a_out.wait_for("peer: fine\n");
    // A leaves: B is told and ends, which ends A.
    a_keys.send("exit".into()).unwrap();
    b.join().unwrap().unwrap();
    a.join().unwrap().unwrap();
    drop(b_keys);
    assert_eq!(
        a_out.text(),
        "peer: hi from b\npeer: fine\n* the peer has left\n"
    );
    assert_eq!(
        b_out.text(),
        "peer: hello from a\npeer: how are you?\n* the peer has left\n"
    );
}
