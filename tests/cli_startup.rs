//! `wirekit serve` refuses at start what could only fail request by request: numbers that
//! would mean nothing (0 transfers at once, a 0 s timeout), transfer ports the serving user
//! may not bind, a root it may not open files in. And it says exactly which uploads it
//! accepts. Tests that run the server as another user need root and say "skipping"
//! without it (or fail, with `WIREKIT_REQUIRE_PEERS=1`).
#![cfg(all(feature = "cli", target_os = "linux"))]

mod common;

use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::cli::{BIN, Serving, serve_on_loopback, wirekit};
use common::files::{TempDir, random_bytes};
use common::packets::{RawClient, rrq};
use common::peers::{Output, find_program, is_root, missing, root_for, run_for};

/// How long a refused start may take; a server that starts instead is killed then, and
/// the test fails.
const START: Duration = Duration::from_secs(10);

/// Runs `cmd`, a `wirekit serve` that must refuse to start, and returns what it printed.
fn refused(mut cmd: Command, status: i32) -> Output {
    let out = run_for(&mut cmd, &[], START);
    assert_eq!(out.status.code(), Some(status), "{cmd:?}: {}", out.stderr);
    out
}

/// The lowest port a process without privileges may bind here, or `None` (with the skip
/// line) where every port is such (containers often set it to 0).
fn unprivileged_port_start() -> Option<u16> {
    let path = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    let start: u16 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if start <= 1 {
        eprintln!("skipping: every port may be bound without privileges here ({path} = {start})");
        return None;
    }
    Some(start)
}

