//! The client's rules, one named test each, driving a client `Transfer` with crafted
//! datagrams on a virtual clock: which tsize a request carries, the size the server
//! announced (tsize) and the client's own limit (`max_size`) hold a download, an OACK that
//! does not parse is refused at once, and a download ends at its final ACK unless asked
//! to dally.

mod sim;

use std::net::SocketAddr;

use sim::{
    ServerSide, ack, client_addr, data, drain_client, error_code, ms, rule_config, server_addr,
    transfer_addr,
};
use wirekit::tftp::{
    Blksize, ClientRequest, Direction, ErrorCode, Instant, Mode, Options, Packet, Stats, Storage,
    StorageError, Transfer, TransferError, TransferEvent, Windowsize,
};

const T0: Instant = Instant::ZERO;

fn oack(options: Options<'_>) -> Vec<u8> {
    Packet::Oack(options).to_vec().unwrap()
}

fn oack_tsize(tsize: u64) -> Vec<u8> {
    oack({
        let mut options = Options::default();
        options.tsize = Some(tsize);
        options
    })
}

/// A download asking for tsize (and, given, a block size and a limit), its request sent.
fn download(blksize: Option<u64>, max_size: Option<u64>, f: &mut Vec<u8>) -> Transfer {
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.tsize = true;
    req.blksize = blksize.map(|b| Blksize::new(b).unwrap());
    req.max_size = max_size;
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    let sent = drain(&mut c, T0, f);
    assert_eq!(sent.len(), 1, "the request");
    c
}

/// Everything the client wants to send now.
fn drain<S: Storage + ?Sized>(
    t: &mut Transfer,
    now: Instant,
    storage: &mut S,
) -> Vec<(SocketAddr, Vec<u8>)> {
    drain_client(t, now, storage, 1000)
}

/// How the client ended, if it did since the last call.
fn finished(t: &mut Transfer) -> Option<Result<Stats, TransferError>> {
    let mut r = None;
    while let Some(e) = t.poll_event() {
        if let TransferEvent::Finished { stats, result } = e {
            assert!(r.is_none(), "two Finished events");
            r = Some(result.map(|()| stats));
        }
    }
    r
}

/// The ERROR code of a datagram, or a panic naming what it was.
/// The client sent exactly one ERROR, with `code`, to the server's transfer port, and is
/// closed: no timer, nothing more to send.
fn assert_refused(c: &mut Transfer, now: Instant, f: &mut Vec<u8>, code: ErrorCode) {
    let out = drain(c, now, f);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, transfer_addr(), "to the server's transfer port");
    assert_eq!(error_code(&out[0].1), code);
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
}

fn block(n: usize, fill: u8) -> Vec<u8> {
    vec![fill; n]
}

// --- The size the server announced (tsize) --------------------------------------------

#[test]
fn more_data_than_announced_in_the_first_block_is_refused_with_error_3() {
    let mut f = Vec::new();
    let mut c = download(None, None, &mut f);
    c.handle_datagram(ms(1), transfer_addr(), &oack_tsize(100), &mut f);
    assert_eq!(drain(&mut c, ms(1), &mut f), [(transfer_addr(), ack(0))]);
    // A full block of 512: the server means to send more than the 100 it announced.
    c.handle_datagram(ms(2), transfer_addr(), &data(1, &block(512, 1)), &mut f);
    assert_refused(&mut c, ms(2), &mut f, ErrorCode::DiskFull);
    assert_eq!(
        finished(&mut c).unwrap().unwrap_err(),
        TransferError::SizeMismatch {
            announced: 100,
            received: 512
        }
    );
    assert!(f.is_empty(), "the block that broke the rule is not stored");
}

#[test]
fn more_data_than_announced_in_a_later_block_stops_there() {
    let mut f = Vec::new();
    let mut c = download(None, None, &mut f);
    c.handle_datagram(ms(1), transfer_addr(), &oack_tsize(1000), &mut f);
    drain(&mut c, ms(1), &mut f);
    c.handle_datagram(ms(2), transfer_addr(), &data(1, &block(512, 1)), &mut f);
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(1))]);
    // 1000 announced: block 2 must be the final 488 bytes, not another full block.
    c.handle_datagram(ms(3), transfer_addr(), &data(2, &block(512, 2)), &mut f);
    assert_refused(&mut c, ms(3), &mut f, ErrorCode::DiskFull);
    let err = finished(&mut c).unwrap().unwrap_err();
    assert_eq!(
        err,
        TransferError::SizeMismatch {
            announced: 1000,
            received: 1024
        }
    );
    assert!(
        err.to_string().contains("more than the 1000 bytes"),
        "{err}"
    );
    assert_eq!(f, block(512, 1));
    // Anything the server sends afterwards is ignored.
    c.handle_datagram(ms(4), transfer_addr(), &data(3, &block(512, 3)), &mut f);
    assert!(drain(&mut c, ms(4), &mut f).is_empty());
    assert_eq!(f.len(), 512);
}

