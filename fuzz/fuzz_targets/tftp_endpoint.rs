//! A whole server endpoint under datagrams from many peers: well-formed requests with any
//! options, DATA, ACK, ERROR and raw bytes, on the request socket and on transfers' own
//! routes, with clock steps, policy refusals and commit outcomes chosen by the input, in
//! either port mode.
//!
//! Checked after every step: no panic; the endpoint never holds more transfers than its
//! limits allow, in total and per address; each step's output is bounded; every upload's
//! storage receives the DATA blocks of its client in order, each exactly once; every
//! `Ended` comes once per transfer and before its `Closed`; and, once the inputs run out,
//! timeouts alone empty the endpoint in a bounded number of steps.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wirekit::tftp::server::{
    Endpoint, EndpointEvent, Inbound, Incoming, Limits, Outgoing, Policy, PortMode, Refusal,
    TransferId,
};
use wirekit::tftp::{Instant, 
    Blksize, ErrorCode, Mode, Options, Packet, Request, Storage, StorageError, Text,
    Timeout, Windowsize,
};

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    /// A request from peer `peer` on the request socket.
    Request {
        peer: u8,
        read: bool,
        name: u8,
        netascii: bool,
        blksize: Option<Blksize>,
        windowsize: Option<u8>,
        timeout: Option<u16>,
        tsize: Option<u32>,
    },
    /// The next DATA block a peer's upload expects, or one `ahead` of it.
    Data { peer: u8, ahead: u8, len: u16 },
    /// An ACK from a peer, for block `block`.
    Ack { peer: u8, block: u16 },
    /// An ERROR from a peer.
    Error { peer: u8, code: u16 },
    /// Raw bytes from a peer, on the request socket or its transfer's route.
    Raw { peer: u8, on_transfer: bool, bytes: &'a [u8] },
    /// The clock moves on.
    Tick { ms: u16 },
    /// The clock jumps to the endpoint's next deadline.
    Deadline,
    /// The oldest pending commit finishes, well or badly.
    Commit { ok: bool },
    /// A graceful stop begins (or is brought forward), with this much grace.
    Close { grace_ms: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    single_port: bool,
    max_transfers: u8,
    max_per_address: u8,
    max_unanswered: u8,
    /// Names (mod 8) the policy refuses.
    refused: u8,
    file_len: u16,
    ops: Vec<Op<'a>>,
}

/// A file of `len` bytes to read, or an upload whose every write must be the payload of
/// the next block in order.
#[derive(Debug, Default)]
struct Upload {
    len: u64,
    blocks: u64,
    broken: bool,
}

/// A payload that says which block it is, so that order can be checked on arrival.
fn payload(block: u16, len: usize) -> Vec<u8> {
    block.to_be_bytes().iter().copied().cycle().take(len).collect()
}

impl Storage for Upload {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        let n = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        buf[..n].fill(7);
        Ok(n)
    }
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let expected = ((self.blocks + 1) % 65_536) as u16;
        if !data.is_empty() && data != payload(expected, data.len()).as_slice() {
            self.broken = true;
        }
        self.blocks += 1;
        Ok(())
    }
    /// Fails now and then, as a disk that fills up does.
    fn flush(&mut self) -> Result<(), StorageError> {
        if self.blocks % 13 == 12 {
            return Err(StorageError::new(ErrorCode::DiskFull, "disk full"));
        }
        Ok(())
    }
}

struct Files {
    refused: u8,
    len: u64,
}

impl Policy for Files {
    type Storage = Upload;
    fn read(&mut self, _: SocketAddr, name: Text<'_>) -> Result<(Upload, Option<u64>), Refusal> {
        self.check(name)?;
        let file = Upload {
            len: self.len,
            ..Upload::default()
        };
        Ok((file, Some(self.len)))
    }
    fn write(&mut self, _: SocketAddr, name: Text<'_>, _: Option<u64>) -> Result<Upload, Refusal> {
        self.check(name)?;
        Ok(Upload::default())
    }
}

impl Files {
    fn check(&self, name: Text<'_>) -> Result<(), Refusal> {
        match name.as_bytes().first() {
            Some(&b) if b % 8 == self.refused % 8 => {
                Err(Refusal::new(ErrorCode::FileNotFound, "refused"))
            }
            _ => Ok(()),
        }
    }
}

