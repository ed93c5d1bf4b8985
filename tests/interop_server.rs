//! Our server against TFTP clients nobody here wrote (curl, the tftp-hpa client, atftp,
//! busybox tftp and tftpy) and against our own client, over loopback, IPv4 and IPv6. Every
//! test runs twice: with a port per transfer (RFC 1350) and with `--single-port`, where
//! every answer comes from the request port. Every file is compared byte for byte.
//!
//! A missing client program skips its test (`skipping: <program> not installed`) unless
//! `WIREKIT_REQUIRE_PEERS=1`.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::files::{
    TempDir, WRAP_SIZE, assert_same, random_bytes, read, sized_files as sized_files_seeded, text_lf,
};
use common::in_both_port_modes;
use common::packets::{RawClient, ack, error};
use common::peers::{TFTPY_CLIENT, busybox, curl, ipv6_loopback, peer, run, run_with_stdin, tftpy};
use common::server::OurServer;
use wirekit::net::{ClientOptions, get, put};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{Blksize, Timeout, Windowsize};

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn ipv6_localhost() -> SocketAddr {
    "[::1]:0".parse().unwrap()
}

/// Our server on `listen`, uploads allowed, with OACKs in its log.
fn verbose(root: &Path, listen: SocketAddr, ports: PortMode) -> OurServer {
    OurServer::open_with(root, listen, ports, |c, _| c.verbose = true)
}

/// Writes one random file per size into `root`, named `f<size>.bin`; returns them.
fn sized_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    sized_files_seeded(root, 7)
}

fn url(addr: SocketAddr, name: &str) -> String {
    format!("tftp://{addr}/{name}")
}

// ---------------------------------------------------------------------------------- curl

/// curl downloads every size at blksize 512, 1468 and 65464. curl asks tsize by
/// default: the OACK must carry the file's size.
///
/// Except the empty file: curl 7.88 refuses an OACK with `tsize 0` ("invalid tsize -:0:-
/// value in OACK packet"), so the server leaves a `tsize 0` out of its OACKs, and curl
/// fetches the empty file like any other (tests/empty_files.rs has the details).
fn curl_get_sizes_and_blksizes(ports: PortMode) {
    let Some(curl) = curl() else { return };
    let root = TempDir::new("curl-get-root");
    let local = TempDir::new("curl-get-local");
    let files = sized_files(root.path());
    let server = verbose(&root, localhost(), ports);
    for blksize in [512, 1468, 65464] {
        for (name, data) in &files {
            server.clear_log();
            let what = format!("curl get {name} blksize {blksize}");
            let out = local.join(format!("{blksize}-{name}"));
            run(Command::new(&curl)
                .args(["-sS", "--tftp-blksize", &blksize.to_string(), "-o"])
                .arg(&out)
                .arg(url(server.addr, name)))
            .success(&what);
            assert_same(&read(&out), data, &what);
            let log = server.lines();
            let oacks: Vec<&String> = log.iter().filter(|l| l.starts_with("OACK")).collect();
            if data.is_empty() {
                assert!(
                    oacks.iter().all(|l| !l.contains("tsize")),
                    "{what}: an OACK with tsize 0: {log:?}"
                );
            } else {
                assert!(
                    oacks
                        .iter()
                        .any(|l| l.contains(&format!("tsize={}", data.len()))),
                    "{what}: no OACK with the tsize: {log:?}"
                );
            }
        }
    }
}

/// curl uploads every size at blksize 512, 1468 and 65464 (it announces tsize).
fn curl_put_sizes_and_blksizes(ports: PortMode) {
    let Some(curl) = curl() else { return };
    let root = TempDir::new("curl-put-root");
    let local = TempDir::new("curl-put-local");
    let files = sized_files(local.path());
    let server = OurServer::open(&root, localhost(), ports);
    for blksize in [512, 1468, 65464] {
        for (name, data) in &files {
            let remote = format!("up-{blksize}-{name}");
            run(Command::new(&curl)
                .args(["-sS", "--tftp-blksize", &blksize.to_string(), "-T"])
                .arg(local.join(name))
                .arg(url(server.addr, &remote)))
            .success("curl put");
            assert_same(
                &read(&root.join(&remote)),
                data,
                &format!("curl put {name} blksize {blksize}"),
            );
        }
    }
}

