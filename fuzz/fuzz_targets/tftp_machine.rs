//! Arbitrary datagrams (raw and structured), sources and clock steps into a client-side or
//! server-side transfer machine.
//!
//! Checked after every step: no panic; at most one window plus a few control packets go
//! out per step; the events queue stays short; the receiver's storage only ever grows by
//! the payload of the DATA just delivered, and only when that DATA is the next block in
//! order from the peer (and nothing after the final block); the sender's DATA carry the
//! file's bytes at the block's offset; and, once the inputs run out, timeouts alone close
//! the machine in a bounded number of steps.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wirekit::tftp::server::{Admission, Limits, Policy, Refusal, admit};
use wirekit::tftp::{
    Blksize, ClientRequest, Config, Direction, Event, Mode, Options, Packet, Request, Text,
    Timeout, Transfer, Windowsize,
};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Side {
    Client,
    Server,
}

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    /// Raw bytes from the peer or a stranger.
    Raw { stranger: bool, bytes: &'a [u8] },
    /// A structured packet, encoded.
    Packet { stranger: bool, packet: Packet<'a> },
    /// A DATA from the peer, `ahead` blocks after the next one expected (0: in order).
    Data { ahead: u8, len: u16, fill: u8 },
    /// An ACK from the peer, near the blocks sent so far.
    Ack { back: u8 },
    /// The clock moves on.
    Tick { ms: u16 },
    /// The clock jumps to the machine's deadline.
    Deadline,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    side: Side,
    read: bool,
    netascii: bool,
    blksize: Option<Blksize>,
    windowsize: Option<u8>,
    timeout: Option<Timeout>,
    tsize: bool,
    /// Server side: admit these bytes instead of a well-formed request.
    raw_request: Option<&'a [u8]>,
    file_len: u16,
    ops: Vec<Op<'a>>,
}

struct Allow(u64);

impl Policy for Allow {
    fn read(&mut self, _: SocketAddr, _: Text<'_>) -> Result<Option<u64>, Refusal> {
        Ok(Some(self.0))
    }
    fn write(&mut self, _: SocketAddr, _: Text<'_>, _: Option<u64>) -> Result<(), Refusal> {
        Ok(())
    }
}

const MAX_WINDOW: usize = 64;
/// One window, the ERROR 5 queue and a control packet.
const MAX_TRANSMITS_PER_STEP: usize = MAX_WINDOW + 8 + 2;

struct Harness {
    t: Transfer,
    peer: SocketAddr,
    /// The client's request goes to the server's port 69, not the transfer port.
    request_port: SocketAddr,
    stranger: SocketAddr,
    now: Duration,
    /// True when this machine receives DATA.
    receiving: bool,
    netascii: bool,
    file: Vec<u8>,
    store: Vec<u8>,
    /// Receiver model: the next block expected (from 1), whether the final one came, and
    /// the blksize in force (None until the client learns it).
    expected: u64,
    done: bool,
    blksize: Option<usize>,
    /// Sender model: the highest wire block seen going out (for ACK ops).
    last_sent: u16,
    buf: Vec<u8>,
}

impl Harness {
    fn drain(&mut self) {
        let mut n = 0;
        while let Some(tx) = self
            .t
            .poll_transmit(self.now, &mut self.file, &mut self.buf)
        {
            n += 1;
            assert!(n <= MAX_TRANSMITS_PER_STEP, "transmit flood");
            let bytes = &self.buf[..tx.len];
            let packet = Packet::parse(bytes).expect("the machine sent a malformed packet");
            if tx.destination != self.peer && tx.destination != self.request_port {
                assert!(
                    matches!(packet, Packet::Error { .. }),
                    "only ERROR goes to a stranger"
                );
                continue;
            }
            if let Packet::Data { block, data } = packet {
                assert!(!self.receiving, "a receiver sent DATA");
                self.last_sent = block;
                if !self.netascii && block != 0 {
                    let blk = self.blksize.expect("DATA before negotiation");
                    assert!(data.len() <= blk);
                    let start = (usize::from(block) - 1) * blk;
                    let end = (start + blk).min(self.file.len());
                    let want = self.file.get(start..end).unwrap_or_default();
                    assert_eq!(data, want, "DATA {block} does not hold the file's bytes");
                }
            }
        }
        self.events();
        if self.t.is_closed() {
            let mut b = [0u8; 65536];
            assert!(
                self.t
                    .poll_transmit(self.now, &mut self.file, &mut b)
                    .is_none()
            );
        }
    }

    fn events(&mut self) {
        let mut events = 0;
        while let Some(e) = self.t.poll_event() {
            events += 1;
            assert!(events <= 4, "event flood");
            match e {
                Event::Negotiated(n) => self.blksize = Some(usize::from(n.blksize)),
                Event::Finished(Ok(_)) if self.receiving => self.done = true,
                Event::Finished(_) => {}
            }
        }
    }

    fn deliver(&mut self, from: SocketAddr, bytes: &[u8]) {
        let before = self.store.len();
        let data = match Packet::parse(bytes) {
            Ok(Packet::Data { block, data }) if from == self.peer => Some((block, data)),
            _ => None,
        };
        let was_done = self.done;
        self.t
            .handle_datagram(self.now, from, bytes, &mut self.store);
        // The client learns its blksize from the first answer; a receiver's final block
        // shows as `Finished(Ok)`.
        self.events();
        let grown = self.store.get(before..).unwrap_or_default();
        if grown.is_empty() {
            return;
        }
        let (block, payload) = data.expect("storage grew without a DATA from the peer");
        assert!(self.receiving, "a sender stored data");
        assert!(!was_done, "data stored after the final block");
        assert_eq!(block, self.expected as u16, "block stored out of order");
        let blk = self.blksize.expect("data stored before negotiation");
        assert!(payload.len() <= blk, "oversized block stored");
        if self.netascii {
            // Decoding never grows the text, except a CR held over from the last block.
            assert!(grown.len() <= payload.len() + 1);
        } else {
            assert_eq!(grown, payload, "stored bytes differ from the payload");
        }
        self.expected += 1;
        assert_eq!(
            payload.len() < blk,
            self.done,
            "final block and end disagree"
        );
        assert!(self.store.len() <= (self.expected as usize) * blk + 1);
    }
}

fuzz_target!(|input: Input<'_>| {
    let client_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let server_addr: SocketAddr = "10.0.0.2:69".parse().unwrap();
    let transfer_addr: SocketAddr = "10.0.0.2:6000".parse().unwrap();
    let stranger: SocketAddr = "10.9.9.9:4000".parse().unwrap();
    let direction = if input.read {
        Direction::Read
    } else {
        Direction::Write
    };
    let mode = if input.netascii {
        Mode::Netascii
    } else {
        Mode::Octet
    };
    let windowsize = input
        .windowsize
        .map(|w| Windowsize::new(u64::from(w) % MAX_WINDOW as u64 + 1).unwrap());
    let file: Vec<u8> = (0..usize::from(input.file_len % 4096))
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8)
        .collect();
    let config = Config {
        timeout: Duration::from_secs(1),
        max_timeout: Duration::from_secs(4),
        retries: 3,
    };
    let now = Duration::ZERO;
    let (t, peer, receiving, blksize, netascii) = match input.side {
        Side::Client => {
            let mut req = ClientRequest::new(direction, "f");
            req.mode = mode;
            req.blksize = input.blksize;
            req.windowsize = windowsize;
            req.timeout = input.timeout;
            req.tsize = input.tsize.then_some(file.len() as u64);
            let Ok(t) = Transfer::client(now, server_addr, &req, config) else {
                return;
            };
            (
                t,
                transfer_addr,
                direction == Direction::Read,
                None,
                input.netascii,
            )
        }
        Side::Server => {
            let built;
            let request = match input.raw_request {
                Some(raw) => raw,
                None => {
                    let options = Options {
                        blksize: input.blksize.map(Ok),
                        windowsize: windowsize.map(Ok),
                        timeout: input.timeout.map(Ok),
                        tsize: input.tsize.then_some(0),
                        unknown: Vec::new(),
                    };
                    let r = Request {
                        filename: Text::from("f"),
                        mode,
                        options,
                    };
                    let p = if input.read {
                        Packet::Rrq(r)
                    } else {
                        Packet::Wrq(r)
                    };
                    built = p.to_vec().unwrap();
                    &built[..]
                }
            };
            let limits = Limits {
                config,
                max_windowsize: Windowsize::new(MAX_WINDOW as u64).unwrap(),
                ..Limits::default()
            };
            let mut policy = Allow(file.len() as u64);
            match admit(now, client_addr, request, &limits, &mut policy) {
                Admission::Accepted {
                    transfer,
                    request,
                    direction,
                } => {
                    // The blksize in force: what the request asked, if in range.
                    let blk = match request.options.blksize {
                        Some(Ok(b)) => usize::from(b.get()),
                        Some(Err(e)) if e.value > u64::from(Blksize::MAX.get()) => {
                            usize::from(Blksize::MAX.get())
                        }
                        _ => 512,
                    };
                    let netascii = request.mode == Mode::Netascii;
                    (
                        *transfer,
                        client_addr,
                        direction == Direction::Write,
                        Some(blk),
                        netascii,
                    )
                }
                Admission::Refused { error, .. } => {
                    assert!(matches!(Packet::parse(&error), Ok(Packet::Error { .. })));
                    return;
                }
                Admission::Ignored => return,
            }
        }
    };
    let mut h = Harness {
        t,
        peer,
        request_port: server_addr,
        stranger,
        now,
        receiving,
        netascii,
        file,
        store: Vec::new(),
        expected: 1,
        done: false,
        blksize,
        last_sent: 0,
        buf: vec![0; 65536],
    };
    h.drain();
    for op in input.ops {
        match op {
            Op::Raw { stranger, bytes } => {
                let from = if stranger { h.stranger } else { h.peer };
                h.deliver(from, bytes);
            }
            Op::Packet { stranger, packet } => {
                let Ok(bytes) = packet.to_vec() else { continue };
                let from = if stranger { h.stranger } else { h.peer };
                h.deliver(from, &bytes);
            }
            Op::Data { ahead, len, fill } => {
                let block = (h.expected as u16).wrapping_add(u16::from(ahead % 4));
                let blk = h.blksize.unwrap_or(512);
                let len = usize::from(len) % (blk + 2);
                let payload = vec![fill; len];
                let bytes = Packet::Data {
                    block,
                    data: &payload,
                }
                .to_vec()
                .unwrap();
                h.deliver(h.peer, &bytes);
            }
            Op::Ack { back } => {
                let block = h.last_sent.wrapping_sub(u16::from(back % 8));
                let bytes = Packet::Ack { block }.to_vec().unwrap();
                h.deliver(h.peer, &bytes);
            }
            Op::Tick { ms } => {
                h.now += Duration::from_millis(u64::from(ms));
                h.t.handle_timeout(h.now);
            }
            Op::Deadline => {
                if let Some(d) = h.t.poll_timeout() {
                    h.now = h.now.max(d);
                }
                h.t.handle_timeout(h.now);
            }
        }
        h.drain();
    }
    // Left alone, the machine closes on its own: retries are bounded, the dally ends.
    for _ in 0..64 {
        if h.t.is_closed() {
            break;
        }
        let Some(d) = h.t.poll_timeout() else {
            h.drain();
            continue;
        };
        h.now = h.now.max(d);
        h.t.handle_timeout(h.now);
        h.drain();
    }
    assert!(h.t.is_closed(), "still open after 64 timeouts");
});
