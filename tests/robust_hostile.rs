//! Hostile packets while real transfers run, in both port modes (one after the other: the
//! test counts the process's server threads and descriptors).

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::files::{TempDir, random_bytes};
use common::packets::{RawClient, ack, rrq};
use common::proc::{ThreadSpan, fd_count, proc_status, wait_for_server_threads};
use common::server::{OurServer, PORT_MODES, config_with, fast_config};
use common::wait::wait_until;
use wirekit::net::{ClientOptions, DirConfig, get_into};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{Blksize, ErrorCode, Packet, Text, TransferError, Windowsize};

/// Event loops of the server under test; each has a commit thread besides.
const LOOPS: usize = 2;

/// What [`raw_get`] did besides downloading.
#[derive(Debug, Default)]
struct RawStats {
    /// Requests it sent again in the middle of its transfer.
    replays: u64,
    /// Datagrams from other sources, each answered with ERROR 5 (RFC 1350).
    strays: u64,
}

/// The ERROR 5 a client owes a datagram from a port not of its transfer (RFC 1350).
fn unknown_tid() -> Vec<u8> {
    let unknown = Packet::Error {
        code: ErrorCode::UnknownTransferId,
        message: Text::from("unknown transfer ID"),
    };
    unknown.to_vec().unwrap()
}

/// A raw client that downloads `name` from `server` with plain RFC 1350 lockstep, and
/// reports the transfer port to `tid` as soon as it is known. Every 64 blocks it sends its
/// request again, from the same port.
fn raw_get(server: SocketAddr, name: &str, tid: &Mutex<Option<SocketAddr>>) -> (Vec<u8>, RawStats) {
    let s = RawClient::new(server);
    s.patience(Duration::from_millis(300));
    let req = rrq(name, &[]);
    s.send(&req, server);
    let mut got = Vec::new();
    let mut expected = 1u16;
    let mut peer = None;
    let mut silent = 0;
    let mut stats = RawStats::default();
    loop {
        let Ok((answer, from)) = s.try_recv() else {
            silent += 1;
            assert!(silent < 50, "raw transfer stalled");
            match peer {
                Some(p) => s.send(&ack(expected.wrapping_sub(1)), p),
                None => s.send(&req, server),
            };
            continue;
        };
        silent = 0;
        if *peer.get_or_insert(from) != from {
            // Not our transfer (one a replayed request started): tell it so.
            stats.strays += 1;
            s.send(&unknown_tid(), from);
            continue;
        }
        *tid.lock().unwrap() = Some(from);
        // The same request again, from the same source, mid-transfer.
        if expected.is_multiple_of(64) {
            stats.replays += 1;
            s.send(&req, server);
        }
        match Packet::parse(&answer) {
            Ok(Packet::Data { block, data }) if block == expected => {
                got.extend_from_slice(data);
                s.send(&ack(block), from);
                expected = expected.wrapping_add(1);
                if data.len() < 512 {
                    // A replay just before the end may have its transfer's first DATA
                    // still on the way: wait for it, and answer it as the others.
                    let mut waits = 0;
                    while stats.strays < stats.replays && waits < 20 {
                        match s.try_recv() {
                            Ok((_, from)) if from != *peer.get_or_insert(from) => {
                                stats.strays += 1;
                                s.send(&unknown_tid(), from);
                            }
                            Ok(_) => {}
                            Err(_) => waits += 1,
                        }
                    }
                    return (got, stats);
                }
            }
            Ok(Packet::Data { block, .. }) => s.send(&ack(block), from),
            other => panic!("raw transfer got {other:?}"),
        }
    }
}

/// Junk of every kind: empty, truncated, unknown opcodes, broken requests, an oversized
/// datagram, ERRORs.
fn junk() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0],
        vec![0, 9, 1, 2],
        vec![0, 3],
        vec![0, 4, 0, 1],
        vec![0, 6, b'x'],
        vec![0, 1, b'f', b'i'],
        vec![0, 2, 0, 0],
        vec![0xff; 1400],
        vec![0, 1]
            .into_iter()
            .chain(std::iter::repeat_n(b'a', 9000))
            .collect(),
        Packet::Error {
            code: ErrorCode::NotDefined,
            message: Text::from("go away"),
        }
        .to_vec()
        .unwrap(),
        Packet::Error {
            code: ErrorCode::UnknownTransferId,
            message: Text::from(""),
        }
        .to_vec()
        .unwrap(),
    ]
}

#[test]
fn hostile_packets_do_not_disturb_transfers() {
    for ports in PORT_MODES {
        hostile_packets(ports);
    }
}

