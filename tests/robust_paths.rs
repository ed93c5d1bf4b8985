//! Path attacks: every name that could reach outside the root is refused with ERROR 2, for
//! reads and for uploads, and nothing is read or written outside the root.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::files::{TempDir, list_tree};
use common::in_both_port_modes;
use common::packets::{RawClient, ack, request};
use common::server::{OurServer, config_with, fast_config};
use wirekit::net::DirConfig;
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{ErrorCode, Packet};

const SECRET: &[u8] = b"top secret, outside the root\n";

/// Sends `datagram` to `server` and returns the ERROR code of the answer; panics on any
/// other answer (a DATA or ACK would mean the request was served).
fn answer_code(server: SocketAddr, datagram: &[u8]) -> ErrorCode {
    let (answer, _) = RawClient::new(server).ask(datagram, server);
    match Packet::parse(&answer) {
        Ok(Packet::Error { code, .. }) => code,
        other => panic!(
            "request {:?} answered with {other:?}",
            String::from_utf8_lossy(datagram)
        ),
    }
}

fn attacks() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("dotdot", b"../secret".to_vec()),
        ("inner dotdot", b"a/../../secret".to_vec()),
        ("absolute", b"/etc/passwd".to_vec()),
        ("absolute secret", b"/SECRET_ABS".to_vec()),
        ("backslash dotdot", b"..\\secret".to_vec()),
        ("drive letter", b"C:\\secret".to_vec()),
        ("symlink out", b"link".to_vec()),
        ("symlink dir out", b"dirlink/secret".to_vec()),
        ("control 01", b"a\x01b".to_vec()),
        ("control 7f", b"a\x7fb".to_vec()),
        ("empty", Vec::new()),
        ("4 KiB", vec![b'a'; 4096]),
    ]
}

struct Layout {
    base: TempDir,
    root: PathBuf,
}

/// base/{root/{a/, file.txt, link -> ../outside/secret, dirlink -> ../outside},
///       outside/secret, secret}
fn layout(name: &str) -> Layout {
    let base = TempDir::new(name);
    let root = base.join("root");
    let outside = base.join("outside");
    fs::create_dir_all(root.join("a")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(root.join("file.txt"), b"inside").unwrap();
    fs::write(outside.join("secret"), SECRET).unwrap();
    fs::write(base.join("secret"), SECRET).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("dirlink")).unwrap();
    Layout { base, root }
}

fn snapshot(base: &Path) -> Vec<(String, Vec<u8>)> {
    list_tree(base)
        .into_iter()
        .map(|n| {
            let p = base.join(&n);
            let bytes = if p.is_file() {
                fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            (n, bytes)
        })
        .collect()
}

in_both_port_modes!(
    reads_outside_the_root_are_refused,
    uploads_outside_the_root_are_refused
);

fn reads_outside_the_root_are_refused(ports: PortMode) {
    let l = layout("paths-read");
    let before = snapshot(&l.base);
    // Strict names: absolute and backslash names are refused outright (without it they
    // are read as relative to the root: tests/firmware_names.rs).
    let mut dir = DirConfig::new(&l.root);
    dir.root_options.strict_names = true;
    let server = OurServer::start(config_with(ports, fast_config(200, 400, 2)), dir);
    let addr = server.addr;
    // The inside file is served, so refusals below are about the names.
    let client = RawClient::new(addr);
    let (answer, tid) = client.ask(&request(1, b"file.txt", "octet", &[]), addr);
    assert_eq!(
        Packet::parse(&answer),
        Ok(Packet::Data {
            block: 1,
            data: b"inside"
        })
    );
    client.send(&ack(1), tid);
    for (what, name) in attacks() {
        let code = answer_code(addr, &request(1, &name, "octet", &[]));
        assert_eq!(code, ErrorCode::AccessViolation, "read {what}");
    }
    server.stop().unwrap();
    assert_eq!(snapshot(&l.base), before);
}

fn uploads_outside_the_root_are_refused(ports: PortMode) {
    let l = layout("paths-write");
    let passwd = fs::read("/etc/passwd").ok();
    let before = snapshot(&l.base);
    let parent = l.base.parent().unwrap().to_path_buf();
    let parent_secret_before = fs::read(parent.join("secret")).ok();
    let mut dir = DirConfig::new(&l.root);
    dir.uploads.allow_create = true;
    dir.uploads.allow_overwrite = true;
    dir.root_options.strict_names = true;
    let server = OurServer::start(config_with(ports, fast_config(200, 400, 2)), dir);
    for (what, name) in attacks() {
        let code = answer_code(server.addr, &request(2, &name, "octet", &[]));
        assert_eq!(code, ErrorCode::AccessViolation, "write {what}");
    }
    server.stop().unwrap();
    assert_eq!(
        snapshot(&l.base),
        before,
        "something changed under {:?}",
        l.base
    );
    assert_eq!(fs::read("/etc/passwd").ok(), passwd);
    assert_eq!(fs::read(parent.join("secret")).ok(), parent_secret_before);
    assert!(!Path::new("/SECRET_ABS").exists());
}
