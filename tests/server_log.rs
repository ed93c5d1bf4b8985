//! What `wirekit serve` logs: a timestamp and a level on every line (no timestamp when the
//! journal adds its own), one line per transfer as soon as it ends with the options asked
//! and granted and true counts on failure, requests and packets in plain words with `-v`,
//! only warnings with `-q`, refusals with their file and OS error, and a root the server
//! cannot write reported at start.

#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::cli::{BIN, KillOnDrop, Serving, serve_on_loopback};
use common::files::{TempDir, random_bytes};
use common::packets::{RawClient, ack, data, wrq};
use common::peers::{find_program, peer};
use wirekit::tftp::Packet;

/// `2026-11-26T15:33:41.325680Z  INFO ...`
fn timestamped(line: &str) -> bool {
    let Some((stamp, _)) = line.split_once(' ') else {
        return false;
    };
    stamp.len() > 20 && stamp.ends_with('Z') && stamp.as_bytes()[4] == b'-' && stamp.contains('T')
}

fn root_with(name: &str, bytes: &[u8]) -> TempDir {
    let root = TempDir::new("server-log");
    fs::write(root.join(name), bytes).unwrap();
    root
}

#[test]
fn every_line_has_a_timestamp_and_a_level_but_not_under_the_journal() {
    let root = root_with("f", b"x");
    let server = Serving::loopback(&root, &[]);
    let banner = &server.banner;
    assert!(timestamped(banner), "{banner}");
    assert!(banner.contains(" INFO "), "{banner}");
    drop(server);

    // Under systemd, stderr is the journal's stream and JOURNAL_STREAM names its device
    // and inode: a shell stands in for systemd here, naming the pipe it was given.
    // (`text`: with a journal on this machine, the default would be its native entries.)
    let serve = format!(
        "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec {BIN} serve {} \
         --listen 127.0.0.1:0 --threads 1 --log-format text",
        root.display()
    );
    let mut command = Command::new("sh");
    command.args(["-c", &serve]);
    let server = Serving::spawn(command);
    let banner = &server.banner;
    assert!(!timestamped(banner), "{banner}");
    // The level starts the line: no space left where the time was.
    assert!(banner.starts_with("INFO serving"), "{banner}");

    // A JOURNAL_STREAM inherited by a process whose stderr goes elsewhere is not the
    // journal: the time stays.
    let mut command = serve_on_loopback(&root, &[]);
    command.env("JOURNAL_STREAM", "8:12345");
    let server = Serving::spawn(command);
    let banner = &server.banner;
    assert!(timestamped(banner), "{banner}");
}

#[test]
fn verbose_shows_requests_and_packets_in_plain_words() {
    if peer("curl").is_none() {
        return;
    }
    let root = root_with("f.bin", &random_bytes(5000, 1));
    let server = Serving::loopback(&root, &["-v"]);
    let status = Command::new("curl")
        .args(["-sS", "--tftp-blksize", "1468", "-o", "/dev/null"])
        .arg(format!("tftp://{}/f.bin", server.addr()))
        .status()
        .unwrap();
    assert!(status.success());
    server.wait_for_log(&[
        "DEBUG",
        "<-",
        "RRQ \"f.bin\" octet",
        "blksize=1468",
        "tsize=0",
    ]);
    server.wait_for_log(&["DEBUG", "->", "OACK", "blksize=1468", "tsize=5000"]);
    server.wait_for_log(&["->", "DATA block 1, 1468 bytes"]);
    server.wait_for_log(&["<-", "ACK block 4"]);
    assert!(
        !server
            .lines()
            .iter()
            .any(|l| l.contains("Some(") || l.contains("Options {")),
        "no Rust Debug output: {:?}",
        server.lines()
    );
}

