//! The server endpoint's own rules, one named test each, on the virtual clock: the upload
//! commit step, repeated requests, single-port routing, the limits and the reclaiming of
//! transfers whose client never answers, refusals, the reports, and the size rules of
//! uploads (tsize and the policy's limit). Driven through the
//! `sim::ServerSide` adapter (the test plays every client by hand).

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::{
    AllowAll, Datagram, ServerSide, SimFile, ack, client_addr, data, error_code, ms, rule_limits,
    server_addr, wrq,
};
use wirekit::tftp::server::{Limits, PortMode};
use wirekit::tftp::{
    Blksize, ClientRequest, Config, Direction, ErrorCode, Instant, Mode, Options, Packet, Request,
    StorageError, Text, Timeout, Transfer, TransferError, TransferEvent, Windowsize,
};

const T0: Instant = Instant::ZERO;

fn secs(n: u64) -> Instant {
    Instant::from_secs(n)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Fast retransmission so that give-ups come early: 1 s doubling to 4 s, 4 retries.
fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

#[derive(Default, Clone, Copy)]
struct Ask {
    blksize: Option<u64>,
    windowsize: Option<u64>,
    timeout: Option<u64>,
}

fn request(direction: Direction, name: &str, ask: Ask) -> Vec<u8> {
    let r = Request {
        filename: Text::from(name),
        mode: Mode::Octet,
        options: {
            let mut options = Options::default();
            options.blksize = ask.blksize.map(Blksize::new);
            options.windowsize = ask.windowsize.map(Windowsize::new);
            options.timeout = ask.timeout.map(Timeout::new);
            options
        },
    };
    match direction {
        Direction::Read => Packet::Rrq(r),
        Direction::Write => Packet::Wrq(r),
    }
    .to_vec()
    .unwrap()
}

fn rrq(name: &str) -> Vec<u8> {
    request(Direction::Read, name, Ask::default())
}

fn is_data(bytes: &[u8], block: u16) -> bool {
    matches!(Packet::parse(bytes), Ok(Packet::Data { block: b, .. }) if b == block)
}

#[test]
fn upload_final_ack_waits_for_the_commit_and_a_failed_commit_sends_its_error() {
    let mut s = ServerSide::new(AllowAll::default(), rule_limits(), PortMode::PerTransfer);
    s.auto_commit = false;
    let ask = Ask {
        blksize: Some(8),
        ..Ask::default()
    };
    s.request(T0, client_addr(), &request(Direction::Write, "up", ask));
    assert_eq!(s.drain(T0).len(), 1, "the OACK");
    s.feed(ms(1), client_addr(), &data(1, b"12345678"));
    assert_eq!(s.drain(ms(1)), [(client_addr(), ack(1))]);
    // The last block is stored, but the client hears nothing until the commit is done.
    s.feed(ms(2), client_addr(), &data(2, b"abc"));
    assert!(s.drain(ms(2)).is_empty(), "no final ACK before the commit");
    assert!(s.take_ended().is_empty(), "not ended before the commit");
    let (id, mut storage) = s.commits.pop().expect("the upload is handed out to commit");
    assert_eq!(storage.data(), b"12345678abc");
    assert_eq!(storage.commits(), 0);
    // No timer runs while the application commits, and a repeated final DATA is not
    // acknowledged early.
    assert_eq!(s.poll_timeout(), None);
    s.feed(ms(500), client_addr(), &data(2, b"abc"));
    assert!(s.drain(ms(500)).is_empty());
    wirekit::tftp::Storage::commit(&mut storage).unwrap();
    s.committed(ms(600), id, Ok(()));
    assert_eq!(s.drain(ms(600)), [(client_addr(), ack(2))]);
    let ended = s.take_ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1.result, Ok(()));
    assert_eq!(ended[0].1.stats.bytes, 11);
    assert!(!s.is_empty(), "dallying after the final ACK");

    // A failed commit: the client gets the error's ERROR instead of the final ACK.
    let mut s = ServerSide::new(AllowAll::default(), rule_limits(), PortMode::PerTransfer);
    s.auto_commit = false;
    s.request(
        T0,
        client_addr(),
        &request(Direction::Write, "up", Ask::default()),
    );
    assert_eq!(s.drain(T0), [(client_addr(), ack(0))]);
    s.feed(ms(1), client_addr(), &data(1, b"x"));
    assert!(s.drain(ms(1)).is_empty());
    let (id, _) = s.commits.pop().expect("commit asked");
    let full = StorageError::new(ErrorCode::DiskFull, "disk full");
    s.committed(ms(2), id, Err(full.clone()));
    let out = s.drain(ms(2));
    assert_eq!(out.len(), 1, "the ERROR only, no ACK: {out:?}");
    assert_eq!(
        Packet::parse(&out[0].1).unwrap(),
        Packet::Error {
            code: ErrorCode::DiskFull,
            message: Text::from("disk full")
        }
    );
    let ended = s.take_ended();
    assert_eq!(ended.len(), 1);
    let report = &ended[0].1;
    assert_eq!(report.result, Err(TransferError::Storage(full)));
    assert!(report.to_string().contains("failed"), "{report}");
    assert!(s.is_empty(), "a failed upload does not dally");
}

