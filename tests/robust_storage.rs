//! The storage layer under attack and misuse: FIFOs in the root, uploads in progress,
//! leftovers of a killed server, owners and modes of replaced files, long and directory
//! names, uploads that do not match their tsize, and hard links to files elsewhere.
#![cfg(unix)]

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::files::{TempDir, list, part_files, random_bytes};
use common::packets::{data, rrq, wrq};
use common::peers::require_peers;
use common::server::{OurServer, config_with, fast_config, uploads_to};
use wirekit::net::{ClientOptions, DirConfig, ServerConfig, get_into, put_from};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{ErrorCode, Packet};

/// Serves `dir` with `config`.
fn spawn(config: ServerConfig, dir: DirConfig) -> (OurServer, SocketAddr) {
    let server = OurServer::start(config, dir);
    let addr = server.addr;
    (server, addr)
}

/// A port per transfer: the storage layer is the same in both modes.
fn server_config(retransmission: wirekit::tftp::Config) -> ServerConfig {
    config_with(PortMode::PerTransfer, retransmission)
}

fn content(n: usize, seed: u32) -> Vec<u8> {
    random_bytes(n, seed.into())
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The next datagram on `s`, or `None` after its read timeout.
fn try_recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some((buf, from))
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    try_recv(s).expect("no answer")
}

/// Sends `datagram` from a fresh socket; returns the socket and the answer.
fn ask(addr: SocketAddr, datagram: &[u8]) -> (UdpSocket, Vec<u8>, SocketAddr) {
    let s = client();
    s.send_to(datagram, addr).unwrap();
    let (answer, from) = recv(&s);
    (s, answer, from)
}

/// The ERROR code and message of a request's answer, or a panic naming what came instead.
fn refused(addr: SocketAddr, datagram: &[u8]) -> (ErrorCode, String) {
    let (_, answer, _) = ask(addr, datagram);
    match Packet::parse(&answer) {
        Ok(Packet::Error { code, message }) => (code, message.to_string()),
        other => panic!(
            "{:?} was answered with {other:?}, not an ERROR",
            String::from_utf8_lossy(datagram)
        ),
    }
}

fn quick() -> ClientOptions {
    let mut o = ClientOptions::default();
    o.config = fast_config(100, 400, 5);
    o.tsize = true;
    o
}

fn put(addr: SocketAddr, name: &str, bytes: &[u8]) -> Result<(), wirekit::net::ClientError> {
    let mut d = bytes.to_vec();
    let len = d.len() as u64;
    put_from(addr, name, &mut d, Some(len), &quick(), &mut |_, _| {}).map(|_| ())
}

fn get(addr: SocketAddr, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    get_into(addr, name, &mut out, &quick(), &mut |_, _| {}).unwrap();
    out
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether the file system under `dir` takes `O_TMPFILE` (Linux): then an upload in
/// progress has no name at all.
fn anonymous_files_work(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, Mode, OFlags, openat};
        openat(
            CWD,
            dir,
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        false
    }
}