/// curl with `--tftp-no-options`: plain RFC 1350 both ways.
fn curl_without_options(ports: PortMode) {
    let Some(curl) = curl() else { return };
    let root = TempDir::new("curl-noopt-root");
    let local = TempDir::new("curl-noopt-local");
    let files = sized_files(root.path());
    let server = verbose(&root, localhost(), ports);
    for (name, data) in &files {
        let out = local.join(name);
        run(Command::new(&curl)
            .args(["-sS", "--tftp-no-options", "-o"])
            .arg(&out)
            .arg(url(server.addr, name)))
        .success("curl get");
        assert_same(
            &read(&out),
            data,
            &format!("curl get {name} without options"),
        );
        let remote = format!("up-{name}");
        run(Command::new(&curl)
            .args(["-sS", "--tftp-no-options", "-T"])
            .arg(&out)
            .arg(url(server.addr, &remote)))
        .success("curl put");
        assert_same(
            &read(&root.join(&remote)),
            data,
            &format!("curl put {name} without options"),
        );
    }
    let log = server.lines();
    assert!(
        !log.iter().any(|l| l.starts_with("OACK")),
        "an OACK answered a request without options: {log:?}"
    );
}

/// A file of more than 65535 blocks at blksize 512: the block number wraps to 0.
fn curl_get_block_number_wrap(ports: PortMode) {
    let Some(curl) = curl() else { return };
    let root = TempDir::new("curl-wrap-root");
    let local = TempDir::new("curl-wrap-local");
    let data = random_bytes(WRAP_SIZE, 99);
    fs::write(root.join("big.bin"), &data).unwrap();
    let server = OurServer::open(&root, localhost(), ports);
    let out = local.join("big.bin");
    run(Command::new(&curl)
        .args(["-sS", "--tftp-blksize", "512", "-o"])
        .arg(&out)
        .arg(url(server.addr, "big.bin")))
    .success("curl get");
    assert_same(&read(&out), &data, "curl get across the block number wrap");
}

/// Our refusals reach curl as the right error: curl maps TFTP error codes to its exit
/// codes (68 file not found, 69 access violation, 73 file already exists).
fn curl_sees_our_errors(ports: PortMode) {
    let Some(curl) = curl() else { return };
    let root = TempDir::new("curl-err-root");
    let local = TempDir::new("curl-err-local");
    fs::write(root.join("exists.bin"), b"old").unwrap();
    fs::write(local.join("new.bin"), b"new").unwrap();
    let server = OurServer::open_with(&root, localhost(), ports, |_, dir| {
        dir.uploads.allow_overwrite = false;
    });
    let missing = run(Command::new(&curl)
        .args(["-sS", "-o"])
        .arg(local.join("x"))
        .arg(url(server.addr, "no-such-file")));
    assert_eq!(missing.status.code(), Some(68), "{missing:?}");
    let exists = run(Command::new(&curl)
        .args(["-sS", "-T"])
        .arg(local.join("new.bin"))
        .arg(url(server.addr, "exists.bin")));
    assert_eq!(exists.status.code(), Some(73), "{exists:?}");
    assert_eq!(fs::read(root.join("exists.bin")).unwrap(), b"old");
    let escape = run(Command::new(&curl)
        .args(["-sS", "-o"])
        .arg(local.join("y"))
        .arg(url(server.addr, "../../etc/passwd")));
    assert!(
        matches!(escape.status.code(), Some(68 | 69)),
        "a path out of the root was not refused: {escape:?}"
    );
    drop(server);

    let read_only = OurServer::open_with(&root, localhost(), ports, |_, dir| {
        dir.uploads.allow_create = false;
        dir.uploads.allow_overwrite = false;
    });
    let denied = run(Command::new(&curl)
        .args(["-sS", "-T"])
        .arg(local.join("new.bin"))
        .arg(url(read_only.addr, "new.bin")));
    assert_eq!(denied.status.code(), Some(69), "{denied:?}");
    assert!(!root.join("new.bin").exists());
}