#[test]
fn uploads_are_flushed_when_told_and_a_failed_flush_sends_its_error() {
    let mut s = ServerSide::new(AllowAll::default(), rule_limits(), PortMode::PerTransfer);
    let ask = Ask {
        blksize: Some(8),
        ..Ask::default()
    };
    s.request(T0, client_addr(), &request(Direction::Write, "up", ask));
    s.drain(T0);
    let upload = s.policy().uploads[0].file.clone();
    assert!(!s.flush_storage(T0));
    assert_eq!(upload.flushes(), 0, "nothing received, nothing to flush");
    s.feed(ms(1), client_addr(), &data(1, b"12345678"));
    assert_eq!(s.drain(ms(1)), [(client_addr(), ack(1))]);
    assert!(!s.flush_storage(ms(1)));
    assert!(!s.flush_storage(ms(1)));
    assert_eq!(upload.flushes(), 1, "once per batch of datagrams received");

    let full = StorageError::new(ErrorCode::DiskFull, "disk full");
    upload.fail_flushes_with(full.clone());
    s.feed(ms(2), client_addr(), &data(2, b"abcdefgh"));
    assert_eq!(s.drain(ms(2)), [(client_addr(), ack(2))]);
    assert!(s.flush_storage(ms(2)), "the failed flush ended the upload");
    let out = s.drain(ms(2));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(error_code(&out[0].1), ErrorCode::DiskFull);
    let ended = s.take_ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1.result, Err(TransferError::Storage(full)));
    assert!(s.is_empty(), "a failed upload does not dally");
}

#[test]
fn a_repeated_request_starts_no_second_transfer_until_the_client_answered() {
    for ports in [PortMode::PerTransfer, PortMode::Single] {
        let mut s = ServerSide::new(AllowAll::serving(file(2000)), rule_limits(), ports);
        let rq = rrq("f");
        s.request(T0, client_addr(), &rq);
        let first = s.drain_sent(T0);
        assert_eq!(first.len(), 1);
        assert!(is_data(&first[0].bytes, 1));
        // The client repeats its request (our DATA 1 is late): the transfer it has already
        // answers on its own timer, nothing new starts and nothing extra goes out.
        s.request(ms(300), client_addr(), &rq);
        assert_eq!((s.len(), s.started.len()), (1, 1), "{ports:?}");
        assert!(s.drain(ms(300)).is_empty(), "{ports:?}");
        assert!(s.refused.is_empty());
        // Its timer resends DATA 1 once.
        s.handle_timeout(secs(1));
        assert_eq!(s.drain_sent(secs(1)), first, "{ports:?}");
        // The client answers.
        s.feed(ms(1100), client_addr(), &ack(1));
        assert!(is_data(&s.drain(ms(1100))[0].1, 2));
        // The same request again from the same port.
        s.request(ms(1200), client_addr(), &rq);
        match ports {
            PortMode::Single => {
                // The client's one transfer runs: a repeat, ignored.
                assert_eq!((s.len(), s.started.len()), (1, 1));
                assert!(s.drain(ms(1200)).is_empty());
            }
            _ => {
                // The client wants the file again (tftp-hpa's client reuses its port): a
                // new transfer on a port of its own, and the old one goes on.
                assert_eq!((s.len(), s.started.len()), (2, 2));
                let out = s.drain_sent(ms(1200));
                assert_eq!(out.len(), 1);
                assert!(is_data(&out[0].bytes, 1));
                let old_port = s.transfers[&s.started[0]].port.unwrap();
                assert_ne!(out[0].from, old_port);
                s.handle(ms(1300), client_addr(), old_port, &ack(2));
                let out = s.drain_sent(ms(1300));
                assert_eq!(out.len(), 1);
                assert_eq!(out[0].from, old_port);
                assert!(is_data(&out[0].bytes, 3));
            }
        }
    }
}

#[test]
fn single_port_routes_by_address_and_port_and_a_new_request_abandons_the_old() {
    let policy = AllowAll::serving(file(2000)).with_file("other", SimFile::new(b"other".to_vec()));
    let mut s = ServerSide::new(policy, rule_limits(), PortMode::Single);
    let from_listener = |out: &[Datagram]| out.iter().all(|d| d.from == server_addr());
    s.request(T0, client_addr(), &rrq("f"));
    let out = s.drain_sent(T0);
    assert!(from_listener(&out) && out.len() == 1 && is_data(&out[0].bytes, 1));
    // The client's ACK arrives on the request port and reaches its transfer.
    s.request(ms(1), client_addr(), &ack(1));
    let out = s.drain_sent(ms(1));
    assert!(from_listener(&out) && out.len() == 1 && is_data(&out[0].bytes, 2));
    // Another port of the same address has no transfer: it gets nothing at all, not even
    // an ERROR 5 (the request port must not reflect traffic), and the transfer is untouched.
    let other_port = addr("10.0.0.1:5001");
    for junk in [ack(2), data(1, b"x"), b"junk".to_vec()] {
        s.request(ms(2), other_port, &junk);
        assert!(s.drain(ms(2)).is_empty());
    }
    s.request(ms(3), client_addr(), &ack(2));
    assert!(is_data(&s.drain(ms(3))[0].1, 3));
    assert!(s.take_ended().is_empty());
    // A different request from the same address and port: the client gave the old
    // transfer up. It ends (Abandoned) without a word, and the new one starts.
    s.request(ms(4), client_addr(), &rrq("other"));
    let ended = s.take_ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0, s.started[0]);
    assert_eq!(ended[0].1.result, Err(TransferError::Abandoned));
    assert_eq!(ended[0].1.stats.bytes, 3 * 512, "its stats up to then");
    assert_eq!((s.len(), s.started.len()), (1, 2));
    assert_eq!(
        s.drain_sent(ms(4)),
        [Datagram {
            from: server_addr(),
            to: client_addr(),
            bytes: data(1, b"other"),
        }]
    );
    // The client's datagrams now reach the new transfer.
    s.request(ms(5), client_addr(), &ack(1));
    let ended = s.take_ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0, s.started[1]);
    assert_eq!(ended[0].1.result, Ok(()));
    assert_eq!(ended[0].1.stats.bytes, 5);
    assert!(s.is_empty());
}

