//! Hostile packets while real transfers run.

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use wirekit::net::{ClientOptions, get_into};
use wirekit::tftp::{Blksize, ErrorCode, Packet, Text, Windowsize};

/// A raw client that downloads `name` from `server` with plain RFC 1350 lockstep, and
/// reports the transfer port to `tid` as soon as it is known.
fn raw_get(server: SocketAddr, name: &str, tid: &Mutex<Option<SocketAddr>>) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let req = rrq(name, &[]);
    s.send_to(&req, server).unwrap();
    let mut got = Vec::new();
    let mut expected = 1u16;
    let mut peer = None;
    let mut buf = vec![0u8; 1024];
    let mut silent = 0;
    loop {
        let Ok((n, from)) = s.recv_from(&mut buf) else {
            silent += 1;
            assert!(silent < 50, "raw transfer stalled");
            match peer {
                Some(p) => s
                    .send_to(
                        &Packet::Ack {
                            block: expected.wrapping_sub(1),
                        }
                        .to_vec()
                        .unwrap(),
                        p,
                    )
                    .unwrap(),
                None => s.send_to(&req, server).unwrap(),
            };
            continue;
        };
        silent = 0;
        if *peer.get_or_insert(from) != from {
            continue;
        }
        *tid.lock().unwrap() = Some(from);
        // A replayed request from the same source, mid-transfer: ignored by the server.
        if expected % 64 == 0 {
            s.send_to(&req, server).unwrap();
        }
        match Packet::parse(&buf[..n]) {
            Ok(Packet::Data { block, data }) if block == expected => {
                got.extend_from_slice(data);
                s.send_to(&Packet::Ack { block }.to_vec().unwrap(), from)
                    .unwrap();
                expected = expected.wrapping_add(1);
                if data.len() < 512 {
                    return got;
                }
            }
            Ok(Packet::Data { block, .. }) => {
                s.send_to(&Packet::Ack { block }.to_vec().unwrap(), from)
                    .unwrap();
            }
            other => panic!("raw transfer got {other:?}"),
        }
    }
}

#[test]
fn hostile_packets_do_not_disturb_transfers() {
    let root = tempdir("hostile");
    let data = content(1 << 20, 51);
    fs::write(root.join("file.bin"), &data).unwrap();
    let mut config = server_config(&root, fast_config(100, 400, 10));
    config.allow_create = true;
    let (server, addr, _logs) = spawn_logged(config);
    let threads_before = warm_up_and_count_threads(addr, "file.bin");
    let done = AtomicBool::new(false);
    let tid: Mutex<Option<SocketAddr>> = Mutex::new(None);
    let error5 = AtomicU64::new(0);
    let other_answers = AtomicU64::new(0);
    let max_threads = AtomicU64::new(0);
    let max_rss = AtomicU64::new(0);
    thread::scope(|sc| {
        let getters: Vec<_> = (0..6)
            .map(|i| {
                sc.spawn(move || {
                    let mut opts = ClientOptions::default();
                    opts.blksize = Some(Blksize::new(1428).unwrap());
                    opts.windowsize =
                        Some(Windowsize::new(if i % 2 == 0 { 1 } else { 8 }).unwrap());
                    opts.config = fast_config(100, 400, 10);
                    let mut v = Vec::new();
                    get_into(addr, "file.bin", &mut v, &opts, &mut no_progress()).map(|_| v)
                })
            })
            .collect();
        let raw = sc.spawn(|| raw_get(addr, "file.bin", &tid));
        // The flood: to the listen port and to the raw transfer's port.
        let flood = sc.spawn(|| {
            let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
            stranger.set_nonblocking(true).unwrap();
            let junk: Vec<Vec<u8>> = vec![
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
            ];
            let data1 = Packet::Data {
                block: 7,
                data: &[1; 512],
            }
            .to_vec()
            .unwrap();
            let ack = Packet::Ack { block: 3 }.to_vec().unwrap();
            let mut buf = [0u8; 2048];
            let mut round = 0u64;
            while !done.load(Ordering::SeqCst) {
                round += 1;
                for j in &junk {
                    let _ = stranger.send_to(j, addr);
                }
                if let Some(t) = *tid.lock().unwrap() {
                    for j in junk.iter().chain([&data1, &ack]) {
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
                if round % 10 == 0 {
                    max_threads.fetch_max(proc_status("Threads"), Ordering::Relaxed);
                    max_rss.fetch_max(proc_status("VmRSS"), Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(2));
            }
        });
        for g in getters {
            let got = g.join().unwrap().expect("get under flood");
            assert!(got == data, "get under flood: bytes differ");
        }
        let got = raw.join().unwrap();
        assert!(got == data, "raw get under flood: bytes differ");
        done.store(true, Ordering::SeqCst);
        flood.join().unwrap();
    });
    let e5 = error5.load(Ordering::Relaxed);
    eprintln!(
        "hostile: {e5} ERROR 5 answers, {} other answers (refusals of broken requests), threads {threads_before} before, max {} during, VmRSS max {} kB",
        other_answers.load(Ordering::Relaxed),
        max_threads.load(Ordering::Relaxed),
        max_rss.load(Ordering::Relaxed),
    );
    assert!(e5 > 0, "strangers at a transfer port got no ERROR 5");
    // 6 gets + 1 raw transfer + the listener: a bounded number, whatever the flood.
    assert!(max_threads.load(Ordering::Relaxed) <= threads_before + 20);
    assert!(
        max_rss.load(Ordering::Relaxed) < 512 * 1024,
        "RSS above 512 MiB"
    );
    assert!(wait_until(Duration::from_secs(10), || proc_status(
        "Threads"
    ) <= threads_before));
    server.stop().unwrap();
}