/// Four addresses, four ports each.
fn peer(n: u8) -> SocketAddr {
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + n % 4));
    SocketAddr::new(ip, 1000 + u16::from(n / 4 % 4))
}

struct Harness {
    endpoint: Endpoint<Files>,
    limits: Limits,
    now: Instant,
    buf: Vec<u8>,
    /// The latest transfer each peer started, and the next DATA block it would send.
    transfers: BTreeMap<SocketAddr, (TransferId, u16)>,
    commits: Vec<(TransferId, Upload)>,
    ended: BTreeSet<TransferId>,
    closed: BTreeSet<TransferId>,
}

impl Harness {
    fn incoming(&self, from: SocketAddr, on_transfer: bool) -> Incoming {
        let route = match self.transfers.get(&from) {
            Some(&(id, _)) if on_transfer => Inbound::Transfer(id),
            _ => Inbound::Listener(0),
        };
        Incoming::new(route, from, None)
    }

    fn feed(&mut self, incoming: Incoming, datagram: &[u8]) {
        let mut buf = std::mem::take(&mut self.buf);
        if let Some(t) = self.endpoint.handle(self.now, incoming, datagram, &mut buf) {
            check_transmit(&t, &buf);
        }
        self.buf = buf;
        self.drain();
    }

    /// What a driver does before it waits: everything sent, every event taken, gathered
    /// uploads flushed, and what a failed flush owes sent too.
    fn drain(&mut self) {
        self.pump();
        if self.endpoint.flush_storage(self.now) {
            self.pump();
        }
    }

    fn pump(&mut self) {
        let mut sent = 0usize;
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(t) = self.endpoint.poll_transmit(self.now, &mut buf) {
            check_transmit(&t, &buf);
            sent += 1;
            // Every transfer's window, plus its control packets and ERROR 5s.
            assert!(sent <= (self.endpoint.len() + 1) * (64 + 10), "unbounded output");
        }
        self.buf = buf;
        while let Some(e) = self.endpoint.poll_event() {
            match e {
                EndpointEvent::Started { id, info } => {
                    self.transfers.insert(info.peer, (id, 1));
                }
                EndpointEvent::Commit { id, storage } => {
                    assert!(!storage.broken, "DATA stored out of order");
                    self.commits.push((id, storage));
                }
                EndpointEvent::Ended { id, .. } => {
                    assert!(self.ended.insert(id), "two Ended for {id}");
                    assert!(!self.closed.contains(&id), "Ended after Closed");
                }
                EndpointEvent::Closed { id } => {
                    assert!(self.ended.contains(&id), "Closed before Ended");
                    assert!(self.closed.insert(id), "two Closed for {id}");
                }
                _ => {}
            }
        }
        assert!(self.endpoint.len() <= self.limits.max_transfers);
        // Counted as transfers come, are answered and go: never more than there are.
        assert!(self.endpoint.unanswered() <= self.endpoint.len());
    }
}

fn check_transmit(t: &Outgoing, buf: &[u8]) {
    assert!(t.len <= buf.len());
    assert!(Packet::parse(&buf[..t.len]).is_ok(), "the endpoint sent junk");
}

fn request(op: &Op<'_>) -> Option<Vec<u8>> {
    let Op::Request {
        read,
        name,
        netascii,
        blksize,
        windowsize,
        timeout,
        tsize,
        ..
    } = *op
    else {
        return None;
    };
    let name = [b'a' + name % 26];
    let request = Request {
        filename: Text::new(&name),
        mode: if netascii { Mode::Netascii } else { Mode::Octet },
        options: {
            let mut options = Options::default();
            options.blksize = blksize.map(Ok);
            options.windowsize = windowsize.map(|w| Windowsize::new(w.into()));
            options.timeout = timeout.map(|t| Timeout::new(t.into()));
            options.tsize = tsize.map(u64::from);
            options
        },
    };
    let packet = if read {
        Packet::Rrq(request)
    } else {
        Packet::Wrq(request)
    };
    packet.to_vec().ok()
}