#[test]
fn max_transfers_refuses_with_error_0() {
    let mut lim = rule_limits();
    lim.max_transfers = 2;
    let mut s = ServerSide::new(AllowAll::serving(file(100)), lim, PortMode::PerTransfer);
    let clients = [
        addr("10.0.0.1:5000"),
        addr("10.0.0.2:5000"),
        addr("10.0.0.3:5000"),
    ];
    for c in clients {
        s.request(T0, c, &rrq("f"));
    }
    assert_eq!(s.len(), 2);
    assert_eq!(s.refused.len(), 1);
    let (peer, filename, refusal) = &s.refused[0];
    assert_eq!((*peer, filename.as_deref()), (clients[2], Some("f")));
    assert_eq!(refusal.code, ErrorCode::NotDefined);
    let out = s.drain_sent(T0);
    assert_eq!(out.len(), 3);
    let refusal = out.iter().find(|d| d.to == clients[2]).unwrap();
    assert_eq!(error_code(&refusal.bytes), ErrorCode::NotDefined);
    assert_ne!(refusal.from, server_addr(), "from a port of its own");
    // A transfer that ends frees its place.
    let port = s.transfers[&s.started[0]].port.unwrap();
    s.handle(ms(1), clients[0], port, &ack(1));
    assert_eq!(s.len(), 1);
    s.request(ms(2), clients[2], &rrq("f"));
    assert_eq!((s.len(), s.refused.len()), (2, 1));
}

#[test]
fn max_unanswered_per_address_ignores_that_address_while_others_are_served() {
    let mut lim = rule_limits();
    lim.max_unanswered_per_address = 2;
    let mut s = ServerSide::new(AllowAll::serving(file(2000)), lim, PortMode::PerTransfer);
    s.request(T0, addr("10.0.0.1:5000"), &rrq("f"));
    s.request(T0, addr("10.0.0.1:5001"), &rrq("f"));
    s.request(T0, addr("10.0.0.1:5002"), &rrq("f"));
    assert_eq!((s.len(), s.ignored.len()), (2, 1));
    assert_eq!(s.ignored[0], addr("10.0.0.1:5002"));
    // Another address is served.
    s.request(T0, addr("10.0.0.3:5000"), &rrq("f"));
    assert_eq!((s.len(), s.ignored.len()), (3, 1));
    let out = s.drain_sent(T0);
    assert_eq!(
        out.len(),
        3,
        "three DATA 1, and no answer to the request over the cap"
    );
    assert!(out.iter().all(|d| d.to != addr("10.0.0.1:5002")));
    // A datagram that is not the answer the transfer waits for lifts nothing: junk, an
    // ACK of a block never sent, a DATA to a download.
    let port = s.transfers[&s.started[0]].port.unwrap();
    for junk in [&b"\0\x09junk"[..], &ack(7), &data(1, b"x")] {
        s.handle(ms(1), addr("10.0.0.1:5000"), port, junk);
    }
    s.request(ms(1), addr("10.0.0.1:5003"), &rrq("f"));
    assert_eq!((s.len(), s.ignored.len()), (3, 2), "still two unanswered");
    // Once a client of the first address answers, that address may start another.
    s.handle(ms(1), addr("10.0.0.1:5000"), port, &ack(1));
    s.request(ms(2), addr("10.0.0.1:5003"), &rrq("f"));
    assert_eq!((s.len(), s.ignored.len()), (4, 2));
    s.request(ms(2), addr("10.0.0.1:5004"), &rrq("f"));
    assert_eq!((s.len(), s.ignored.len()), (4, 3));
    assert!(
        s.refused.is_empty(),
        "over the cap is silence, never an ERROR"
    );
}

#[test]
fn max_per_address_counts_answered_transfers_too() {
    let mut lim = rule_limits();
    lim.max_per_address = 2;
    let mut s = ServerSide::new(AllowAll::serving(file(2000)), lim, PortMode::PerTransfer);
    for (i, port) in [5000, 5001].into_iter().enumerate() {
        let c = SocketAddr::new(client_addr().ip(), port);
        s.request(T0, c, &rrq("f"));
        s.drain(T0);
        let p = s.transfers[&s.started[i]].port.unwrap();
        s.handle(ms(1), c, p, &ack(1));
    }
    s.request(ms(2), addr("10.0.0.1:5002"), &rrq("f"));
    assert_eq!((s.len(), s.refused.len()), (2, 1));
    assert!(s.refused[0].2.message.contains("your address"));
}