#[test]
fn endless_data_after_a_tsize_stops_at_the_announced_size() {
    let mut f = Vec::new();
    let mut c = download(Some(8), None, &mut f);
    let o = oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(8));
        options.tsize = Some(40);
        options
    });
    c.handle_datagram(ms(1), transfer_addr(), &o, &mut f);
    drain(&mut c, ms(1), &mut f);
    let mut refused_at = None;
    for b in 1..=1000u16 {
        c.handle_datagram(ms(2), transfer_addr(), &data(b, &[b as u8; 8]), &mut f);
        if let Some(r) = finished(&mut c) {
            assert!(r.is_err());
            refused_at = Some(b);
            break;
        }
    }
    // Blocks 1-5 are the 40 bytes; a full block 6 would be 48.
    assert_eq!(refused_at, Some(6));
    assert_eq!(f.len(), 40);
}

#[test]
fn a_transfer_ending_short_of_the_announced_size_fails_without_the_final_ack() {
    let mut f = Vec::new();
    let mut c = download(None, None, &mut f);
    c.handle_datagram(ms(1), transfer_addr(), &oack_tsize(5000), &mut f);
    drain(&mut c, ms(1), &mut f);
    c.handle_datagram(ms(2), transfer_addr(), &data(1, &block(100, 1)), &mut f);
    // Not ACK 1, which would tell the server the file arrived: an ERROR.
    assert_refused(&mut c, ms(2), &mut f, ErrorCode::NotDefined);
    let err = finished(&mut c).unwrap().unwrap_err();
    assert_eq!(
        err,
        TransferError::SizeMismatch {
            announced: 5000,
            received: 100
        }
    );
    assert!(
        err.to_string().contains("after 100 of the 5000 bytes"),
        "{err}"
    );
    assert!(f.is_empty(), "the final block is not stored");
}

#[test]
fn a_file_of_exactly_the_announced_size_downloads() {
    // 1024 bytes in blocks of 512: two full blocks and the empty one that ends it.
    let mut f = Vec::new();
    let mut c = download(None, None, &mut f);
    c.handle_datagram(ms(1), transfer_addr(), &oack_tsize(1024), &mut f);
    drain(&mut c, ms(1), &mut f);
    for (b, payload) in [(1, block(512, 1)), (2, block(512, 2)), (3, Vec::new())] {
        c.handle_datagram(ms(2), transfer_addr(), &data(b, &payload), &mut f);
        assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(b))]);
    }
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 1024);
    assert_eq!(f.len(), 1024);
    // An empty file announced as such.
    let mut f = Vec::new();
    let mut c = download(None, None, &mut f);
    c.handle_datagram(ms(1), transfer_addr(), &oack_tsize(0), &mut f);
    drain(&mut c, ms(1), &mut f);
    c.handle_datagram(ms(2), transfer_addr(), &data(1, &[]), &mut f);
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(1))]);
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 0);
}

#[test]
fn repeated_and_out_of_order_blocks_do_not_count_against_the_size() {
    let mut f = Vec::new();
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.tsize = true;
    req.blksize = Some(Blksize::new(8).unwrap());
    req.windowsize = Some(Windowsize::new(4).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut f);
    let o = oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(8));
        options.windowsize = Some(Windowsize::new(4));
        options.tsize = Some(20);
        options
    });
    c.handle_datagram(ms(1), transfer_addr(), &o, &mut f);
    drain(&mut c, ms(1), &mut f);
    // Block 2 before 1 (a gap), 1, 1 again, 2, then the final 4 bytes.
    for (b, payload) in [
        (2, block(8, 2)),
        (1, block(8, 1)),
        (1, block(8, 1)),
        (2, block(8, 2)),
        (3, block(4, 3)),
    ] {
        c.handle_datagram(ms(2), transfer_addr(), &data(b, &payload), &mut f);
        drain(&mut c, ms(2), &mut f);
    }
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 20);
    assert_eq!(f.len(), 20);
}