// ------------------------------------------------------------------------------ tftp-hpa

fn tftp_hpa(tftp: &Path, mode: &str, server: SocketAddr, command: &[&Path]) -> Command {
    let mut cmd = Command::new(tftp);
    if server.is_ipv6() {
        cmd.arg("-6");
    }
    cmd.args(["-m", mode])
        .arg(server.ip().to_string())
        .arg(server.port().to_string())
        .arg("-c")
        .args(command);
    cmd
}

/// tftp-hpa gets each file in `mode` and puts it back as `up-NAME`; both must equal it.
fn tftp_hpa_round_trip(
    tftp: &Path,
    mode: &str,
    server: SocketAddr,
    root: &Path,
    local: &Path,
    files: &[(String, Vec<u8>)],
) {
    for (name, data) in files {
        let out = local.join(name);
        run(&mut tftp_hpa(
            tftp,
            mode,
            server,
            &[Path::new("get"), Path::new(name), &out],
        ))
        .success("tftp get");
        assert_same(&read(&out), data, &format!("tftp-hpa {mode} get {name}"));
        let remote = format!("up-{name}");
        run(&mut tftp_hpa(
            tftp,
            mode,
            server,
            &[Path::new("put"), &out, Path::new(&remote)],
        ))
        .success("tftp put");
        assert_same(
            &read(&root.join(&remote)),
            data,
            &format!("tftp-hpa {mode} put {name}"),
        );
    }
}

/// The tftp-hpa client (no options at all: plain RFC 1350) gets and puts every size.
fn tftp_hpa_octet_get_and_put(ports: PortMode) {
    let Some(tftp) = peer("tftp") else { return };
    let root = TempDir::new("hpa-root");
    let local = TempDir::new("hpa-local");
    let files = sized_files(root.path());
    let server = OurServer::open(&root, localhost(), ports);
    tftp_hpa_round_trip(
        &tftp,
        "octet",
        server.addr,
        root.path(),
        local.path(),
        &files,
    );
}

/// The tftp-hpa client in an interactive session keeps one socket, so every command's
/// request comes from the same address and port. Right after an upload (which our server
/// still dallies on) and right after a download, the next request must start a new
/// transfer at once, not be taken for a repeat of the previous one.
///
/// Outcome, not time: with `rexmt 5` and `timeout 3` tftp-hpa gives up at its first
/// retransmission, so a request the server ignores fails the transfer.
fn tftp_hpa_interactive_session_reuses_its_port(ports: PortMode) {
    let Some(tftp) = peer("tftp") else { return };
    let root = TempDir::new("hpa-session-root");
    let local = TempDir::new("hpa-session-local");
    // More than one block each, so that every transfer hears from the client before
    // its last packet.
    let a = random_bytes(3000, 31);
    let b = random_bytes(5000, 32);
    fs::write(local.join("a"), &a).unwrap();
    fs::write(root.join("b"), &b).unwrap();
    let server = OurServer::open(&root, localhost(), ports);
    let script = "binary\nrexmt 5\ntimeout 3\nput a a1\nput a a2\nget b b1\nget b b2\nget a1 a3\nput b1 b3\nquit\n";
    let out = run_with_stdin(
        Command::new(&tftp)
            .current_dir(local.path())
            .arg("127.0.0.1")
            .arg(server.port().to_string()),
        script.as_bytes(),
    );
    let what = format!("tftp-hpa session: {out:?}");
    let got = |p: &Path| fs::read(p).unwrap_or_else(|e| panic!("{}: {e}; {what}", p.display()));
    assert_same(&got(&root.join("a1")), &a, &what);
    assert_same(&got(&root.join("a2")), &a, &what);
    assert_same(&got(&local.join("b1")), &b, &what);
    assert_same(&got(&local.join("b2")), &b, &what);
    assert_same(&got(&local.join("a3")), &a, &what);
    assert_same(&got(&root.join("b3")), &b, &what);
}