#[test]
fn an_unanswered_transfer_is_dropped_at_unanswered_timeout_whatever_timeout_it_asked() {
    // The defaults: unanswered_timeout 10 s, max_timeout 10 s, retransmission after 1 s
    // doubling to 8 s.
    let mut lim = Limits::default();
    lim.max_unanswered_per_address = 2;
    assert_eq!(lim.unanswered_timeout, Duration::from_secs(10));
    let mut s = ServerSide::new(AllowAll::serving(file(5000)), lim, PortMode::PerTransfer);
    let (a, b, c) = (
        addr("10.0.0.1:5000"),
        addr("10.0.0.1:5001"),
        addr("10.0.0.1:5002"),
    );
    let ask = |timeout| Ask {
        blksize: Some(1024),
        timeout: Some(timeout),
        ..Ask::default()
    };
    s.request(T0, a, &request(Direction::Read, "f", ask(10)));
    s.request(T0, b, &request(Direction::Read, "f", ask(255)));
    s.request(T0, c, &rrq("f"));
    assert_eq!(
        (s.len(), s.ignored.len()),
        (2, 1),
        "two unanswered per address"
    );
    let mut sent: Vec<(Instant, Datagram)> = s
        .drain_sent(T0)
        .into_iter()
        .filter(|d| d.to != c)
        .map(|d| (T0, d))
        .collect();
    let oack = |d: &Datagram| match Packet::parse(&d.bytes).unwrap() {
        Packet::Oack(o) => (o.blksize, o.timeout),
        p => panic!("not an OACK: {p:?}"),
    };
    let (to_a, to_b): (Vec<_>, Vec<_>) = sent.iter().partition(|(_, d)| d.to == a);
    assert_eq!(
        oack(&to_a[0].1),
        (Some(Blksize::new(1024)), Some(Timeout::new(10)))
    );
    assert_eq!(
        oack(&to_b[0].1),
        (Some(Blksize::new(1024)), None),
        "255 is above max_timeout: left out"
    );
    // Nobody answers. Run the clock.
    while let Some(d) = s.poll_timeout() {
        s.handle_timeout(d);
        sent.extend(s.drain_sent(d).into_iter().map(|x| (d, x)));
    }
    let times = |peer| -> Vec<Instant> {
        sent.iter()
            .filter(|(_, d)| d.to == peer)
            .map(|(t, _)| *t)
            .collect()
    };
    // `timeout 10` would retransmit at 10 s: the transfer is gone by then.
    assert_eq!(times(a), [T0]);
    // The default timer retransmits at 1, 3 and 7 s; the next, at 15 s, never comes.
    assert_eq!(times(b), [T0, secs(1), secs(3), secs(7)]);
    let ended = s.take_ended();
    assert_eq!(ended.len(), 2);
    for (_, report) in &ended {
        assert_eq!(report.result, Err(TransferError::Unanswered), "{report}");
        assert_eq!(report.stats.duration, Duration::from_secs(10));
    }
    let retransmissions: Vec<u64> = ended.iter().map(|(_, r)| r.stats.retransmissions).collect();
    assert_eq!(retransmissions, [0, 3]);
    assert!(s.is_empty());
    assert_eq!(s.poll_timeout(), None);
    // The address's count is free again.
    s.request(secs(11), c, &rrq("f"));
    s.request(secs(11), addr("10.0.0.1:5003"), &rrq("f"));
    assert_eq!((s.len(), s.ignored.len()), (2, 1));
}

#[test]
fn one_port_sending_1000_requests_cannot_crowd_out_a_normal_client() {
    for ports in [PortMode::PerTransfer, PortMode::Single] {
        hog(ports);
    }
}

/// A hog at one address and port sends 1000 RRQs for different files asking `timeout
/// 255`, one every 20 ms, and never answers; a normal client at another address reads a
/// file meanwhile. Datagrams arrive at once.
fn hog(ports: PortMode) {
    let lim = Limits::default();
    let hog = addr("10.6.6.6:666");
    let normal = addr("10.0.0.1:5000");
    let wanted = file(100_000);
    let policy = AllowAll::serving(file(3000)).with_file("wanted", SimFile::new(wanted.clone()));
    let mut s = ServerSide::new(policy, lim, ports);
    let mut req = ClientRequest::new(Direction::Read, "wanted");
    req.blksize = Some(Blksize::new(512).unwrap());
    req.windowsize = Some(Windowsize::new(8).unwrap());
    let client_start = secs(5);
    let mut client =
        Transfer::client(client_start, server_addr(), &req, Config::default()).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0; 65536];
    let hog_at = |i: u64| ms(20 * i);
    let mut next_hog = 0u64;
    let mut now = T0;
    let cap = match ports {
        PortMode::Single => 2,
        _ => lim.max_unanswered_per_address + 1,
    };
    let mut most = 0;
    loop {
        if next_hog < 1000 && hog_at(next_hog) <= now {
            let ask = Ask {
                timeout: Some(255),
                ..Ask::default()
            };
            s.request(
                now,
                hog,
                &request(Direction::Read, &format!("hog-{next_hog}"), ask),
            );
            next_hog += 1;
        }
        if now >= client_start {
            loop {
                let mut moved = false;
                while let Some(d) = s.poll_transmit(now) {
                    if d.to == normal {
                        client.handle_datagram(now, d.from, d.bytes, &mut got);
                        moved = true;
                    }
                }
                while let Some(t) = client.poll_transmit(now, &mut got, &mut buf) {
                    s.handle(now, normal, t.destination, &buf[..t.len]);
                    moved = true;
                }
                if !moved {
                    break;
                }
            }
        } else {
            // Only the hog is there, and it never answers.
            s.drain(now);
        }
        most = most.max(s.len());
        assert!(s.len() <= cap, "{ports:?}: {} transfers", s.len());
        if next_hog == 1000 && client.is_closed() && s.is_empty() {
            break;
        }
        let next = [
            (next_hog < 1000).then(|| hog_at(next_hog)),
            (now < client_start).then_some(client_start),
            client.poll_timeout().filter(|_| now >= client_start),
            s.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("something is due");
        now = now.max(next);
        client.handle_timeout(now);
        s.handle_timeout(now);
    }
    // The normal client got its file.
    let mut result = None;
    while let Some(e) = client.poll_event() {
        if let TransferEvent::Finished { result: r, .. } = e {
            result = Some(r);
        }
    }
    assert_eq!(result, Some(Ok(())), "{ports:?}");
    assert!(got == wanted, "{ports:?}: the file arrived intact");
    // Every hog transfer went within `unanswered_timeout` of its start.
    let hogs: Vec<_> = s
        .started
        .iter()
        .map(|id| &s.transfers[id])
        .filter(|r| r.info.peer == hog)
        .collect();
    assert!(
        hogs.len() > cap,
        "{ports:?}: the hog got some in ({})",
        hogs.len()
    );
    for (i, r) in hogs.iter().enumerate() {
        let (at, report) = r.ended.as_ref().expect("ended");
        assert!(
            *at - r.started_at <= lim.unanswered_timeout,
            "{ports:?}: {report}"
        );
        let want = match ports {
            // Each new request from the port replaces the one before.
            PortMode::Single if i + 1 < hogs.len() => TransferError::Abandoned,
            _ => TransferError::Unanswered,
        };
        assert_eq!(report.result, Err(want), "{ports:?}");
        assert!(r.closed);
    }
    if ports == PortMode::PerTransfer {
        // (The normal client's transfer, with no network delay, starts and ends within
        // one step of the clock, so it is not counted here.)
        assert_eq!(most, lim.max_unanswered_per_address, "the hog held its cap");
        assert!(
            s.refused.is_empty(),
            "the hog's requests over its cap are not answered"
        );
        assert!(s.ignored.iter().all(|p| *p == hog));
    }
}