#[test]
fn netascii_downloads_neither_ask_for_tsize_nor_are_held_to_one() {
    // tsize is ill-defined in netascii: line ends change size on the wire.
    let mut f = Vec::new();
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.mode = Mode::Netascii;
    req.tsize = true;
    req.blksize = Some(Blksize::new(1024).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    let sent = drain(&mut c, T0, &mut f);
    let asked = request_options(&sent[0].1);
    assert_eq!(
        (asked.tsize, asked.blksize),
        (None, Some(Ok(Blksize::new(1024).unwrap())))
    );
    c.handle_datagram(ms(1), transfer_addr(), &data(1, b"a\r\nb\r\nc"), &mut f);
    assert_eq!(drain(&mut c, ms(1), &mut f), [(transfer_addr(), ack(1))]);
    assert!(finished(&mut c).unwrap().is_ok());
    assert_eq!(f, b"a\nb\nc");
}

// --- The client's limit (max_size) --------------------------------------------------------

#[test]
fn an_oack_announcing_more_than_the_limit_is_refused_with_error_8() {
    let mut f = Vec::new();
    let mut c = download(None, Some(1000), &mut f);
    c.handle_datagram(ms(1), transfer_addr(), &oack_tsize(1001), &mut f);
    // No ACK 0: the download never starts.
    assert_refused(&mut c, ms(1), &mut f, ErrorCode::OptionNegotiation);
    let err = finished(&mut c).unwrap().unwrap_err();
    assert_eq!(
        err,
        TransferError::TooLarge {
            limit: 1000,
            announced: Some(1001)
        }
    );
    assert!(err.to_string().contains("1001 bytes"), "{err}");
    assert!(f.is_empty());
}

#[test]
fn an_oack_announcing_exactly_the_limit_is_accepted() {
    let mut f = Vec::new();
    let mut c = download(None, Some(100), &mut f);
    c.handle_datagram(ms(1), transfer_addr(), &oack_tsize(100), &mut f);
    assert_eq!(drain(&mut c, ms(1), &mut f), [(transfer_addr(), ack(0))]);
    c.handle_datagram(ms(2), transfer_addr(), &data(1, &block(100, 1)), &mut f);
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(1))]);
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 100);
}

#[test]
fn endless_data_without_tsize_stops_at_the_limit_with_error_3() {
    // A server that ignores the options and answers with DATA 1 at once, then never ends.
    let mut f = Vec::new();
    let mut c = download(None, Some(2048), &mut f);
    let mut refused_at = None;
    for b in 1..=1000u16 {
        c.handle_datagram(
            ms(2),
            transfer_addr(),
            &data(b, &block(512, b as u8)),
            &mut f,
        );
        let out = drain(&mut c, ms(2), &mut f);
        if let Some(r) = finished(&mut c) {
            assert_eq!(out.len(), 1);
            assert_eq!(error_code(&out[0].1), ErrorCode::DiskFull);
            assert_eq!(
                r.unwrap_err(),
                TransferError::TooLarge {
                    limit: 2048,
                    announced: None
                }
            );
            refused_at = Some(b);
            break;
        }
        assert_eq!(out, [(transfer_addr(), ack(b))]);
    }
    assert_eq!(refused_at, Some(5));
    assert_eq!(f.len(), 2048, "nothing past the limit is stored");
    assert!(c.is_closed());
}

#[test]
fn a_file_of_exactly_the_limit_downloads_without_tsize() {
    let mut f = Vec::new();
    let mut c = download(None, Some(1024), &mut f);
    for (b, payload) in [(1, block(512, 1)), (2, block(512, 2)), (3, Vec::new())] {
        c.handle_datagram(ms(2), transfer_addr(), &data(b, &payload), &mut f);
        assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(b))]);
    }
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 1024);
}

