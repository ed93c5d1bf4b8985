//! `wirekit get` as a user meets it: told at once when nobody listens, fast options asked
//! by default, `-` for standard output, a bad local path refused before any request, and
//! on a terminal a progress bar that names the file and leaves a summary.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::cli::{BIN, assert_ok, wirekit};
use common::files::{TempDir, random_bytes};
use common::packets::NobodyListens;
use common::peers::find_program;
use common::server::{OurServer, config};
use wirekit::net::DirConfig;
use wirekit::tftp::server::PortMode;

fn serving(name: &str, bytes: &[u8]) -> (TempDir, OurServer) {
    let root = TempDir::new("ux-root");
    fs::write(root.join(name), bytes).unwrap();
    let server = OurServer::start(config(PortMode::PerTransfer), DirConfig::new(root.path()));
    (root, server)
}

#[test]
fn nobody_listening_is_said_at_once() {
    // A port nobody listens on, held so that nobody can start to.
    let nobody = NobodyListens::new();
    let dir = TempDir::new("ux-nobody");
    let out = wirekit(&dir, &["get", &nobody.addr().to_string(), "f.bin"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // "At once": the client gave up on the ICMP port unreachable that answered its first
    // request (this message), not after retransmitting it to no answer ("no answer
    // from"), which is what a slow one would say; no clock needed to tell them apart.
    assert!(
        err.contains(&format!("nobody listens on {}", nobody.addr())),
        "{err}"
    );
    assert!(!err.contains("no answer"), "{err}");
    assert!(!dir.join("f.bin").exists());
}

#[test]
fn fast_options_are_asked_by_default_and_none_on_request() {
    let file = random_bytes(100_000, 4);
    let (_root, server) = serving("f.bin", &file);
    let dir = TempDir::new("ux-defaults");
    let out = wirekit(&dir, &["get", &server.addr.to_string(), "f.bin"]);
    assert_ok(&out);
    assert_eq!(fs::read(dir.join("f.bin")).unwrap(), file);
    let out = wirekit(
        &dir,
        &[
            "get",
            &server.addr.to_string(),
            "f.bin",
            "plain.bin",
            "--no-options",
        ],
    );
    assert_ok(&out);
    let reports = server.wait_for_reports(2, Duration::from_secs(10));
    let asked = |r: &wirekit::tftp::server::Report| {
        let o = &r.info.requested;
        (
            o.blksize.map(|b| b.unwrap().get()),
            o.windowsize.map(|w| w.unwrap().get()),
        )
    };
    assert_eq!(asked(&reports[0]), (Some(1468), Some(16)));
    assert_eq!(asked(&reports[1]), (None, None));
    assert_eq!(reports[1].info.requested.tsize, None);
}

#[test]
fn dash_writes_the_file_to_standard_output() {
    let file = random_bytes(70_000, 5);
    let (_root, server) = serving("f.bin", &file);
    let dir = TempDir::new("ux-stdout");
    let out = wirekit(&dir, &["get", &server.addr.to_string(), "f.bin", "-"]);
    assert_ok(&out);
    assert!(out.stdout == file, "{} bytes on stdout", out.stdout.len());
    assert!(
        fs::read_dir(&*dir).unwrap().next().is_none(),
        "no file written"
    );
}

#[test]
fn a_missing_local_directory_is_refused_before_any_request() {
    let (_root, server) = serving("f.bin", b"x");
    let dir = TempDir::new("ux-missing");
    let out = wirekit(
        &dir,
        &[
            "get",
            &server.addr.to_string(),
            "f.bin",
            "no/such/dir/f.bin",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no/such/dir"), "{err}");
    assert!(server.reports().is_empty(), "the server was asked");
}

#[test]
fn on_a_terminal_the_progress_names_the_file_and_leaves_a_summary() {
    let Some(script) = find_program("script") else {
        eprintln!("skipping: script (util-linux) not installed");
        return;
    };
    let file = random_bytes(300_000, 6);
    let (_root, server) = serving("boot.img", &file);
    let dir = TempDir::new("ux-terminal");
    // `script` gives the program a terminal, as a user at a shell has.
    let command = format!("{BIN} get {} boot.img", server.addr);
    let out = Command::new(script)
        .current_dir(&dir)
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert_eq!(fs::read(dir.join("boot.img")).unwrap(), file);
    let summary = shown
        .lines()
        .map(|l| {
            l.rsplit('\r')
                .next()
                .unwrap_or(l)
                .trim_start_matches("\u{1b}[2K")
        })
        .find(|l| l.starts_with("boot.img: "))
        .unwrap_or_else(|| panic!("no summary in {shown:?}"));
    assert!(
        summary.contains(" KiB in ") && summary.ends_with("/s)"),
        "{summary}"
    );
}
