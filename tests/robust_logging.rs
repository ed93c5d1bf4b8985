//! `wirekit serve` whose stderr stops working: a pipe whose reader is gone, a pipe nobody
//! drains, a device that refuses every write. Each costs log lines, never a transfer, and
//! the server still stops cleanly on SIGTERM. The client subcommands print their errors
//! on a closed stderr without panicking.
#![cfg(all(feature = "cli", target_os = "linux"))]

mod common;

use std::fs::{self, File};
use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::process::{ChildStderr, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::cli::{BIN, Serving, serve_on_loopback, signal};
use common::client::get_from;
use common::files::{TempDir, random_bytes};
use common::packets::{NobodyListens, RawClient, ack, rrq};
use common::server::fast_config;
use common::wait::{wait_for, wait_until};
use wirekit::net::ClientOptions;

/// How many gets each test makes after its sink went bad: far more log lines than a pipe
/// holds (and than a server blocked on a log write would ever answer).
const GETS: usize = 50;

/// Retransmissions quick enough that a server which stopped answering fails the test in
/// seconds rather than hanging it. A plain request: 512-byte blocks in lock-step make a
/// log line of every 512 bytes (and of every ACK) at `-v`, enough for the 3 MB file to
/// overflow the server's log queue (`QUEUE_LINES`) and drop lines, which windows of
/// large blocks would not.
fn options() -> ClientOptions {
    let mut opts = ClientOptions::plain();
    opts.config = fast_config(500, 2000, 5);
    opts
}

/// A root with a small file `f` and a 3 MB file `big`.
fn root(tag: &str) -> (TempDir, Vec<u8>, Vec<u8>) {
    let root = TempDir::new(tag);
    let small = random_bytes(2000, 1);
    let big = random_bytes(3 << 20, 2);
    fs::write(root.join("f"), &small).unwrap();
    fs::write(root.join("big"), &big).unwrap();
    (root, small, big)
}

/// Downloads `name` from `server` and checks it is `expected`, byte for byte.
fn get_exactly(server: SocketAddr, name: &str, expected: &[u8], what: &str) {
    let (got, _) = get_from("127.0.0.1".parse().unwrap(), server, name, &options())
        .unwrap_or_else(|e| panic!("{what}: get {name}: {e}"));
    assert!(got == expected, "{what}: {name} differs");
}

/// `GETS` downloads of `f`, all complete and byte-identical.
fn many_gets(server: SocketAddr, small: &[u8], what: &str) {
    for i in 0..GETS {
        get_exactly(server, "f", small, &format!("{what}, get {i}"));
    }
}

/// Stops the server with SIGTERM and checks it ended well, promptly.
fn stop(mut server: Serving) {
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server ended before it was told to: {:?}",
        server.child.try_wait()
    );
    signal(&server.child, "TERM");
    assert!(server.wait_for_exit(), "{:?}", server.child.try_wait());
}

/// Whether the pipe `stderr` reads from is full: the server's next line cannot go in.
fn pipe_full(stderr: &ChildStderr) -> bool {
    let capacity = rustix::pipe::fcntl_getpipe_size(stderr.as_fd()).unwrap() as u64;
    let held = rustix::io::ioctl_fionread(stderr.as_fd()).unwrap();
    // A write of a line (at most a few hundred bytes) goes in whole or waits.
    held + 1024 > capacity
}

/// Whether process `pid` ignores SIGPIPE, as Rust programs do unless something resets it:
/// otherwise its first write to a pipe whose reader is gone would end it.
fn ignores_sigpipe(pid: u32) -> bool {
    const SIGPIPE: u32 = 13;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn in /proc/PID/status");
    let mask = u64::from_str_radix(ignored.trim(), 16).unwrap();
    mask & (1 << (SIGPIPE - 1)) != 0
}

/// The read end is closed once the banner is read: every later log write fails with
/// EPIPE. Before, the first of them panicked the event loop and the process exited (101).
#[test]
fn a_stderr_pipe_whose_reader_is_gone_costs_only_the_log() {
    let (root, small, big) = root("log-closed");
    let (server, stderr) = Serving::spawn_keeping_stderr(serve_on_loopback(&root, &[]));
    assert!(ignores_sigpipe(server.child.id()), "SIGPIPE is not ignored");
    drop(stderr);
    get_exactly(server.addr(), "big", &big, "stderr closed");
    many_gets(server.addr(), &small, "stderr closed");
    stop(server);
}