fn hostile_packets(ports: PortMode) {
    let root = TempDir::new("hostile");
    let data = random_bytes(1 << 20, 51);
    fs::write(root.join("file.bin"), &data).unwrap();
    let mut config = config_with(ports, fast_config(100, 400, 10));
    let mut dir = DirConfig::new(root.path());
    dir.uploads.allow_create = true;
    config.threads = LOOPS;
    let server = OurServer::start(config, dir);
    let addr = server.addr;
    // One thread per event loop and a commit thread for each, once they have started.
    let threads = 2 * LOOPS;
    wait_for_server_threads(threads);
    // The server's descriptors are all open once it runs: its transfers' come on top.
    let fds_before = fd_count();
    let done = AtomicBool::new(false);
    let tid: Mutex<Option<SocketAddr>> = Mutex::new(None);
    let error5 = AtomicU64::new(0);
    let other_answers = AtomicU64::new(0);
    let span = ThreadSpan::new();
    let max_rss = AtomicU64::new(0);
    let raw_stats = thread::scope(|sc| {
        let getters: Vec<_> = (0..6)
            .map(|i| {
                sc.spawn(move || {
                    let mut opts = ClientOptions::default();
                    opts.blksize = Some(Blksize::new(1428).unwrap());
                    opts.windowsize =
                        Some(Windowsize::new(if i % 2 == 0 { 1 } else { 8 }).unwrap());
                    opts.config = fast_config(100, 400, 10);
                    let mut v = Vec::new();
                    get_into(addr, "file.bin", &mut v, &opts, &mut |_, _| {}).map(|_| v)
                })
            })
            .collect();
        let raw = sc.spawn(|| raw_get(addr, "file.bin", &tid));
        // The flood: to the listen port and to the raw transfer's port.
        let flood = sc.spawn(|| {
            let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
            stranger.set_nonblocking(true).unwrap();
            let junk = junk();
            let data7 = Packet::Data {
                block: 7,
                data: &[1; 512],
            }
            .to_vec()
            .unwrap();
            let ack3 = ack(3);
            let mut buf = [0u8; 2048];
            while !done.load(Ordering::SeqCst) {
                for j in &junk {
                    let _ = stranger.send_to(j, addr);
                }
                if let Some(t) = *tid.lock().unwrap() {
                    for j in junk.iter().chain([&data7, &ack3]) {
                        let _ = stranger.send_to(j, t);
                    }
                }
                while let Ok((n, _)) = stranger.recv_from(&mut buf) {
                    match Packet::parse(&buf[..n]) {
                        Ok(Packet::Error {
                            code: ErrorCode::UnknownTransferId,
                            ..
                        }) => {
                            error5.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            other_answers.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                span.sample();
                max_rss.fetch_max(proc_status("VmRSS"), Ordering::Relaxed);
                // Pacing, so the flood does not starve the transfers of the CPU.
                thread::sleep(Duration::from_millis(2));
            }
        });
        for g in getters {
            let got = g.join().unwrap().expect("get under flood");
            assert!(got == data, "get under flood: bytes differ");
        }
        let (got, raw_stats) = raw.join().unwrap();
        assert!(got == data, "raw get under flood: bytes differ");
        done.store(true, Ordering::SeqCst);
        flood.join().unwrap();
        raw_stats
    });
    let e5 = error5.load(Ordering::Relaxed);
    let (min_t, max_t) = span.seen();
    eprintln!(
        "hostile ({ports:?}): {e5} ERROR 5 answers, {} other answers (refusals of broken requests), {raw_stats:?}, server threads {min_t}..={max_t}, VmRSS max {} kB",
        other_answers.load(Ordering::Relaxed),
        max_rss.load(Ordering::Relaxed),
    );
    match ports {
        // A stranger at a transfer's own port is told it has the wrong transfer ID.
        PortMode::PerTransfer => assert!(e5 > 0, "strangers at a transfer port got no ERROR 5"),
        // On the one shared port the server cannot tell a stranger from junk sent to the
        // request port, and answers neither: it reflects nothing.
        _ => assert_eq!(
            e5, 0,
            "a stranger's packets on the shared port were answered"
        ),
    }
    // The flood never changes how many threads the server runs.
    assert_eq!(
        (min_t, max_t),
        (threads, threads),
        "server threads under flood"
    );
    assert!(
        max_rss.load(Ordering::Relaxed) < 512 * 1024,
        "RSS above 512 MiB"
    );
    let replays = match ports {
        PortMode::PerTransfer => server_reports_of_replays(&server, raw_stats.replays),
        _ => server_reports_of_replays(&server, 0),
    };
    match ports {
        // Once the client has answered its transfer, the same request from the same port
        // is a new request (tftp-hpa's interactive client reuses its port): each replay
        // started a transfer, which the client ended with ERROR 5.
        PortMode::PerTransfer => {
            assert_eq!(replays, raw_stats.replays, "{raw_stats:?}");
            assert_eq!(raw_stats.strays, raw_stats.replays, "{raw_stats:?}");
        }
        // With one port per client, a request while its transfer runs is a repeat of it.
        _ => assert_eq!((replays, raw_stats.strays), (0, 0), "{raw_stats:?}"),
    }
    // Every transfer over: the server holds the descriptors it held before the first.
    assert!(
        wait_until(Duration::from_secs(10), || fd_count() <= fds_before),
        "descriptors {} (before {fds_before})",
        fd_count()
    );
    server.stop().unwrap();
}

/// The transfers of the server's log that a client ended with ERROR 5: the replays', once
/// `expected` of them (or, after a while, however many there are).
fn server_reports_of_replays(server: &OurServer, expected: u64) -> u64 {
    let count = || {
        server
            .reports()
            .iter()
            .filter(|r| {
                matches!(
                    r.result,
                    Err(TransferError::Peer {
                        code: ErrorCode::UnknownTransferId,
                        ..
                    })
                )
            })
            .count() as u64
    };
    wait_until(Duration::from_secs(5), || count() >= expected);
    count()
}