#[test]
fn ended_reports_carry_true_stats_on_failure() {
    // A read whose client goes silent after two blocks.
    let ask = Ask {
        blksize: Some(8),
        windowsize: Some(1),
        ..Ask::default()
    };
    let mut s = ServerSide::new(
        AllowAll::serving(file(100)),
        rule_limits(),
        PortMode::PerTransfer,
    );
    s.request(T0, client_addr(), &request(Direction::Read, "f", ask));
    s.drain(T0);
    for block in 0..=2 {
        s.feed(ms(1 + u64::from(block)), client_addr(), &ack(block));
        s.drain(ms(1 + u64::from(block)));
    }
    while let Some(d) = s.poll_timeout() {
        s.handle_timeout(d);
        s.drain(d);
    }
    let ended = s.take_ended();
    let report = &ended[0].1;
    assert_eq!(report.result, Err(TransferError::Timeout { retries: 4 }));
    assert_eq!(report.stats.bytes, 24, "blocks 1 to 3 sent");
    assert_eq!(report.stats.blocks, 2, "blocks 1 and 2 delivered");
    // Round trips of 1 ms were measured: the first retransmissions come after tens of
    // milliseconds and do not count against the 4 retries, which then run as before.
    assert!(report.stats.retransmissions > 4);
    assert!(report.stats.duration >= Duration::from_secs(1 + 2 + 4 + 4 + 4));
    assert!(report.to_string().contains("24 bytes"), "{report}");

    // A write whose client goes silent after two blocks.
    let mut s = ServerSide::new(AllowAll::default(), rule_limits(), PortMode::PerTransfer);
    s.request(T0, client_addr(), &request(Direction::Write, "up", ask));
    s.drain(T0);
    s.feed(ms(1), client_addr(), &data(1, b"12345678"));
    s.feed(ms(2), client_addr(), &data(2, b"abcdefgh"));
    s.drain(ms(2));
    while let Some(d) = s.poll_timeout() {
        s.handle_timeout(d);
        s.drain(d);
    }
    let report = &s.take_ended()[0].1;
    assert_eq!(report.result, Err(TransferError::Timeout { retries: 4 }));
    assert_eq!((report.stats.bytes, report.stats.blocks), (16, 2));
    assert_eq!(report.stats.retransmissions, 4, "ACK 2 sent again");
    assert_eq!(s.policy().uploads[0].file.commits(), 0, "never committed");
}

#[test]
fn non_request_datagrams_on_the_listener_get_no_answer_and_a_malformed_request_gets_error_4() {
    let oack = Packet::Oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(512));
        options
    })
    .to_vec()
    .unwrap();
    let error = Packet::Error {
        code: ErrorCode::NotDefined,
        message: Text::from("x"),
    }
    .to_vec()
    .unwrap();
    let junk = [
        ack(1),
        data(1, b"x"),
        error,
        oack,
        Vec::new(),
        vec![0],
        b"\0\x09xyz".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for ports in [PortMode::PerTransfer, PortMode::Single] {
        let mut s = ServerSide::new(AllowAll::serving(file(2000)), rule_limits(), ports);
        for j in &junk {
            s.request(T0, client_addr(), j);
            assert!(s.drain(T0).is_empty(), "{ports:?}: {j:?} answered");
        }
        assert!(s.refused.is_empty() && s.is_empty() && s.poll_timeout().is_none());
        // A broken request is told why, with ERROR 4.
        for broken in [
            &b"\0\x01boot"[..],
            b"\0\x02f\0",
            b"\0\x01f\0octet\0blksize\0",
        ] {
            s.request(T0, client_addr(), broken);
            let out = s.drain_sent(T0);
            assert_eq!(out.len(), 1, "{ports:?}: {broken:?}");
            assert_eq!(error_code(&out[0].bytes), ErrorCode::IllegalOperation);
            let (_, filename, refusal) = s.refused.pop().unwrap();
            assert_eq!(filename, None);
            assert!(
                refusal.message.starts_with("malformed request"),
                "{}",
                refusal.message
            );
        }
        assert!(s.is_empty());
    }
    // In port-per-transfer mode, a running transfer's client on the request port is a
    // stranger there too: its ACK does not reach the transfer.
    let mut s = ServerSide::serving(file(2000));
    s.request(T0, client_addr(), &rrq("f"));
    s.drain(T0);
    s.request(ms(1), client_addr(), &ack(1));
    assert!(s.drain(ms(1)).is_empty());
    s.feed(ms(2), client_addr(), &ack(1));
    assert!(is_data(&s.drain(ms(2))[0].1, 2));
}

