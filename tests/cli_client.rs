//! `wirekit get` against servers that misbehave, played by the test on raw UDP sockets:
//! sizes that differ from the announced tsize, `--max-size`, an OACK that does not parse,
//! Ctrl-C and SIGTERM in the middle of a download, and a local path that cannot be
//! written.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::cli::{BIN, signal};
use common::files::{TempDir, list, part_files, random_bytes};
use common::packets::{ack, data};
use common::server::{OurServer, config};
use common::wait::wait_until;
use wirekit::net::DirConfig;
use wirekit::tftp::server::PortMode;

/// A server played by hand: a request port, and the transfer port it answers from.
struct FakeServer {
    listen: UdpSocket,
    tid: UdpSocket,
    /// The client's address, from its request.
    client: Option<SocketAddr>,
}

impl FakeServer {
    fn new() -> FakeServer {
        let bind = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        };
        FakeServer {
            listen: bind(),
            tid: bind(),
            client: None,
        }
    }

    fn addr(&self) -> String {
        self.listen.local_addr().unwrap().to_string()
    }

    /// Waits for the client's request; returns it.
    fn request(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 600];
        let (n, from) = self.listen.recv_from(&mut buf).expect("no request came");
        self.client = Some(from);
        buf[..n].to_vec()
    }

    /// Sends `bytes` to the client from the transfer port.
    fn send(&self, bytes: &[u8]) {
        self.tid
            .send_to(bytes, self.client.expect("no request yet"))
            .unwrap();
    }

    /// The next datagram the client sends to the transfer port.
    fn recv(&self) -> Vec<u8> {
        let mut buf = [0u8; 600];
        let (n, _) = self.tid.recv_from(&mut buf).expect("nothing came");
        buf[..n].to_vec()
    }

    /// Reads the transfer port until an ERROR comes (repeated ACKs are skipped); returns
    /// its code.
    fn error_code(&self) -> u16 {
        for _ in 0..100 {
            let d = self.recv();
            if d.starts_with(&[0, 5]) && d.len() >= 4 {
                return u16::from_be_bytes([d[2], d[3]]);
            }
        }
        panic!("no ERROR came");
    }
}

