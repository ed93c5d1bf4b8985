//! The `wirekit` program, run as a user would. Every server listens on port 0 of
//! 127.0.0.1 and is found through the address its banner names.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::process::Command;

use common::cli::{BIN, Serving, assert_ok, signal, wirekit};
use common::files::{TempDir, list, part_files};
use common::in_both_port_modes;
use common::packets::{RawClient, ack, data, rrq, wrq};
use common::peers::{is_root, require_peers};
use wirekit::tftp::server::PortMode;

const ANY_PORT: &str = "127.0.0.1:0";

fn mode_args(ports: PortMode) -> &'static [&'static str] {
    match ports {
        PortMode::Single => &["--single-port"],
        _ => &[],
    }
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
    assert!(help.contains("127.0.0.1:6969"), "{help}");

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
    // One line per transfer: peer, direction, file, bytes, duration, rate, packets resent,
    // outcome.
    let line = serving.wait_for_log(&[
        "read",
        "\"fw.bin\"",
        "200000 bytes",
        "MB/s",
        "0 resent",
        "ok",
    ]);
    // After the log's timestamp and level: the client's address.
    assert!(line.contains(" 127.0.0.1:"), "{line}");

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

    serving.wait_for_log(&["refused", "\"b.bin\"", "ERROR 6"]);

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
    // The upload is under way (its temporary file has no name on Linux, O_TMPFILE).
    assert!(part_files(&dir).len() <= 1, "{:?}", list(&dir));

    signal(&server.child, "TERM");
    assert!(server.wait_for_exit(), "{:?}", server.lines());
    // The stalled upload was cut when the grace period ended, and its file removed.
    server.wait_for_log(&["cut 1 running transfer"]);
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

    signal(&server.child, "TERM");
    assert!(server.wait_for_exit(), "{:?}", server.lines());
    let lines = server.lines();
    assert!(
        !lines.iter().any(|l| l.contains("grace period over")),
        "{lines:?}"
    );
    assert_eq!(fs::read(dir.join("b.txt")).unwrap(), b"done\n");
}