/// The process umask, from `/proc/self/status` (read, not changed: it is process-wide).
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(line.trim(), 8).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn fifo_is_refused_and_the_next_client_is_served() {
    let root = TempDir::new("st-fifo");
    fs::write(root.join("file.txt"), b"inside").unwrap();
    let fifo = root.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut dir = DirConfig::new(root.path());
    dir.uploads.allow_create = true;
    dir.uploads.allow_overwrite = true;
    let (server, addr) = spawn(server_config(fast_config(100, 200, 2)), dir);

    let s = client();
    s.send_to(&rrq("pipe", &[]), addr).unwrap();
    let Some((answer, _)) = try_recv(&s) else {
        // The server is stuck in open(2) of the FIFO: give it a writer, so the test ends.
        std::thread::spawn(move || fs::OpenOptions::new().write(true).open(fifo));
        panic!("no answer to an RRQ for a FIFO: the server blocked");
    };
    assert!(
        matches!(
            Packet::parse(&answer),
            Ok(Packet::Error {
                code: ErrorCode::AccessViolation,
                ..
            })
        ),
        "{:?}",
        Packet::parse(&answer)
    );
    // The next client is served at once.
    let (_, answer, _) = ask(addr, &rrq("file.txt", &[]));
    assert_eq!(
        Packet::parse(&answer).unwrap(),
        Packet::Data {
            block: 1,
            data: b"inside"
        }
    );
    // A path through the FIFO, or an upload over it, is refused too, and it stays a FIFO.
    for request in [rrq("pipe/x", &[]), wrq("pipe", &[]), wrq("pipe/x", &[])] {
        let (code, message) = refused(addr, &request);
        assert_ne!(code, ErrorCode::NotDefined, "{message}");
    }
    assert_eq!(
        refused(addr, &wrq("pipe", &[])),
        (ErrorCode::AccessViolation, "not a regular file".into())
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    server.stop().unwrap();
}

#[test]
fn upload_in_progress_cannot_be_seen_read_or_replaced() {
    let root = TempDir::new("st-hidden");
    let mut dir = DirConfig::new(root.path());
    dir.uploads.allow_create = true;
    dir.uploads.allow_overwrite = true;
    let (server, addr) = spawn(server_config(fast_config(200, 800, 5)), dir);

    let (victim, ack0, tid) = ask(addr, &wrq("victim.bin", &[]));
    assert_eq!(Packet::parse(&ack0).unwrap(), Packet::Ack { block: 0 });
    let first = content(512, 7);
    victim.send_to(&data(1, &first), tid).unwrap();
    assert_eq!(
        Packet::parse(&recv(&victim).0).unwrap(),
        Packet::Ack { block: 1 }
    );

    // Mid-upload. Where the file system takes O_TMPFILE the upload has no name at all;
    // elsewhere one hidden, random name.
    let visible = part_files(&root);
    if anonymous_files_work(&root) {
        assert!(list(&root).is_empty(), "{:?}", list(&root));
    } else {
        assert_eq!(visible.len(), 1, "{:?}", list(&root));
    }
    // No name of the temporary-file pattern is served or accepted: neither what can be
    // seen, nor the predictable names earlier versions used (`.NAME.PID-N.wirekit-part`).
    let mut names = visible;
    names.extend((0..20).map(|n| format!(".victim.bin.{}-{n}.wirekit-part", std::process::id())));
    for name in &names {
        for request in [rrq(name, &[]), wrq(name, &[])] {
            assert_eq!(
                refused(addr, &request),
                (
                    ErrorCode::AccessViolation,
                    "name reserved for files being written".into()
                ),
                "{name}"
            );
        }
    }
    // The victim finishes, and what is stored is its bytes.
    victim.send_to(&data(2, b"tail"), tid).unwrap();
    assert_eq!(
        Packet::parse(&recv(&victim).0).unwrap(),
        Packet::Ack { block: 2 }
    );
    let mut want = first;
    want.extend_from_slice(b"tail");
    assert_eq!(fs::read(root.join("victim.bin")).unwrap(), want);
    assert_eq!(list(&root), ["victim.bin"]);
    server.stop().unwrap();
}

#[test]
fn names_created_in_advance_do_not_make_uploads_fail() {
    let root = TempDir::new("st-squat");
    let (server, addr) = spawn(server_config(fast_config(100, 400, 5)), uploads_to(&root));
    // What a local user could have guessed: the temporary names of earlier versions.
    for n in 0..1000 {
        let name = format!(".up.bin.{}-{n}.wirekit-part", std::process::id());
        fs::write(root.join(name), b"trap").unwrap();
    }
    let bytes = content(3000, 9);
    put(addr, "up.bin", &bytes).unwrap();
    assert_eq!(fs::read(root.join("up.bin")).unwrap(), bytes);
    server.stop().unwrap();
}

#[test]
fn leftovers_of_a_killed_server_are_swept_at_start() {
    let base = TempDir::new("st-sweep");
    let root = base.join("root");
    let deep = root.join("sub").join("deeper");
    fs::create_dir_all(&deep).unwrap();
    fs::write(base.join("outside"), b"outside").unwrap();
    let stale = [
        root.join(".0123456789abcdef0123456789abcdef.wirekit-part"),
        deep.join(".00000000000000000000000000000000.wirekit-part"),
        // The form earlier versions used.
        root.join(".fw.bin.4242-3.wirekit-part"),
    ];
    for p in &stale {
        fs::write(p, b"partial").unwrap();
    }
    let kept = [
        // A `wirekit get` downloading into the root right now.
        root.join(".fw.bin.4242.wirekit-part"),
        root.join("fw.bin"),
        deep.join("notes.wirekit-part.txt"),
        // An upload running in another server process: it holds its file locked.
        root.join(".ffffffffffffffffffffffffffffffff.wirekit-part"),
    ];
    for p in &kept {
        fs::write(p, b"keep").unwrap();
    }
    let held = fs::File::open(&kept[3]).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // A symlink of the pattern is neither followed nor removed.
    let link = root.join(".11111111111111111111111111111111.wirekit-part");
    std::os::unix::fs::symlink(base.join("outside"), &link).unwrap();

    let (server, _addr) = spawn(
        server_config(fast_config(100, 200, 2)),
        DirConfig::new(&root),
    );
    for p in &stale {
        assert!(!p.exists(), "{} was not swept", p.display());
    }
    for p in &kept {
        assert_eq!(fs::read(p).unwrap(), b"keep", "{}", p.display());
    }
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(base.join("outside")).unwrap(), b"outside");
    server.stop().unwrap();
    drop(held);
}