#[test]
fn the_limit_counts_netascii_bytes_on_the_wire() {
    let mut f = Vec::new();
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.mode = Mode::Netascii;
    req.blksize = Some(Blksize::new(8).unwrap());
    req.max_size = Some(10);
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut f);
    let o = oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(8));
        options
    });
    c.handle_datagram(ms(1), transfer_addr(), &o, &mut f);
    drain(&mut c, ms(1), &mut f);
    c.handle_datagram(ms(2), transfer_addr(), &data(1, b"a\r\nb\r\ncd"), &mut f);
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(1))]);
    // 8 + 3 wire bytes pass 10, though they would decode to 9.
    c.handle_datagram(ms(3), transfer_addr(), &data(2, b"e\r\n"), &mut f);
    assert_refused(&mut c, ms(3), &mut f, ErrorCode::DiskFull);
    assert!(matches!(
        finished(&mut c).unwrap(),
        Err(TransferError::TooLarge { limit: 10, .. })
    ));
    assert_eq!(f, b"a\nb\ncd");
}

#[test]
fn the_limit_does_not_apply_to_uploads() {
    let mut file = block(2000, 9);
    let mut req = ClientRequest::new(Direction::Write, "f");
    req.max_size = Some(10);
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut file);
    c.handle_datagram(ms(1), transfer_addr(), &ack(0), &mut file);
    for b in 1..=4u16 {
        let out = drain(&mut c, ms(1), &mut file);
        assert_eq!(out.len(), 1);
        assert!(matches!(Packet::parse(&out[0].1), Ok(Packet::Data { block, .. }) if block == b));
        c.handle_datagram(ms(1), transfer_addr(), &ack(b), &mut file);
    }
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 2000);
}

/// Runs a client download against the real server endpoint serving `file` until the
/// client ends; returns its result and what it stored.
fn against_the_endpoint(
    file: Vec<u8>,
    max_size: Option<u64>,
) -> (Result<Stats, TransferError>, Vec<u8>) {
    let mut s = ServerSide::serving(file);
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.tsize = true;
    req.max_size = max_size;
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    let mut got = Vec::new();
    let mut now = T0;
    for _ in 0..10_000 {
        for (to, bytes) in drain(&mut c, now, &mut got) {
            if to == server_addr() {
                s.request(now, client_addr(), &bytes);
            } else {
                s.feed(now, client_addr(), &bytes);
            }
        }
        if let Some(r) = finished(&mut c) {
            return (r, got);
        }
        let sent = s.drain_sent(now);
        if sent.is_empty() {
            now = c.poll_timeout().expect("a running client has a deadline");
            c.handle_timeout(now);
        }
        for d in sent {
            c.handle_datagram(now, d.from, &d.bytes, &mut got);
        }
    }
    panic!("the download did not end");
}

#[test]
fn against_a_real_server_the_limit_admits_a_file_of_its_size_and_refuses_one_more_byte() {
    let file: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let (r, got) = against_the_endpoint(file.clone(), Some(3000));
    assert_eq!(r.unwrap().bytes, 3000);
    assert_eq!(got, file);

    let (r, got) = against_the_endpoint(file, Some(2999));
    assert_eq!(
        r.unwrap_err(),
        TransferError::TooLarge {
            limit: 2999,
            announced: Some(3000)
        }
    );
    assert!(got.is_empty());
}

// --- Which tsize a request carries ---------------------------------------------------------

/// The options of a request datagram.
fn request_options(datagram: &[u8]) -> Options<'_> {
    match Packet::parse(datagram).unwrap() {
        Packet::Rrq(r) | Packet::Wrq(r) => r.options,
        p => panic!("not a request: {p:?}"),
    }
}

/// The tsize of the request a client with `req` sends first.
fn tsize_sent(req: &ClientRequest<'_>) -> Option<u64> {
    let mut c = Transfer::client(T0, server_addr(), req, rule_config()).unwrap();
    let sent = drain(&mut c, T0, &mut Vec::new());
    request_options(&sent[0].1).tsize
}

#[test]
fn a_read_asks_for_tsize_with_0_and_a_write_announces_its_known_size() {
    let mut read = ClientRequest::new(Direction::Read, "f");
    read.tsize = true;
    assert_eq!(tsize_sent(&read), Some(0), "RFC 2349: a read asks with 0");
    // A size given to a read is not sent: the server is the one that knows it.
    read.size = Some(5000);
    assert_eq!(tsize_sent(&read), Some(0));

    let mut write = ClientRequest::new(Direction::Write, "f");
    write.tsize = true;
    write.size = Some(5000);
    assert_eq!(tsize_sent(&write), Some(5000));
    // Not known (a stream): nothing is announced, rather than a 0 a server would hold
    // the upload to.
    write.size = None;
    assert_eq!(tsize_sent(&write), None);

    // Not asked: neither sends one.
    write.size = Some(5000);
    write.tsize = false;
    read.tsize = false;
    assert_eq!((tsize_sent(&read), tsize_sent(&write)), (None, None));
}

