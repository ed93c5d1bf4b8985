//! Names as boot firmware sends them, against the `wirekit` program: `filename
//! "/pxelinux.0"` from a DHCP configuration and Windows boot clients' `\Boot\x64\...` are
//! served from the root; `..` in any spelling is still refused, and `--strict-names`
//! refuses both forms.
#![cfg(feature = "cli")]

mod common;
mod serve_cli;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{have_peer, run_limited, tempdir};
use serve_cli::Serving;
use wirekit::net::{ClientError, ClientOptions, get_into, put_from};
use wirekit::tftp::{ErrorCode, TransferError};

const LIMIT: Duration = Duration::from_secs(20);

/// A served directory inside a parent that holds a `secret` a path escape would reach.
fn boot_tree(name: &str) -> PathBuf {
    let top = tempdir(name);
    fs::write(top.join("secret"), b"outside the root").unwrap();
    let root = top.join("root");
    fs::create_dir_all(root.join("Boot/x64")).unwrap();
    fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
    fs::create_dir_all(root.join("up")).unwrap();
    fs::write(root.join("pxelinux.0"), b"pxelinux").unwrap();
    fs::write(root.join("Boot/x64/wdsnbp.com"), b"wdsnbp").unwrap();
    fs::write(root.join("pxelinux.cfg/default"), b"default config").unwrap();
    root
}

fn fetch(addr: SocketAddr, name: &str) -> Result<Vec<u8>, ClientError> {
    let mut opts = ClientOptions::default();
    opts.tsize = true;
    let mut got = Vec::new();
    get_into(addr, name, &mut got, &opts, &mut |_, _| {}).map(|_| got)
}

/// The server's ERROR code and message, for a transfer it refused.
fn refusal(r: Result<impl std::fmt::Debug, ClientError>) -> (ErrorCode, String) {
    match r {
        Err(ClientError::Transfer(TransferError::Peer { code, message })) => (code, message),
        other => panic!("not refused by the server: {other:?}"),
    }
}

#[test]
fn leading_slash_and_backslashes_are_served_from_the_root() {
    let root = boot_tree("names-lenient");
    let server = Serving::start(&root, &[]);
    for (name, want) in [
        ("/pxelinux.0", &b"pxelinux"[..]),
        ("//pxelinux.0", b"pxelinux"),
        ("\\Boot\\x64\\wdsnbp.com", b"wdsnbp"),
        ("Boot\\x64\\wdsnbp.com", b"wdsnbp"),
        ("/Boot\\x64/wdsnbp.com", b"wdsnbp"),
        ("/pxelinux.cfg/default", b"default config"),
        ("pxelinux.0", b"pxelinux"),
    ] {
        assert_eq!(fetch(server.addr, name).unwrap(), want, "{name:?}");
    }
}

#[test]
fn parent_directories_stay_refused_in_every_spelling() {
    let root = boot_tree("names-parent");
    let server = Serving::start(&root, &[]);
    for name in [
        "/../secret",
        "\\..\\secret",
        "..\\secret",
        "Boot\\..\\..\\secret",
        "/Boot/../../secret",
        "\\\\..\\secret",
    ] {
        let (code, message) = refusal(fetch(server.addr, name));
        assert_eq!(code, ErrorCode::AccessViolation, "{name:?}: {message}");
        assert_eq!(message, "'..' in filename", "{name:?}");
    }
    for name in ["/", "\\", "\\Boot\\", "/Boot/."] {
        let (code, _) = refusal(fetch(server.addr, name));
        assert_eq!(code, ErrorCode::AccessViolation, "{name:?}");
    }
}