#[test]
fn close_refuses_new_requests_and_cuts_the_running_ones_when_the_grace_runs_out() {
    let mut s = ServerSide::new(
        AllowAll::serving(file(2000)),
        rule_limits(),
        PortMode::PerTransfer,
    );
    let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.3:5000"));
    s.request(T0, a, &rrq("f"));
    s.drain(T0);
    s.endpoint.close(ms(1), Duration::from_millis(100));
    assert!(s.endpoint.is_closing() && !s.endpoint.is_drained());
    // The grace's end is a deadline of the endpoint's own, before the transfer's (200 ms).
    assert_eq!(s.poll_timeout(), Some(ms(101)));
    s.request(ms(1), b, &rrq("f"));
    assert_eq!(s.len(), 1);
    let (peer, _, refusal) = s.refused.pop().expect("refused");
    assert_eq!((peer, refusal.code), (b, ErrorCode::NotDefined));
    assert_eq!(refusal.message, "server shutting down");
    s.drain(ms(1));
    // The running transfer goes on...
    s.feed(ms(2), a, &ack(1));
    assert!(is_data(&s.drain(ms(2))[0].1, 2));
    // ...and a later close cannot put the end off.
    s.endpoint.close(ms(3), Duration::from_secs(60));
    assert_eq!(s.poll_timeout(), Some(ms(101)));
    // Nothing is cut before the deadline...
    s.handle_timeout(ms(100));
    assert_eq!((s.endpoint.cut(), s.len()), (0, 1));
    // ...and at it, the client is told, and the transfer ends with that reason.
    s.handle_timeout(ms(101));
    let out = s.drain(ms(101));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, a);
    assert_eq!(error_code(&out[0].1), ErrorCode::NotDefined);
    let ended = s.take_ended();
    assert_eq!(ended.len(), 1);
    assert!(
        matches!(&ended[0].1.result, Err(TransferError::Aborted { message, .. }) if message == "server shutting down"),
        "{:?}",
        ended[0].1.result
    );
    assert_eq!(s.endpoint.cut(), 1);
    assert!(s.endpoint.is_drained());
    assert!(s.is_empty());
}

#[test]
fn close_with_no_grace_cuts_at_once_but_leaves_a_commit_to_finish() {
    let mut s = ServerSide::new(AllowAll::serving(file(10)), rule_limits(), PortMode::Single);
    let (up, down) = (addr("10.0.0.1:5000"), addr("10.0.0.2:5000"));
    s.auto_commit = false;
    s.request(T0, up, &request(Direction::Write, "up", Ask::default()));
    s.drain(T0);
    s.feed(ms(1), up, &data(1, b"short"));
    s.drain(ms(1));
    assert_eq!(s.endpoint.committing(), 1, "the upload is in its commit");
    s.request(ms(1), down, &rrq("f"));
    s.drain(ms(1));
    s.endpoint.close(ms(2), Duration::ZERO);
    s.handle_timeout(ms(2));
    let out = s.drain(ms(2));
    assert_eq!(out.len(), 1, "only the download is cut: {out:?}");
    assert_eq!(
        (out[0].0, error_code(&out[0].1)),
        (down, ErrorCode::NotDefined)
    );
    assert_eq!(s.endpoint.cut(), 1);
    assert!(!s.endpoint.is_drained(), "the commit is waited for");
    let (id, _) = s.commits.pop().expect("a commit was handed out");
    s.committed(ms(3), id, Ok(()));
    assert_eq!(
        s.drain(ms(3)),
        [(up, ack(1))],
        "the uploader hears it was stored"
    );
    assert!(s.endpoint.is_drained());
}

#[test]
fn the_next_deadline_is_a_transfers_own_after_deadlines_moved_later() {
    let mut s = ServerSide::new(
        AllowAll::serving(file(2000)),
        rule_limits(),
        PortMode::Single,
    );
    let (a, b) = (client_addr(), addr("10.0.0.2:5000"));
    let ask = Ask {
        timeout: Some(1),
        ..Ask::default()
    };
    let rq = request(Direction::Read, "f", ask);
    s.request(T0, a, &rq);
    s.request(T0, b, &rq);
    assert_eq!(s.drain(T0).len(), 2, "the OACKs");
    s.feed(T0, a, &ack(0));
    s.feed(T0, b, &ack(0));
    assert_eq!(s.drain(T0).len(), 2, "the DATA 1");
    assert_eq!(s.poll_timeout(), Some(secs(1)));
    // Each ACK moves its transfer's deadline later; the endpoint's next deadline follows
    // (single-port mode: `feed` finds each transfer by its client).
    s.feed(ms(100), a, &ack(1));
    assert_eq!(s.drain(ms(100)).len(), 1);
    assert_eq!(
        s.poll_timeout(),
        Some(secs(1)),
        "b's DATA 1 is still due at 1 s"
    );
    s.feed(ms(200), b, &ack(1));
    assert_eq!(s.drain(ms(200)).len(), 1);
    assert_eq!(s.poll_timeout(), Some(ms(1100)), "a's DATA 2 is due first");
    s.handle_timeout(ms(1100));
    let resent = s.drain(ms(1100));
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].0, a);
    assert!(is_data(&resent[0].1, 2));
    assert_eq!(s.poll_timeout(), Some(ms(1200)), "b's DATA 2");
}