#[test]
fn netascii_uploads_do_not_announce_their_size() {
    // The file's size is not the bytes on the wire, where each line end takes two.
    let mut write = ClientRequest::new(Direction::Write, "f");
    write.mode = Mode::Netascii;
    write.tsize = true;
    write.size = Some(5000);
    assert_eq!(tsize_sent(&write), None);
}

#[test]
fn an_unasked_tsize_in_a_netascii_oack_is_refused_as_any_unasked_option() {
    let mut f = Vec::new();
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.mode = Mode::Netascii;
    req.tsize = true;
    req.blksize = Some(Blksize::new(1024).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut f);
    let o = oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(1024));
        options.tsize = Some(3);
        options
    });
    c.handle_datagram(ms(1), transfer_addr(), &o, &mut f);
    assert_refused(&mut c, ms(1), &mut f, ErrorCode::OptionNegotiation);
    assert!(matches!(
        finished(&mut c).unwrap(),
        Err(TransferError::BadOack(_))
    ));
}

// --- How a download ends ----------------------------------------------------------------------

/// A download of 515 bytes in 512-byte blocks (the server ignored the options), up to
/// the final block's arrival at 2 ms: its final ACK is due.
fn download_to_its_final_block(dally: bool, f: &mut Vec<u8>) -> Transfer {
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.dally = dally;
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, f);
    c.handle_datagram(ms(1), transfer_addr(), &data(1, &block(512, 1)), f);
    assert_eq!(drain(&mut c, ms(1), f), [(transfer_addr(), ack(1))]);
    c.handle_datagram(ms(2), transfer_addr(), &data(2, &block(3, 2)), f);
    c
}

#[test]
fn a_download_closes_once_its_final_ack_is_out() {
    let mut f = Vec::new();
    let mut c = download_to_its_final_block(false, &mut f);
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 515);
    assert!(!c.is_closed(), "the final ACK is still to send");
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(2))]);
    assert!(c.is_closed(), "no dally unless asked");
    assert_eq!(c.poll_timeout(), None);
    // A repeated final DATA finds the transfer gone (on sockets: its port closed).
    c.handle_datagram(ms(1002), transfer_addr(), &data(2, &block(3, 2)), &mut f);
    assert!(drain(&mut c, ms(1002), &mut f).is_empty());
    assert_eq!(f.len(), 515);
}

#[test]
fn a_download_asked_to_dally_re_acks_a_repeated_final_data_then_ends_by_itself() {
    let mut f = Vec::new();
    let mut c = download_to_its_final_block(true, &mut f);
    // The file is complete and said so at once; the dally is only for the server's sake.
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 515);
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(2))]);
    assert!(!c.is_closed(), "dallying");
    // Twice the (1 s) timeout: long enough to hear the server repeat after its own.
    let end = c.poll_timeout().unwrap();
    assert_eq!(end, ms(2002));
    // Our final ACK was lost; the server repeats its final DATA after its timeout.
    c.handle_datagram(ms(1002), transfer_addr(), &data(2, &block(3, 2)), &mut f);
    assert_eq!(drain(&mut c, ms(1002), &mut f), [(transfer_addr(), ack(2))]);
    assert_eq!(f.len(), 515, "stored once");
    assert!(finished(&mut c).is_none(), "one Finished only");
    // Each repeat renews the stay; an earlier block is no repeat of the last.
    assert_eq!(c.poll_timeout(), Some(ms(3002)));
    c.handle_datagram(ms(1500), transfer_addr(), &data(1, &block(512, 1)), &mut f);
    assert!(drain(&mut c, ms(1500), &mut f).is_empty());
    assert_eq!(c.poll_timeout(), Some(ms(3002)));
    // Then the server is quiet: the dally ends on its own, with nothing to send.
    c.handle_timeout(ms(3001));
    assert!(!c.is_closed(), "not before its deadline");
    c.handle_timeout(ms(3002));
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
    assert!(drain(&mut c, ms(3002), &mut f).is_empty());
    assert!(finished(&mut c).is_none());
}

