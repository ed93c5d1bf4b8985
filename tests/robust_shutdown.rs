//! `wirekit serve` shutting down with transfers still running: a second Ctrl-C, or the end
//! of the grace period, cuts them. Each client is sent an ERROR, no upload is left behind in
//! the root, the process exits, and its log says how many transfers it cut.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cli::{BIN, Serving, signal};
use common::files::{TempDir, list, random_bytes};
use common::wait::wait_until;

/// `wirekit serve ROOT --listen 127.0.0.1:0 ARGS`, with its log.
fn serve(root: &Path, args: &[&str]) -> Serving {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .args(args);
    Serving::spawn(cmd)
}

fn logged(server: &Serving, part: &str) -> bool {
    server.banner.contains(part) || server.lines().iter().any(|l| l.contains(part))
}

fn log_text(server: &Serving) -> String {
    server.lines().join("\n")
}

/// A raw client that has its transfer going and then stalls.
struct Stalled {
    socket: UdpSocket,
    /// The server's transfer port.
    tid: SocketAddr,
}

impl Stalled {
    fn socket() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// RRQ, DATA 1, ACK 1: the server sends DATA 2 and waits for an ACK that never comes.
    fn download(server: SocketAddr, name: &str) -> Stalled {
        let socket = Stalled::socket();
        socket.send_to(&request(1, name), server).unwrap();
        let mut buf = [0u8; 600];
        let (n, tid) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 3, 0, 1], "DATA 1 expected: {:?}", &buf[..n]);
        socket.send_to(&[0, 4, 0, 1], tid).unwrap();
        Stalled { socket, tid }
    }

    /// WRQ, ACK 0, DATA 1 (a full block), ACK 1: the server waits for DATA 2 forever.
    fn upload(server: SocketAddr, name: &str) -> Stalled {
        let socket = Stalled::socket();
        socket.send_to(&request(2, name), server).unwrap();
        let mut buf = [0u8; 600];
        let (n, tid) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 4, 0, 0]);
        let mut data = vec![0, 3, 0, 1];
        data.extend_from_slice(&[7u8; 512]);
        socket.send_to(&data, tid).unwrap();
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 4, 0, 1]);
        Stalled { socket, tid }
    }

    /// WRQ, ACK 0, a short DATA 1, ACK 1: a finished upload, which the server keeps a while
    /// (it dallies) to re-ACK a repeated final block. It is not running: not cut.
    fn finished_upload(server: SocketAddr, name: &str) -> Stalled {
        let socket = Stalled::socket();
        socket.send_to(&request(2, name), server).unwrap();
        let mut buf = [0u8; 600];
        let (n, tid) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 4, 0, 0]);
        socket.send_to(b"\x00\x03\x00\x01done", tid).unwrap();
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 4, 0, 1]);
        Stalled { socket, tid }
    }

    /// Nothing came after the server exited: no ERROR for a transfer that had ended.
    fn assert_quiet(&self) {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 600];
        let got = self.socket.recv_from(&mut buf);
        assert!(got.is_err(), "{:?}", got.map(|(n, _)| buf[..n].to_vec()));
    }

    /// Reads until an ERROR from the transfer port arrives (retransmitted DATA or ACKs are
    /// skipped); returns its code and message.
    fn error(&self) -> (u16, String) {
        let mut buf = [0u8; 600];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else {
                break;
            };
            if from == self.tid && n >= 4 && buf[..2] == [0, 5] {
                let code = u16::from_be_bytes([buf[2], buf[3]]);
                let text = buf[4..n].split(|&b| b == 0).next().unwrap_or_default();
                return (code, String::from_utf8_lossy(text).into_owned());
            }
        }
        panic!("no ERROR from {}", self.tid);
    }
}

fn request(opcode: u8, name: &str) -> Vec<u8> {
    let mut v = vec![0, opcode];
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(b"\0octet\0");
    v
}

/// A served root with a file large enough that a download of it is still running.
fn root(name: &str) -> TempDir {
    let root = TempDir::new(name);
    fs::write(root.join("big.bin"), random_bytes(64 * 1024, 11)).unwrap();
    root
}

/// Two stalled downloads and two stalled uploads, running, and one upload that finished
/// and is dallying.
fn transfers(server: SocketAddr) -> (Vec<Stalled>, Stalled) {
    let stalled = vec![
        Stalled::download(server, "big.bin"),
        Stalled::upload(server, "up1.bin"),
        Stalled::download(server, "big.bin"),
        Stalled::upload(server, "up2.bin"),
    ];
    (stalled, Stalled::finished_upload(server, "done.bin"))
}

/// Every stalled client got the server's ERROR, the finished one nothing; the root holds
/// what it held before and the finished upload, and no partial upload; the log counts the
/// four transfers cut, once for the whole server (it runs several loops).
fn assert_cut(server: &mut Serving, stalled: &[Stalled], finished: &Stalled, root: &Path) {
    assert!(server.wait_for_exit(), "log:\n{}", log_text(server));
    for c in stalled {
        let (code, message) = c.error();
        assert_eq!(code, 0, "{message}");
        assert!(message.contains("shutting down"), "{message}");
    }
    finished.assert_quiet();
    assert_eq!(
        list(root),
        ["big.bin", "done.bin"],
        "left behind in the root"
    );
    // The reader thread may still be reading the last lines.
    assert!(
        wait_until(Duration::from_secs(5), || logged(server, "cut 4 ")),
        "no line saying 4 transfers were cut:\n{}",
        log_text(server)
    );
    let cut_lines = server
        .lines()
        .iter()
        .filter(|l| l.contains(" cut "))
        .count();
    assert_eq!(cut_lines, 1, "{}", log_text(server));
}

#[test]
fn second_sigint_cuts_running_transfers_at_once() {
    let root = root("second-sigint");
    // Two loops, so the count is the server's, not one loop's. A long grace: only the
    // second signal can end it in time.
    let mut server = serve(
        &root,
        &["--allow-create", "--threads", "2", "--grace", "600"],
    );
    let (stalled, finished) = transfers(server.addr());
    signal(&server.child, "INT");
    assert!(
        wait_until(Duration::from_secs(5), || logged(&server, "stopping")),
        "the first Ctrl-C was not acknowledged:\n{}",
        log_text(&server)
    );
    signal(&server.child, "INT");
    assert_cut(&mut server, &stalled, &finished, &root);
}

#[test]
fn grace_period_end_cuts_running_transfers() {
    let root = root("grace-end");
    let mut server = serve(&root, &["--allow-create", "--threads", "2", "--grace", "1"]);
    let (stalled, finished) = transfers(server.addr());
    signal(&server.child, "INT");
    assert_cut(&mut server, &stalled, &finished, &root);
}