fuzz_target!(|input: Input<'_>| {
    let mut limits = Limits::default();
    limits.max_transfers = usize::from(input.max_transfers % 16) + 1;
    limits.max_per_address = usize::from(input.max_per_address % 8) + 1;
    limits.max_unanswered_per_address = usize::from(input.max_unanswered % 8) + 1;
    limits.max_window_bytes = Some(16 * 1024);
    let ports = if input.single_port {
        PortMode::Single
    } else {
        PortMode::PerTransfer
    };
    let policy = Files {
        refused: input.refused,
        len: u64::from(input.file_len),
    };
    let endpoint = Endpoint::new(policy, limits, ports);
    let mut h = Harness {
        buf: vec![0; endpoint.max_datagram_len()],
        endpoint,
        limits,
        now: Instant::ZERO,
        transfers: BTreeMap::new(),
        commits: Vec::new(),
        ended: BTreeSet::new(),
        closed: BTreeSet::new(),
    };
    for op in input.ops.iter().take(2_000) {
        match *op {
            Op::Request { peer: p, .. } => {
                if let Some(bytes) = request(op) {
                    let incoming = h.incoming(peer(p), false);
                    h.feed(incoming, &bytes);
                }
            }
            Op::Data { peer: p, ahead, len } => {
                let from = peer(p);
                let Some(&(id, next)) = h.transfers.get(&from) else { continue };
                let block = next.wrapping_add(u16::from(ahead % 4));
                let data = payload(block, usize::from(len % 1500));
                let bytes = Packet::Data { block, data: &data }.to_vec().unwrap();
                if ahead % 4 == 0 {
                    h.transfers.insert(from, (id, next.wrapping_add(1)));
                }
                let incoming = h.incoming(from, true);
                h.feed(incoming, &bytes);
            }
            Op::Ack { peer: p, block } => {
                let bytes = Packet::Ack { block }.to_vec().unwrap();
                let incoming = h.incoming(peer(p), true);
                h.feed(incoming, &bytes);
            }
            Op::Error { peer: p, code } => {
                let message = Text::from("x");
                let code = ErrorCode::from_u16(code);
                let bytes = Packet::Error { code, message }.to_vec().unwrap();
                let incoming = h.incoming(peer(p), true);
                h.feed(incoming, &bytes);
            }
            Op::Raw {
                peer: p,
                on_transfer,
                bytes,
            } => {
                // Raw DATA would break the order check, which needs known payloads.
                if bytes.starts_with(&[0, 3]) {
                    continue;
                }
                let incoming = h.incoming(peer(p), on_transfer);
                h.feed(incoming, bytes);
            }
            Op::Tick { ms } => {
                h.now += Duration::from_millis(ms.into());
                h.endpoint.handle_timeout(h.now);
                h.drain();
            }
            Op::Deadline => {
                if let Some(d) = h.endpoint.poll_timeout() {
                    h.now = h.now.max(d);
                    h.endpoint.handle_timeout(h.now);
                    h.drain();
                }
            }
            Op::Commit { ok } => {
                if !h.commits.is_empty() {
                    let (id, _) = h.commits.remove(0);
                    let result = if ok {
                        Ok(())
                    } else {
                        Err(StorageError::new(ErrorCode::DiskFull, "full"))
                    };
                    h.endpoint.committed(h.now, id, result);
                    h.drain();
                }
            }
            Op::Close { grace_ms } => {
                h.endpoint
                    .close(h.now, Duration::from_millis(grace_ms.into()));
                h.endpoint.handle_timeout(h.now);
                h.drain();
            }
        }
    }
    // Without input, commits answered and timeouts alone bring the endpoint to rest.
    for (id, _) in std::mem::take(&mut h.commits) {
        h.endpoint.committed(h.now, id, Ok(()));
    }
    h.drain();
    for _ in 0..1_000 {
        let Some(d) = h.endpoint.poll_timeout() else { break };
        h.now = h.now.max(d);
        h.endpoint.handle_timeout(h.now);
        h.drain();
        for (id, _) in std::mem::take(&mut h.commits) {
            h.endpoint.committed(h.now, id, Ok(()));
        }
        h.drain();
    }
    assert!(h.endpoint.is_empty(), "transfers left after every deadline");
    if h.endpoint.is_closing() {
        assert!(h.endpoint.is_drained(), "a closed endpoint at rest is drained");
    }
    assert_eq!(h.ended, h.closed);
});