#[test]
fn a_dallying_download_stops_at_once_when_aborted_and_sends_nothing() {
    let mut f = Vec::new();
    let mut c = download_to_its_final_block(true, &mut f);
    drain(&mut c, ms(2), &mut f);
    c.abort(ms(3), ErrorCode::NotDefined, "cancelled by the user");
    assert!(c.is_closed(), "its outcome is settled");
    assert!(
        drain(&mut c, ms(3), &mut f).is_empty(),
        "no ERROR after a success"
    );
    assert!(finished(&mut c).unwrap().is_ok());
}

#[test]
fn an_upload_asked_to_dally_closes_at_its_final_ack() {
    // Nothing to repeat: a sender is done when the server acknowledged the last block.
    let mut file = block(100, 9);
    let mut req = ClientRequest::new(Direction::Write, "f");
    req.dally = true;
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut file);
    c.handle_datagram(ms(1), transfer_addr(), &ack(0), &mut file);
    assert_eq!(
        drain(&mut c, ms(1), &mut file),
        [(transfer_addr(), data(1, &file))]
    );
    c.handle_datagram(ms(2), transfer_addr(), &ack(1), &mut file);
    assert_eq!(finished(&mut c).unwrap().unwrap().bytes, 100);
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
}

// --- An OACK that does not parse ------------------------------------------------------------

/// A download asking for a block size, its request sent.
fn asking_blksize(f: &mut Vec<u8>) -> Transfer {
    let mut req = ClientRequest::new(Direction::Read, "f");
    req.blksize = Some(Blksize::new(1428).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, f);
    c
}

#[test]
fn a_malformed_oack_is_refused_with_error_8_at_once() {
    for bad in [
        &b"\x00\x06blksize\x00"[..],         // a name without its value
        &b"\x00\x06blksize\x001428"[..],     // a value without its NUL
        &b"\x00\x06blksize\x00lots\x00"[..], // not a number
        &b"\x00\x06\x00512\x00"[..],         // an empty name
        &b"\x00\x06tsize\x0099999999999999999999\x00"[..], // over 64 bits
    ] {
        let mut f = Vec::new();
        let mut c = asking_blksize(&mut f);
        assert!(Packet::parse(bad).is_err(), "{bad:?} parses");
        c.handle_datagram(ms(1), transfer_addr(), bad, &mut f);
        // At once: the ERROR goes out now, not after the retransmissions.
        assert_refused(&mut c, ms(1), &mut f, ErrorCode::OptionNegotiation);
        let err = finished(&mut c).unwrap().unwrap_err();
        assert!(
            matches!(err, TransferError::MalformedOack(_)),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("OACK"), "{err}");
        assert_eq!(c.peer(), transfer_addr());
    }
}

#[test]
fn a_malformed_oack_from_another_address_is_a_stranger() {
    let mut f = Vec::new();
    let mut c = asking_blksize(&mut f);
    let elsewhere: SocketAddr = "10.0.0.9:6000".parse().unwrap();
    c.handle_datagram(ms(1), elsewhere, b"\x00\x06blksize\x00", &mut f);
    let out = drain(&mut c, ms(1), &mut f);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, elsewhere);
    assert_eq!(error_code(&out[0].1), ErrorCode::UnknownTransferId);
    assert!(finished(&mut c).is_none(), "the transfer goes on");
    // The real answer still works.
    let o = oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(1428));
        options
    });
    c.handle_datagram(ms(2), transfer_addr(), &o, &mut f);
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(0))]);
}

#[test]
fn other_malformed_datagrams_from_the_server_are_still_ignored() {
    let mut f = Vec::new();
    let mut c = asking_blksize(&mut f);
    for junk in [&b"\x00\x03\x00"[..], b"\x00", b"\x00\x09xx", b""] {
        c.handle_datagram(ms(1), transfer_addr(), junk, &mut f);
        assert!(drain(&mut c, ms(1), &mut f).is_empty(), "{junk:?}");
        assert!(finished(&mut c).is_none());
    }
    // After the first answer, a repeated OACK that does not parse is junk too.
    let o = oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(1428));
        options
    });
    c.handle_datagram(ms(2), transfer_addr(), &o, &mut f);
    assert_eq!(drain(&mut c, ms(2), &mut f), [(transfer_addr(), ack(0))]);
    c.handle_datagram(ms(3), transfer_addr(), b"\x00\x06blksize\x00", &mut f);
    assert!(drain(&mut c, ms(3), &mut f).is_empty());
    assert!(finished(&mut c).is_none());
}

