//! The transfer rules, one named test each, driving the machines by hand with crafted
//! datagrams: a client `Transfer` directly, the server side through its `Endpoint` (with
//! the `sim::ServerSide` adapter, which gives the one transfer its port 6000).

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::{
    AllowAll, Faults, Scenario, ServerSide, ack, client_addr, data, drain_client, rule_config,
    rule_limits, server_addr, transfer_addr,
};
use wirekit::tftp::server::{Limits, PortMode};
use wirekit::tftp::{
    Blksize, ClientRequest, Direction, ErrorCode, Instant, Mode, Negotiated, Options, Packet,
    Request, Stats, Text, Timeout, Transfer, TransferError, TransferEvent, Windowsize,
};

/// `n` milliseconds: a length (a timeout, a gap).
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` milliseconds after the epoch: a point in time.
fn at(n: u64) -> Instant {
    Instant::from_millis(n)
}

const T0: Instant = Instant::ZERO;

fn stranger() -> SocketAddr {
    "10.0.0.9:7777".parse().unwrap()
}

#[derive(Default, Clone, Copy)]
struct Ask {
    blksize: Option<u64>,
    windowsize: Option<u64>,
    timeout: Option<u64>,
    tsize: Option<u64>,
}

fn request(direction: Direction, mode: Mode, ask: Ask) -> Vec<u8> {
    let options = {
        let mut options = Options::default();
        options.blksize = ask.blksize.map(Blksize::new);
        options.windowsize = ask.windowsize.map(Windowsize::new);
        options.timeout = ask.timeout.map(Timeout::new);
        options.tsize = ask.tsize;
        options.unknown = Vec::new();
        options
    };
    let r = Request {
        filename: Text::from("f"),
        mode,
        options,
    };
    match direction {
        Direction::Read => Packet::Rrq(r),
        Direction::Write => Packet::Wrq(r),
    }
    .to_vec()
    .unwrap()
}

/// A server with one transfer, admitted from the client's `request`; every read is of
/// `file`.
fn server(direction: Direction, mode: Mode, ask: Ask, file: &[u8], lim: &Limits) -> ServerSide {
    let rq = request(direction, mode, ask);
    let mut s = ServerSide::new(
        AllowAll::serving(file.to_vec()),
        *lim,
        PortMode::PerTransfer,
    );
    s.request(T0, client_addr(), &rq);
    assert_eq!(s.len(), 1, "not accepted: {:?}", s.refused);
    s
}

fn error(code: ErrorCode) -> Vec<u8> {
    Packet::Error {
        code,
        message: Text::from("x"),
    }
    .to_vec()
    .unwrap()
}

/// Everything a client machine wants to send now.
fn drain<S: wirekit::tftp::Storage + ?Sized>(
    t: &mut Transfer,
    now: Instant,
    storage: &mut S,
) -> Vec<(SocketAddr, Vec<u8>)> {
    drain_client(t, now, storage, 100_000)
}

fn blocks(sent: &[(SocketAddr, Vec<u8>)]) -> Vec<u16> {
    sent.iter()
        .map(|(_, b)| match Packet::parse(b).unwrap() {
            Packet::Data { block, .. } => block,
            p => panic!("not DATA: {p:?}"),
        })
        .collect()
}

/// How the server's transfer ended, if it did since the last call.
fn finished(s: &mut ServerSide) -> Option<Result<Stats, TransferError>> {
    let mut ended = s.take_ended();
    assert!(ended.len() <= 1, "two Ended events: {ended:?}");
    ended
        .pop()
        .map(|(_, report)| report.result.map(|()| report.stats))
}

/// How a client transfer ended, if it did since the last call.
fn client_finished(t: &mut Transfer) -> Option<Result<Stats, TransferError>> {
    let mut r = None;
    while let Some(e) = t.poll_event() {
        if let TransferEvent::Finished { stats, result } = e {
            assert!(r.is_none(), "two Finished events");
            r = Some(result.map(|()| stats));
        }
    }
    r
}

/// What the server's one upload stored.
fn uploaded(s: &ServerSide) -> Vec<u8> {
    let uploads = &s.policy().uploads;
    assert_eq!(uploads.len(), 1);
    uploads[0].file.data()
}

fn negotiated(t: &mut Transfer) -> Option<Negotiated> {
    let mut r = None;
    while let Some(e) = t.poll_event() {
        if let TransferEvent::Negotiated(n) = e {
            r = Some(n);
        }
    }
    r
}

fn oack_options(bytes: &[u8]) -> Options<'_> {
    match Packet::parse(bytes).unwrap() {
        Packet::Oack(o) => o,
        p => panic!("not an OACK: {p:?}"),
    }
}

fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

/// A server read of `file` with an OACK already acknowledged; returns the server and the
/// first window.
fn server_read_started(
    file: &[u8],
    blksize: u64,
    windowsize: u64,
) -> (ServerSide, Vec<(SocketAddr, Vec<u8>)>) {
    let ask = Ask {
        blksize: Some(blksize),
        windowsize: Some(windowsize),
        ..Ask::default()
    };
    let mut t = server(Direction::Read, Mode::Octet, ask, file, &rule_limits());
    let oack = t.drain_sent(T0);
    assert_eq!(oack.len(), 1);
    assert_eq!(oack[0].to, client_addr());
    assert_eq!(
        oack[0].from,
        transfer_addr(),
        "from the transfer's own port"
    );
    oack_options(&oack[0].bytes);
    t.feed(at(1), client_addr(), &ack(0));
    let window = t.drain(at(1));
    (t, window)
}

#[test]
fn windowsize_sends_a_window_then_resends_after_partial_ack() {
    let f = file(8 * 20);
    let (mut t, window) = server_read_started(&f, 8, 4);
    assert_eq!(blocks(&window), [1, 2, 3, 4]);
    // Nothing more until an ACK.
    assert!(t.drain(at(2)).is_empty());
    // The receiver saw a gap after block 2: resend from 3, a whole window, but in two
    // bursts of half a window with a pause between (RFC 7440 section 6: react to loss).
    t.feed(at(3), client_addr(), &ack(2));
    let again = t.drain(at(3));
    assert_eq!(blocks(&again), [3, 4]);
    assert_eq!(
        again[0].1, window[2].1,
        "block 3 resent with the same bytes"
    );
    let pause = t.poll_timeout().unwrap();
    assert!(
        pause > at(3) && pause < at(1003),
        "a short pause, not a timeout"
    );
    t.handle_timeout(pause);
    assert_eq!(blocks(&t.drain(pause)), [5, 6]);
    // The full window is acknowledged: the next one, still in bursts.
    t.feed(at(10), client_addr(), &ack(6));
    assert_eq!(blocks(&t.drain(at(10))), [7, 8]);
}

#[test]
fn after_a_loss_bursts_stay_small_then_grow_back_to_the_window() {
    let f = file(8 * 1000);
    let (mut t, window) = server_read_started(&f, 8, 8);
    assert_eq!(blocks(&window), [1, 2, 3, 4, 5, 6, 7, 8]);
    let sent = bursts_after_a_loss(&mut t, 60);
    assert_eq!(sent[0].1, [1, 2, 3, 4], "the window resent in halves");
    let bursts: Vec<usize> = sent.iter().map(|(_, b)| b.len()).collect();
    assert_eq!(bursts[..2], [4, 4], "half a window after the loss");
    assert_eq!(*bursts.last().unwrap(), 8, "the whole window again");
}

#[test]
fn a_first_window_of_large_blocks_goes_in_bursts_with_pauses_under_a_millisecond() {
    // 16 blocks of 65464 bytes, 1 MiB: more than a receiver's default socket buffer.
    let f = file(65464 * 40);
    let (mut t, window) = server_read_started(&f, 65464, 16);
    assert_eq!(
        blocks(&window),
        [1, 2, 3],
        "a burst that fits a default buffer"
    );
    let pause = t.poll_timeout().unwrap() - at(1);
    assert!(
        !pause.is_zero() && pause < ms(1),
        "{pause:?}: a pause a fast receiver drains a burst in, not a whole millisecond"
    );
    let then = at(1) + pause;
    t.handle_timeout(then);
    assert_eq!(blocks(&t.drain(then)), [4, 5, 6]);
}

/// The blocks of a burst, and the pause before it (`None` after a timeout or an ACK).
type Burst = (Option<Duration>, Vec<u16>);

/// A server read of 8-block windows whose first window is lost: nothing comes back, the
/// timer fires, and the window goes again in bursts. Then `windows` windows are
/// acknowledged whole, each ACK 1 ms after the window's last block. Returns every burst
/// from the one the timeout sent.
fn bursts_after_a_loss(t: &mut ServerSide, windows: usize) -> Vec<Burst> {
    let mut now = t.poll_timeout().unwrap();
    t.handle_timeout(now);
    let mut bursts = vec![(None, blocks(&t.drain(now)))];
    let mut acked = 0u16;
    let highest = |bursts: &[Burst]| *bursts.last().unwrap().1.last().unwrap();
    for _ in 0..windows {
        while highest(&bursts) != acked + 8 {
            let next = t.poll_timeout().unwrap();
            assert!(
                next < at(2000),
                "a pause between bursts, not a retransmission"
            );
            let pause = next - now;
            now = next;
            t.handle_timeout(now);
            bursts.push((Some(pause), blocks(&t.drain(now))));
        }
        now += ms(1);
        acked = highest(&bursts);
        t.feed(now, client_addr(), &ack(acked));
        bursts.push((None, blocks(&t.drain(now))));
    }
    bursts
}

#[test]
fn pauses_between_bursts_shorten_while_windows_arrive_whole() {
    let f = file(8 * 4000);
    let (mut t, _) = server_read_started(&f, 8, 8);
    let pauses: Vec<Duration> = bursts_after_a_loss(&mut t, 20)
        .into_iter()
        .filter_map(|(pause, _)| pause)
        .collect();
    let (first, last) = (pauses[0], *pauses.last().unwrap());
    assert!(
        last < first / 4 && !last.is_zero(),
        "a receiver that keeps up is sent to faster: {first:?} then {last:?}"
    );
    assert!(
        pauses.windows(2).all(|p| p[1] <= p[0]),
        "no pause grows without a loss: {pauses:?}"
    );
}

#[test]
fn a_lost_window_of_single_block_bursts_doubles_the_pause() {
    let f = file(8 * 100);
    let (mut t, window) = server_read_started(&f, 8, 2);
    assert_eq!(blocks(&window), [1, 2]);
    // Lost: the window goes again a block at a time.
    let lost = t.poll_timeout().unwrap();
    t.handle_timeout(lost);
    assert_eq!(blocks(&t.drain(lost)), [1]);
    let first = t.poll_timeout().unwrap() - lost;
    t.handle_timeout(lost + first);
    assert_eq!(blocks(&t.drain(lost + first)), [2]);
    // Lost again: the bursts cannot shrink, the pauses grow.
    let lost = t.poll_timeout().unwrap();
    t.handle_timeout(lost);
    assert_eq!(blocks(&t.drain(lost)), [1]);
    let second = t.poll_timeout().unwrap() - lost;
    assert_eq!(second, first * 2, "the receiver is given twice as long");
}

#[test]
fn a_window_sent_in_paced_bursts_is_not_resent_before_a_timeout_after_its_last_burst() {
    let f = file(8 * 2000);
    let (mut t, window) = server_read_started(&f, 8, 64);
    assert_eq!(window.len(), 64, "a window of small blocks goes whole");
    // Acknowledged 1 ms after it went: a measured round trip, so the timeout is the
    // shortest one a round trip gives (20 ms), shorter than a window in single-block
    // bursts takes.
    let mut now = at(2);
    t.feed(now, client_addr(), &ack(64));
    let mut acked = 64u16;
    t.drain(now);
    // Six gaps reported: the bursts halve down to a single block.
    for _ in 0..6 {
        now += ms(1);
        acked += 1;
        t.feed(now, client_addr(), &ack(acked));
        t.drain(now);
    }
    // One more gap: from here the window goes out a block at a time, a pause after each.
    now += ms(1);
    acked += 1;
    t.feed(now, client_addr(), &ack(acked));
    let mut sent = blocks(&t.drain(now));
    while sent.len() < 64 {
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        sent.extend(blocks(&t.drain(now)));
    }
    let expected: Vec<u16> = (acked + 1..=acked + 64).collect();
    assert_eq!(
        sent[..64],
        expected[..],
        "the whole window goes once before any block is resent (it took {:?})",
        now
    );
}

#[test]
fn windowsize_receiver_acks_window_end_and_reports_a_gap_once() {
    let mut f = Vec::new();
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.blksize = Some(Blksize::new(8).unwrap());
    req.windowsize = Some(Windowsize::new(4).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut f);
    let oack = Packet::Oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(8));
        options.windowsize = Some(Windowsize::new(4));
        options
    })
    .to_vec()
    .unwrap();
    c.handle_datagram(at(1), transfer_addr(), &oack, &mut f);
    assert_eq!(drain(&mut c, at(1), &mut f), [(transfer_addr(), ack(0))]);
    for b in 1..=3u16 {
        c.handle_datagram(at(2), transfer_addr(), &data(b, &[b as u8; 8]), &mut f);
        assert!(
            drain(&mut c, at(2), &mut f).is_empty(),
            "no ACK inside a window"
        );
    }
    c.handle_datagram(at(2), transfer_addr(), &data(4, &[4; 8]), &mut f);
    assert_eq!(drain(&mut c, at(2), &mut f), [(transfer_addr(), ack(4))]);
    // Block 5 lost: 6 shows the gap, ACK 4 once; 7 says nothing more.
    c.handle_datagram(at(3), transfer_addr(), &data(6, &[6; 8]), &mut f);
    assert_eq!(drain(&mut c, at(3), &mut f), [(transfer_addr(), ack(4))]);
    c.handle_datagram(at(3), transfer_addr(), &data(7, &[7; 8]), &mut f);
    assert!(drain(&mut c, at(3), &mut f).is_empty());
    assert_eq!(f.len(), 32, "out-of-order blocks are not stored");
}

#[test]
fn block_numbers_wrap_from_65535_to_0() {
    let n = 65_540usize;
    let f: Vec<u8> = (0..n * 8 + 5).map(|i| (i / 8) as u8).collect();
    let (mut t, window) = server_read_started(&f, 8, 1);
    assert_eq!(blocks(&window), [1]);
    let mut wire_block = 1u16;
    for abs in 1..=n as u64 + 1 {
        t.feed(at(2), client_addr(), &ack(wire_block));
        if abs == n as u64 + 1 {
            break;
        }
        let sent = t.drain(at(2));
        assert_eq!(sent.len(), 1);
        let Packet::Data { block, data } = Packet::parse(&sent[0].1).unwrap() else {
            panic!()
        };
        let expect_abs = abs + 1;
        assert_eq!(block, expect_abs as u16, "block {expect_abs}");
        let start = (expect_abs as usize - 1) * 8;
        assert_eq!(data, &f[start..(start + 8).min(f.len())]);
        if expect_abs == 65_536 {
            assert_eq!(block, 0, "65536 goes on the wire as 0");
        }
        wire_block = block;
    }
    let stats = finished(&mut t).unwrap().unwrap();
    assert_eq!(stats.blocks, n as u64 + 1);
    assert_eq!(stats.bytes, f.len() as u64);
}

#[test]
fn short_final_block_ends_the_transfer() {
    let f = file(20);
    let (mut t, w) = server_read_started(&f, 8, 1);
    assert_eq!(w[0].1.len(), 12);
    t.feed(at(2), client_addr(), &ack(1));
    assert_eq!(t.drain(at(2))[0].1.len(), 12);
    t.feed(at(3), client_addr(), &ack(2));
    let last = t.drain(at(3));
    assert_eq!(last, [(client_addr(), data(3, &f[16..]))]);
    assert!(finished(&mut t).is_none());
    t.feed(at(4), client_addr(), &ack(3));
    assert_eq!(finished(&mut t).unwrap().unwrap().bytes, 20);
    assert!(t.drain(at(4)).is_empty());
    assert!(t.is_empty(), "closed");
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn exact_multiple_of_blksize_ends_with_empty_data() {
    let f = file(16);
    let (mut t, w) = server_read_started(&f, 8, 4);
    assert_eq!(blocks(&w), [1, 2, 3]);
    assert_eq!(w[2].1, data(3, &[]));
    t.feed(at(2), client_addr(), &ack(3));
    let s = finished(&mut t).unwrap().unwrap();
    assert_eq!((s.bytes, s.blocks), (16, 3));
}

#[test]
fn empty_file_is_one_empty_data() {
    let mut t = server(
        Direction::Read,
        Mode::Octet,
        Ask::default(),
        &[],
        &rule_limits(),
    );
    assert_eq!(t.drain(T0), [(client_addr(), data(1, &[]))]);
    t.feed(at(1), client_addr(), &ack(1));
    let s = finished(&mut t).unwrap().unwrap();
    assert_eq!((s.bytes, s.blocks), (0, 1));

    // And the receiving side stores nothing and ends.
    let mut got = Vec::new();
    let mut c = Transfer::client(
        T0,
        server_addr(),
        &ClientRequest::new(Direction::Read, "f"),
        rule_config(),
    )
    .unwrap();
    drain(&mut c, T0, &mut got);
    c.handle_datagram(at(1), transfer_addr(), &data(1, &[]), &mut got);
    assert_eq!(drain(&mut c, at(1), &mut got), [(transfer_addr(), ack(1))]);
    assert_eq!(client_finished(&mut c).unwrap().unwrap().blocks, 1);
    assert!(got.is_empty());
}

#[test]
fn timeout_retransmits_with_backoff_then_gives_up() {
    // A negotiated timeout is used as given (RFC 2349), with no measured round trips.
    let ask = Ask {
        timeout: Some(1),
        ..Ask::default()
    };
    let mut t = server(
        Direction::Read,
        Mode::Octet,
        ask,
        &file(1000),
        &rule_limits(),
    );
    assert_eq!(t.drain(T0).len(), 1, "the OACK");
    t.feed(T0, client_addr(), &ack(0));
    assert_eq!(blocks(&t.drain(T0)), [1]);
    // The client answers once, then goes silent. (A client that never answers is not
    // retried this long: the endpoint reclaims its transfer at `unanswered_timeout`, see
    // tftp_endpoint.rs.)
    t.feed(T0, client_addr(), &ack(1));
    let first = t.drain(T0);
    assert_eq!(blocks(&first), [2]);
    // retries 4, timeout 1 s doubling up to 4 s: deadlines 1, 3, 7, 11, then 15 gives up.
    let mut deadlines = Vec::new();
    let mut now = T0;
    while let Some(d) = t.poll_timeout() {
        deadlines.push(d.since_epoch().as_secs());
        // Early calls do nothing.
        t.handle_timeout(d - ms(1));
        assert!(t.drain(d - ms(1)).is_empty());
        now = d;
        t.handle_timeout(now);
        let again = t.drain(now);
        if t.poll_timeout().is_some() {
            assert_eq!(again, first, "the same DATA 2 again");
        } else {
            assert!(again.is_empty());
        }
    }
    assert_eq!(deadlines, [1, 3, 7, 11, 15]);
    match finished(&mut t) {
        Some(Err(TransferError::Timeout { retries: 4 })) => {}
        other => panic!("{other:?}"),
    }
    assert!(t.is_empty(), "closed");
    let _ = now;
}

#[test]
fn measured_round_trips_shorten_the_first_retransmissions_not_the_patience() {
    let (mut t, silent_from) = lock_step_after_five_round_trips();
    let mut now = silent_from;
    let first = t.poll_timeout().unwrap() - silent_from;
    assert_eq!(
        first,
        ms(200),
        "a lost block is resent at the floor of measured timeouts, not after a second"
    );
    let mut resent = 0;
    while let Some(d) = t.poll_timeout() {
        t.handle_timeout(d);
        resent += t.drain(d).len();
        now = d;
    }
    assert!(resent > 4);
    let ended = t.take_ended();
    let report = &ended[0].1;
    assert_eq!(report.result, Err(TransferError::Timeout { retries: 4 }));
    // Given up after no less silence than the configured timeouts (1, 2, 4, 4, 4 s) allow.
    assert!(now - silent_from >= ms(15_000), "{:?}", now - silent_from);
    assert!(now - silent_from >= rule_config().patience());
    let stats = report.stats;
    assert_eq!(
        (stats.early_timeouts, stats.retries),
        (3, 4),
        "200 to 800 ms, then 1.6 to 4 s"
    );
    assert!(
        report
            .to_string()
            .contains("(3 early timeouts, 4 retries), failed"),
        "{report}"
    );
}

/// Sends a lock-step transfer's blocks 1 to 5, each ACKed 2 ms after it went, and returns
/// the transfer silent after DATA 6 with the time it went.
fn lock_step_after_five_round_trips() -> (ServerSide, Instant) {
    let mut t = server(
        Direction::Read,
        Mode::Octet,
        Ask::default(),
        &file(100_000),
        &rule_limits(),
    );
    assert_eq!(blocks(&t.drain(T0)), [1]);
    let mut now = T0;
    for block in 1..=5 {
        now += ms(2);
        t.feed(now, client_addr(), &ack(block));
        assert_eq!(blocks(&t.drain(now)), [block + 1]);
    }
    (t, now)
}

/// Windows keep a short floor under measured timeouts (a tail lost to a small receive
/// buffer is only recovered by one); lock-step, where each late answer would be a block
/// resent, a long one (see the test above).
#[test]
fn a_window_is_resent_after_a_short_measured_timeout() {
    let f = file(8 * 100);
    let (mut t, window) = server_read_started(&f, 8, 4);
    assert_eq!(blocks(&window), [1, 2, 3, 4]);
    t.feed(at(2), client_addr(), &ack(4));
    assert_eq!(blocks(&t.drain(at(2))), [5, 6, 7, 8]);
    assert_eq!(t.poll_timeout().unwrap() - ms(2), at(20));
}

/// Sends what is due at `now` and then every burst of the window the pauses hold back,
/// until the next deadline is a retransmission's; returns the blocks sent.
fn send_window(t: &mut ServerSide, now: Instant) -> Vec<u16> {
    let mut sent = blocks(&t.drain(now));
    while let Some(pause) = t.poll_timeout().filter(|&d| d < now + ms(5)) {
        t.handle_timeout(pause);
        sent.extend(blocks(&t.drain(pause)));
    }
    sent
}

#[test]
fn a_resend_the_client_did_not_need_is_counted_and_lengthens_later_timeouts() {
    let f = file(8 * 100);
    let (mut t, window) = server_read_started(&f, 8, 2);
    assert_eq!(blocks(&window), [1, 2]);
    t.feed(at(3), client_addr(), &ack(2));
    assert_eq!(send_window(&mut t, at(3)), [3, 4]);
    // A round trip of 2 ms: the window is resent after the 20 ms floor.
    let expired = t.poll_timeout().unwrap();
    assert_eq!(expired - at(3), ms(20));
    t.handle_timeout(expired);
    assert_eq!(send_window(&mut t, expired), [3, 4]);
    // The client was busy: its ACK of the first sending comes 30 ms late, after the resend.
    let late = at(3) + ms(30);
    t.feed(late, client_addr(), &ack(4));
    assert_eq!(send_window(&mut t, late), [5, 6]);
    // Then it answers the copies it did not need with the same ACK again: the resend was
    // needless. Nothing is sent for it (RFC 1123).
    t.feed(late + ms(1), client_addr(), &ack(4));
    assert!(t.drain(late + ms(1)).is_empty());
    // The next window is given twice that late answer before it is resent.
    assert!(t.poll_timeout().unwrap() - late >= ms(60));
    // And every later one, however fast the client answers again.
    let mut now = late;
    for block in (6..=20).step_by(2) {
        now += ms(2);
        t.feed(now, client_addr(), &ack(block));
        send_window(&mut t, now);
    }
    assert!(t.poll_timeout().unwrap() - now >= ms(60));
    t.feed(now, client_addr(), &error(ErrorCode::NotDefined));
    let stats = t.take_ended()[0].1.stats;
    assert_eq!(
        (stats.spurious, stats.early_timeouts, stats.retries),
        (1, 1, 0)
    );
    assert_eq!(stats.retransmissions, 2);
}

/// A network that duplicates ACKs fakes the sign of a needless resend: what it makes the
/// transfer wait is bounded by the lock-step floor, a fifth of the configured timeout.
#[test]
fn a_faked_spurious_sign_lengthens_timeouts_no_more_than_lock_step() {
    let f = file(8 * 100);
    let (mut t, _) = server_read_started(&f, 8, 2);
    t.feed(at(3), client_addr(), &ack(2));
    send_window(&mut t, at(3));
    let expired = t.poll_timeout().unwrap();
    t.handle_timeout(expired);
    send_window(&mut t, expired);
    // The resend recovered a real loss 900 ms later; the network delivered its ACK twice.
    let answered = expired + ms(900);
    t.feed(answered, client_addr(), &ack(4));
    t.feed(answered, client_addr(), &ack(4));
    send_window(&mut t, answered);
    // 1 s / 5, counted from the window's last burst.
    let wait = t.poll_timeout().unwrap() - answered;
    assert!(wait >= ms(200) && wait < ms(205), "{wait:?}");
}

#[test]
fn a_resend_that_recovered_a_loss_is_not_spurious() {
    let (mut t, _) = lock_step_after_five_round_trips();
    // DATA 6 was lost: the client ACKs the resent copy once.
    let expired = t.poll_timeout().unwrap();
    t.handle_timeout(expired);
    assert_eq!(blocks(&t.drain(expired)), [6]);
    t.feed(expired + ms(2), client_addr(), &ack(6));
    assert_eq!(blocks(&t.drain(expired + ms(2))), [7]);
    // A duplicate of an older ACK proves nothing either.
    t.feed(expired + ms(3), client_addr(), &ack(5));
    let next = t.poll_timeout().unwrap() - (expired + ms(2));
    assert_eq!(next, ms(200), "the floor is where it was");
    t.feed(
        expired + ms(3),
        client_addr(),
        &error(ErrorCode::NotDefined),
    );
    assert_eq!(t.take_ended()[0].1.stats.spurious, 0);
}

#[test]
fn patience_is_how_long_a_silent_peer_holds_a_transfer() {
    // The defaults: 1 s doubling up to 8 s, 5 retries: 1 + 2 + 4 + 8 + 8 + 8.
    assert_eq!(wirekit::tftp::Config::default().patience(), ms(31_000));
    // A negotiated timeout is used as given: no round trip is measured.
    let ask = Ask {
        timeout: Some(1),
        ..Ask::default()
    };
    let mut s = server(
        Direction::Read,
        Mode::Octet,
        ask,
        &file(100_000),
        &Limits::default(),
    );
    s.drain(T0);
    s.feed(T0, client_addr(), &ack(0));
    s.drain(T0);
    // The client answers DATA 1, then falls silent.
    s.feed(T0, client_addr(), &ack(1));
    s.drain(T0);
    let mut now = T0;
    while let Some(d) = s.poll_timeout() {
        now = d;
        s.handle_timeout(now);
        s.drain(now);
    }
    assert_eq!(now - T0, wirekit::tftp::Config::default().patience());
    let report = &s.take_ended()[0].1;
    assert_eq!(report.result, Err(TransferError::Timeout { retries: 5 }));
    let line = report.to_string();
    assert!(
        line.contains("5 resent (5 retries), failed: timed out: no answer after 5 retries"),
        "{line}"
    );
}

#[test]
fn duplicate_ack_never_triggers_a_resend() {
    let f = file(100);
    let (mut t, _) = server_read_started(&f, 8, 1);
    t.feed(at(2), client_addr(), &ack(1));
    assert_eq!(blocks(&t.drain(at(2))), [2]);
    // The duplicate ACK 1 (Sorcerer's Apprentice): nothing goes out.
    t.feed(at(3), client_addr(), &ack(1));
    assert!(t.drain(at(3)).is_empty());
    // A duplicate ACK 0 of the OACK: nothing either.
    t.feed(at(3), client_addr(), &ack(0));
    assert!(t.drain(at(3)).is_empty());
    // Only the timer resends.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(blocks(&t.drain(d)), [2]);
}

#[test]
fn unknown_transfer_id_gets_error_5_and_the_transfer_goes_on() {
    let f = file(100);
    let (mut t, _) = server_read_started(&f, 8, 1);
    t.feed(at(2), stranger(), &ack(1));
    let out = t.drain(at(2));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, stranger());
    // In RFC 1350's words, as tftp-hpa and atftp send it.
    assert_eq!(out[0].1, b"\0\x05\0\x05Unknown transfer ID\0");
    // Same host, other port: a stranger too.
    let other_port: SocketAddr = "10.0.0.1:5001".parse().unwrap();
    t.feed(at(2), other_port, &ack(1));
    assert_eq!(t.drain(at(2))[0].0, other_port);
    // An ERROR from a stranger gets nothing and ends nothing.
    t.feed(at(2), stranger(), &error(ErrorCode::NotDefined));
    assert!(t.drain(at(2)).is_empty());
    assert!(finished(&mut t).is_none());
    // The transfer goes on.
    t.feed(at(3), client_addr(), &ack(1));
    assert_eq!(blocks(&t.drain(at(3))), [2]);
}

#[test]
fn client_sends_error_5_to_a_stranger_after_locking_on_the_transfer_port() {
    let mut got = Vec::new();
    let mut c = Transfer::client(
        T0,
        server_addr(),
        &ClientRequest::new(Direction::Read, "f"),
        rule_config(),
    )
    .unwrap();
    drain(&mut c, T0, &mut got);
    c.handle_datagram(at(1), transfer_addr(), &data(1, &[1; 512]), &mut got);
    assert_eq!(drain(&mut c, at(1), &mut got), [(transfer_addr(), ack(1))]);
    // A second server port (a duplicated request answered twice) is a stranger now.
    let second: SocketAddr = "10.0.0.2:6001".parse().unwrap();
    c.handle_datagram(at(2), second, &data(1, &[9; 512]), &mut got);
    let out = drain(&mut c, at(2), &mut got);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, second);
    assert_eq!(got, [1; 512]);
}

#[test]
fn peer_error_ends_the_transfer_without_an_answer() {
    let f = file(100);
    let (mut t, _) = server_read_started(&f, 8, 1);
    t.feed(at(2), client_addr(), &error(ErrorCode::DiskFull));
    assert!(t.drain(at(2)).is_empty());
    match finished(&mut t) {
        Some(Err(TransferError::Peer {
            code: ErrorCode::DiskFull,
            message,
        })) => assert_eq!(message, "x"),
        other => panic!("{other:?}"),
    }
    assert!(t.is_empty(), "closed");
    assert_eq!(t.poll_timeout(), None);
    // Nothing after the end (the transfer's port is closed now).
    t.feed(at(3), client_addr(), &ack(1));
    assert!(t.drain(at(3)).is_empty());
}

#[test]
fn receiver_dallies_and_re_acks_a_repeated_final_data() {
    let mut transfer = server(
        Direction::Write,
        Mode::Octet,
        Ask::default(),
        &[],
        &rule_limits(),
    );
    assert_eq!(transfer.drain(T0), [(client_addr(), ack(0))]);
    transfer.feed(at(1), client_addr(), &data(1, b"hello"));
    assert_eq!(transfer.drain(at(1)), [(client_addr(), ack(1))]);
    assert_eq!(finished(&mut transfer).unwrap().unwrap().bytes, 5);
    assert!(!transfer.is_empty(), "dallying");
    let dally = transfer.poll_timeout().unwrap();
    assert!(dally > at(1));
    // Our ACK was lost; the sender repeats its final DATA: ACK again, store nothing.
    transfer.feed(at(1001), client_addr(), &data(1, b"hello"));
    assert_eq!(transfer.drain(at(1001)), [(client_addr(), ack(1))]);
    assert_eq!(uploaded(&transfer), b"hello");
    assert_eq!(
        transfer.policy().uploads[0].file.commits(),
        1,
        "committed once"
    );
    assert!(finished(&mut transfer).is_none(), "one Finished only");
    // The dally is re-armed after the re-ACK, then ends.
    let d = transfer.poll_timeout().unwrap();
    assert!(d > dally);
    transfer.handle_timeout(d);
    assert!(transfer.is_empty(), "closed");
    assert!(transfer.drain(d).is_empty());
}

#[test]
fn uefi_tsize_probe_is_a_clean_end() {
    let ask = Ask {
        tsize: Some(0),
        ..Ask::default()
    };
    let mut t = server(
        Direction::Read,
        Mode::Octet,
        ask,
        &file(1234),
        &rule_limits(),
    );
    let oack = t.drain(T0);
    assert_eq!(oack_options(&oack[0].1).tsize, Some(1234));
    t.feed(at(1), client_addr(), &error(ErrorCode::OptionNegotiation));
    assert!(t.drain(at(1)).is_empty());
    match finished(&mut t) {
        Some(Err(e)) => {
            assert_eq!(e, TransferError::OptionsDeclined);
            assert!(e.is_clean());
        }
        other => panic!("{other:?}"),
    }
    assert!(t.is_empty(), "closed");
}

fn client_with(ask_blksize: Option<u64>, ask_tsize: bool, direction: Direction) -> Transfer {
    let mut req = ClientRequest::new(direction, "f");
    req.blksize = ask_blksize.map(|b| Blksize::new(b).unwrap());
    req.tsize = ask_tsize;
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    let first = drain(&mut c, T0, &mut Vec::new());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, server_addr());
    c
}

fn expect_error_8(c: &mut Transfer) {
    let out = drain(c, at(1), &mut Vec::new());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, transfer_addr());
    assert!(matches!(
        Packet::parse(&out[0].1).unwrap(),
        Packet::Error {
            code: ErrorCode::OptionNegotiation,
            ..
        }
    ));
    assert!(matches!(
        client_finished(c),
        Some(Err(TransferError::BadOack(_)))
    ));
    assert!(c.is_closed());
}

#[test]
fn client_refuses_an_oack_with_a_larger_blksize() {
    let mut c = client_with(Some(512), false, Direction::Read);
    let oack = Packet::Oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(1024));
        options
    })
    .to_vec()
    .unwrap();
    c.handle_datagram(at(1), transfer_addr(), &oack, &mut Vec::new());
    expect_error_8(&mut c);
}

#[test]
fn client_refuses_an_oack_with_an_option_it_did_not_ask() {
    let mut c = client_with(Some(512), false, Direction::Read);
    let oack = Packet::Oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(512));
        options.tsize = Some(10);
        options
    })
    .to_vec()
    .unwrap();
    c.handle_datagram(at(1), transfer_addr(), &oack, &mut Vec::new());
    expect_error_8(&mut c);

    let mut c = client_with(None, false, Direction::Write);
    let oack = b"\0\x06blksize\x00512\0";
    c.handle_datagram(at(1), transfer_addr(), oack, &mut Vec::new());
    expect_error_8(&mut c);
}

#[test]
fn client_accepts_a_lowered_blksize_and_re_acks_a_repeated_oack() {
    let mut got = Vec::new();
    let mut c = client_with(Some(1468), true, Direction::Read);
    let oack = Packet::Oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(1024));
        options.tsize = Some(3000);
        options
    })
    .to_vec()
    .unwrap();
    c.handle_datagram(at(1), transfer_addr(), &oack, &mut got);
    let n = negotiated(&mut c).unwrap();
    assert_eq!((n.blksize, n.tsize), (1024, Some(3000)));
    assert_eq!(drain(&mut c, at(1), &mut got), [(transfer_addr(), ack(0))]);
    // Our ACK 0 was lost: the server repeats its OACK.
    c.handle_datagram(at(1001), transfer_addr(), &oack, &mut got);
    assert_eq!(
        drain(&mut c, at(1001), &mut got),
        [(transfer_addr(), ack(0))]
    );
    c.handle_datagram(at(1002), transfer_addr(), &data(1, &[5; 1024]), &mut got);
    assert_eq!(
        drain(&mut c, at(1002), &mut got),
        [(transfer_addr(), ack(1))]
    );
}

#[test]
fn client_falls_back_to_rfc1350_when_the_server_ignores_options() {
    // Read: the server answers DATA 1 at once.
    let mut got = Vec::new();
    let mut c = client_with(Some(1468), true, Direction::Read);
    c.handle_datagram(at(1), transfer_addr(), &data(1, &[7; 512]), &mut got);
    assert_eq!(negotiated(&mut c).unwrap(), Negotiated::default());
    assert_eq!(drain(&mut c, at(1), &mut got), [(transfer_addr(), ack(1))]);
    assert_eq!(c.peer(), transfer_addr());
    c.handle_datagram(at(2), transfer_addr(), &data(2, &[8; 3]), &mut got);
    assert_eq!(drain(&mut c, at(2), &mut got), [(transfer_addr(), ack(2))]);
    assert_eq!(client_finished(&mut c).unwrap().unwrap().bytes, 515);

    // Write: the server answers ACK 0; DATA goes in 512-byte blocks.
    let mut req = ClientRequest::new(Direction::Write, "f");
    req.blksize = Some(Blksize::new(1468).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    let mut src = file(600);
    drain(&mut c, T0, &mut src);
    c.handle_datagram(at(1), transfer_addr(), &ack(0), &mut src);
    assert_eq!(negotiated(&mut c).unwrap().blksize, 512);
    let out = drain(&mut c, at(1), &mut src);
    assert_eq!(out, [(transfer_addr(), data(1, &src[..512]))]);
}

#[test]
fn server_lowers_blksize_and_windowsize_to_its_limits() {
    let mut lim = rule_limits();
    lim.max_blksize = Blksize::new(1468).unwrap();
    lim.max_windowsize = Windowsize::new(8).unwrap();
    let ask = Ask {
        blksize: Some(65464),
        windowsize: Some(100),
        ..Ask::default()
    };
    let mut t = server(Direction::Read, Mode::Octet, ask, &file(10), &lim);
    let out = t.drain(T0);
    let o = oack_options(&out[0].1);
    assert_eq!(o.blksize, Some(Blksize::new(1468)));
    assert_eq!(o.windowsize, Some(Windowsize::new(8)));
    assert_eq!(o.tsize, None, "tsize only when asked");
    assert_eq!(o.timeout, None);
    // A smaller ask is kept as it is.
    let ask = Ask {
        blksize: Some(1024),
        ..Ask::default()
    };
    let mut t = server(Direction::Read, Mode::Octet, ask, &file(10), &lim);
    let out = t.drain(T0);
    assert_eq!(oack_options(&out[0].1).blksize, Some(Blksize::new(1024)));
}

#[test]
fn server_lowers_windowsize_so_a_window_fits_its_byte_budget() {
    let mut lim = rule_limits();
    lim.max_window_bytes = Some(192 * 1024);
    for (blksize, asked, granted) in [
        (65464, 16, 3),
        (8192, 64, 24),
        (1468, 64, 64),
        (65464, 1, 1),
    ] {
        let ask = Ask {
            blksize: Some(blksize),
            windowsize: Some(asked),
            ..Ask::default()
        };
        let mut t = server(Direction::Read, Mode::Octet, ask, &file(10), &lim);
        let out = t.drain(T0);
        let o = oack_options(&out[0].1);
        assert_eq!(
            o.windowsize,
            Some(Windowsize::new(granted)),
            "blksize {blksize}"
        );
    }
    // Even a budget below one block grants one block per window.
    let mut tiny = rule_limits();
    tiny.max_window_bytes = Some(100);
    let ask = Ask {
        blksize: Some(1468),
        windowsize: Some(8),
        ..Ask::default()
    };
    let mut t = server(Direction::Read, Mode::Octet, ask, &file(10), &tiny);
    let out = t.drain(T0);
    assert_eq!(oack_options(&out[0].1).windowsize, Some(Windowsize::new(1)));
}

#[test]
fn server_puts_tsize_in_the_oack_only_when_asked() {
    let ask = Ask {
        tsize: Some(0),
        ..Ask::default()
    };
    let mut t = server(
        Direction::Read,
        Mode::Octet,
        ask,
        &file(4242),
        &rule_limits(),
    );
    let out = t.drain(T0);
    assert_eq!(oack_options(&out[0].1).tsize, Some(4242));
    // Not asked: plain RFC 1350, DATA 1 straight away.
    let mut t = server(
        Direction::Read,
        Mode::Octet,
        Ask::default(),
        &file(4242),
        &rule_limits(),
    );
    assert_eq!(blocks(&t.drain(T0)), [1]);
    // Write: the announced size is echoed.
    let ask = Ask {
        tsize: Some(777),
        ..Ask::default()
    };
    let mut t = server(Direction::Write, Mode::Octet, ask, &[], &rule_limits());
    let out = t.drain(T0);
    assert_eq!(oack_options(&out[0].1).tsize, Some(777));
}

#[test]
fn server_accepts_a_timeout_in_range_or_leaves_it_out() {
    let mut lim = rule_limits();
    lim.min_timeout = Timeout::new(2).unwrap();
    lim.max_timeout = Timeout::new(10).unwrap();
    let ask = |t| Ask {
        timeout: Some(t),
        blksize: Some(512),
        ..Ask::default()
    };
    let mut t = server(Direction::Read, Mode::Octet, ask(3), &file(10), &lim);
    let out = t.drain(T0);
    assert_eq!(oack_options(&out[0].1).timeout, Some(Timeout::new(3)));
    // The negotiated timeout is the new base: the OACK is resent after 3 s.
    assert_eq!(t.poll_timeout(), Some(Instant::from_secs(3)));
    for outside in [1, 11] {
        let mut t = server(Direction::Read, Mode::Octet, ask(outside), &file(10), &lim);
        let out = t.drain(T0);
        assert_eq!(oack_options(&out[0].1).timeout, None, "timeout {outside}");
    }
    // Only an unacceptable timeout asked: no OACK at all, DATA 1 at once.
    let only = Ask {
        timeout: Some(1),
        ..Ask::default()
    };
    let mut t = server(Direction::Read, Mode::Octet, only, &file(10), &lim);
    assert_eq!(blocks(&t.drain(T0)), [1]);
}

#[test]
fn server_refuses_mail_mode() {
    let mut t = ServerSide::serving(Vec::new());
    let rq = request(Direction::Write, Mode::Mail, Ask::default());
    t.request(T0, client_addr(), &rq);
    assert!(t.is_empty(), "no transfer started");
    let (peer, filename, refusal) = t.refused.pop().expect("refused");
    assert_eq!((peer, filename.as_deref()), (client_addr(), Some("f")));
    assert_eq!(refusal.code, ErrorCode::IllegalOperation);
    let out = t.drain_sent(T0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, client_addr());
    assert_ne!(out[0].from, server_addr(), "refused from a port of its own");
    assert!(matches!(
        Packet::parse(&out[0].bytes).unwrap(),
        Packet::Error {
            code: ErrorCode::IllegalOperation,
            ..
        }
    ));
    // Not a request at all: ignored, nothing sent back.
    t.request(T0, client_addr(), &ack(1));
    assert!(t.drain(T0).is_empty());
    assert!(t.refused.is_empty() && t.is_empty());
    // A broken request (no NUL after the filename) is told why; junk with another opcode,
    // or too short to have one, gets nothing.
    t.request(T0, client_addr(), b"\0\x01boot");
    let (_, filename, refusal) = t.refused.pop().expect("refused");
    assert_eq!(filename, None);
    assert_eq!(refusal.code, ErrorCode::IllegalOperation);
    assert!(refusal.message.contains("filename"), "{}", refusal.message);
    assert_eq!(t.drain(T0).len(), 1);
    for junk in [&b"\0"[..], b"", b"\0\x09xyz"] {
        t.request(T0, client_addr(), junk);
        assert!(t.drain(T0).is_empty());
        assert!(t.refused.is_empty() && t.is_empty());
    }
}

#[test]
fn netascii_streams_across_blocks() {
    // Sender: line ends become CR LF, a bare CR becomes CR NUL, pairs split across blocks.
    let text = b"abcdefg\nhijklm\rn\n\n\n\n\nz".to_vec();
    let wire = b"abcdefg\r\nhijklm\r\0n\r\n\r\n\r\n\r\n\r\nz".to_vec();
    let ask = Ask {
        blksize: Some(8),
        windowsize: Some(64),
        ..Ask::default()
    };
    let mut t = server(Direction::Read, Mode::Netascii, ask, &text, &rule_limits());
    t.drain(T0);
    t.feed(at(1), client_addr(), &ack(0));
    let sent = t.drain(at(1));
    let mut joined = Vec::new();
    for (_, d) in &sent {
        let Packet::Data { data, .. } = Packet::parse(d).unwrap() else {
            panic!()
        };
        joined.extend_from_slice(data);
    }
    assert_eq!(joined, wire);
    assert_eq!(sent.len(), wire.len() / 8 + 1);
    // A timeout resends the window with exactly the same bytes.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(t.drain(d), sent);
    // A partial ACK resends from the block after it, same bytes.
    t.feed(d, client_addr(), &ack(2));
    assert_eq!(t.drain(d), sent[2..]);

    // Receiver: CR at the end of one block, LF at the start of the next.
    let ask = Ask {
        blksize: Some(8),
        ..Ask::default()
    };
    let mut transfer = server(Direction::Write, Mode::Netascii, ask, &[], &rule_limits());
    transfer.drain(T0);
    for (i, chunk) in wire.chunks(8).enumerate() {
        transfer.feed(at(1), client_addr(), &data(i as u16 + 1, chunk));
        transfer.drain(at(1));
    }
    if wire.len().is_multiple_of(8) {
        transfer.feed(at(1), client_addr(), &data(wire.len() as u16 / 8 + 1, &[]));
    }
    assert!(matches!(finished(&mut transfer), Some(Ok(_))));
    assert_eq!(uploaded(&transfer), text);

    // A peer that ends its last block on a bare CR: the CR is stored, and counted.
    let mut transfer = server(
        Direction::Write,
        Mode::Netascii,
        Ask::default(),
        &[],
        &rule_limits(),
    );
    transfer.drain(T0);
    transfer.feed(at(1), client_addr(), &data(1, b"x\r"));
    transfer.drain(at(1));
    assert_eq!(uploaded(&transfer), b"x\r");
    assert_eq!(finished(&mut transfer).unwrap().unwrap().bytes, 2);
}

#[test]
fn stats_count_bytes_blocks_retransmissions_and_virtual_time() {
    // Lossless, 5 ms each way, lockstep: 3 blocks, 3 round trips after the OACK one.
    let mut s = Scenario::new(Direction::Read, file(1100));
    s.blksize = Some(512);
    s.faults = Faults {
        delay: ms(5),
        ..Faults::default()
    };
    let o = sim::run(&s);
    let server = o.server.unwrap().unwrap();
    assert_eq!(server.bytes, 1100);
    assert_eq!(server.blocks, 3);
    assert_eq!(server.retransmissions, 0);
    // Server created at 5 ms; OACK, ACK 0, then 3 DATA/ACK round trips: 4 × 10 ms.
    assert_eq!(server.duration, ms(40));
    let client = o.client.unwrap().unwrap();
    assert_eq!(
        (client.bytes, client.blocks, client.retransmissions),
        (1100, 3, 0)
    );
    // Request out at 0, final DATA in at 5 + 10 + 20 + 5 = 40 ms.
    assert_eq!(client.duration, ms(40));

    // A lost ACK costs one retransmission on the sender.
    let f = file(100);
    let (mut t, _) = server_read_started(&f, 64, 1);
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    t.drain(d);
    t.feed(d + ms(1), client_addr(), &ack(1));
    t.drain(d + ms(1));
    t.feed(d + ms(2), client_addr(), &ack(2));
    let st = finished(&mut t).unwrap().unwrap();
    assert_eq!((st.bytes, st.blocks, st.retransmissions), (100, 2, 1));
    assert_eq!(st.duration, d + ms(2) - T0);
}

#[test]
fn a_transmit_buffer_below_max_datagram_len_is_the_callers_bug_reported_at_once() {
    let mut got = Vec::new();
    let mut c = Transfer::client(
        T0,
        server_addr(),
        &ClientRequest::new(Direction::Read, "f"),
        rule_config(),
    )
    .unwrap();
    let mut small = [0u8; 8];
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = c.poll_transmit(T0, &mut got, &mut small);
    }));
    let message = caught.expect_err("a short buffer panics");
    let text = message
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(text.contains("max_datagram_len"), "{text}");
    // The transfer did not end for it: with a right-sized buffer its request goes out.
    assert!(c.poll_event().is_none());
    assert_eq!(drain(&mut c, T0, &mut got).len(), 1, "the RRQ");
}

#[test]
fn a_sender_that_gives_up_reports_the_blocks_acknowledged() {
    // Server read: blocks 1 and 2 acknowledged, block 3 never is.
    let f = file(100);
    let (mut t, _) = server_read_started(&f, 8, 1);
    t.feed(at(2), client_addr(), &ack(1));
    assert_eq!(blocks(&t.drain(at(2))), [2]);
    t.feed(at(3), client_addr(), &ack(2));
    assert_eq!(blocks(&t.drain(at(3))), [3]);
    while let Some(d) = t.poll_timeout() {
        t.handle_timeout(d);
        t.drain(d);
    }
    match finished(&mut t) {
        Some(Err(TransferError::Timeout { .. })) => {}
        other => panic!("{other:?}"),
    }
    let report = &t.transfers[&t.started[0]].ended.as_ref().unwrap().1;
    assert_eq!(report.stats.blocks, 2, "blocks delivered before the end");

    // Client write: block 1 acknowledged, block 2 never is.
    let mut req = ClientRequest::new(Direction::Write, "f");
    req.blksize = Some(Blksize::new(8).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    let mut src = file(100);
    drain(&mut c, T0, &mut src);
    let oack = Packet::Oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(8));
        options
    })
    .to_vec()
    .unwrap();
    c.handle_datagram(at(1), transfer_addr(), &oack, &mut src);
    drain(&mut c, at(1), &mut src);
    c.handle_datagram(at(2), transfer_addr(), &ack(1), &mut src);
    drain(&mut c, at(2), &mut src);
    while let Some(d) = c.poll_timeout() {
        c.handle_timeout(d);
        drain(&mut c, d, &mut src);
    }
    let mut end = None;
    while let Some(e) = c.poll_event() {
        if let TransferEvent::Finished { stats, result } = e {
            end = Some((stats, result));
        }
    }
    let (stats, result) = end.expect("finished");
    assert!(
        matches!(result, Err(TransferError::Timeout { .. })),
        "{result:?}"
    );
    assert_eq!(stats.blocks, 1, "blocks delivered before the end");
}

/// Settings at the far end of `Duration` (a library user's, unchecked) make deadlines stop at
/// the end of time, never overflow: the transfer still gives up after its retries.
#[test]
fn huge_timeouts_saturate_instead_of_overflowing() {
    let mut lim = rule_limits();
    lim.config = wirekit::tftp::Config::new(Duration::MAX, Duration::MAX, 2);
    lim.unanswered_timeout = Duration::MAX;
    let mut t = server(
        Direction::Read,
        Mode::Octet,
        Ask::default(),
        &file(2000),
        &lim,
    );
    assert_eq!(blocks(&t.drain(T0)), [1]);
    t.feed(at(1), client_addr(), &ack(1));
    assert_eq!(blocks(&t.drain(at(1))), [2]);
    let mut expiries = 0;
    while let Some(d) = t.poll_timeout() {
        t.handle_timeout(d);
        t.drain(d);
        expiries += 1;
        assert!(expiries < 100, "deadline {d:?} keeps coming");
    }
    let end = finished(&mut t);
    assert!(
        matches!(end, Some(Err(TransferError::Timeout { retries: 2 }))),
        "{end:?} after {expiries} expiries"
    );
}
