//! Server settings that shape how requests are answered: the transfer cap, the port
//! range, several listen addresses; in both port modes where they differ.

mod common;

use std::fs;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::files::TempDir;
use common::in_both_port_modes;
use common::packets::{HeldPort, RawClient, ReservedPorts, error, rrq};
use common::server::{OurServer, config, config_on};
use common::wait::wait_for;
use wirekit::net::{ClientOptions, DirConfig, get_into};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{ErrorCode, Packet};

in_both_port_modes!(
    requests_beyond_the_transfer_cap_get_an_error,
    limits_hold_for_the_whole_process_whatever_the_number_of_loops,
    ipv4_and_ipv6_listeners_side_by_side,
);

fn requests_beyond_the_transfer_cap_get_an_error(ports: PortMode) {
    let root = TempDir::new("cap");
    fs::write(root.join("f"), vec![1u8; 4096]).unwrap();
    let mut config = config(ports);
    config.limits.max_transfers = 2;
    // The unanswered transfers are cut when the test ends instead of running out their retries.
    config.grace = Duration::from_millis(100);
    let server = OurServer::start(config, DirConfig::new(root.path()));
    let addr = server.addr;
    // Two transfers that we never acknowledge hold both slots.
    let a = RawClient::new(addr);
    let b = RawClient::new(addr);
    let mut tids = Vec::new();
    for c in [&a, &b] {
        let (answer, from) = c.ask(&rrq("f", &[]), addr);
        assert!(
            matches!(Packet::parse(&answer), Ok(Packet::Data { block: 1, .. })),
            "{answer:?}"
        );
        // The transfer's own port, or the request port in single-port mode.
        assert_eq!(
            from == addr,
            ports == PortMode::Single,
            "DATA 1 from {from}"
        );
        tids.push(from);
    }
    let c = RawClient::new(addr);
    let (third, from) = c.ask(&rrq("f", &[]), addr);
    match Packet::parse(&third) {
        Ok(Packet::Error { code, message }) => {
            assert_eq!(code, ErrorCode::NotDefined);
            assert!(message.to_str().unwrap().contains("busy"), "{message:?}");
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
    // A refusal leaves from a port of its own, as the transfer it did not start would
    // have, or from the request port in single-port mode.
    assert_eq!(from == addr, ports == PortMode::Single, "ERROR from {from}");
    assert_eq!(from.ip(), addr.ip());

    // The first client gives up its transfer: its slot is free again.
    a.send(&error("enough"), tids[0]);
    server.wait_for_reports(1, Duration::from_secs(5));
    let (answer, _) = c.ask(&rrq("f", &[]), addr);
    assert!(
        matches!(Packet::parse(&answer), Ok(Packet::Data { block: 1, .. })),
        "{answer:?}"
    );
    b.send(&error("enough"), tids[1]);
}

/// What a request from a fresh port of `ip` is answered with: a transfer started (its DATA
/// 1; the transfer stays, held until it is reclaimed) or an ERROR, whose message is
/// returned.
fn answer_from(ip: std::net::IpAddr, addr: SocketAddr) -> Result<(), String> {
    let c = RawClient::on(ip);
    let (answer, from) = c.ask(&rrq("f", &[]), addr);
    match Packet::parse(&answer) {
        Ok(Packet::Data { block: 1, .. }) => Ok(()),
        Ok(Packet::Error { message, .. }) => Err(message.to_string()),
        other => panic!("{other:?} from {from}"),
    }
}

/// Eight event loops share the port; the kernel hands each request to one of them by its
/// source. The limits still count every loop's transfers: one address holds
/// `max_per_address`, the server `max_transfers`, and a request is refused only when the
/// whole server is full.
fn limits_hold_for_the_whole_process_whatever_the_number_of_loops(ports: PortMode) {
    let root = TempDir::new("loops");
    fs::write(root.join("f"), vec![1u8; 4096]).unwrap();
    let mut config = config(ports);
    config.threads = 8;
    config.limits.max_per_address = 3;
    config.limits.max_transfers = 12;
    config.grace = Duration::from_millis(100);
    let server = OurServer::start(config, DirConfig::new(root.path()));
    let addr = server.addr;
    let one = common::packets::client_ip(1);
    // Clients of one address: three are served, whatever loop took them, the rest refused.
    let answers: Vec<_> = (0..12).map(|_| answer_from(one, addr)).collect();
    let served = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(served, 3, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter_map(|a| a.as_ref().err())
            .all(|m| m.contains("your address")),
        "{answers:?}"
    );
    // Nine more addresses fill the server exactly: none is refused before it is full.
    for i in 2..11 {
        let ip = common::packets::client_ip(i);
        assert_eq!(answer_from(ip, addr), Ok(()), "client {i} of 12");
    }
    let full = answer_from(common::packets::client_ip(11), addr);
    assert!(full.as_ref().is_err_and(|m| m.contains("busy")), "{full:?}");
}

/// A port range reserved below the kernel's ephemeral range (see [`ReservedPorts`]).
#[test]
fn transfer_ports_come_from_the_configured_range() {
    let root = TempDir::new("range");
    fs::write(root.join("f"), b"x").unwrap();
    let mut config = config(PortMode::PerTransfer);
    let range = ReservedPorts::new(21).release();
    config.port_range = Some(range.clone());
    config.grace = Duration::from_millis(100);
    let server = OurServer::start(config, DirConfig::new(root.path()));
    for _ in 0..5 {
        let client = RawClient::new(server.addr);
        let (answer, from) = client.ask(&rrq("f", &[]), server.addr);
        assert_eq!(
            Packet::parse(&answer).unwrap(),
            Packet::Data {
                block: 1,
                data: b"x"
            }
        );
        assert!(range.contains(&from.port()), "{from} outside {range:?}");
        client.send(&common::packets::ack(1), from);
    }
    server.wait_for_reports(5, Duration::from_secs(5));
}

/// Every port of the range taken by running transfers: the next request is refused with
/// ERROR 0 from the request port (there is no transfer port to send it from), and its
/// transfer ends; once a port is free again, requests are served from it.
#[test]
fn a_full_port_range_refuses_from_the_request_port() {
    let root = TempDir::new("range-full");
    fs::write(root.join("f"), vec![3u8; 2000]).unwrap();
    // Both ports must be the server's: should a program bind one of them between their
    // release and the server's bind (see [`ReservedPorts`]), a holder is refused instead of
    // served, and the setup starts over with another range, a bounded number of times.
    let (server, holders) = (0..5)
        .find_map(|_| {
            let mut config = config(PortMode::PerTransfer);
            let range = ReservedPorts::new(2).release();
            config.port_range = Some(range.clone());
            config.grace = Duration::from_millis(100);
            let server = OurServer::start(config, DirConfig::new(root.path()));
            let addr = server.addr;
            let mut holders: Vec<(RawClient, SocketAddr)> = Vec::new();
            for _ in 0..2 {
                let c = RawClient::new(addr);
                let (answer, from) = c.ask(&rrq("f", &[]), addr);
                match Packet::parse(&answer) {
                    Ok(Packet::Data { block: 1, .. }) => {}
                    Ok(Packet::Error { message, .. })
                        if message.to_str().unwrap().contains("no transfer port") =>
                    {
                        eprintln!("a port of {range:?} was taken meanwhile: another range");
                        return None;
                    }
                    other => panic!("{other:?}"),
                }
                assert!(range.contains(&from.port()), "{from} outside {range:?}");
                holders.push((c, from));
            }
            Some((server, holders))
        })
        .expect("no range of 2 ports stayed free in 5 tries");
    let addr = server.addr;
    let c = RawClient::new(addr);
    let (answer, from) = c.ask(&rrq("f", &[]), addr);
    match Packet::parse(&answer) {
        Ok(Packet::Error { code, message }) => {
            assert_eq!(code, ErrorCode::NotDefined);
            assert!(
                message.to_str().unwrap().contains("no transfer port"),
                "{message:?}"
            );
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
    assert_eq!(from, addr, "the refusal came from {from}");
    server.wait_for_reports(1, Duration::from_secs(5));
    // A holder gives up: its port serves the next request.
    holders[0].0.send(&error("enough"), holders[0].1);
    server.wait_for_reports(2, Duration::from_secs(5));
    let (answer, from) = c.ask(&rrq("f", &[]), addr);
    assert!(
        matches!(Packet::parse(&answer), Ok(Packet::Data { block: 1, .. })),
        "{answer:?}"
    );
    assert_eq!(from.port(), holders[0].1.port());
    c.send(&error("enough"), from);
    holders[1].0.send(&error("enough"), holders[1].1);
}

/// The server on 127.0.0.1 and [::1] at once, on the same port: it works because the IPv6
/// socket is IPv6-only. The port comes from the kernel (port 0 of 127.0.0.1); should
/// another socket hold it on [::1], the test asks again.
fn ipv4_and_ipv6_listeners_side_by_side(ports: PortMode) {
    if UdpSocket::bind("[::1]:0").is_err() {
        println!("skipping: no IPv6 loopback here");
        return;
    }
    let root = TempDir::new("dual");
    let data = vec![9u8; 3000];
    fs::write(root.join("f"), &data).unwrap();
    let server = (0..10)
        .find_map(|_| {
            let port = HeldPort::new().release();
            let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
            let mut config = config_on(v4, ports);
            config.listen.push(v6);
            config.grace = Duration::from_millis(100);
            match OurServer::try_start(config, DirConfig::new(root.path())) {
                Ok(server) => Some(server),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => None,
                Err(e) => panic!("bind {v4} and {v6}: {e}"),
            }
        })
        .expect("no port free on both 127.0.0.1 and [::1] in 10 tries");
    let addrs = server.addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_eq!(addrs[0].port(), addrs[1].port());
    for addr in addrs {
        let mut got = Vec::new();
        get_into(
            addr,
            "f",
            &mut got,
            &ClientOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(got, data, "via {addr}");
        let client = RawClient::new(addr);
        let (_, from) = client.ask(&rrq("f", &[]), addr);
        assert_eq!(
            from.ip(),
            addr.ip(),
            "answered from the request's address family and address"
        );
        assert_eq!(
            from == addr,
            ports == PortMode::Single,
            "DATA 1 from {from}"
        );
        client.send(&error("enough"), from);
    }
    let n = server.reports().len();
    wait_for(
        Duration::from_secs(5),
        || server.reports().len() >= 4,
        || format!("{n} of 4 transfers ended"),
    );
}

/// A second server on a port a server of the same user holds fails to start, as it would
/// beside any other program, though each server's loops share their port
/// (`SO_REUSEPORT`): joining would hand it half of the first one's clients.
#[test]
fn a_port_in_use_by_another_server_is_refused() {
    let root = TempDir::new("port-in-use");
    let mut first = config(PortMode::PerTransfer);
    first.threads = 2;
    let server = OurServer::start(first, DirConfig::new(root.path()));
    let mut second = config(PortMode::PerTransfer);
    second.threads = 2;
    second.listen = vec![server.addr];
    let e = OurServer::try_start(second, DirConfig::new(root.path()))
        .err()
        .expect("the port is taken");
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
    assert!(e.to_string().contains(&server.addr.to_string()), "{e}");
}

/// Two servers started at the same instant on one port: exactly one gets it, every time.
/// (Each checks that the port is free before its loops join it together; without a lock
/// around check and bind, both could pass the check and share the port.)
#[test]
fn two_servers_started_at_once_on_one_port_never_both_get_it() {
    let root = TempDir::new("port-race");
    for round in 0..40 {
        // The port is held until both servers are about to bind it; a program that takes
        // it in that moment makes both fail, and the round is tried again.
        let held = HeldPort::new();
        let port = held.port();
        let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        let barrier = std::sync::Barrier::new(3);
        let started: Vec<io::Result<wirekit::net::Server>> = std::thread::scope(|s| {
            let tries: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut c = config(PortMode::PerTransfer);
                        c.threads = 4;
                        c.listen = vec![listen];
                        barrier.wait();
                        wirekit::net::Server::bind(c, DirConfig::new(root.path()))
                    })
                })
                .collect();
            held.release();
            barrier.wait();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let won = started.iter().filter(|s| s.is_ok()).count();
        // A port another program took meanwhile makes both fail: try another.
        if won == 0 {
            continue;
        }
        assert_eq!(won, 1, "round {round}: both servers got port {port}");
        let lost = started.into_iter().find_map(Result::err).unwrap();
        assert_eq!(lost.kind(), io::ErrorKind::AddrInUse, "{lost}");
    }
}
