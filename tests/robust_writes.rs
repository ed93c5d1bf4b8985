//! Write safety: disabled writes, no overwrite, stalled and concurrent uploads, a full
//! disk and the upload size limit. Nothing half-written is ever left behind.

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use wirekit::net::{ClientError, ClientOptions, put_from};
use wirekit::tftp::{ErrorCode, Packet, TransferError};

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("no answer");
    buf.truncate(n);
    (buf, from)
}

fn peer_code(e: &ClientError) -> Option<ErrorCode> {
    match e {
        ClientError::Transfer(TransferError::Peer { code, .. }) => Some(*code),
        _ => None,
    }
}

fn quick() -> ClientOptions {
    let mut o = ClientOptions::default();
    o.config = fast_config(100, 400, 5);
    o.tsize = true;
    o
}

#[test]
fn writes_disabled_refused() {
    let root = tempdir("wr-disabled");
    let (server, addr) = spawn(server_config(&root, fast_config(100, 200, 2)));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(&wrq("new.bin", &[]), addr).unwrap();
    let (answer, _) = recv(&s);
    assert!(matches!(
        Packet::parse(&answer),
        Ok(Packet::Error {
            code: ErrorCode::AccessViolation,
            ..
        })
    ));
    // Our client sees the same.
    let e = put_from(
        addr,
        "new2.bin",
        &mut b"hello".to_vec(),
        Some(5),
        &quick(),
        &mut no_progress(),
    )
    .unwrap_err();
    assert_eq!(peer_code(&e), Some(ErrorCode::AccessViolation), "{e}");
    server.stop().unwrap();
    assert!(list(&root).is_empty(), "{:?}", list(&root));
}

#[test]
fn existing_file_without_overwrite_refused() {
    let root = tempdir("wr-exists");
    fs::write(root.join("keep.bin"), b"original").unwrap();
    let mut config = server_config(&root, fast_config(100, 200, 2));
    config.allow_create = true;
    let (server, addr) = spawn(config);
    let mut data = content(5000, 3);
    let e = put_from(
        addr,
        "keep.bin",
        &mut data,
        Some(5000),
        &quick(),
        &mut no_progress(),
    )
    .unwrap_err();
    assert_eq!(peer_code(&e), Some(ErrorCode::FileExists), "{e}");
    server.stop().unwrap();
    assert_eq!(fs::read(root.join("keep.bin")).unwrap(), b"original");
    assert_eq!(list(&root), vec!["keep.bin".to_string()]);
}

#[test]
fn stalled_upload_leaves_nothing() {
    let root = tempdir("wr-stall");
    let mut config = server_config(&root, fast_config(30, 60, 3));
    config.allow_create = true;
    let (server, addr, logs) = spawn_logged(config);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(&wrq("stall.bin", &[]), addr).unwrap();
    let (ack0, tid) = recv(&s);
    assert_eq!(Packet::parse(&ack0).unwrap(), Packet::Ack { block: 0 });
    let block = vec![0x5a; 512];
    for n in 1..=3u16 {
        let data = Packet::Data {
            block: n,
            data: &block,
        }
        .to_vec()
        .unwrap();
        s.send_to(&data, tid).unwrap();
        loop {
            let (a, _) = recv(&s);
            if Packet::parse(&a).unwrap() == (Packet::Ack { block: n }) {
                break;
            }
        }
    }
    // The upload is under way; the target does not exist yet. Its temporary file has no
    // name on Linux (O_TMPFILE), a random hidden one elsewhere (tests/robust_storage.rs).
    assert!(part_files(&root).len() <= 1, "{:?}", list(&root));
    assert!(!root.join("stall.bin").exists());
    // Silence. The server retransmits ACK 3 a few times, then gives up.
    assert!(wait_until(Duration::from_secs(10), || !logs
        .lock()
        .unwrap()
        .is_empty()));
    let log = logs.lock().unwrap()[0].clone();
    assert!(
        matches!(log.outcome, Err(TransferError::Timeout { .. })),
        "{log}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || list(&root).is_empty()),
        "{:?}",
        list(&root)
    );
    // What the silent client got: ACKs only, at most retries + 1 of the last one.
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut acks3 = 0;
    let mut buf = [0u8; 100];
    while let Ok((n, _)) = s.recv_from(&mut buf) {
        if Packet::parse(&buf[..n]).unwrap() == (Packet::Ack { block: 3 }) {
            acks3 += 1;
        }
    }
    assert!(acks3 <= 3, "{acks3} repeated ACKs");
    server.stop().unwrap();
}