fn oack(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![0, 6];
    for (k, val) in pairs {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

/// `wirekit get SERVER f.bin LOCAL ARGS...` run in `dir`, with its stderr captured.
fn get(dir: &Path, server: &str, local: &str, args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("get")
        .args([server, "f.bin", local])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) for `child` to exit; returns its status and stderr.
fn finish(mut child: Child) -> (ExitStatus, String) {
    let mut status = None;
    let exited = wait_until(Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("wirekit get did not exit");
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.unwrap(), err)
}

/// Nothing was stored: no file, no partial file.
fn assert_nothing_stored(dir: &Path) {
    assert!(list(dir).is_empty(), "left in {dir:?}: {:?}", list(dir));
}

// --- The size the server announced --------------------------------------------------------

#[test]
fn get_refuses_more_data_than_the_server_announced() {
    let dir = TempDir::new("cli-client-more");
    let mut server = FakeServer::new();
    let child = get(&dir, &server.addr(), "out.bin", &[]);
    let rq = server.request();
    assert!(rq.windows(6).any(|w| w == b"tsize\0"), "tsize asked");
    server.send(&oack(&[("tsize", "100")]));
    assert_eq!(server.recv(), ack(0));
    // 100 bytes announced, and then a full block: the client says no at once.
    server.send(&data(1, &[1; 512]));
    assert_eq!(server.error_code(), 3);
    let (status, err) = finish(child);
    assert!(!status.success());
    assert!(err.contains("more than the 100 bytes"), "{err}");
    assert_nothing_stored(&dir);
}

#[test]
fn get_fails_when_the_transfer_ends_short_of_the_announced_size() {
    let dir = TempDir::new("cli-client-short");
    let mut server = FakeServer::new();
    let child = get(&dir, &server.addr(), "out.bin", &[]);
    server.request();
    server.send(&oack(&[("tsize", "5000")]));
    assert_eq!(server.recv(), ack(0));
    server.send(&data(1, &[1; 100]));
    // Not the final ACK: the server learns the file did not arrive.
    assert_eq!(server.error_code(), 0);
    let (status, err) = finish(child);
    assert!(!status.success(), "{err}");
    assert!(err.contains("after 100 of the 5000 bytes"), "{err}");
    assert_nothing_stored(&dir);
}

// --- --max-size ---------------------------------------------------------------------------

#[test]
fn get_max_size_refuses_a_larger_file_up_front_and_takes_one_of_its_size() {
    let root = TempDir::new("cli-client-max-root");
    let dir = TempDir::new("cli-client-max");
    let file = random_bytes(3000, 7);
    fs::write(root.join("f.bin"), &file).unwrap();
    let server = OurServer::start(config(PortMode::PerTransfer), DirConfig::new(root.path()));
    let addr = server.addr;
    let addr = addr.to_string();

    let (status, err) = finish(get(&dir, &addr, "out.bin", &["--max-size", "2999"]));
    assert!(!status.success());
    assert!(
        err.contains("3000 bytes, larger than the limit of 2999"),
        "{err}"
    );
    assert_nothing_stored(&dir);

    let (status, err) = finish(get(&dir, &addr, "out.bin", &["--max-size", "3000"]));
    assert!(status.success(), "{err}");
    assert_eq!(fs::read(dir.join("out.bin")).unwrap(), file);
}

#[test]
fn get_max_size_stops_endless_data_with_error_3() {
    // A server that ignores the options and never ends its file.
    let dir = TempDir::new("cli-client-endless");
    let mut server = FakeServer::new();
    let child = get(&dir, &server.addr(), "out.bin", &["--max-size", "2048"]);
    server.request();
    let mut block = 1u16;
    server.send(&data(block, &[1; 512]));
    let code = loop {
        let d = server.recv();
        if d.starts_with(&[0, 5]) {
            break u16::from_be_bytes([d[2], d[3]]);
        }
        assert_eq!(d, ack(block));
        assert!(block < 100, "the client keeps taking blocks");
        block += 1;
        server.send(&data(block, &[block as u8; 512]));
    };
    assert_eq!(code, 3);
    assert_eq!(block, 5, "4 blocks of 512 fit in 2048");
    let (status, err) = finish(child);
    assert!(!status.success());
    assert!(err.contains("larger than the limit of 2048 bytes"), "{err}");
    assert_nothing_stored(&dir);
}

// --- An OACK that does not parse ----------------------------------------------------------

#[test]
fn get_answers_a_malformed_oack_with_error_8_at_once() {
    let dir = TempDir::new("cli-client-bad-oack");
    let mut server = FakeServer::new();
    let child = get(&dir, &server.addr(), "out.bin", &["--blksize", "1428"]);
    server.request();
    // "blksize" with no value: not an OACK anyone can read.
    server.send(b"\x00\x06blksize\x00");
    // The ERROR comes to the transfer port, before the client would retransmit its
    // request (after its 1-second timeout) to the request port.
    let d = server.recv();
    assert_eq!(&d[..4], [0, 5, 0, 8], "{d:?}");
    let (status, err) = finish(child);
    assert!(!status.success());
    assert!(err.contains("OACK"), "{err}");
    server.listen.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 600];
    assert!(
        server.listen.recv_from(&mut buf).is_err(),
        "the request was repeated: the OACK was ignored"
    );
    assert_nothing_stored(&dir);
}

// --- Ctrl-C, SIGTERM ----------------------------------------------------------------------

/// A download stalled after its first block is stopped by `signal`: the part file goes,
/// the server is told.
fn signal_mid_download(name: &str) {
    let dir = TempDir::new(&format!("cli-client-{name}"));
    let mut server = FakeServer::new();
    let child = get(&dir, &server.addr(), "out.bin", &[]);
    server.request();
    server.send(&data(1, &[1; 512]));
    assert_eq!(server.recv(), ack(1));
    // The part file holds the first block (or will: the client may buffer its writes);
    // now the server goes quiet.
    assert_eq!(part_files(&dir).len(), 1, "{:?}", list(&dir));
    signal(&child, name);
    assert_eq!(server.error_code(), 0, "the server is told");
    let (status, err) = finish(child);
    assert!(!status.success());
    assert!(err.contains("cancelled"), "{err}");
    assert_nothing_stored(&dir);
}

#[test]
fn sigint_during_get_removes_the_part_file() {
    signal_mid_download("INT");
}

#[test]
fn sigterm_during_get_removes_the_part_file() {
    signal_mid_download("TERM");
}

// --- A local path that cannot be written ----------------------------------------------------

#[test]
fn get_to_a_path_that_cannot_be_written_fails_before_any_request() {
    let dir = TempDir::new("cli-client-unwritable");
    fs::create_dir(dir.join("sub")).unwrap();
    let server = FakeServer::new();
    for (local, says) in [
        (
            "missing/out.bin",
            "cannot create the partial file missing/.out.bin.",
        ),
        ("sub", "cannot download to sub: is a directory"),
    ] {
        let (status, err) = finish(get(&dir, &server.addr(), local, &[]));
        assert!(!status.success());
        assert!(err.contains(says), "{local}: {err}");
    }
    // The process has exited: anything it sent is already here.
    server.listen.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 600];
    assert!(
        server.listen.recv_from(&mut buf).is_err(),
        "a request was sent"
    );
    assert_eq!(list(&dir), ["sub"]);
    assert!(list(&dir.join("sub")).is_empty());
}
