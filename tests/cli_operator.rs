//! What an operator types, with the built program: listen addresses as host names, `:PORT`
//! for every address and a port left out; sizes with units; `put` from standard input, and
//! a local file that cannot be sent refused before any request; the man pages and shell
//! completions made from the argument definitions.
#![cfg(all(feature = "cli", target_os = "linux"))]

mod common;

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{BIN, Serving, assert_ok, wirekit};
use common::files::{TempDir, random_bytes};
use common::peers::{Output, find_program, ipv6_loopback, is_root, run_for};
use common::server::{OurServer, config, uploads_to};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{ErrorCode, TransferError};

/// How long a command here may run before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `wirekit ARGS` to its end (bounded).
fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run_for(&mut cmd, &[], LIMIT)
}

/// Downloads `name` from `server` with the program, and returns its bytes.
fn fetch(server: SocketAddr, name: &str, dir: &Path) -> Vec<u8> {
    let local = format!("got-{}", server.port());
    assert_ok(&wirekit(dir, &["get", &server.to_string(), name, &local]));
    fs::read(dir.join(local)).unwrap()
}

#[test]
fn listen_takes_host_names_and_drops_repeats() {
    let root = TempDir::new("op-listen-name");
    fs::write(root.join("f"), b"named\n").unwrap();
    // localhost is 127.0.0.1 (and ::1 where the loopback has IPv6), which the second
    // --listen names again: one socket for it.
    let server = Serving::start(
        &root,
        &[
            "--listen",
            "localhost:0",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
        ],
    );
    let v4: Vec<_> = server.addrs.iter().filter(|a| a.is_ipv4()).collect();
    assert_eq!(v4.len(), 1, "{}", server.banner);
    assert_eq!(v4[0].ip().to_string(), "127.0.0.1", "{}", server.banner);
    assert!(
        server
            .addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() != 0),
        "{}",
        server.banner
    );
    let client = TempDir::new("op-listen-name-client");
    for &addr in &server.addrs {
        assert_eq!(fetch(addr, "f", &client), b"named\n", "{addr}");
    }
}

/// `:PORT` is every address, IPv4 and IPv6 side by side (as tftp-hpa's `-a :69`).
#[test]
fn listen_colon_port_is_every_address() {
    let root = TempDir::new("op-listen-any");
    fs::write(root.join("f"), b"everywhere\n").unwrap();
    let server = Serving::start(&root, &["--listen", ":0", "--threads", "1"]);
    let v4 = server
        .addrs
        .iter()
        .find(|a| a.is_ipv4())
        .expect("an IPv4 address");
    assert!(v4.ip().is_unspecified(), "{}", server.banner);
    let client = TempDir::new("op-listen-any-client");
    let on_loopback = |a: &SocketAddr, ip: &str| SocketAddr::new(ip.parse().unwrap(), a.port());
    assert_eq!(
        fetch(on_loopback(v4, "127.0.0.1"), "f", &client),
        b"everywhere\n"
    );
    if ipv6_loopback() {
        let v6 = server
            .addrs
            .iter()
            .find(|a| a.is_ipv6())
            .unwrap_or_else(|| panic!("no IPv6 wildcard in {}", server.banner));
        assert!(v6.ip().is_unspecified(), "{}", server.banner);
        assert_eq!(fetch(on_loopback(v6, "::1"), "f", &client), b"everywhere\n");
    }
}