/// Nobody reads the pipe, and every packet is logged (`-v`): it fills within the first
/// download. Before, the event loop then blocked on its next log line and answered
/// nobody, and the signal handler blocked on its own line, so SIGTERM did nothing.
#[test]
fn a_stderr_pipe_nobody_reads_costs_only_the_log() {
    let (root, small, big) = root("log-stalled");
    let (mut server, stderr) =
        Serving::spawn_keeping_stderr(serve_on_loopback(&root, &["-v", "--grace", "60"]));
    get_exactly(server.addr(), "big", &big, "stalled");
    let pipe = stderr.get_ref();
    wait_for(
        Duration::from_secs(10),
        || pipe_full(pipe),
        || "the pipe never filled".into(),
    );
    many_gets(server.addr(), &small, "stalled");

    // Read again: the queued lines come out, then how many were dropped meanwhile.
    let reader = thread::spawn(move || {
        let mut stderr = stderr;
        let mut line = String::new();
        loop {
            line.clear();
            match stderr.read_line(&mut line) {
                Ok(n) if n > 0 && line.contains("log lines dropped (log output stalled)") => {
                    return (stderr, Some(line));
                }
                Ok(n) if n > 0 => {}
                _ => return (stderr, None),
            }
        }
    });
    let (stderr, notice) = reader.join().unwrap();
    let notice = notice.expect("no line says that log lines were dropped");
    assert!(notice.starts_with("wirekit: "), "{notice}");

    // Stalled again (the reader stopped), with a transfer running: the first SIGTERM
    // stops admitting requests, the second cuts the transfer, and the process ends.
    get_exactly(server.addr(), "big", &big, "stalled again");
    let pipe = stderr.get_ref();
    wait_for(
        Duration::from_secs(10),
        || pipe_full(pipe),
        || "the pipe never filled again".into(),
    );
    let running = RawClient::new(server.addr());
    let (first, tid) = running.ask(&rrq("big", &[]), server.addr());
    assert_eq!(&first[..4], &[0, 3, 0, 1], "DATA 1 expected");
    running.send(&ack(1), tid);
    signal(&server.child, "TERM");
    wait_for(
        Duration::from_secs(10),
        || {
            // A port of its own each time: a request sent before the signal took effect
            // was admitted, and the server takes that port's next request for a repeat.
            let late = RawClient::new(server.addr());
            late.patience(Duration::from_secs(1));
            late.send(&rrq("f", &[]), server.addr());
            late.try_recv().is_ok_and(|(answer, _)| {
                answer.starts_with(&[0, 5])
                    && String::from_utf8_lossy(&answer).contains("shutting down")
            })
        },
        || "requests are still admitted after SIGTERM".into(),
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the grace is 60 s"
    );
    stop(server);
    drop(stderr);
}

/// Every write fails (ENOSPC). Before, the first line (the banner) panicked the process.
#[test]
fn a_stderr_that_refuses_every_write_costs_only_the_log() {
    let (root, small, big) = root("log-full");
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg(root.path())
        .args(["--listen", "127.0.0.1:0", "--threads", "1", "-v"]);
    let full = File::options().write(true).open("/dev/full").unwrap();
    let server = Serving::spawn_on(cmd, Stdio::from(full));
    get_exactly(server.addr(), "big", &big, "/dev/full");
    many_gets(server.addr(), &small, "/dev/full");
    stop(server);
}

/// `get` and `put` print their error on a stderr whose reader is gone, and exit with the
/// error's status, 1. Before, `eprintln!` panicked (101).
#[test]
fn client_errors_on_a_closed_stderr_end_with_status_1() {
    let dir = TempDir::new("log-client");
    let closed = NobodyListens::new();
    let nobody = closed.addr().to_string();
    for args in [
        vec!["get", &nobody, "f", "out"],
        vec!["put", &nobody, "no-such-local-file", "f"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = Command::new(BIN)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(writer)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{args:?}: {status}");
    }
}

/// The signal handler never waits on the log: with the pipe full, a SIGTERM still stops
/// a server that has nothing running, and the last lines wait at most a bounded time.
#[test]
fn sigterm_stops_a_server_whose_log_is_stalled() {
    let (root, _, big) = root("log-stalled-stop");
    let (server, mut stderr) = Serving::spawn_keeping_stderr(serve_on_loopback(&root, &["-v"]));
    get_exactly(server.addr(), "big", &big, "stalled");
    assert!(
        wait_until(Duration::from_secs(10), || pipe_full(stderr.get_ref())),
        "the pipe never filled"
    );
    stop(server);
    // What the server wrote before it stalled is whole lines.
    let mut rest = Vec::new();
    stderr.read_to_end(&mut rest).unwrap();
    assert!(rest.ends_with(b"\n"), "a line was cut short");
}
