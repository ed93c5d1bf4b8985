//! Arbitrary datagrams (raw and structured), sources and clock steps into a client-side
//! transfer machine, or into the server's endpoint (port per transfer or single port)
//! holding one client's transfer, with other clients' requests on its request port.
//!
//! Checked after every step: no panic; at most one window plus a few control packets go
//! out per transfer per step; the endpoint holds no more transfers than its cap; the
//! receiver's storage only ever grows by the payload of the DATA just delivered, and only
//! when that DATA is the next block in order from the peer (and nothing after the final
//! block); a downloading client never stores more than its limit (`max_size`) or, in octet
//! mode, than the tsize the server announced, and succeeds only with exactly that size;
//! the sender's DATA carry the file's bytes at the block's offset; only ERRORs go
//! to a stranger; and, once the inputs run out, timeouts alone close every transfer in a
//! bounded number of steps.
#![no_main]

// The machine tests' server adapter: it plays the driver around the endpoint and checks
// the endpoint's events for consistency (one start, one end, close after end).
#[path = "../../tests/sim/mod.rs"]
mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sim::{AllowAll, ServerSide, SimFile, client_addr, server_addr, transfer_addr};
use wirekit::tftp::server::{Limits, PortMode, TransferId};
use wirekit::tftp::{Instant, 
    Blksize, ClientRequest, Config, Direction, TransferEvent, Mode, Options, Packet, Request, Text,
    Timeout, Transfer, TransferError, Windowsize,
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
    /// Server side: a datagram on the request port from another client (or, for
    /// `who % 4 == 0`, from the peer itself).
    Listener { who: u8, bytes: &'a [u8] },
    /// Server side: a structured datagram on the request port, as `Listener`.
    ListenerPacket { who: u8, packet: Packet<'a> },
    /// The clock moves on.
    Tick { ms: u16 },
    /// The clock jumps to the machine's deadline.
    Deadline,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    side: Side,
    single_port: bool,
    read: bool,
    netascii: bool,
    blksize: Option<Blksize>,
    windowsize: Option<u8>,
    timeout: Option<Timeout>,
    tsize: bool,
    /// Client side: dally after the final ACK of a download.
    dally: bool,
    /// Server side: admit these bytes instead of a well-formed request.
    /// (`file_len`'s low 12 bits are the file's length; client side, its top 4 bits pick
    /// a `max_size`.)
    raw_request: Option<&'a [u8]>,
    file_len: u16,
    ops: Vec<Op<'a>>,
}

const MAX_WINDOW: usize = 64;
/// One window, the ERROR 5 queue and a control packet, per transfer.
const MAX_TRANSMITS_PER_STEP: usize = MAX_WINDOW + 8 + 2;
/// The endpoint's cap, kept small so that refusals happen.
const MAX_TRANSFERS: usize = 8;

fn is_request(bytes: &[u8]) -> bool {
    matches!(bytes, [0, 1 | 2, ..])
}

/// The machine under test.
enum Machine {
    Client {
        t: Transfer,
        /// What the client receives into.
        store: Vec<u8>,
    },
    Server {
        s: ServerSide,
        /// The peer's transfer, whose storage and DATA the model follows.
        first: TransferId,
        /// Its upload, when it is one.
        upload: Option<SimFile>,
    },
}

struct Harness {
    m: Machine,
    peer: SocketAddr,
    /// The client's request goes to the server's port 69, not the transfer port.
    request_port: SocketAddr,
    stranger: SocketAddr,
    /// Single-port mode: the stranger sent something that looks like a request, so the
    /// server may rightly answer it with more than ERRORs.
    stranger_asked: bool,
    now: Instant,
    /// True when this machine receives DATA.
    receiving: bool,
    netascii: bool,
    file: Vec<u8>,
    /// Receiver model: the next block expected (from 1), whether the final one came, and
    /// the blksize in force (None until the client learns it).
    expected: u64,
    done: bool,
    blksize: Option<usize>,
    /// Sender model: the highest wire block seen going out (for ACK ops).
    last_sent: u16,
    /// Downloading client: its limit, and the tsize the server announced (octet mode).
    max_size: Option<u64>,
    announced: Option<u64>,
    buf: Vec<u8>,
}

impl Harness {
    fn store_len(&self) -> usize {
        match &self.m {
            Machine::Client { store, .. } => store.len(),
            Machine::Server { upload, .. } => upload.as_ref().map_or(0, SimFile::len),
        }
    }

    fn store_tail(&self, from: usize) -> Vec<u8> {
        match &self.m {
            Machine::Client { store, .. } => store.get(from..).unwrap_or_default().to_vec(),
            Machine::Server { upload, .. } => upload
                .as_ref()
                .map(|u| u.data().get(from..).unwrap_or_default().to_vec())
                .unwrap_or_default(),
        }
    }

    /// Single-port server: the model follows the peer's first transfer only while it is
    /// the peer's transfer. A new request from the peer's port replaces it.
    fn model_on(&self) -> bool {
        match &self.m {
            Machine::Client { .. } => true,
            Machine::Server { s, first, .. } => {
                if s.ports != PortMode::Single {
                    return true;
                }
                let replaced = s
                    .started
                    .iter()
                    .any(|id| id != first && s.transfers[id].info.peer == self.peer);
                let abandoned = s.transfers[first]
                    .ended
                    .as_ref()
                    .is_some_and(|(_, r)| r.result == Err(TransferError::Abandoned));
                !replaced && !abandoned
            }
        }
    }

    fn drain(&mut self) {
        let mut sent = Vec::new();
        let mut first_port = None;
        match &mut self.m {
            Machine::Client { t, .. } => {
                while let Some(tx) = t.poll_transmit(self.now, &mut self.file, &mut self.buf) {
                    sent.push((
                        self.request_port,
                        tx.destination,
                        self.buf[..tx.len].to_vec(),
                    ));
                    assert!(sent.len() <= MAX_TRANSMITS_PER_STEP, "transmit flood");
                }
                // What a driver does before it waits (a Vec gathers nothing: a no-op).
                assert!(!t.flush_storage(self.now, &mut self.file), "a Vec cannot fail");
            }
            Machine::Server { s, first, .. } => {
                while let Some(d) = s.poll_transmit(self.now) {
                    sent.push((d.from, d.to, d.bytes.to_vec()));
                    assert!(
                        sent.len() <= (MAX_TRANSFERS + 1) * MAX_TRANSMITS_PER_STEP,
                        "transmit flood"
                    );
                }
                assert!(s.len() <= MAX_TRANSFERS, "over the transfer cap");
                first_port = s.transfers[first].port;
            }
        }
        let model_on = self.model_on();
        for (from, to, bytes) in &sent {
            let packet = Packet::parse(bytes).expect("the machine sent a malformed packet");
            let stranger = match &self.m {
                Machine::Client { .. } => *to != self.peer && *to != self.request_port,
                Machine::Server { .. } => *to == self.stranger && !self.stranger_asked,
            };
            if stranger {
                assert!(
                    matches!(packet, Packet::Error { .. }),
                    "only ERROR goes to a stranger"
                );
                continue;
            }
            // Whose datagram is it? The model follows the peer's (first) transfer only.
            let ours = match &self.m {
                Machine::Client { .. } => true,
                Machine::Server { s, .. } => {
                    *to == self.peer
                        && match s.ports {
                            PortMode::Single => model_on,
                            _ => Some(*from) == first_port,
                        }
                }
            };
            if !ours {
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
        self.check_sizes();
        if let Machine::Client { t, .. } = &mut self.m
            && t.is_closed()
        {
            let mut b = [0u8; 65536];
            assert!(t.poll_transmit(self.now, &mut self.file, &mut b).is_none());
        }
    }

    /// A downloading client stores no more than its limit and the announced tsize.
    fn check_sizes(&self) {
        if let Machine::Client { store, .. } = &self.m {
            let len = store.len() as u64;
            assert!(
                self.max_size.is_none_or(|m| len <= m),
                "stored past the limit"
            );
            assert!(
                self.announced.is_none_or(|a| len <= a),
                "stored past the announced tsize"
            );
        }
    }

    fn events(&mut self) {
        match &mut self.m {
            Machine::Client { t, store } => {
                let mut events = 0;
                while let Some(e) = t.poll_event() {
                    events += 1;
                    assert!(events <= 4, "event flood");
                    match e {
                        TransferEvent::Negotiated(n) => {
                            self.blksize = Some(usize::from(n.blksize));
                            if self.receiving && !self.netascii {
                                self.announced = n.tsize;
                            }
                        }
                        TransferEvent::Finished { result: Ok(()), .. } if self.receiving => {
                            self.done = true;
                            if let Some(a) = self.announced {
                                assert_eq!(store.len() as u64, a, "ended off the announced tsize");
                            }
                        }
                        _ => {}
                    }
                }
            }
            Machine::Server { s, first, .. } => {
                let _ = s.take_ended();
                // A receiver's final block shows as its successful end (commits are
                // automatic, so it comes at once).
                let ended_ok = s.transfers[first]
                    .ended
                    .as_ref()
                    .is_some_and(|(_, r)| r.result.is_ok());
                if self.receiving && ended_ok {
                    self.done = true;
                }
            }
        }
    }

    /// A datagram to the machine: to the client, or to the peer's transfer (its port, or
    /// the request port in single-port mode).
    fn deliver(&mut self, from: SocketAddr, bytes: &[u8]) {
        if let Machine::Server { s, .. } = &self.m
            && s.ports == PortMode::Single
            && from == self.stranger
            && is_request(bytes)
        {
            self.stranger_asked = true;
        }
        let model_on = self.model_on();
        let before = self.store_len();
        let data = match Packet::parse(bytes) {
            Ok(Packet::Data { block, data }) if from == self.peer => Some((block, data)),
            _ => None,
        };
        let was_done = self.done;
        match &mut self.m {
            Machine::Client { t, store } => t.handle_datagram(self.now, from, bytes, store),
            Machine::Server { s, first, .. } => {
                let to = match s.ports {
                    PortMode::Single => s.listen,
                    // Gone with its transfer: the datagram is lost, as on a real host.
                    _ => s.transfers[first].port.unwrap_or(transfer_addr()),
                };
                s.handle(self.now, from, to, bytes);
            }
        }
        // The client learns its blksize from the first answer; a receiver's final block
        // shows as its successful end.
        self.events();
        let grown = self.store_tail(before);
        if grown.is_empty() || !model_on {
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
        assert!(self.store_len() <= (self.expected as usize) * blk + 1);
    }

    /// A datagram on the server's request port from another client, or from the peer.
    fn listener(&mut self, who: u8, bytes: &[u8]) {
        let Machine::Server { s, .. } = &mut self.m else {
            return;
        };
        let from = if who.is_multiple_of(4) {
            if s.ports == PortMode::Single {
                // The request port is where the peer's transfer listens too.
                return self.deliver(self.peer, bytes);
            }
            self.peer
        } else {
            // A few addresses with a few ports each, to meet the per-address caps.
            SocketAddr::from(([10, 8, 0, who % 8], 1000 + u16::from(who / 8 % 4)))
        };
        let started = s.started.len();
        s.request(self.now, from, bytes);
        assert!(s.started.len() <= started + 1, "one request, one transfer");
        self.events();
    }

    fn tick(&mut self, deadline: bool) {
        match &mut self.m {
            Machine::Client { t, .. } => {
                if let Some(d) = t.poll_timeout().filter(|_| deadline) {
                    self.now = self.now.max(d);
                }
                t.handle_timeout(self.now);
            }
            Machine::Server { s, .. } => {
                if let Some(d) = s.poll_timeout().filter(|_| deadline) {
                    self.now = self.now.max(d);
                }
                s.handle_timeout(self.now);
            }
        }
    }

    fn is_closed(&self) -> bool {
        match &self.m {
            Machine::Client { t, .. } => t.is_closed(),
            Machine::Server { s, .. } => s.is_empty(),
        }
    }
}

fuzz_target!(|input: Input<'_>| {
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
    let config = Config::new(Duration::from_secs(1), Duration::from_secs(4), 3);
    let now = Instant::ZERO;
    let mut max_size = None;
    let (m, peer, receiving, blksize, netascii) = match input.side {
        Side::Client => {
            let mut req = ClientRequest::new(direction, "f");
            req.mode = mode;
            req.blksize = input.blksize;
            req.windowsize = windowsize;
            req.timeout = input.timeout;
            req.tsize = input.tsize;
            req.size = Some(file.len() as u64);
            req.dally = input.dally;
            max_size = match input.file_len >> 12 {
                0 => None,
                k => Some(u64::from(k - 1) * 700),
            }
            .filter(|_| direction == Direction::Read);
            req.max_size = max_size;
            let Ok(t) = Transfer::client(now, server_addr(), &req, config) else {
                return;
            };
            let m = Machine::Client {
                t,
                store: Vec::new(),
            };
            (
                m,
                transfer_addr(),
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
                    let mut options = Options::default();
                    options.blksize = input.blksize.map(Ok);
                    options.windowsize = windowsize.map(Ok);
                    options.timeout = input.timeout.map(Ok);
                    options.tsize = input.tsize.then_some(0);
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
            let mut limits = Limits::default();
            limits.config = config;
            limits.max_windowsize = Windowsize::new(MAX_WINDOW as u64).unwrap();
            limits.max_transfers = MAX_TRANSFERS;
            limits.max_per_address = 4;
            limits.max_unanswered_per_address = 2;
            let ports = if input.single_port {
                PortMode::Single
            } else {
                PortMode::PerTransfer
            };
            let mut s = ServerSide::new(AllowAll::serving(file.clone()), limits, ports);
            s.request(now, client_addr(), request);
            let Some(first) = s.latest() else {
                // Refused or ignored: at most one ERROR back, and nothing else.
                let out = s.drain(now);
                assert!(out.len() <= 1);
                for (_, bytes) in &out {
                    assert!(matches!(Packet::parse(bytes), Ok(Packet::Error { .. })));
                }
                assert!(s.is_empty());
                return;
            };
            let info = &s.transfers[&first].info;
            let blk = usize::from(info.negotiated.blksize);
            let netascii = info.mode == Mode::Netascii;
            let receiving = info.direction == Direction::Write;
            let upload = s.policy().uploads.first().map(|u| u.file.clone());
            let m = Machine::Server { s, first, upload };
            (m, client_addr(), receiving, Some(blk), netascii)
        }
    };
    let mut h = Harness {
        m,
        peer,
        request_port: server_addr(),
        stranger,
        stranger_asked: false,
        now,
        receiving,
        netascii,
        file,
        expected: 1,
        done: false,
        blksize,
        last_sent: 0,
        max_size,
        announced: None,
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
            Op::Listener { who, bytes } => h.listener(who, bytes),
            Op::ListenerPacket { who, packet } => {
                let Ok(bytes) = packet.to_vec() else { continue };
                h.listener(who, &bytes);
            }
            Op::Tick { ms } => {
                h.now += Duration::from_millis(u64::from(ms));
                h.tick(false);
            }
            Op::Deadline => h.tick(true),
        }
        h.drain();
    }
    // Left alone, every transfer closes on its own: retries are bounded, the dally ends,
    // and a transfer whose client never answered is reclaimed. Each retransmission of a
    // window sent in bursts waits out a pause between bursts, one deadline each (up to a
    // window's blocks), and measured round trips add a few early retransmissions.
    for _ in 0..64 * 32 * (MAX_TRANSFERS + 1) {
        if h.is_closed() {
            break;
        }
        h.tick(true);
        h.drain();
    }
    assert!(h.is_closed(), "still open after all those timeouts");
});