/// Without `--strict-names`, an absolute name is a name under the root: `/etc/passwd`
/// is the root's `etc/passwd` (not there: ERROR 1), and an upload of `/SECRET_ABS` lands
/// in the root, never at `/SECRET_ABS`.
#[test]
fn absolute_names_stay_under_the_root() {
    let root = boot_tree("names-absolute");
    let server = Serving::start(&root, &["--allow-create"]);
    let (code, _) = refusal(fetch(server.addr, "/etc/passwd"));
    assert_eq!(code, ErrorCode::FileNotFound);
    let (code, _) = refusal(fetch(server.addr, "C:\\secret"));
    assert_eq!(code, ErrorCode::FileNotFound);
    let name = format!("/wirekit-absolute-{}", std::process::id());
    let mut data = b"inside".to_vec();
    put_from(
        server.addr,
        &name,
        &mut data,
        Some(6),
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(fs::read(root.join(&name[1..])).unwrap(), b"inside");
    assert!(!Path::new(&name).exists());
}

#[test]
fn uploads_take_firmware_names_too() {
    let root = boot_tree("names-upload");
    let server = Serving::start(&root, &["--allow-create"]);
    for (name, lands) in [("/new.bin", "new.bin"), ("\\up\\log.txt", "up/log.txt")] {
        let mut data = name.as_bytes().to_vec();
        let size = data.len() as u64;
        put_from(
            server.addr,
            name,
            &mut data,
            Some(size),
            &ClientOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(fs::read(root.join(lands)).unwrap(), name.as_bytes());
    }
    let mut data = b"x".to_vec();
    let r = put_from(
        server.addr,
        "\\..\\escaped",
        &mut data,
        None,
        &ClientOptions::default(),
        &mut |_, _| {},
    );
    assert_eq!(refusal(r).0, ErrorCode::AccessViolation);
    assert!(!root.parent().unwrap().join("escaped").exists());
}

#[test]
fn strict_names_refuses_both_forms() {
    let root = boot_tree("names-strict");
    let server = Serving::start(&root, &["--strict-names"]);
    assert_eq!(
        refusal(fetch(server.addr, "/pxelinux.0")),
        (ErrorCode::AccessViolation, "absolute filename".to_string())
    );
    assert_eq!(
        refusal(fetch(server.addr, "Boot\\x64\\wdsnbp.com")),
        (
            ErrorCode::AccessViolation,
            "backslash in filename".to_string()
        )
    );
    assert_eq!(
        fetch(server.addr, "Boot/x64/wdsnbp.com").unwrap(),
        b"wdsnbp"
    );
    server.wait_for_log(&["refused \"/pxelinux.0\"", "absolute filename"]);
}

/// The peers send the names verbatim: curl's `tftp://host//pxelinux.0` asks for
/// `/pxelinux.0`, tftp-hpa's client sends backslashes as they are.
#[test]
fn real_clients_fetch_firmware_names() {
    let root = boot_tree("names-peers");
    let server = Serving::start(&root, &[]);
    let local = tempdir("names-peers-local");
    let port = server.addr.port().to_string();
    if have_peer("curl") {
        let out = local.join("curl-pxelinux.0");
        let (ok, log) = run_limited(
            Command::new("curl")
                .args(["-sS", "-o"])
                .arg(&out)
                .arg(format!("tftp://127.0.0.1:{port}//pxelinux.0")),
            LIMIT,
        );
        assert!(ok, "curl: {log}");
        assert_file(&out, b"pxelinux");
        server.wait_for_log(&["read \"/pxelinux.0\"", "ok"]);
    }
    if have_peer("tftp") {
        let (ok, log) = run_limited(
            Command::new("tftp")
                .current_dir(&local)
                .args(["-m", "binary", "127.0.0.1", &port])
                .args(["-c", "get", "\\Boot\\x64\\wdsnbp.com", "wdsnbp.com"]),
            LIMIT,
        );
        assert!(ok, "tftp-hpa: {log}");
        assert_file(&local.join("wdsnbp.com"), b"wdsnbp");
        server.wait_for_log(&["read ", "wdsnbp.com\"", "ok"]);
    }
}

fn assert_file(path: &Path, want: &[u8]) {
    match fs::read(path) {
        Ok(got) => assert_eq!(got, want, "{}", path.display()),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}
