//! The amplification bound: what a request from a silent (or spoofed) source costs, in
//! both port modes.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::files::{TempDir, random_bytes};
use common::in_both_port_modes;
use common::packets::{RawClient, ReservedPorts, ack, rrq};
use common::server::{OurServer, config_with, fast_config};
use wirekit::net::DirConfig;
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
    let server = OurServer::start(
        config_with(ports, fast_config(50, 100, retries as u32)),
        DirConfig::new(root.path()),
    );
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

/// Bytes on the wire for a UDP payload of `n` bytes over IPv4 (IP and UDP headers).
fn wire(n: usize) -> u64 {
    n as u64 + 28
}

/// An off-path attacker that forges a request from a victim's address and port, then
/// acknowledges whole windows blindly, never seeing a byte the server sends. `ports` are
/// where it sends its ACKs: every port the server may answer from, as far as it can know
/// them. Returns what reached the victim against what the attacker sent, on the wire.
fn blind_acks(
    server: SocketAddr,
    ports: &[u16],
    blksize: u16,
    windowsize: u16,
    pace: Duration,
) -> (u64, u64) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    // The victim's socket is where the forged packets seem to come from: the test sends
    // them from it, as a forger on the same path would, and counts what arrives.
    let victim = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let received = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let mut sent = 0u64;
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = vec![0u8; 70_000];
            while !done.load(Ordering::SeqCst) {
                if let Ok((n, _)) = victim.recv_from(&mut buf) {
                    received.fetch_add(wire(n), Ordering::SeqCst);
                }
            }
        });
        let (b, w) = (blksize.to_string(), windowsize.to_string());
        let req = rrq("file.bin", &[("blksize", &b), ("windowsize", &w)]);
        victim.send_to(&req, server).unwrap();
        sent += wire(req.len());
        // Paced as the server sends, without reading it: the ACK of the OACK, then the
        // last block of each window.
        let windows = (4u64 << 20).div_ceil(u64::from(blksize) * u64::from(windowsize));
        for k in 0..=windows {
            std::thread::sleep(pace);
            let block = (k * u64::from(windowsize)) as u16;
            for &port in ports {
                victim
                    .send_to(&ack(block), SocketAddr::new(server.ip(), port))
                    .unwrap();
                sent += wire(4);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        done.store(true, Ordering::SeqCst);
    });
    (received.into_inner(), sent)
}

/// Forged requests and blind ACKs: what each port mode gives an attacker that cannot see
/// the server's answers (the README's threat model quotes these factors). A port per
/// transfer hides the one number the attacker would need; a single port hands it over.
#[test]
fn blind_ack_amplification_by_port_mode() {
    let root = TempDir::new("amplify-blind");
    fs::write(root.join("file.bin"), random_bytes(4 << 20, 62)).unwrap();
    let mut factors = Vec::new();
    for (mode, range) in [
        (PortMode::Single, None),
        (PortMode::PerTransfer, Some(4u16)),
        (PortMode::PerTransfer, None),
    ] {
        let mut config = config_with(mode, fast_config(50, 100, 3));
        // Reserved below the ephemeral range, released just before the server starts.
        let reserved = range.map(|n| ReservedPorts::new(n).release());
        config.port_range = reserved.clone();
        let server = OurServer::start(config, DirConfig::new(root.path()));
        let ports: Vec<u16> = match (mode, reserved) {
            (PortMode::Single, _) => vec![server.addr.port()],
            (_, Some(range)) => range.collect(),
            // A random port of the ephemeral range: the attacker's best is the request
            // port, where the server takes nothing but requests.
            _ => vec![server.addr.port()],
        };
        for blksize in [1468, 65464] {
            // The attacker knows the server's defaults: the window it grants.
            let window = match mode {
                PortMode::Single => (65536 / u32::from(blksize)).clamp(1, 64) as u16,
                _ => 64,
            };
            let pace = Duration::from_millis(10);
            let (to_victim, from_attacker) = blind_acks(server.addr, &ports, blksize, window, pace);
            let factor = to_victim as f64 / from_attacker as f64;
            eprintln!(
                "{mode:?}, {range:?} ports, blksize {blksize}: {to_victim} bytes to the victim for {from_attacker} sent: {factor:.0}x"
            );
            factors.push(factor);
        }
        server.stop().unwrap();
    }
    // tftp-hpa with four transfer ports (`-R`), for comparison: it knows no windows, so
    // each ACK brings one block.
    match common::peers::in_tftpd_with(&root, "127.0.0.1".parse().unwrap(), &["-R", "31000:31003"])
    {
        Some((_daemon, addr)) => {
            for blksize in [1468, 65464] {
                let ports = [31000, 31001, 31002, 31003];
                let pace = Duration::from_millis(3);
                let (to_victim, from_attacker) = blind_acks(addr, &ports, blksize, 1, pace);
                let factor = to_victim as f64 / from_attacker as f64;
                eprintln!(
                    "tftp-hpa -R, 4 ports, blksize {blksize}: {to_victim} bytes to the victim for {from_attacker} sent: {factor:.0}x"
                );
            }
        }
        None => common::peers::missing("in.tftpd", "tftp-hpa's factors are not measured"),
    }
    // Single-port mode: a window of at most 64 KiB for each 32-byte ACK.
    assert!(
        factors[0] > 100.0 && factors[1] > 100.0,
        "the attack works: {factors:?}"
    );
    assert!(factors[0] < 2100.0 && factors[1] < 2100.0, "{factors:?}");
    // Random transfer ports: nothing beyond the answers to the request itself.
    assert!(factors[4] < 2.0 && factors[5] < 2.0, "{factors:?}");
}