// --- The size rules of uploads ---------------------------------------------------------
//
// Held by the endpoint for any policy (here the test kit's `AllowAll`, not the directory
// policy): the tsize a WRQ announced must be met exactly, and the policy's upload limit
// holds by the announce and by the bytes. The storage only stores.

/// A server whose policy answers `limit` as its upload limit.
fn upload_server(limit: Option<u64>) -> ServerSide {
    let policy = AllowAll {
        upload_limit: limit,
        ..AllowAll::default()
    };
    ServerSide::new(policy, rule_limits(), PortMode::PerTransfer)
}

/// An octet WRQ for `name` with blocks of 8 bytes, announcing `tsize` if given, and in
/// windows of `windowsize`.
fn upload_request(name: &str, tsize: Option<u64>, windowsize: u16) -> Vec<u8> {
    let (tsize, windowsize) = (tsize.map(|t| t.to_string()), windowsize.to_string());
    let mut opts = vec![("blksize", "8"), ("windowsize", windowsize.as_str())];
    if let Some(t) = &tsize {
        opts.push(("tsize", t.as_str()));
    }
    wrq(name, &opts)
}

/// The ERROR a datagram carries: its code and message.
fn error_of(bytes: &[u8]) -> (ErrorCode, String) {
    match Packet::parse(bytes).unwrap() {
        Packet::Error { code, message } => (code, message.to_string()),
        p => panic!("not an ERROR: {p:?}"),
    }
}

/// The only upload's report, once it ended: it must have ended, and never been handed out
/// for a commit unless `committed`.
fn upload_report(s: &mut ServerSide, committed: bool) -> wirekit::tftp::server::Report {
    let ended = s.take_ended();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(s.latest_record().commit_asked, committed);
    assert_eq!(s.policy().uploads[0].file.commits(), u32::from(committed));
    ended[0].1.clone()
}

#[test]
fn an_upload_sending_more_than_its_tsize_gets_error_3_and_none_of_the_excess_is_stored() {
    // The excess in a middle block of a window: nothing of it, nor of the window's later
    // blocks, is stored.
    let mut s = upload_server(None);
    s.request(T0, client_addr(), &upload_request("up", Some(10), 4));
    assert_eq!(s.drain(T0).len(), 1, "the OACK");
    s.feed(ms(1), client_addr(), &data(1, b"12345678"));
    s.feed(ms(1), client_addr(), &data(2, b"abcdefgh"));
    let out = s.drain(ms(1));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        error_of(&out[0].1),
        (
            ErrorCode::DiskFull,
            "upload size differs from its tsize: more than the 10 bytes announced".into()
        )
    );
    s.feed(ms(2), client_addr(), &data(3, b"ijklmnop"));
    s.feed(ms(2), client_addr(), &data(4, b"q"));
    assert!(s.drain(ms(2)).is_empty(), "the transfer is over");
    assert_eq!(s.policy().uploads[0].file.data(), b"12345678");
    let report = upload_report(&mut s, false);
    assert_eq!(
        report.result,
        Err(TransferError::SizeMismatch {
            announced: 10,
            received: 16
        })
    );
    assert_eq!(report.stats.bytes, 8);
    assert!(
        report
            .to_string()
            .contains("failed: the peer sent more than the 10 bytes it announced (tsize)"),
        "{report}"
    );
    assert!(s.is_empty());

    // The excess in the final block.
    let mut s = upload_server(None);
    s.request(T0, client_addr(), &upload_request("up", Some(3), 1));
    s.drain(T0);
    s.feed(ms(1), client_addr(), &data(1, b"12345"));
    let out = s.drain(ms(1));
    assert_eq!(out.len(), 1, "no ACK, the ERROR: {out:?}");
    assert_eq!(error_of(&out[0].1).0, ErrorCode::DiskFull);
    assert!(s.policy().uploads[0].file.data().is_empty());
    let report = upload_report(&mut s, false);
    assert_eq!(
        report.result,
        Err(TransferError::SizeMismatch {
            announced: 3,
            received: 5
        })
    );
}

#[test]
fn an_upload_ending_short_of_its_tsize_gets_error_0_in_place_of_the_final_ack() {
    let mut s = upload_server(None);
    s.request(T0, client_addr(), &upload_request("up", Some(20), 1));
    s.drain(T0);
    s.feed(ms(1), client_addr(), &data(1, b"12345678"));
    assert_eq!(s.drain(ms(1)), [(client_addr(), ack(1))]);
    s.feed(ms(2), client_addr(), &data(2, b"abcdefgh"));
    assert_eq!(s.drain(ms(2)), [(client_addr(), ack(2))]);
    s.feed(ms(3), client_addr(), &data(3, b"xy"));
    let out = s.drain(ms(3));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        error_of(&out[0].1),
        (
            ErrorCode::NotDefined,
            "upload size differs from its tsize: received 18 bytes, announced 20".into()
        )
    );
    // The final block is not stored, and nothing is committed.
    assert_eq!(s.policy().uploads[0].file.data(), b"12345678abcdefgh");
    let report = upload_report(&mut s, false);
    assert_eq!(
        report.result,
        Err(TransferError::SizeMismatch {
            announced: 20,
            received: 18
        })
    );
    assert!(
        report
            .to_string()
            .contains("the transfer ended after 18 of the 20 bytes the peer announced"),
        "{report}"
    );
    assert!(s.is_empty(), "a failed upload does not dally");
}