/// A server killed (SIGKILL) in the middle of an upload leaves nothing behind once it is
/// started again, and the storage flags reach the server.
#[test]
fn killed_mid_upload_leaves_nothing_and_storage_flags_apply() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cli-sigkill");
    let outside = TempDir::new("cli-sigkill-outside");
    let args = [
        "--listen",
        ANY_PORT,
        "--allow-create",
        "--create-mode",
        "640",
        "--refuse-linked",
    ];
    let mut server = Serving::start(&dir, &args);
    let client = RawClient::new(server.addr());
    let (answer, tid) = client.ask(&wrq("killed.bin", &[]), server.addr());
    assert_eq!(answer, ack(0));
    client.send(&data(1, &[7u8; 512]), tid);
    assert_eq!(client.recv().0, ack(1));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);

    let server = Serving::start(&dir, &args);
    let addr = server.addr().to_string();
    assert!(list(&dir).is_empty(), "left behind: {:?}", list(&dir));

    // --create-mode: new files get exactly that mode.
    fs::write(outside.join("up.txt"), b"uploaded\n").unwrap();
    let local = outside.join("up.txt");
    let out = wirekit(&dir, &["put", &addr, local.to_str().unwrap(), "up.txt"]);
    assert_ok(&out);
    let mode = fs::metadata(dir.join("up.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640);

    // --refuse-linked: a hard link to a file elsewhere is not served.
    fs::write(outside.join("secret"), b"secret\n").unwrap();
    fs::hard_link(outside.join("secret"), dir.join("linked")).unwrap();
    let out = wirekit(&outside, &["get", &addr, "linked", "got"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than one hard link"), "{err}");
    assert!(!outside.join("got").exists());
}

/// Whether this runs as root with `program` available (checked with `args`); otherwise
/// prints the skip line, or fails when `WIREKIT_REQUIRE_PEERS=1`.
fn root_with(program: &str, args: &[&str]) -> bool {
    let usable = is_root()
        && Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success());
    if !usable {
        assert!(
            !require_peers(),
            "needs root and {program}, and WIREKIT_REQUIRE_PEERS=1"
        );
        eprintln!("skipping: needs root and {program}");
    }
    usable
}

/// A server running as an ordinary user cannot give a replaced file back to its owner, so
/// it refuses the upload up front instead of handing the file to itself.
#[test]
fn unprivileged_server_refuses_to_replace_what_it_cannot_keep() {
    if !root_with("setpriv", &["--version"]) {
        return;
    }
    let dir = TempDir::new("cli-unpriv");
    let outside = TempDir::new("cli-unpriv-local");
    std::os::unix::fs::chown(&dir, Some(1234), Some(1234)).unwrap();
    fs::write(dir.join("root.cfg"), b"root's\n").unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "1234", "--regid", "1234", "--clear-groups", BIN])
        .args(["serve", "--listen", ANY_PORT])
        .args(["--allow-create", "--allow-overwrite"])
        .arg(dir.path());
    let server = Serving::spawn(cmd);
    let addr = server.addr().to_string();
    let local = outside.join("upload.txt");
    fs::write(&local, b"uploaded\n").unwrap();

    let out = wirekit(&dir, &["put", &addr, local.to_str().unwrap(), "root.cfg"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error 2") || err.contains("ERROR 2"), "{err}");
    assert!(err.contains("cannot keep the owner"), "{err}");
    assert_eq!(fs::read(dir.join("root.cfg")).unwrap(), b"root's\n");
    // A new file is the server's own.
    let out = wirekit(&dir, &["put", &addr, local.to_str().unwrap(), "new.cfg"]);
    assert_ok(&out);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(dir.join("new.cfg")).unwrap().uid(), 1234);
}

/// Where uploads cannot be anonymous (no `O_TMPFILE`, or here no `/proc` to link one
/// through), an upload in progress has a random hidden name that is refused by name, and
/// what a killed server left under such a name is gone once a server starts again.
#[test]
fn named_fallback_is_refused_by_name_and_swept_after_a_kill() {
    if !root_with("unshare", &["--mount", "true"]) {
        return;
    }
    let dir = TempDir::new("cli-fallback");
    let script = format!(
        "umount -l /proc && exec {BIN} serve --listen {ANY_PORT} --allow-create {}",
        dir.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let mut server = Serving::spawn(cmd);
    let client = RawClient::new(server.addr());
    let (answer, tid) = client.ask(&wrq("up.bin", &[]), server.addr());
    assert_eq!(answer, ack(0));
    client.send(&data(1, &[7u8; 512]), tid);
    assert_eq!(client.recv().0, ack(1));

    let names = list(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
    let temp = &names[0];
    assert!(
        temp.starts_with('.') && temp.ends_with(".wirekit-part"),
        "{temp}"
    );
    assert_eq!(temp.len(), 1 + 32 + ".wirekit-part".len(), "{temp}");
    let probe = RawClient::new(server.addr());
    let (answer, _) = probe.ask(&rrq(temp, &[]), server.addr());
    assert_eq!(&answer[..4], &[0, 5, 0, 2], "{answer:?}");

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(dir.join(temp).exists(), "the kill left nothing to sweep");
    let _server = Serving::start(&dir, &["--listen", ANY_PORT]);
    assert!(list(&dir).is_empty(), "left behind: {:?}", list(&dir));
}

/// `serve --help` says how long a silent client holds its transfer, and the figure is the
/// one the library's timer gives for the default settings.
#[test]
fn serve_help_says_how_long_a_silent_client_holds_its_transfer() {
    let dir = TempDir::new("cli-patience");
    let help = wirekit(&dir, &["serve", "--help"]);
    assert_ok(&help);
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let patience = wirekit::tftp::server::Limits::default()
        .config
        .patience()
        .as_secs();
    assert!(
        help.contains(&format!(
            "holds its transfer for {patience} s with the defaults"
        )),
        "{help}"
    );
}