/// netascii both ways with tftp-hpa: a text file with LF line ends comes back equal
/// (each side converts LF to CR LF on the wire and back).
fn tftp_hpa_netascii_get_and_put(ports: PortMode) {
    let Some(tftp) = peer("tftp") else { return };
    let root = TempDir::new("hpa-ascii-root");
    let local = TempDir::new("hpa-ascii-local");
    // Sizes chosen so CR LF pairs straddle block boundaries somewhere.
    let texts: Vec<(String, Vec<u8>)> = [0, 1, 600, 5000, 200_000]
        .iter()
        .map(|&n| {
            let name = format!("t{n}.txt");
            let mut t = text_lf(n);
            t.truncate(n);
            fs::write(root.join(&name), &t).unwrap();
            (name, t)
        })
        .collect();
    let server = OurServer::open(&root, localhost(), ports);
    tftp_hpa_round_trip(
        &tftp,
        "netascii",
        server.addr,
        root.path(),
        local.path(),
        &texts,
    );
}

/// netascii with bare CRs and CR LFs in the file: CR goes as CR NUL and comes back.
fn tftp_hpa_netascii_bare_cr(ports: PortMode) {
    let Some(tftp) = peer("tftp") else { return };
    let root = TempDir::new("hpa-cr-root");
    let local = TempDir::new("hpa-cr-local");
    let mut text = Vec::new();
    for i in 0..3000 {
        text.extend_from_slice(match i % 4 {
            0 => b"plain line\n".as_slice(),
            1 => b"dos line\r\n",
            2 => b"bare\rcarriage return\n",
            _ => b"ends with CR\r",
        });
    }
    fs::write(root.join("mixed.txt"), &text).unwrap();
    let server = OurServer::open(&root, localhost(), ports);
    let files = [("mixed.txt".to_string(), text)];
    tftp_hpa_round_trip(
        &tftp,
        "netascii",
        server.addr,
        root.path(),
        local.path(),
        &files,
    );
}

// --------------------------------------------------------------------------------- atftp

/// atftp gets `name` from `server` into `out` and puts it back as `remote`, with these
/// `--option`s.
fn atftp_round_trip(
    atftp: &Path,
    server: SocketAddr,
    options: &[&str],
    name: &str,
    out: &Path,
    remote: &str,
) {
    let what = format!("atftp {options:?} {name} via {server}");
    let mut opts = Vec::new();
    for o in options {
        opts.extend(["--option", o]);
    }
    for (direction, remote_name) in [("-g", name), ("-p", remote)] {
        run(Command::new(atftp)
            .args(&opts)
            .args([direction, "-r", remote_name, "-l"])
            .arg(out)
            .arg(server.ip().to_string())
            .arg(server.port().to_string()))
        .success(&what);
    }
}

