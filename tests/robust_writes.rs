//! Write safety: disabled writes, no overwrite, stalled and concurrent uploads, a full
//! disk and the upload size limit. Nothing half-written is ever left behind.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::files::{TempDir, list, part_files, random_bytes};
use common::in_both_port_modes;
use common::packets::{RawClient, ack, data, wrq};
use common::peers::require_peers;
use common::proc::open_file_sizes_under;
use common::server::{OurServer, config_with, fast_config, uploads_to};
use common::wait::{wait_for, wait_until};
use wirekit::net::{ClientError, ClientOptions, DirConfig, put_from};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{ErrorCode, Packet, TransferError};

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

fn no_progress() -> impl FnMut(u64, Option<u64>) {
    |_, _| {}
}

in_both_port_modes!(
    writes_disabled_refused,
    existing_file_without_overwrite_refused,
    stalled_upload_leaves_nothing,
    concurrent_uploads_of_one_name_never_mix,
    full_disk_reports_error_3_and_leaves_nothing,
    upload_size_limit,
    second_of_two_racing_new_uploads_is_refused_at_the_end,
    acknowledged_blocks_reach_the_file_before_the_upload_ends,
);

fn writes_disabled_refused(ports: PortMode) {
    let root = TempDir::new("wr-disabled");
    let server = OurServer::start(
        config_with(ports, fast_config(100, 200, 2)),
        DirConfig::new(root.path()),
    );
    let addr = server.addr;
    let (answer, _) = RawClient::new(addr).ask(&wrq("new.bin", &[]), addr);
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

fn existing_file_without_overwrite_refused(ports: PortMode) {
    let root = TempDir::new("wr-exists");
    fs::write(root.join("keep.bin"), b"original").unwrap();
    let server = OurServer::start(
        config_with(ports, fast_config(100, 200, 2)),
        uploads_to(&root),
    );
    let mut data = random_bytes(5000, 3);
    let e = put_from(
        server.addr,
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

fn stalled_upload_leaves_nothing(ports: PortMode) {
    let root = TempDir::new("wr-stall");
    let server = OurServer::start(
        config_with(ports, fast_config(30, 60, 3)),
        uploads_to(&root),
    );
    let s = RawClient::new(server.addr);
    let (ack0, tid) = s.ask(&wrq("stall.bin", &[]), server.addr);
    assert_eq!(Packet::parse(&ack0).unwrap(), Packet::Ack { block: 0 });
    let block = vec![0x5a; 512];
    for n in 1..=3u16 {
        s.send(&data(n, &block), tid);
        while s.recv().0 != ack(n) {}
    }
    // The upload is under way; the target does not exist yet. Its temporary file has no
    // name on Linux (O_TMPFILE), a random hidden one elsewhere (tests/robust_storage.rs).
    assert!(part_files(&root).len() <= 1, "{:?}", list(&root));
    assert!(!root.join("stall.bin").exists());
    // Silence. The server retransmits ACK 3 a few times, then gives up.
    let log = server.wait_for_reports(1, Duration::from_secs(10))[0].clone();
    assert!(
        matches!(log.result, Err(TransferError::Timeout { .. })),
        "{log}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || list(&root).is_empty()),
        "{:?}",
        list(&root)
    );
    // What the silent client got: ACKs only, at most retries + 1 of the last one, all
    // sent before the transfer reported its end (what is still in flight is read with a
    // short wait: absence cannot be waited for).
    s.patience(Duration::from_millis(200));
    let mut acks3 = 0;
    while let Ok((answer, _)) = s.try_recv() {
        if answer == ack(3) {
            acks3 += 1;
        }
    }
    assert!(acks3 <= 3, "{acks3} repeated ACKs");
    server.stop().unwrap();
}

fn concurrent_uploads_of_one_name_never_mix(ports: PortMode) {
    let root = TempDir::new("wr-race");
    let mut dir = DirConfig::new(root.path());
    dir.uploads.allow_create = true;
    dir.uploads.allow_overwrite = true;
    let server = OurServer::start(config_with(ports, fast_config(100, 400, 5)), dir);
    let addr = server.addr;
    let a = random_bytes(1 << 20, 21);
    let b = random_bytes(1 << 20, 22);
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

fn full_disk_reports_error_3_and_leaves_nothing(ports: PortMode) {
    let base = TempDir::new("wr-full");
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
    let server = OurServer::start(
        config_with(ports, fast_config(100, 400, 5)),
        uploads_to(&mnt),
    );
    let mut data = random_bytes(2 << 20, 31);
    let mut opts = quick();
    opts.tsize = false;
    let e = put_from(
        server.addr,
        "big.bin",
        &mut data,
        None,
        &opts,
        &mut no_progress(),
    )
    .unwrap_err();
    assert_eq!(peer_code(&e), Some(ErrorCode::DiskFull), "{e}");
    assert!(
        wait_until(Duration::from_secs(5), || list(&mnt).is_empty()),
        "{:?}",
        list(&mnt)
    );
    server.stop().unwrap();
}

fn upload_size_limit(ports: PortMode) {
    let root = TempDir::new("wr-limit");
    let mut dir = DirConfig::new(root.path());
    dir.uploads.allow_create = true;
    dir.uploads.max_size = Some(100_000);
    let server = OurServer::start(config_with(ports, fast_config(100, 400, 5)), dir);
    let addr = server.addr;
    let mut data = random_bytes(200_000, 41);
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
    let mut ok = random_bytes(100_000, 42);
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
fn second_of_two_racing_new_uploads_is_refused_at_the_end(ports: PortMode) {
    let root = TempDir::new("wr-race-new");
    let server = OurServer::start(
        config_with(ports, fast_config(100, 400, 3)),
        uploads_to(&root),
    );
    let open = |name: &str| {
        let s = RawClient::new(server.addr);
        let (ack0, tid) = s.ask(&wrq(name, &[]), server.addr);
        assert_eq!(Packet::parse(&ack0).unwrap(), Packet::Ack { block: 0 });
        (s, tid)
    };
    let (a, tid_a) = open("race.bin");
    let (b, tid_b) = open("race.bin");
    a.send(&data(1, b"first"), tid_a);
    assert_eq!(a.recv().0, ack(1));
    b.send(&data(1, b"second"), tid_b);
    match Packet::parse(&b.recv().0).unwrap() {
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
    let logs = server.wait_for_reports(2, Duration::from_secs(5));
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs.iter().filter(|l| l.result.is_ok()).count(), 1);
    assert!(logs.iter().any(|l| matches!(
        &l.result,
        Err(TransferError::Storage(e)) if e.code == ErrorCode::FileExists
    )));
}

/// The server writes what an upload gathered once its ACK is out, while the client sends
/// on: the blocks are in the temporary file before the upload ends, not all at its commit.
fn acknowledged_blocks_reach_the_file_before_the_upload_ends(ports: PortMode) {
    let root = TempDir::new("wr-flushed");
    // Timers that outlast the wait below: the upload must still be running when it fails.
    let server = OurServer::start(
        config_with(ports, fast_config(500, 2000, 5)),
        uploads_to(&root),
    );
    let s = RawClient::new(server.addr);
    let (ack0, tid) = s.ask(&wrq("flushed.bin", &[]), server.addr);
    assert_eq!(Packet::parse(&ack0).unwrap(), Packet::Ack { block: 0 });
    let block = vec![0x5a; 512];
    s.send(&data(1, &block), tid);
    while s.recv().0 != ack(1) {}
    wait_for(
        Duration::from_secs(5),
        || open_file_sizes_under(&root) == [512],
        || {
            format!(
                "open files under the root: {:?}",
                open_file_sizes_under(&root)
            )
        },
    );
    s.send(&data(2, b"end"), tid);
    while s.recv().0 != ack(2) {}
    assert_eq!(
        fs::read(root.join("flushed.bin")).unwrap(),
        [block.as_slice(), b"end"].concat()
    );
    server.stop().unwrap();
}