#[test]
fn numbers_that_would_mean_nothing_are_refused() {
    let root = TempDir::new("startup-numbers");
    let cases: [(&[&str], &str); 6] = [
        (&["--timeout", "0"], "1..=255"),
        (&["--timeout", "256"], "1..=255"),
        (&["--max-transfers", "0"], "0 would refuse every request"),
        (&["--max-per-address", "0"], "0 would refuse every request"),
        (&["--grace", "86401"], "0..=86400"),
        (&["--grace", "18446744073709551615"], "0..=86400"),
    ];
    for (args, says) in cases {
        let out = refused(serve_on_loopback(&root, args), 2);
        assert!(
            out.stderr.contains(args[0]) && out.stderr.contains(says),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn the_banner_says_which_uploads_are_accepted() {
    let root = TempDir::new("startup-modes");
    let cases: [(&[&str], &str); 4] = [
        (&[], "read-only"),
        (
            &["--allow-create"],
            "uploads may create new files, not replace existing ones",
        ),
        (
            &["--allow-overwrite"],
            "uploads may replace existing files; new files refused",
        ),
        (
            &["--allow-create", "--allow-overwrite"],
            "uploads may create and replace files",
        ),
    ];
    for (args, mode) in cases {
        let server = Serving::loopback(&root, args);
        assert!(
            server.banner.contains(&format!("({mode})")),
            "{args:?}: {}",
            server.banner
        );
    }

    // --allow-overwrite alone does what it says: an existing file is replaced, a new one
    // refused.
    fs::write(root.join("old.cfg"), b"old\n").unwrap();
    let local = TempDir::new("startup-modes-local");
    fs::write(local.join("up.cfg"), b"new\n").unwrap();
    let server = Serving::loopback(&root, &["--allow-overwrite"]);
    let addr = server.addr().to_string();
    let out = wirekit(&local, &["put", &addr, "up.cfg", "old.cfg"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read(root.join("old.cfg")).unwrap(), b"new\n");
    let out = wirekit(&local, &["put", &addr, "up.cfg", "new.cfg"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error 2") || err.contains("ERROR 2"), "{err}");
    assert!(!root.join("new.cfg").exists());
}

/// The check is made before the switch, so it needs no root: started as anyone else, the
/// server is refused the range for itself already.
#[test]
fn transfer_ports_the_user_may_not_bind_are_refused_at_start() {
    let Some(lowest) = unprivileged_port_start() else {
        return;
    };
    let root = TempDir::new("startup-ports");
    let below = format!("{}-{}", lowest.saturating_sub(100).max(1), lowest - 1);
    let across = format!("{}-{}", lowest - 1, lowest.saturating_add(100));
    for range in [below, across] {
        let cmd = serve_on_loopback(&root, &["--user", "nobody", "--port-range", &range]);
        let out = refused(cmd, 1);
        let err = &out.stderr;
        assert!(err.contains(&format!("transfer ports {range}")), "{err}");
        assert!(err.contains("ip_unprivileged_port_start"), "{err}");
        assert!(err.contains(&format!("from {lowest} up")), "{err}");
        if is_root() {
            assert!(err.contains("user nobody"), "{err}");
        }
    }
}

#[test]
fn transfer_ports_from_the_line_up_serve_as_the_user() {
    let Some(lowest) = unprivileged_port_start() else {
        return;
    };
    if !root_for("to run the server as nobody") {
        return;
    }
    let root = TempDir::new("startup-ports-ok");
    let data = random_bytes(300, 7);
    fs::write(root.join("f"), &data).unwrap();
    let range = format!("{lowest}-{}", lowest.saturating_add(200));
    let server = Serving::loopback(&root, &["--user", "nobody", "--port-range", &range]);
    let client = RawClient::new(server.addr());
    let (answer, tid) = client.ask(&rrq("f", &[]), server.addr());
    assert_eq!(&answer[..4], &[0, 3, 0, 1], "{answer:?}");
    assert!(answer[4..] == data[..], "DATA 1 differs");
    assert!(
        (lowest..=lowest.saturating_add(200)).contains(&tid.port()),
        "{tid}"
    );
}

#[test]
fn an_unprivileged_server_refuses_transfer_ports_it_may_not_bind() {
    let Some(lowest) = unprivileged_port_start() else {
        return;
    };
    if !root_for("to start the server as nobody") {
        return;
    }
    let Some(setpriv) = find_program("setpriv") else {
        missing("setpriv", "not installed");
        return;
    };
    let root = TempDir::new("startup-ports-unpriv");
    let range = format!("{}-{}", lowest - 1, lowest.saturating_add(100));
    let mut cmd = Command::new(setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .arg("serve")
        .arg(root.path())
        .args(["--listen", "127.0.0.1:0", "--port-range", &range]);
    let err = refused(cmd, 1).stderr;
    assert!(err.contains(&format!("transfer ports {range}")), "{err}");
    assert!(err.contains("CAP_NET_BIND_SERVICE"), "{err}");
}

#[test]
fn a_root_the_user_may_not_open_files_in_is_refused_at_start() {
    if !root_for("to run the server as nobody") {
        return;
    }
    let root = TempDir::new("startup-root");
    let data = random_bytes(300, 8);
    fs::write(root.join("f"), &data).unwrap();
    fs::set_permissions(&*root, fs::Permissions::from_mode(0o700)).unwrap();
    let err = refused(serve_on_loopback(&root, &["--user", "nobody"]), 1).stderr;
    assert!(err.contains("nothing could be served"), "{err}");
    assert!(err.contains("as user nobody"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains(&root.display().to_string()), "{err}");

    // Files can be opened but the directory not listed: served, with a warning.
    fs::set_permissions(&*root, fs::Permissions::from_mode(0o711)).unwrap();
    let server = Serving::loopback(&root, &["--user", "nobody"]);
    server.wait_for_log(&["WARN", "cannot read", "Permission denied"]);
    let client = RawClient::new(server.addr());
    let (answer, _) = client.ask(&rrq("f", &[]), server.addr());
    assert_eq!(&answer[..4], &[0, 3, 0, 1], "{answer:?}");
    assert!(answer[4..] == data[..], "DATA 1 differs");
}

/// `wirekit serve --check ARGS` on `root`, run to its end.
fn check(root: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").arg(root).arg("--check").args(args);
    run_for(&mut cmd, &[], START)
}

/// `serve --check` says what would stop the server at start, without starting one: it
/// binds no request port (the server being checked may hold it), sweeps nothing (that
/// server may be writing there), and exits 0, or 1 with the problem.
#[test]
fn check_finds_what_would_stop_the_start_without_serving() {
    let top = TempDir::new("check");
    let root = top.join("root");
    fs::create_dir(&root).unwrap();
    // The port of a server that runs: the check must not need it.
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    // What a server leaves while it writes an upload, which a start would sweep.
    let leftover = root.join(format!(".{}.wirekit-part", "0123456789abcdef".repeat(2)));
    fs::write(&leftover, b"being written").unwrap();
    let rules = top.join("ok.rules");
    fs::write(&rules, "rg \\\\ /\nr ^/\n").unwrap();

    let out = check(
        &root,
        &[
            "--listen",
            &listen,
            "--allow-create",
            "--remap",
            rules.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "configuration ok: would serve {} on {listen} (uploads may create new files, not \
             replace existing ones, 2 remap rules)\n",
            root.display()
        )
    );
    assert!(leftover.exists(), "the check swept the root");
    // With --systemd the sockets are the service manager's: none need be passed to check.
    let out = check(&root, &["--systemd"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("on the sockets the service manager passes (read-only)"),
        "{out:?}"
    );

    let bad_rules = top.join("bad.rules");
    fs::write(&bad_rules, "r ^/\nrx ^a b\n").unwrap();
    let missing = top.join("missing");
    let cases: [(&std::path::Path, &[&str], &str); 5] = [
        (&missing, &[], "cannot open"),
        (
            &root,
            &["--remap", bad_rules.to_str().unwrap()],
            "line 2: invalid flag 'x'",
        ),
        (
            &root,
            &["--listen", "192.0.2.1:69"],
            "192.0.2.1 is not an address of this host",
        ),
        (
            &root,
            &["--listen", "0.0.0.0:6969", "--listen", "127.0.0.1:6969"],
            "listens on already",
        ),
        (&root, &["--user", "wirekit-no-such-user"], "no such user"),
    ];
    for (dir, args, says) in cases {
        let out = check(dir, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr.starts_with("wirekit: ") && out.stderr.contains(says),
            "{args:?}: {out:?}"
        );
        assert_eq!(out.stderr.lines().count(), 1, "one line: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

/// What only the user the server becomes, or a process without privileges, runs into.
#[test]
fn check_judges_ports_and_root_for_the_user_that_serves() {
    let Some(lowest) = unprivileged_port_start() else {
        return;
    };
    if !root_for("to check as, and for, nobody") {
        return;
    }
    let Some(setpriv) = find_program("setpriv") else {
        missing("setpriv", "not installed");
        return;
    };
    let root = TempDir::new("check-user");
    let below = (lowest - 1).to_string();
    // Started as nobody: the request port needs privileges nobody lacks.
    let mut cmd = Command::new(&setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .arg("serve")
        .arg(root.path())
        .args(["--check", "--listen", &format!("127.0.0.1:{below}")]);
    let out = run_for(&mut cmd, &[], START);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{below}")),
        "{out:?}"
    );
    assert!(out.stderr.contains("CAP_NET_BIND_SERVICE"), "{out:?}");

    // Started as root for --user nobody: the port is fine, but not transfer ports below
    // the line, nor a root nobody may not search.
    let range = format!("{below}-{lowest}");
    let out = check(
        &root,
        &[
            "--listen",
            "127.0.0.1:69",
            "--user",
            "nobody",
            "--port-range",
            &range,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!("transfer ports {range}"))
            && out.stderr.contains("user nobody"),
        "{out:?}"
    );
    fs::set_permissions(&*root, fs::Permissions::from_mode(0o700)).unwrap();
    let out = check(&root, &["--listen", "127.0.0.1:69", "--user", "nobody"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("as user nobody") && out.stderr.contains("may not search"),
        "{out:?}"
    );
    fs::set_permissions(&*root, fs::Permissions::from_mode(0o711)).unwrap();
    let out = check(&root, &["--listen", "127.0.0.1:69", "--user", "nobody"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.starts_with("warning: cannot read"), "{out:?}");
}