/// atftp with no options, with blksize 1468 + windowsize 16 + tsize, and with the
/// largest blksize and a window of 2, both directions, every size.
///
/// (A window of 4 blocks of 65464 bytes overflows a default Linux socket receive buffer
/// of 208 KiB on loopback: the last block of each window is dropped and every window
/// ends in a timeout. It works, through retransmission, but slowly; that is the kernel's
/// limit, not the protocol's, so the test keeps to a window that fits.)
fn atftp_get_and_put_with_options(ports: PortMode) {
    let Some(atftp) = peer("atftp") else { return };
    let root = TempDir::new("atftp-root");
    let local = TempDir::new("atftp-local");
    let files = sized_files(root.path());
    let server = verbose(&root, localhost(), ports);
    let option_sets: [&[&str]; 3] = [
        &[],
        &["blksize 1468", "windowsize 16", "tsize enable"],
        &["blksize 65464", "windowsize 2"],
    ];
    for (i, options) in option_sets.iter().enumerate() {
        for (name, data) in &files {
            let what = format!("atftp {options:?} {name}");
            server.clear_log();
            let out = local.join(format!("{i}-{name}"));
            let remote = format!("up-{i}-{name}");
            atftp_round_trip(&atftp, server.addr, options, name, &out, &remote);
            assert_same(&read(&out), data, &format!("get {what}"));
            assert_same(&read(&root.join(&remote)), data, &format!("put {what}"));
            if options.contains(&"windowsize 16") {
                // The window was really negotiated, not silently dropped.
                let log = server.lines();
                assert!(
                    log.iter().any(|l| l.starts_with("OACK")
                        && l.contains("windowsize=16")
                        && l.contains("blksize=1468")),
                    "{what}: {log:?}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------- busybox

/// busybox tftp gets `name` from `server` into `out` and puts it back as `remote`.
fn busybox_round_trip(
    bb: &Path,
    server: SocketAddr,
    blksize: &str,
    name: &str,
    out: &Path,
    remote: &str,
) {
    let what = format!("busybox tftp -b {blksize} {name} via {server}");
    for (direction, remote_name) in [("-g", name), ("-p", remote)] {
        run(Command::new(bb)
            .args(["tftp", direction, "-r", remote_name, "-b", blksize, "-l"])
            .arg(out)
            .arg(server.ip().to_string())
            .arg(server.port().to_string()))
        .success(&what);
    }
}

/// busybox tftp gets and puts every size at blksize 512, 1468 and 65464.
fn busybox_get_and_put(ports: PortMode) {
    let Some(bb) = busybox() else { return };
    let root = TempDir::new("bb-root");
    let local = TempDir::new("bb-local");
    let files = sized_files(root.path());
    let server = OurServer::open(&root, localhost(), ports);
    for blksize in ["512", "1468", "65464"] {
        for (name, data) in &files {
            let what = format!("busybox tftp -b {blksize} {name}");
            let out = local.join(format!("{blksize}-{name}"));
            let remote = format!("up-{blksize}-{name}");
            busybox_round_trip(&bb, server.addr, blksize, name, &out, &remote);
            assert_same(&read(&out), data, &format!("get {what}"));
            assert_same(&read(&root.join(&remote)), data, &format!("put {what}"));
        }
    }
}

// --------------------------------------------------------------------------------- tftpy

/// tftpy (a Python TFTP library) gets `name` from `server` into `out` and puts it back as
/// `remote`, asking for `blksize` when given.
fn tftpy_round_trip(
    python: &Path,
    server: SocketAddr,
    blksize: Option<&str>,
    name: &str,
    out: &Path,
    remote: &str,
) {
    let what = format!("tftpy blksize {blksize:?} {name} via {server}");
    for (op, remote_name) in [("get", name), ("put", remote)] {
        run(Command::new(python)
            .args(["-c", TFTPY_CLIENT, op])
            .arg(server.ip().to_string())
            .arg(server.port().to_string())
            .arg(remote_name)
            .arg(out)
            .args(blksize))
        .success(&what);
    }
}

/// tftpy gets and puts every size, without options and at blksize 1468. (tftpy speaks
/// IPv4 only: it opens its socket as `AF_INET`.)
fn tftpy_get_and_put(ports: PortMode) {
    let Some(python) = tftpy() else { return };
    let root = TempDir::new("tftpy-root");
    let local = TempDir::new("tftpy-local");
    let files = sized_files(root.path());
    let server = OurServer::open(&root, localhost(), ports);
    for blksize in [None, Some("1468")] {
        for (name, data) in &files {
            let what = format!("tftpy blksize {blksize:?} {name}");
            let out = local.join(format!("{}-{name}", blksize.unwrap_or("512")));
            let remote = format!("up-{}-{name}", blksize.unwrap_or("512"));
            tftpy_round_trip(&python, server.addr, blksize, name, &out, &remote);
            assert_same(&read(&out), data, &format!("get {what}"));
            assert_same(&read(&root.join(&remote)), data, &format!("put {what}"));
        }
    }
}

// ------------------------------------------------------------------------------ our own

/// The option sets our client is tried with.
fn our_option_sets() -> Vec<(&'static str, ClientOptions)> {
    let blk = |n| Some(Blksize::new(n).unwrap());
    let mut windowed = ClientOptions::default();
    windowed.blksize = blk(1468);
    windowed.windowsize = Some(Windowsize::new(16).unwrap());
    windowed.tsize = true;
    windowed.timeout = Some(Timeout::new(2).unwrap());
    let mut large_netascii = ClientOptions::default();
    large_netascii.blksize = blk(65464);
    large_netascii.windowsize = Some(Windowsize::new(2).unwrap());
    large_netascii.netascii = true;
    vec![
        ("no options", ClientOptions::plain()),
        ("blksize 1468 + windowsize 16 + tsize + timeout 2", windowed),
        ("blksize 65464 + windowsize 2 + netascii", large_netascii),
    ]
}

/// Our client gets `name` from `server` into `out` and puts it back as `remote`.
fn ours_round_trip(server: SocketAddr, opts: &ClientOptions, name: &str, out: &Path, remote: &str) {
    get(server, name, out, opts, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("our get {name} via {server}: {e}"));
    put(server, out, remote, opts, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("our put {remote} via {server}: {e}"));
}

/// Our own client gets and puts every size with every option set.
fn ours_get_and_put(ports: PortMode) {
    let root = TempDir::new("ours-root");
    let local = TempDir::new("ours-local");
    let files = sized_files(root.path());
    let server = OurServer::open(&root, localhost(), ports);
    for (i, (label, opts)) in our_option_sets().iter().enumerate() {
        for (name, data) in &files {
            let what = format!("ours with {label}: {name}");
            let out = local.join(format!("{i}-{name}"));
            let remote = format!("up-{i}-{name}");
            ours_round_trip(server.addr, opts, name, &out, &remote);
            assert_same(&read(&out), data, &format!("get {what}"));
            assert_same(&read(&root.join(&remote)), data, &format!("put {what}"));
        }
    }
}

// ---------------------------------------------------------------------------------- IPv6

/// Our server on `[::1]`, with every client that speaks IPv6 (tftpy does not): curl,
/// tftp-hpa, atftp, busybox and ours, get and put, with and without options.
fn ipv6_every_client(ports: PortMode) {
    if !ipv6_loopback() {
        return;
    }
    let root = TempDir::new("v6-root");
    let local = TempDir::new("v6-local");
    let files: Vec<(String, Vec<u8>)> = [1, 513, 100_000]
        .into_iter()
        .map(|n| {
            let name = format!("v6-{n}.bin");
            let data = random_bytes(n, n as u64 + 6);
            fs::write(root.join(&name), &data).unwrap();
            (name, data)
        })
        .collect();
    let server = OurServer::open(&root, ipv6_localhost(), ports);
    assert!(server.addr.is_ipv6());
    let check = |client: &str, name: &str, data: &[u8], out: &Path, remote: &str| {
        assert_same(&read(out), data, &format!("{client} get {name} over IPv6"));
        assert_same(
            &read(&root.join(remote)),
            data,
            &format!("{client} put {remote} over IPv6"),
        );
    };
    for (name, data) in &files {
        if let Some(curl) = curl() {
            for blksize in ["512", "1468"] {
                let out = local.join(format!("curl-{blksize}-{name}"));
                let remote = format!("up-curl-{blksize}-{name}");
                run(Command::new(&curl)
                    .args(["-sS", "-g", "--tftp-blksize", blksize, "-o"])
                    .arg(&out)
                    .arg(url(server.addr, name)))
                .success("curl get over IPv6");
                run(Command::new(&curl)
                    .args(["-sS", "-g", "--tftp-blksize", blksize, "-T"])
                    .arg(&out)
                    .arg(url(server.addr, &remote)))
                .success("curl put over IPv6");
                check("curl", name, data, &out, &remote);
            }
        }
        if let Some(tftp) = peer("tftp") {
            let out = local.join(format!("hpa-{name}"));
            let remote = format!("up-hpa-{name}");
            run(&mut tftp_hpa(
                &tftp,
                "octet",
                server.addr,
                &[Path::new("get"), Path::new(name), &out],
            ))
            .success("tftp-hpa get over IPv6");
            run(&mut tftp_hpa(
                &tftp,
                "octet",
                server.addr,
                &[Path::new("put"), &out, Path::new(&remote)],
            ))
            .success("tftp-hpa put over IPv6");
            check("tftp-hpa", name, data, &out, &remote);
        }
        if let Some(atftp) = peer("atftp") {
            for (i, options) in [&[][..], &["blksize 1468", "windowsize 16"][..]]
                .into_iter()
                .enumerate()
            {
                let out = local.join(format!("atftp-{i}-{name}"));
                let remote = format!("up-atftp-{i}-{name}");
                atftp_round_trip(&atftp, server.addr, options, name, &out, &remote);
                check("atftp", name, data, &out, &remote);
            }
        }
        if let Some(bb) = busybox() {
            for blksize in ["512", "1468"] {
                let out = local.join(format!("bb-{blksize}-{name}"));
                let remote = format!("up-bb-{blksize}-{name}");
                busybox_round_trip(&bb, server.addr, blksize, name, &out, &remote);
                check("busybox", name, data, &out, &remote);
            }
        }
        for (i, (_, opts)) in our_option_sets().iter().enumerate().take(2) {
            let out = local.join(format!("ours-{i}-{name}"));
            let remote = format!("up-ours-{i}-{name}");
            ours_round_trip(server.addr, opts, name, &out, &remote);
            check("ours", name, data, &out, &remote);
        }
    }
}

// --------------------------------------------------------------------------- multi-homed

/// Our server listening on `0.0.0.0`: a request sent to `127.0.0.2` is answered from
/// `127.0.0.2` (PXE firmware drops replies from another address), both a DATA reply and
/// an ERROR refusal. The client socket sends from `127.0.0.1`, so a reply that merely
/// followed the route back would come from `127.0.0.1`. The port is the transfer's own,
/// or the request port in single-port mode.
fn multi_homed_reply_from_request_address(ports: PortMode) {
    let root = TempDir::new("mh-root");
    let data = random_bytes(100, 1);
    fs::write(root.join("small.bin"), &data).unwrap();
    let server = OurServer::open(&root, "0.0.0.0:0".parse().unwrap(), ports);
    let port = server.port();
    for target in ["127.0.0.2", "127.0.0.3"] {
        let to: SocketAddr = format!("{target}:{port}").parse().unwrap();
        let client = RawClient::on("127.0.0.1".parse().unwrap());
        client.send(b"\x00\x01small.bin\x00octet\x00", to);
        let (answer, from) = client.try_recv().unwrap_or_else(|e| {
            panic!(
                "no answer to the RRQ sent to {to}: {e}; server log: {:?}",
                server.lines()
            )
        });
        assert_eq!(from.ip(), to.ip(), "DATA came from the wrong address");
        assert_eq!(
            from.port() == port,
            ports == PortMode::Single,
            "DATA came from port {} (request port {port})",
            from.port()
        );
        let mut want = vec![0, 3, 0, 1];
        want.extend_from_slice(&data);
        assert_eq!(answer, want, "expected DATA 1 with the whole file");
        // Finish the transfer properly.
        client.send(&ack(1), from);

        // A new transfer ID for a new request, as RFC 1350 asks of clients.
        let client = RawClient::on("127.0.0.1".parse().unwrap());
        let (answer, from) = client.ask(b"\x00\x01no-such-file\x00octet\x00", to);
        assert_eq!(from.ip(), to.ip(), "ERROR came from the wrong address");
        assert_eq!(
            &answer[..4],
            &[0, 5, 0, 1],
            "expected ERROR 1, got {answer:?}"
        );
    }
}

// ------------------------------------------------------------------------ odd requests

/// atftp 0.8.0 sends `--option "tsize enable"` literally as `tsize\0enable\0`. Such a
/// value makes the option void, not the request: it is left out of the OACK (as tftpd-hpa
/// does), and the other options are still granted.
fn non_numeric_option_value_is_ignored(ports: PortMode) {
    let root = TempDir::new("odd-root");
    let data = random_bytes(3000, 3);
    fs::write(root.join("odd.bin"), &data).unwrap();
    let server = OurServer::open(&root, localhost(), ports);
    let client = RawClient::new(server.addr);
    let (answer, from) = client.ask(
        b"\x00\x01odd.bin\x00octet\x00tsize\x00enable\x00blksize\x001468\x00",
        server.addr,
    );
    assert_eq!(
        answer, b"\x00\x06blksize\x001468\x00",
        "expected an OACK with blksize only"
    );
    client.send(&ack(0), from);
    let (answer, _) = client.recv();
    assert_eq!(&answer[..4], &[0, 3, 0, 1]);
    assert_eq!(&answer[4..], &data[..1468]);
    // Stop here: the server's transfer ends on its own; an ERROR ends it sooner.
    client.send(&error("done"), from);
}

/// A request repeated before the client has heard from its transfer (its answer was
/// lost, say) starts no second transfer: the running one answers it, on its own timer.
///
/// Once the client has spoken on the transfer, the modes differ. With a port per
/// transfer, the same request from the same port is a new request (tftp-hpa's interactive
/// client reuses its port): it gets a new transfer, from a new port. In single-port mode
/// a client port has one transfer, and the request is a repeat of it while it runs; once
/// it has ended, it is a new request.
fn repeated_request_versus_new_request_from_one_port(ports: PortMode) {
    let root = TempDir::new("repeat-root");
    let data = random_bytes(1000, 5);
    fs::write(root.join("two-blocks.bin"), &data).unwrap();
    let server = OurServer::open(&root, localhost(), ports);
    let client = RawClient::new(server.addr);
    let rrq = b"\x00\x01two-blocks.bin\x00octet\x00";

    let (answer, first) = client.ask(rrq, server.addr);
    assert_eq!(&answer[..4], &[0, 3, 0, 1], "{answer:?}");
    // The same request again, before any answer from us: a repeat.
    let (answer, from) = client.ask(rrq, server.addr);
    assert_eq!(&answer[..4], &[0, 3, 0, 1], "{answer:?}");
    assert_eq!(from, first, "a repeated request started a second transfer");

    // Now the client has answered.
    client.send(&ack(1), first);
    let (answer, from) = client.recv();
    assert_eq!(from, first);
    assert_eq!(&answer[..4], &[0, 3, 0, 2], "{answer:?}");
    let (answer, second) = client.ask(rrq, server.addr);
    if ports == PortMode::Single {
        // A repeat of the running transfer: what comes is DATA 2 again, on its timer.
        assert_eq!(second, first);
        assert_eq!(&answer[..4], &[0, 3, 0, 2], "{answer:?}");
        client.send(&ack(2), first);
        server.wait_for_reports(1, std::time::Duration::from_secs(5));
        // The transfer has ended: the same request is a new one.
        let (answer, third) = client.ask(rrq, server.addr);
        assert_eq!(third, server.addr);
        assert_eq!(&answer[..4], &[0, 3, 0, 1], "{answer:?}");
        assert_eq!(&answer[4..], &data[..512]);
        client.send(&error("done"), third);
        let reports = server.wait_for_reports(2, std::time::Duration::from_secs(5));
        assert!(reports[0].result.is_ok(), "{}", reports[0]);
        return;
    }
    assert_ne!(
        second, first,
        "the new request was not served by a new transfer"
    );
    assert_eq!(&answer[..4], &[0, 3, 0, 1], "{answer:?}");
    assert_eq!(&answer[4..], &data[..512]);
    // End both transfers.
    client.send(&ack(2), first);
    client.send(&error("done"), second);
}

in_both_port_modes!(
    curl_get_sizes_and_blksizes,
    curl_put_sizes_and_blksizes,
    curl_without_options,
    curl_get_block_number_wrap,
    curl_sees_our_errors,
    tftp_hpa_octet_get_and_put,
    tftp_hpa_interactive_session_reuses_its_port,
    tftp_hpa_netascii_get_and_put,
    tftp_hpa_netascii_bare_cr,
    atftp_get_and_put_with_options,
    busybox_get_and_put,
    tftpy_get_and_put,
    ours_get_and_put,
    ipv6_every_client,
    multi_homed_reply_from_request_address,
    non_numeric_option_value_is_ignored,
    repeated_request_versus_new_request_from_one_port,
);
