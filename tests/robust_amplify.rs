//! The amplification bound: what a request from a silent (or spoofed) source costs, in
//! both port modes.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::files::{TempDir, random_bytes};
use common::in_both_port_modes;
use common::packets::{RawClient, ack, rrq};
use common::server::{OurServer, config_with, fast_config};
use wirekit::tftp::Packet;
use wirekit::tftp::server::PortMode;

/// What a silent socket receives after sending `request`, until the server logs the
/// transfer's end: (DATA, other packets, packets after the end).
fn silent_victim(server: &OurServer, request: &[u8], ack0: bool) -> (u64, u64, u64) {
    let before = server.reports().len();
    let s = RawClient::new(server.addr);
    s.patience(Duration::from_millis(50));
    s.send(request, server.addr);
    let (mut data, mut other) = (0u64, 0u64);
    let mut acked = false;
    let mut count = |answer: &[u8], from: SocketAddr| {
        match Packet::parse(answer) {
            Ok(Packet::Data { .. }) => data += 1,
            Ok(Packet::Oack(_)) if ack0 && !acked => {
                acked = true;
                s.send(&ack(0), from);
            }
            _ => other += 1,
        }
        assert!(data + other < 10_000);
    };
    // Until the server reports the end, everything it sends is counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.reports().len() == before {
        assert!(Instant::now() < deadline, "the transfer never ended");
        if let Ok((answer, from)) = s.try_recv() {
            count(&answer, from);
        }
    }
    // The server sent everything before it reported the end; what is still on its way
    // through the loopback is read with a short wait (an absence cannot be waited for).
    s.patience(Duration::from_millis(300));
    while let Ok((answer, from)) = s.try_recv() {
        count(&answer, from);
    }
    // Anything after that would be a packet sent after the end.
    s.patience(Duration::from_millis(300));
    let late = u64::from(s.try_recv().is_ok());
    (data, other, late)
}

in_both_port_modes!(silent_source_amplification_is_bounded);

fn silent_source_amplification_is_bounded(ports: PortMode) {
    let root = TempDir::new("amplify");
    fs::write(root.join("file.bin"), random_bytes(1 << 20, 61)).unwrap();
    let retries = 3u64;
    let server = OurServer::start(config_with(
        &root,
        ports,
        fast_config(50, 100, retries as u32),
    ));
    let n = 8u64;
    // Plain request, never answered: DATA 1 and its retransmissions.
    let (data, other, late) = silent_victim(&server, &rrq("file.bin", &[]), false);
    eprintln!("plain RRQ: {data} DATA, {other} other");
    assert!(data <= retries + 1 && other == 0 && late == 0);
    // With options, never answered: the OACK and its retransmissions, no DATA.
    let req = rrq("file.bin", &[("blksize", "1428"), ("windowsize", "8")]);
    let (data, other, late) = silent_victim(&server, &req, false);
    eprintln!("RRQ with options: {data} DATA, {other} OACK/other");
    assert!(data == 0 && other <= retries + 1 && late == 0);
    // With options, ACK 0 and then silence: one window and its retransmissions.
    let (data, other, late) = silent_victim(&server, &req, true);
    eprintln!("RRQ windowsize {n}, ACK 0, silence: {data} DATA, {other} other");
    assert!(
        data <= (retries + 1) * n && other <= 1 && late == 0,
        "{data} DATA"
    );
    server.stop().unwrap();
}