#[test]
fn a_transfer_is_logged_when_it_ends_with_its_options() {
    let root = TempDir::new("server-log-up");
    let server = Serving::loopback(&root, &["--allow-create"]);
    let file = random_bytes(30_000, 2);
    // An upload by hand, so the test sees each step: blksize 1024, 29 full blocks and one
    // of 304 bytes.
    let client = RawClient::new(server.addr());
    let (answer, port) = client.ask(&wrq("up.bin", &[("blksize", "1024")]), server.addr());
    assert!(
        matches!(Packet::parse(&answer), Ok(Packet::Oack { .. })),
        "{answer:?}"
    );
    let blocks: Vec<&[u8]> = file.chunks(1024).collect();
    assert_eq!(blocks.len(), 30);
    for (i, block) in blocks.iter().enumerate() {
        let n = i as u16 + 1;
        let (answer, _) = client.ask(&data(n, block), port);
        assert_eq!(answer, ack(n), "block {n}");
    }
    // The server now dallies (some 16 s) to re-ACK the final block should its ACK be lost:
    // the line must not wait for that. In events: the line is there while the transfer
    // still dallies, i.e. the final block sent again after the line is still re-ACKed
    // from the transfer's port (after the dally, nothing would answer there).
    let line = server.wait_for_log(&["write \"up.bin\"", "30000 bytes", "ok"]);
    assert!(line.contains("blksize 1024"), "{line}");
    let (answer, from) = client.ask(&data(30, blocks[29]), port);
    assert_eq!((answer, from), (ack(30), port), "the final block re-ACKed");
    assert_eq!(fs::read(root.join("up.bin")).unwrap(), file);
}

#[test]
fn a_failed_transfer_reports_its_true_counts() {
    let root = root_with("big.bin", &random_bytes(100_000, 3));
    let server = Serving::loopback(&root, &["--timeout", "1", "--retries", "1"]);
    // A client that takes three blocks and goes silent.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .send_to(b"\0\x01big.bin\0octet\0", server.addr())
        .unwrap();
    let mut buf = [0u8; 600];
    for block in 1..=3u16 {
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert!(
            matches!(Packet::parse(&buf[..n]), Ok(Packet::Data { block: b, .. }) if b == block)
        );
        let ack = Packet::Ack { block }.to_vec().unwrap();
        client.send_to(&ack, from).unwrap();
    }
    let line = server.wait_for_log(&["read \"big.bin\"", "failed"]);
    assert!(line.contains(" WARN "), "{line}");
    // Three blocks delivered and a fourth sent: true bytes, not "0 bytes".
    assert!(line.contains("2048 bytes"), "{line}");
    assert!(!line.contains(" 0 resent"), "{line}");
}

#[test]
fn a_refusal_names_the_file_and_the_os_error() {
    let root = TempDir::new("server-log-refused");
    let server = Serving::loopback(&root, &[]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(b"\0\x01missing.bin\0octet\0", server.addr())
        .unwrap();
    let line = server.wait_for_log(&["refused", "\"missing.bin\""]);
    assert!(line.contains("ERROR 1 File not found"), "{line}");
    assert!(line.contains("os error 2"), "{line}");
}

/// True when this process runs as root and can run a program as another user.
fn can_run_as_nobody() -> bool {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root || find_program("setpriv").is_none() {
        eprintln!("skipping: needs root and setpriv to run the server as another user");
        return false;
    }
    true
}

/// `wirekit serve ROOT ARGS...` as user and group nobody.
fn serve_as_nobody(root: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
    command
        .arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .args(args);
    command
}

#[test]
fn a_root_the_server_cannot_write_is_reported_at_start() {
    // Root may write anywhere: run the server as nobody, on a root only root may write.
    if !can_run_as_nobody() {
        return;
    }
    let root = TempDir::new("server-log-readonly");
    fs::write(root.join("f"), b"x").unwrap();
    fs::set_permissions(&*root, fs::Permissions::from_mode(0o755)).unwrap();
    let server = Serving::spawn(serve_as_nobody(&root, &["--allow-create"]));
    let line = server.wait_for_log(&["WARN", "cannot write", "Permission denied"]);
    assert!(line.contains(&root.display().to_string()), "{line}");
}

#[test]
fn quiet_logs_warnings_only() {
    if !can_run_as_nobody() {
        return;
    }
    let root = TempDir::new("server-log-quiet");
    fs::set_permissions(&*root, fs::Permissions::from_mode(0o755)).unwrap();
    let mut server = KillOnDrop::spawn_piped(serve_as_nobody(&root, &["--allow-create", "-q"]));
    // A server that never speaks must not hang the test: wait for its first line, bounded;
    // the guard kills it however the test ends.
    let first = server.first_stderr_line(Duration::from_secs(10));
    drop(server);
    // The banner (INFO) is left out; the warning about the root comes first.
    let first = first.expect("a warning");
    assert!(
        first.contains(" WARN ") && first.contains("cannot write"),
        "{first}"
    );
}