#[test]
fn replaced_file_keeps_owner_and_mode_and_new_files_get_the_create_mode() {
    if !is_root() {
        assert!(!require_peers(), "not root and WIREKIT_REQUIRE_PEERS=1");
        eprintln!("skipping: changing owners needs root");
        return;
    }
    let root = TempDir::new("st-owner");
    let config_file = root.join("device.cfg");
    fs::write(&config_file, b"old config").unwrap();
    std::os::unix::fs::chown(&config_file, Some(1234), Some(1234)).unwrap();
    fs::set_permissions(&config_file, fs::Permissions::from_mode(0o600)).unwrap();
    let tool = root.join("tool");
    fs::write(&tool, b"old tool").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).unwrap();

    let mut dir = DirConfig::new(root.path());
    dir.uploads.allow_create = true;
    dir.uploads.allow_overwrite = true;
    dir.root_options.create_mode = Some(0o640);
    let (server, addr) = spawn(server_config(fast_config(100, 400, 5)), dir);

    // A device config backed up over TFTP stays private and its owner's.
    let backup = content(5000, 11);
    put(addr, "device.cfg", &backup).unwrap();
    let meta = fs::metadata(&config_file).unwrap();
    assert_eq!(fs::read(&config_file).unwrap(), backup);
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!((meta.uid(), meta.gid()), (1234, 1234));
    // Permission bits carry over, setuid does not: uploaded bytes do not run as root.
    put(addr, "tool", b"new tool").unwrap();
    assert_eq!(mode(&tool), 0o755);
    // New files get exactly the operator's mode, whatever the umask.
    put(addr, "new.cfg", b"new").unwrap();
    assert_eq!(mode(&root.join("new.cfg")), 0o640);
    server.stop().unwrap();
}

#[test]
fn new_files_default_to_666_less_the_umask() {
    let root = TempDir::new("st-umask");
    let (server, addr) = spawn(server_config(fast_config(100, 400, 5)), uploads_to(&root));
    put(addr, "plain.bin", b"plain").unwrap();
    assert_eq!(mode(&root.join("plain.bin")), 0o666 & !umask());
    server.stop().unwrap();
}

#[test]
fn long_names_upload_and_directory_names_are_refused() {
    let root = TempDir::new("st-names");
    fs::create_dir(root.join("dir")).unwrap();
    fs::write(root.join("file.bin"), b"file").unwrap();
    let mut dir = DirConfig::new(root.path());
    dir.uploads.allow_create = true;
    dir.uploads.allow_overwrite = true;
    let (server, addr) = spawn(server_config(fast_config(100, 400, 5)), dir);

    // Any name the file system takes can be uploaded, up to its 255-byte limit.
    for name in [format!("{}.bin", "a".repeat(236)), "b".repeat(255)] {
        let bytes = content(700, name.len() as u32);
        put(addr, &name, &bytes).unwrap_or_else(|e| panic!("{} bytes: {e}", name.len()));
        assert_eq!(get(addr, &name), bytes);
    }
    let (code, message) = refused(addr, &wrq(&"c".repeat(256), &[]));
    assert_eq!(code, ErrorCode::AccessViolation);
    assert!(message.contains("too long"), "{message}");

    // A name ending in `/` (or `/.`) names a directory: refused, never a file.
    for name in ["file.bin/", "dir/", "new/", "new/.", "dir/."] {
        for request in [rrq(name, &[]), wrq(name, &[])] {
            let (code, message) = refused(addr, &request);
            assert_eq!(code, ErrorCode::AccessViolation, "{name}: {message}");
        }
    }
    server.stop().unwrap();
    let mut want = vec![
        format!("{}.bin", "a".repeat(236)),
        "b".repeat(255),
        "dir".to_string(),
        "file.bin".to_string(),
    ];
    want.sort();
    assert_eq!(list(&root), want);
    assert!(list(&root.join("dir")).is_empty());
    assert_eq!(fs::read(root.join("file.bin")).unwrap(), b"file");
}

