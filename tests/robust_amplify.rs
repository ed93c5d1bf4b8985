//! The amplification bound: what a request from a silent (or spoofed) source costs.

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use wirekit::net::TransferLog;
use wirekit::tftp::Packet;

/// Counts what a silent socket receives after sending `request`, until the server logs the
/// transfer's end, and then for `quiet` more.
fn silent_victim(
    addr: SocketAddr,
    logs: &Mutex<Vec<TransferLog>>,
    request: &[u8],
    ack0: bool,
) -> (u64, u64, u64) {
    let before = logs.lock().unwrap().len();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s.send_to(request, addr).unwrap();
    let (mut data, mut other) = (0u64, 0u64);
    let mut buf = vec![0u8; 2048];
    let mut acked = false;
    let mut ended = None;
    loop {
        match s.recv_from(&mut buf) {
            Ok((n, from)) => match Packet::parse(&buf[..n]) {
                Ok(Packet::Data { .. }) => data += 1,
                Ok(Packet::Oack(_)) if ack0 && !acked => {
                    acked = true;
                    s.send_to(&Packet::Ack { block: 0 }.to_vec().unwrap(), from)
                        .unwrap();
                }
                _ => other += 1,
            },
            Err(_) => {
                if ended.is_none() && logs.lock().unwrap().len() > before {
                    ended = Some(std::time::Instant::now());
                }
                if ended.is_some_and(|t| t.elapsed() > Duration::from_millis(800)) {
                    break;
                }
                assert!(data + other < 10_000);
            }
        }
        if ended.is_some() {
            continue;
        }
    }
    // Anything after the end: listen once more.
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let late = u64::from(s.recv_from(&mut buf).is_ok());
    (data, other, late)
}

#[test]
fn silent_source_amplification_is_bounded() {
    let root = tempdir("amplify");
    fs::write(root.join("file.bin"), content(1 << 20, 61)).unwrap();
    let retries = 3u64;
    let (server, addr, logs) =
        spawn_logged(server_config(&root, fast_config(50, 100, retries as u32)));
    let n = 8u64;
    // Plain request, never answered: DATA 1 and its retransmissions.
    let (data, other, late) = silent_victim(addr, &logs, &rrq("file.bin", &[]), false);
    eprintln!("plain RRQ: {data} DATA, {other} other");
    assert!(data <= retries + 1 && other == 0 && late == 0);
    // With options, never answered: the OACK and its retransmissions, no DATA.
    let req = rrq("file.bin", &[("blksize", "1428"), ("windowsize", "8")]);
    let (data, other, late) = silent_victim(addr, &logs, &req, false);
    eprintln!("RRQ with options: {data} DATA, {other} OACK/other");
    assert!(data == 0 && other <= retries + 1 && late == 0);
    // With options, ACK 0 and then silence: one window and its retransmissions.
    let (data, other, late) = silent_victim(addr, &logs, &req, true);
    eprintln!("RRQ windowsize {n}, ACK 0, silence: {data} DATA, {other} other");
    assert!(
        data <= (retries + 1) * n && other <= 1 && late == 0,
        "{data} DATA"
    );
    server.stop().unwrap();
}
