//! The `wirekit` program, run as a user would. Every server listens on port 0 of
//! 127.0.0.1 and is found through the address its banner names.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::cli::{Serving, wirekit};
use common::files::{TempDir, list, part_files};
use common::in_both_port_modes;
use common::packets::{RawClient, ack, data, wrq};
use common::wait::wait_for;
use wirekit::tftp::server::PortMode;

const ANY_PORT: &str = "127.0.0.1:0";

fn mode_args(ports: PortMode) -> &'static [&'static str] {
    match ports {
        PortMode::Single => &["--single-port"],
        _ => &[],
    }
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The default listen address is loopback on a high port (read from `--help`, so that the
/// test does not take that fixed port); with nothing but a port-0 address given, the
/// server serves the current directory read-only.
#[test]
fn serve_defaults_to_the_current_directory_read_only_on_loopback() {
    let dir = TempDir::new("cli-default");
    let help = wirekit(&dir, &["serve", "--help"]);
    assert_ok(&help);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 127.0.0.1:6969]"), "{help}");

    fs::write(dir.join("hello.txt"), b"hello\n").unwrap();
    let server = Serving::start(&dir, &["--listen", ANY_PORT]);
    assert!(server.banner.contains("read-only"), "{}", server.banner);
    assert!(server.addr().ip().is_loopback() && server.addr().port() != 0);
    let out = wirekit(
        &dir,
        &["get", &server.addr().to_string(), "hello.txt", "copy.txt"],
    );
    assert_ok(&out);
    assert_eq!(fs::read(dir.join("copy.txt")).unwrap(), b"hello\n");
    // Quiet in scripts: no progress bar when stderr is not a terminal.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Read-only: an upload is refused.
    let out = wirekit(
        &dir,
        &["put", &server.addr().to_string(), "copy.txt", "new.txt"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("new.txt").exists());
}

in_both_port_modes!(
    get_and_put_with_options_and_clear_errors,
    netascii_get_converts_line_ends,
    sigterm_stops_the_server_and_leaves_no_partial_upload,
    sigterm_after_a_finished_upload_cuts_nothing,
);

fn get_and_put_with_options_and_clear_errors(ports: PortMode) {
    let dir = TempDir::new("cli-opts");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(dir.join("fw.bin"), &data).unwrap();
    let mut args = vec!["--listen", ANY_PORT, "--allow-create"];
    args.extend(mode_args(ports));
    let serving = Serving::start(&dir, &args);
    let server = serving.addr().to_string();

    let out = wirekit(
        &dir,
        &[
            "get",
            &server,
            "fw.bin",
            "a.bin",
            "--blksize",
            "1468",
            "--windowsize",
            "16",
        ],
    );
    assert_ok(&out);
    assert_eq!(fs::read(dir.join("a.bin")).unwrap(), data);
    // One line per transfer: peer, direction, file, bytes, duration, rate, retransmissions,
    // outcome.
    let line = serving.wait_for_log(&[
        "read",
        "\"fw.bin\"",
        "200000 bytes",
        "MB/s",
        "retransmissions",
        "ok",
    ]);
    assert!(line.starts_with("127.0.0.1:"), "{line}");

    let out = wirekit(
        &dir,
        &[
            "put",
            &server,
            "a.bin",
            "b.bin",
            "--blksize",
            "8192",
            "--timeout",
            "2",
        ],
    );
    assert_ok(&out);
    assert_eq!(fs::read(dir.join("b.bin")).unwrap(), data);

    // An existing file is not replaced without --allow-overwrite: ERROR 6, one line, exit 1.
    let out = wirekit(&dir, &["put", &server, "a.bin", "b.bin"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");

    serving.wait_for_log(&["refused", "\"b.bin\"", "error 6"]);

    let out = wirekit(&dir, &["get", &server, "no-such-file"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("wirekit: ") && err.contains("not found"),
        "{err}"
    );
    assert!(!dir.join("no-such-file").exists());
}

fn netascii_get_converts_line_ends(ports: PortMode) {
    let dir = TempDir::new("cli-ascii");
    fs::write(dir.join("t.txt"), b"one\ntwo\r\nthree\n").unwrap();
    let mut args = vec!["--listen", ANY_PORT];
    args.extend(mode_args(ports));
    let server = Serving::start(&dir, &args);
    let out = wirekit(
        &dir,
        &[
            "get",
            &server.addr().to_string(),
            "t.txt",
            "u.txt",
            "--netascii",
        ],
    );
    assert_ok(&out);
    assert_eq!(fs::read(dir.join("u.txt")).unwrap(), b"one\ntwo\r\nthree\n");
}

fn sigterm_stops_the_server_and_leaves_no_partial_upload(ports: PortMode) {
    let dir = TempDir::new("cli-sigterm");
    let mut args = vec!["--listen", ANY_PORT, "--allow-create", "--grace", "1"];
    args.extend(mode_args(ports));
    let mut server = Serving::start(&dir, &args);
    // An upload that stalls after its first block: WRQ, DATA 1, then silence.
    let client = RawClient::new(server.addr());
    let (answer, tid) = client.ask(&wrq("stalled.bin", &[]), server.addr());
    assert_eq!(answer, ack(0));
    assert_eq!(
        tid == server.addr(),
        ports == PortMode::Single,
        "ACK 0 from {tid}, request port {}",
        server.addr()
    );
    client.send(&data(1, &[7u8; 512]), tid);
    assert_eq!(client.recv().0, ack(1));
    // The upload is under way: its temporary file is there.
    assert_eq!(part_files(&dir).len(), 1, "{:?}", list(&dir));

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exit = None;
    wait_for(
        Duration::from_secs(30),
        || {
            exit = server.child.try_wait().unwrap();
            exit.is_some()
        },
        || "the server did not stop".into(),
    );
    let exit = exit.unwrap();
    assert!(exit.success(), "{exit:?}");
    // The stalled upload was cut when the grace period ended, and its file removed.
    server.wait_for_log(&["grace period over", "cut 1"]);
    assert!(list(&dir).is_empty(), "left behind: {:?}", list(&dir));
}

/// An upload that has finished (stored, its final ACK sent) only dallies, to re-ACK a
/// repeated final DATA: a stop does not wait the grace period out for it, and does not
/// report it as a running transfer that had to be cut.
fn sigterm_after_a_finished_upload_cuts_nothing(ports: PortMode) {
    let dir = TempDir::new("cli-sigterm-done");
    fs::write(dir.join("a.txt"), b"done\n").unwrap();
    let mut args = vec!["--listen", ANY_PORT, "--allow-create", "--grace", "2"];
    args.extend(mode_args(ports));
    let mut server = Serving::start(&dir, &args);
    let out = wirekit(&dir, &["put", &server.addr().to_string(), "a.txt", "b.txt"]);
    assert_ok(&out);
    server.wait_for_log(&["write", "\"b.txt\"", "ok"]);

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exit = None;
    wait_for(
        Duration::from_secs(30),
        || {
            exit = server.child.try_wait().unwrap();
            exit.is_some()
        },
        || "the server did not stop".into(),
    );
    assert!(exit.unwrap().success(), "{exit:?}");
    let lines = server.lines();
    assert!(
        !lines.iter().any(|l| l.contains("grace period over")),
        "{lines:?}"
    );
    assert_eq!(fs::read(dir.join("b.txt")).unwrap(), b"done\n");
}