/// Checked without binding (port 69 may be taken): the port left out is 69, and every
/// form an operator types is read as meant.
#[test]
fn listen_forms_as_the_check_reads_them() {
    let root = TempDir::new("op-listen-forms");
    let dir = root.to_str().unwrap();
    let on = |listen: &[&str]| {
        let mut args = vec!["serve", dir, "--check"];
        for l in listen {
            args.extend(["--listen", l]);
        }
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{listen:?}: {out:?}");
        let line = out.stdout.lines().last().unwrap_or_default().to_string();
        let list = line.split(" on ").nth(1).unwrap_or_default();
        list.split(" (").next().unwrap_or_default().to_string()
    };
    assert_eq!(on(&["127.0.0.1"]), "127.0.0.1:69");
    assert_eq!(on(&["127.0.0.1:6969", "127.0.0.1:6969"]), "127.0.0.1:6969");
    assert_eq!(on(&["0.0.0.0:69"]), "0.0.0.0:69");
    let every = on(&[":69"]);
    assert!(
        every == "0.0.0.0:69, [::]:69" || every == "0.0.0.0:69",
        "{every}"
    );
    if ipv6_loopback() {
        assert_eq!(on(&["::1"]), "[::1]:69");
        assert_eq!(on(&["[::1]:6969"]), "[::1]:6969");
        assert_eq!(every, "0.0.0.0:69, [::]:69");
    }

    for (listen, status, says) in [
        ("host:70000", 2, "not a port"),
        ("[::1", 2, "lacks its ]"),
        ("wirekit-no-such-host.invalid:69", 1, "cannot resolve"),
    ] {
        let out = run(&["serve", dir, "--check", "--listen", listen]);
        assert_eq!(out.status.code(), Some(status), "{listen}: {out:?}");
        assert!(out.stderr.contains(says), "{listen}: {out:?}");
    }
    // Socket activation takes its addresses from the service manager: no --listen.
    let out = run(&["serve", dir, "--systemd", "--listen", ":69"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("cannot be used with"), "{out:?}");
}

#[test]
fn sizes_take_units_said_in_the_help() {
    let help = run(&["serve", "--help"]).success("serve --help");
    assert!(
        help.stdout.contains("powers of 1000") && help.stdout.contains("powers of 1024"),
        "{}",
        help.stdout
    );
    let root = TempDir::new("op-sizes");
    fs::write(root.join("kib.bin"), random_bytes(1024, 1)).unwrap();
    fs::write(root.join("kib-and-one.bin"), random_bytes(1025, 2)).unwrap();
    let server = Serving::loopback(&root, &["--allow-create", "--max-upload-size", "1K"]);
    let addr = server.addr().to_string();
    let local = TempDir::new("op-sizes-local");
    fs::write(local.join("1000.bin"), random_bytes(1000, 3)).unwrap();
    fs::write(local.join("1001.bin"), random_bytes(1001, 4)).unwrap();

    // 1K is 1000 bytes.
    assert_ok(&wirekit(&local, &["put", &addr, "1000.bin"]));
    let out = wirekit(&local, &["put", &addr, "1001.bin"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exceeds the 1000-byte limit"), "{err}");
    assert!(!root.join("1001.bin").exists());

    // 1KiB is 1024.
    let get = |name: &str| wirekit(&local, &["get", &addr, name, "--max-size", "1KiB"]);
    assert_ok(&get("kib.bin"));
    let out = get("kib-and-one.bin");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than the limit of 1024 bytes"), "{err}");

    let dir = root.to_str().unwrap();
    let out = run(&["serve", dir, "--check", "--max-window-bytes", "4MiB"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for (flag, value, says) in [
        (
            "--max-window-bytes",
            "4GiB",
            "more than the largest here, 4294967295 bytes",
        ),
        (
            "--max-upload-size",
            "20000000T",
            "more than the largest size",
        ),
        ("--max-upload-size", "10X", "powers of 1000"),
        ("--max-upload-size", "1.5M", "whole number of bytes"),
        ("--max-upload-size", "MiB", "whole number of bytes"),
    ] {
        let out = run(&["serve", dir, "--check", flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {out:?}");
        assert!(
            out.stderr.contains(&format!("'{value}' for '{flag}")) && out.stderr.contains(says),
            "{flag} {value}: {out:?}"
        );
    }
    let out = run(&["get", "127.0.0.1:9", "f", "--max-size", "1x"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Runs `wirekit put SERVER - NAME ARGS` with `stdin` as its standard input.
fn put_stdin(server: SocketAddr, name: &str, args: &[&str], stdin: Stdio) -> std::process::Child {
    Command::new(BIN)
        .args(["put", &server.to_string(), "-", name])
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `put HOST - NAME` sends standard input: from a pipe without a size (none is known),
/// from a file with its size.
#[test]
fn put_dash_uploads_standard_input() {
    let root = TempDir::new("op-stdin");
    let server = OurServer::open(&root, "127.0.0.1:0".parse().unwrap(), PortMode::PerTransfer);
    // Many windows, so what is kept for retransmissions is let go of on the way.
    let data = random_bytes(1_000_000, 9);
    let mut child = put_stdin(server.addr, "piped.bin", &[], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    writer.join().unwrap().unwrap();
    assert!(fs::read(root.join("piped.bin")).unwrap() == data);

    let local = TempDir::new("op-stdin-local");
    fs::write(local.join("file.bin"), &data[..70_000]).unwrap();
    let file = fs::File::open(local.join("file.bin")).unwrap();
    let out = put_stdin(server.addr, "file.bin", &[], file.into())
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(fs::read(root.join("file.bin")).unwrap() == data[..70_000]);

    // Text in netascii, its blocks read again from where each starts.
    let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    let mut child = put_stdin(
        server.addr,
        "text.txt",
        &["--netascii", "--blksize", "512"],
        Stdio::piped(),
    );
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let text = text.clone();
        std::thread::spawn(move || stdin.write_all(text.as_bytes()))
    };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    writer.join().unwrap().unwrap();
    assert_eq!(fs::read_to_string(root.join("text.txt")).unwrap(), text);

    let reports = server.wait_for_reports(3, LIMIT);
    let tsize = |name: &str| {
        let r = reports
            .iter()
            .find(|r| r.info.filename == name)
            .unwrap_or_else(|| panic!("no report for {name}: {reports:?}"));
        assert!(r.result.is_ok(), "{r}");
        r.info.requested.tsize
    };
    assert_eq!(tsize("piped.bin"), None, "a pipe has no size to announce");
    assert_eq!(tsize("file.bin"), Some(70_000));
    assert_eq!(tsize("text.txt"), None);

    // Without a name there is nothing to call it on the server.
    let out = run(&["put", &server.addr.to_string(), "-"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("wirekit put HOST - NAME"), "{out:?}");
    assert_eq!(server.reports().len(), 3);
}

/// A socket that plays a server and only listens: whether anything reached it.
struct Listening(UdpSocket);

impl Listening {
    fn new() -> Listening {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        Listening(socket)
    }

    fn addr(&self) -> String {
        self.0.local_addr().unwrap().to_string()
    }

    /// Called once the client has exited: what it sent is queued by then.
    fn heard_nothing(&self) -> bool {
        let mut buf = [0u8; 1024];
        matches!(self.0.recv_from(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// A directory, a missing file, an unreadable one: said at once, and the server hears
/// nothing (before, a directory was announced as a 4096-byte upload, and its read error
/// sent to the server as the ERROR's text).
#[test]
fn put_refuses_a_local_file_it_cannot_send_before_any_request() {
    let local = TempDir::new("op-put-local");
    fs::create_dir(local.join("dir")).unwrap();
    fs::write(local.join("secret"), b"unreadable").unwrap();
    fs::set_permissions(local.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    for (path, says) in [
        ("dir", "cannot upload dir: is a directory"),
        ("missing", "cannot open missing: No such file"),
    ] {
        let server = Listening::new();
        let out = wirekit(&local, &["put", &server.addr(), path, "x"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(server.heard_nothing(), "{path}: a request went out");
    }

    // Root reads any file: the unreadable one is tried as nobody.
    let server = Listening::new();
    let mut cmd = if is_root() {
        let Some(setpriv) = find_program("setpriv") else {
            common::peers::missing("setpriv", "not installed");
            return;
        };
        let mut cmd = Command::new(setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        cmd
    } else {
        Command::new(BIN)
    };
    cmd.current_dir(&local)
        .args(["put", &server.addr(), "secret", "x"]);
    let out = run_for(&mut cmd, &[], LIMIT);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot open secret: Permission denied"),
        "{out:?}"
    );
    assert!(server.heard_nothing(), "a request went out");
}

/// A read that fails during the upload is the user's to read; the server is told only
/// that the client gave up. `/proc/self/mem` opens and says it is a regular file, but
/// reading its first page fails: nothing is mapped there.
#[test]
fn a_read_failing_mid_upload_is_not_told_to_the_server() {
    let root = TempDir::new("op-put-eio");
    let server = OurServer::start(config(PortMode::PerTransfer), uploads_to(&root));
    let out = wirekit(
        &root,
        &["put", &server.addr.to_string(), "/proc/self/mem", "mem.bin"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /proc/self/mem: Input/output error"),
        "{err}"
    );
    let reports = server.wait_for_reports(1, LIMIT);
    match &reports[0].result {
        Err(TransferError::Peer { code, message }) => {
            assert_eq!(*code, ErrorCode::NotDefined);
            assert_eq!(message, "the client cannot read the file it is uploading");
        }
        other => panic!("{other:?}"),
    }
    assert!(!root.join("mem.bin").exists());
}

/// The flags a `--help` lists: every `--name` in it.
fn flags(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

#[test]
fn man_pages_and_completions_come_from_the_definitions() {
    let out_dir = TempDir::new("op-generate");
    let man = out_dir.join("man1");
    run(&["generate", "man", man.to_str().unwrap()]).success("generate man");
    let mut pages: Vec<String> = fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "wirekit-get.1",
            "wirekit-put.1",
            "wirekit-remap.1",
            "wirekit-serve.1",
            "wirekit.1"
        ]
    );
    for command in ["serve", "get", "put", "remap"] {
        let page = fs::read_to_string(man.join(format!("wirekit-{command}.1"))).unwrap();
        assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
        assert!(page.contains(&format!(".TH wirekit-{command} 1")), "{page}");
        // roff writes a hyphen as `\-`.
        let page = page.replace("\\-", "-");
        let help = run(&[command, "--help"]).success("--help").stdout;
        let listed = flags(&help);
        assert!(listed.contains(&"--help".to_string()), "{listed:?}");
        for flag in listed {
            assert!(
                page.contains(&flag),
                "wirekit-{command}.1 does not mention {flag}"
            );
        }
    }
    let top = fs::read_to_string(man.join("wirekit.1")).unwrap();
    assert!(!top.contains("generate"), "the hidden command is left out");
    let help = run(&["--help"]).success("--help").stdout;
    assert!(!help.contains("generate"), "{help}");

    let completions = out_dir.join("completions");
    for (shell, file) in [
        ("bash", "wirekit"),
        ("zsh", "_wirekit"),
        ("fish", "wirekit.fish"),
    ] {
        run(&[
            "generate",
            "completions",
            shell,
            completions.to_str().unwrap(),
        ])
        .success(shell);
        let script = fs::read_to_string(completions.join(file)).unwrap();
        assert!(
            script.contains("serve") && script.contains("max-upload-size"),
            "{shell}: {script}"
        );
        let printed = run(&["generate", "completions", shell])
            .success(shell)
            .stdout;
        assert_eq!(printed, script, "{shell}");
        if let Some(program) = find_program(shell) {
            // Each shell reads the script without a syntax error (`-n`: parse only).
            let flag = if shell == "fish" {
                "--no-execute"
            } else {
                "-n"
            };
            let out = run_for(
                Command::new(program).arg(flag).arg(completions.join(file)),
                &[],
                LIMIT,
            );
            assert!(out.status.success(), "{shell} -n: {out:?}");
        }
    }
}