#[test]
fn upload_that_differs_from_its_tsize_is_not_stored() {
    let root = TempDir::new("st-tsize");
    let (server, addr) = spawn(server_config(fast_config(100, 400, 3)), uploads_to(&root));
    // Fewer bytes than announced: ERROR 0 in place of the final ACK. More: ERROR 3, the
    // allocation the client announced is exceeded.
    for (name, announced, sent, code) in [
        ("short.bin", 100, 50, ErrorCode::NotDefined),
        ("long.bin", 10, 50, ErrorCode::DiskFull),
    ] {
        let (s, oack, tid) = ask(addr, &wrq(name, &[("tsize", &announced.to_string())]));
        assert!(
            matches!(Packet::parse(&oack), Ok(Packet::Oack(_))),
            "{oack:?}"
        );
        // One DATA shorter than 512 bytes: the last one.
        s.send_to(&data(1, &content(sent, 5)), tid).unwrap();
        match Packet::parse(&recv(&s).0).unwrap() {
            Packet::Error { code: got, message } => {
                assert_eq!(got, code, "{message}");
                assert!(
                    message.to_string().contains("differs from its tsize"),
                    "{message}"
                );
            }
            other => panic!("{name}: expected an ERROR, got {other:?}"),
        }
        assert!(!root.join(name).exists(), "{name} was stored");
    }
    // Exactly as announced: stored.
    let (s, _, tid) = ask(addr, &wrq("exact.bin", &[("tsize", "50")]));
    s.send_to(&data(1, &content(50, 5)), tid).unwrap();
    assert_eq!(
        Packet::parse(&recv(&s).0).unwrap(),
        Packet::Ack { block: 1 }
    );
    assert_eq!(fs::read(root.join("exact.bin")).unwrap(), content(50, 5));
    server.stop().unwrap();
    assert_eq!(list(&root), ["exact.bin"]);
}

#[test]
fn hard_links_and_foreign_files_are_refused_only_when_asked() {
    let base = TempDir::new("st-links");
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    let secret = base.join("secret");
    fs::write(&secret, b"outside the root").unwrap();
    fs::hard_link(&secret, root.join("linked")).unwrap();
    fs::write(root.join("plain.bin"), b"plain").unwrap();
    let foreign = is_root().then(|| {
        let p = root.join("foreign.bin");
        fs::write(&p, b"foreign").unwrap();
        std::os::unix::fs::chown(&p, Some(1234), Some(1234)).unwrap();
        p
    });
    if foreign.is_none() {
        assert!(!require_peers(), "not root and WIREKIT_REQUIRE_PEERS=1");
        eprintln!("skipping the owner checks: changing owners needs root");
    }

    let serve = |refuse_linked: bool, owned_only: bool| {
        let mut dir = DirConfig::new(&root);
        dir.uploads.allow_overwrite = true;
        dir.root_options.refuse_linked = refuse_linked;
        dir.root_options.owned_only = owned_only;
        spawn(server_config(fast_config(100, 400, 5)), dir)
    };

    // Off (the default): served like any file.
    let (server, addr) = serve(false, false);
    assert_eq!(get(addr, "linked"), b"outside the root");
    if foreign.is_some() {
        assert_eq!(get(addr, "foreign.bin"), b"foreign");
    }
    server.stop().unwrap();

    // --refuse-linked: the link is refused, for reading and for replacing.
    let (server, addr) = serve(true, false);
    for request in [rrq("linked", &[]), wrq("linked", &[])] {
        assert_eq!(
            refused(addr, &request),
            (
                ErrorCode::AccessViolation,
                "file has more than one hard link".into()
            )
        );
    }
    assert_eq!(get(addr, "plain.bin"), b"plain");
    if foreign.is_some() {
        assert_eq!(get(addr, "foreign.bin"), b"foreign");
    }
    server.stop().unwrap();

    // --owned-only: someone else's file is refused; the server's own are served.
    let (server, addr) = serve(false, true);
    assert_eq!(get(addr, "plain.bin"), b"plain");
    assert_eq!(get(addr, "linked"), b"outside the root");
    if foreign.is_some() {
        for request in [rrq("foreign.bin", &[]), wrq("foreign.bin", &[])] {
            assert_eq!(
                refused(addr, &request),
                (
                    ErrorCode::AccessViolation,
                    "file is not owned by the server's user".into()
                )
            );
        }
    }
    server.stop().unwrap();
    assert_eq!(fs::read(&secret).unwrap(), b"outside the root");
}