#[test]
fn concurrent_uploads_of_one_name_never_mix() {
    let root = tempdir("wr-race");
    let mut config = server_config(&root, fast_config(100, 400, 5));
    config.allow_create = true;
    config.allow_overwrite = true;
    let (server, addr) = spawn(config);
    let a = content(1 << 20, 21);
    let b = content(1 << 20, 22);
    for round in 0..3 {
        let name = format!("same-{round}.bin");
        let results: Vec<_> = std::thread::scope(|sc| {
            let hs: Vec<_> = [&a, &b]
                .into_iter()
                .map(|d| {
                    let name = name.clone();
                    sc.spawn(move || {
                        let mut d = d.clone();
                        let len = d.len() as u64;
                        put_from(addr, &name, &mut d, Some(len), &quick(), &mut no_progress())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().any(Result::is_ok), "{results:?}");
        let got = fs::read(root.join(&name)).unwrap();
        assert!(got == a || got == b, "round {round}: the file is a mix");
    }
    server.stop().unwrap();
    assert!(part_files(&root).is_empty(), "{:?}", list(&root));
}

#[test]
fn full_disk_reports_error_3_and_leaves_nothing() {
    let base = tempdir("wr-full");
    let mnt = base.join("small");
    fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        assert!(
            !require_peers(),
            "cannot mount a tmpfs and WIREKIT_REQUIRE_PEERS=1"
        );
        eprintln!("skipping: cannot mount a tmpfs (not root?)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let mut config = server_config(&mnt, fast_config(100, 400, 5));
    config.allow_create = true;
    let (server, addr) = spawn(config);
    let mut data = content(2 << 20, 31);
    let mut opts = quick();
    opts.tsize = false;
    let e = put_from(addr, "big.bin", &mut data, None, &opts, &mut no_progress()).unwrap_err();
    assert_eq!(peer_code(&e), Some(ErrorCode::DiskFull), "{e}");
    assert!(
        wait_until(Duration::from_secs(5), || list(&mnt).is_empty()),
        "{:?}",
        list(&mnt)
    );
    server.stop().unwrap();
}

#[test]
fn upload_size_limit() {
    let root = tempdir("wr-limit");
    let mut config = server_config(&root, fast_config(100, 400, 5));
    config.allow_create = true;
    config.max_upload_size = Some(100_000);
    let (server, addr) = spawn(config);
    let mut data = content(200_000, 41);
    // Announced by tsize: refused up front.
    let e = put_from(
        addr,
        "a.bin",
        &mut data,
        Some(200_000),
        &quick(),
        &mut no_progress(),
    )
    .unwrap_err();
    assert_eq!(peer_code(&e), Some(ErrorCode::DiskFull), "{e}");
    // Not announced: stopped when it grows past the limit.
    let mut opts = quick();
    opts.tsize = false;
    let e = put_from(addr, "b.bin", &mut data, None, &opts, &mut no_progress()).unwrap_err();
    assert_eq!(peer_code(&e), Some(ErrorCode::DiskFull), "{e}");
    // Exactly at the limit is fine.
    let mut ok = content(100_000, 42);
    put_from(addr, "c.bin", &mut ok, None, &opts, &mut no_progress()).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || list(&root) == ["c.bin"]),
        "{:?}",
        list(&root)
    );
    assert_eq!(fs::read(root.join("c.bin")).unwrap(), ok);
    server.stop().unwrap();
}

/// Two uploads of one new name, both admitted before either finished, without overwrite:
/// the first to finish is stored; the second gets ERROR 6 in place of its final ACK, so its
/// client never believes it was stored, and the first file stays as it was.
#[test]
fn second_of_two_racing_new_uploads_is_refused_at_the_end() {
    let root = tempdir("wr-race-new");
    let mut config = server_config(&root, fast_config(100, 400, 3));
    config.allow_create = true;
    let (_server, addr, logs) = spawn_logged(config);
    let open = |name: &str| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(&wrq(name, &[]), addr).unwrap();
        let (ack0, tid) = recv(&s);
        assert_eq!(Packet::parse(&ack0).unwrap(), Packet::Ack { block: 0 });
        (s, tid)
    };
    let (a, tid_a) = open("race.bin");
    let (b, tid_b) = open("race.bin");
    let last = |data: &[u8]| Packet::Data { block: 1, data }.to_vec().unwrap();
    a.send_to(&last(b"first"), tid_a).unwrap();
    assert_eq!(
        Packet::parse(&recv(&a).0).unwrap(),
        Packet::Ack { block: 1 }
    );
    b.send_to(&last(b"second"), tid_b).unwrap();
    match Packet::parse(&recv(&b).0).unwrap() {
        Packet::Error { code, .. } => assert_eq!(code, ErrorCode::FileExists),
        other => panic!("expected ERROR 6, got {other:?}"),
    }
    assert_eq!(fs::read(root.join("race.bin")).unwrap(), b"first");
    assert!(
        wait_until(Duration::from_secs(5), || part_files(&root).is_empty()),
        "{:?}",
        list(&root)
    );
    // The server's log tells the two apart: one stored, one refused for the name.
    assert!(wait_until(Duration::from_secs(5), || logs
        .lock()
        .unwrap()
        .len()
        == 2));
    let logs = logs.lock().unwrap();
    assert_eq!(logs.iter().filter(|l| l.outcome.is_ok()).count(), 1);
    assert!(logs.iter().any(|l| matches!(
        &l.outcome,
        Err(TransferError::Storage(e)) if e.code == ErrorCode::FileExists
    )));
}