// --- Deadlines -------------------------------------------------------------------------------

#[test]
fn an_upload_closed_while_paused_between_bursts_has_no_deadline() {
    let mut file = block(200, 5);
    let mut req = ClientRequest::new(Direction::Write, "f");
    req.blksize = Some(Blksize::new(8).unwrap());
    req.windowsize = Some(Windowsize::new(8).unwrap());
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut file);
    let o = oack({
        let mut options = Options::default();
        options.blksize = Some(Blksize::new(8));
        options.windowsize = Some(Windowsize::new(8));
        options
    });
    c.handle_datagram(ms(1), transfer_addr(), &o, &mut file);
    assert_eq!(drain(&mut c, ms(1), &mut file).len(), 8, "a whole window");
    // The window is lost: after the timeout it goes out again in bursts, with a pause.
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    let burst = drain(&mut c, at, &mut file);
    assert!(!burst.is_empty() && burst.len() < 8, "{}", burst.len());
    // The server gives up meanwhile: the transfer is over, and no timer outlives it.
    let error = Packet::Error {
        code: ErrorCode::NotDefined,
        message: wirekit::tftp::Text::from("gone"),
    }
    .to_vec()
    .unwrap();
    c.handle_datagram(at, transfer_addr(), &error, &mut file);
    assert!(finished(&mut c).unwrap().is_err());
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
}

// --- Gathered writes ------------------------------------------------------------------------

/// Gathers what it is given; `flush` moves it to `file`, or fails with `fail` when set.
#[derive(Default)]
struct Gathering {
    gathered: Vec<u8>,
    file: Vec<u8>,
    flushes: usize,
    fail: Option<StorageError>,
}

impl Storage for Gathering {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        self.file.as_slice().read_at(offset, buf)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.gathered.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.flushes += 1;
        if let Some(e) = self.fail.clone() {
            return Err(e);
        }
        self.file.append(&mut self.gathered);
        Ok(())
    }
}

#[test]
fn a_receiving_transfer_flushes_its_storage_when_told() {
    let mut g = Gathering::default();
    let req = ClientRequest::new(Direction::Read, "f");
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut g);
    c.handle_datagram(ms(1), transfer_addr(), &data(1, &[7; 512]), &mut g);
    assert_eq!(drain(&mut c, ms(1), &mut g), [(transfer_addr(), ack(1))]);
    assert_eq!(
        (g.gathered.len(), g.file.len()),
        (512, 0),
        "gathered, not written"
    );
    assert!(
        !c.flush_storage(ms(1), &mut g),
        "a flush that worked ends nothing"
    );
    assert_eq!((g.gathered.len(), g.file.len()), (0, 512));
    assert!(finished(&mut c).is_none(), "the download goes on");
}

#[test]
fn a_failed_flush_ends_the_download_with_the_storage_error() {
    let mut g = Gathering::default();
    let req = ClientRequest::new(Direction::Read, "f");
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut g);
    c.handle_datagram(ms(1), transfer_addr(), &data(1, &[7; 512]), &mut g);
    drain(&mut c, ms(1), &mut g);
    let full = StorageError::new(ErrorCode::DiskFull, "disk full");
    g.fail = Some(full.clone());
    assert!(
        c.flush_storage(ms(2), &mut g),
        "the failed flush ended the download"
    );
    assert_refused(&mut c, ms(2), &mut Vec::new(), ErrorCode::DiskFull);
    assert_eq!(finished(&mut c), Some(Err(TransferError::Storage(full))));
}

#[test]
fn a_sending_transfer_does_not_flush() {
    let mut g = Gathering {
        file: vec![1; 100],
        ..Gathering::default()
    };
    let req = ClientRequest::new(Direction::Write, "f");
    let mut c = Transfer::client(T0, server_addr(), &req, rule_config()).unwrap();
    drain(&mut c, T0, &mut g);
    c.handle_datagram(ms(1), transfer_addr(), &ack(0), &mut g);
    assert!(!c.flush_storage(ms(1), &mut g));
    assert_eq!(g.flushes, 0);
}