#[test]
fn an_upload_of_exactly_its_tsize_is_committed() {
    for (tsize, blocks) in [
        (18, &[&b"12345678"[..], b"abcdefgh", b"xy"][..]),
        // A multiple of the block size: the empty final block meets the size.
        (16, &[&b"12345678"[..], b"abcdefgh", b""][..]),
        (0, &[&b""[..]][..]),
    ] {
        let mut s = upload_server(Some(18));
        s.request(T0, client_addr(), &upload_request("up", Some(tsize), 1));
        s.drain(T0);
        for (i, block) in blocks.iter().enumerate() {
            let n = i as u16 + 1;
            s.feed(ms(u64::from(n)), client_addr(), &data(n, block));
            assert_eq!(
                s.drain(ms(u64::from(n))),
                [(client_addr(), ack(n))],
                "tsize {tsize}, block {n}"
            );
        }
        assert_eq!(s.policy().uploads[0].file.len() as u64, tsize);
        let report = upload_report(&mut s, true);
        assert_eq!(report.result, Ok(()), "tsize {tsize}");
        assert_eq!(report.info.negotiated.tsize, Some(tsize));
    }
}

#[test]
fn an_upload_announcing_more_than_the_policys_limit_is_refused_before_any_storage_is_opened() {
    let mut s = upload_server(Some(100));
    s.request(T0, client_addr(), &upload_request("big", Some(101), 1));
    let out = s.drain(T0);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        error_of(&out[0].1),
        (
            ErrorCode::DiskFull,
            "upload of 101 bytes exceeds the 100-byte limit".into()
        )
    );
    assert!(s.started.is_empty(), "no transfer");
    assert!(
        s.policy().uploads.is_empty(),
        "the policy's write was not asked"
    );
    let (peer, filename, refusal) = s.refused.pop().expect("a refusal event");
    assert_eq!((peer, filename.as_deref()), (client_addr(), Some("big")));
    assert_eq!(refusal.code, ErrorCode::DiskFull);
    // Netascii too: there the announce is approximate, but over the limit all the same.
    let netascii = sim::request(2, b"text", "netascii", &[("tsize", "101")]);
    s.request(ms(1), client_addr(), &netascii);
    assert_eq!(error_of(&s.drain(ms(1))[0].1).0, ErrorCode::DiskFull);
    assert!(s.policy().uploads.is_empty());
    // At the limit, it is admitted.
    s.request(ms(2), client_addr(), &upload_request("fits", Some(100), 1));
    assert_eq!(s.started.len(), 1);
    assert_eq!(s.policy().uploads.len(), 1);
}

#[test]
fn an_upload_without_tsize_is_cut_with_error_3_at_the_block_that_passes_the_limit() {
    let mut s = upload_server(Some(20));
    s.request(T0, client_addr(), &upload_request("up", None, 4));
    s.drain(T0);
    for n in 1..=4 {
        s.feed(ms(1), client_addr(), &data(n, &[n as u8; 8]));
    }
    let out = s.drain(ms(1));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        error_of(&out[0].1),
        (
            ErrorCode::DiskFull,
            "upload exceeds the 20-byte limit".into()
        )
    );
    // Blocks 1 and 2 fit; block 3 passes the limit and is not stored, nor is block 4.
    assert_eq!(
        s.policy().uploads[0].file.data(),
        [[1u8; 8], [2; 8]].concat()
    );
    let report = upload_report(&mut s, false);
    assert_eq!(
        report.result,
        Err(TransferError::TooLarge {
            limit: 20,
            announced: None
        })
    );
    assert!(
        report
            .to_string()
            .contains("failed: the file is larger than the limit of 20 bytes"),
        "{report}"
    );

    // Up to the limit exactly, it is committed.
    let mut s = upload_server(Some(16));
    s.request(T0, client_addr(), &upload_request("up", None, 1));
    s.drain(T0);
    for (n, block) in [(1, &[1u8; 8][..]), (2, &[2; 8]), (3, &[])] {
        s.feed(ms(n.into()), client_addr(), &data(n, block));
        assert_eq!(s.drain(ms(n.into())), [(client_addr(), ack(n))]);
    }
    assert_eq!(upload_report(&mut s, true).result, Ok(()));
}

#[test]
fn a_netascii_upload_is_not_held_to_its_tsize() {
    // tsize is ill-defined in netascii (line ends change the count): only the limit holds.
    let mut s = upload_server(Some(100));
    let rq = sim::request(2, b"text", "netascii", &[("tsize", "3")]);
    s.request(T0, client_addr(), &rq);
    s.drain(T0);
    s.feed(ms(1), client_addr(), &data(1, b"a\r\nb\r\n"));
    assert_eq!(s.drain(ms(1)), [(client_addr(), ack(1))]);
    assert_eq!(s.policy().uploads[0].file.data(), b"a\nb\n");
    assert_eq!(upload_report(&mut s, true).result, Ok(()));
}
