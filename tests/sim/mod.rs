//! A simulated network for the TFTP machines: a client machine and a server machine (made
//! by `admit` from the client's first datagram), per-direction queues with seeded loss,
//! duplication, reordering and delay, and a virtual clock that jumps to the next deadline.
//!
//! Set `SIM_TRACE=1` to print every datagram with its fate.
#![allow(dead_code)]

use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;

use wirekit::tftp::server::{Admission, Limits, Policy, Refusal, admit};
use wirekit::tftp::{
    Blksize, ClientRequest, Config, Direction, Event, Mode, Stats, Text, Transfer, TransferError,
    Windowsize,
};

/// splitmix64: small, deterministic, good enough to pick faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `permille / 1000`.
    pub fn chance(&mut self, permille: u32) -> bool {
        self.below(1000) < u64::from(permille)
    }
}

/// What the network does to each datagram, in thousandths.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Datagrams dropped.
    pub loss: u32,
    /// Datagrams delivered twice.
    pub dup: u32,
    /// Datagrams held back by up to `max_delay` extra, so later ones overtake them.
    pub reorder: u32,
    /// Base one-way delay.
    pub delay: Duration,
    /// Largest random extra delay (jitter) added to a datagram.
    pub jitter: Duration,
}

impl Faults {
    /// A perfect network with a 1 ms delay.
    pub fn none() -> Faults {
        Faults {
            delay: Duration::from_millis(1),
            ..Faults::default()
        }
    }
}

/// One run of the simulation.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Read (server sends) or write (client sends).
    pub direction: Direction,
    /// Octet or netascii.
    pub mode: Mode,
    /// The file, on the sending side.
    pub file: Vec<u8>,
    /// blksize asked (None: no option).
    pub blksize: Option<u16>,
    /// windowsize asked (None: no option).
    pub windowsize: Option<u16>,
    /// Ask tsize.
    pub tsize: bool,
    /// The network.
    pub faults: Faults,
    /// Seed of the fault generator.
    pub seed: u64,
    /// Retransmission settings of both machines.
    pub config: Config,
    /// The server's bounds.
    pub limits: Limits,
}

impl Scenario {
    /// A lossless scenario with the given file and defaults.
    pub fn new(direction: Direction, file: Vec<u8>) -> Scenario {
        let config = Config {
            timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            retries: 12,
        };
        Scenario {
            direction,
            mode: Mode::Octet,
            file,
            blksize: None,
            windowsize: None,
            tsize: false,
            faults: Faults::none(),
            seed: 1,
            config,
            limits: Limits {
                config,
                ..Limits::default()
            },
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The client's `Finished` result; `None` if it never finished.
    pub client: Option<Result<Stats, TransferError>>,
    /// The server's `Finished` result; `None` if no server transfer started or it never
    /// finished.
    pub server: Option<Result<Stats, TransferError>>,
    /// True when the server side was admitted.
    pub server_started: bool,
    /// What the receiving side stored.
    pub received: Vec<u8>,
    /// Whether the receiver finished with success.
    pub receiver_ok: bool,
    /// Clock steps the run took.
    pub steps: u64,
    /// Virtual time at the end.
    pub now: Duration,
    /// Datagrams put on the network.
    pub datagrams: u64,
    /// Number of `Finished` events seen (must be one per machine).
    pub finished_events: (u32, u32),
}

/// A file policy that allows everything.
pub struct AllowAll(pub u64);

impl Policy for AllowAll {
    fn read(&mut self, _: SocketAddr, _: Text<'_>) -> Result<Option<u64>, Refusal> {
        Ok(Some(self.0))
    }
    fn write(&mut self, _: SocketAddr, _: Text<'_>, _: Option<u64>) -> Result<(), Refusal> {
        Ok(())
    }
}

/// The client's address.
pub fn client_addr() -> SocketAddr {
    "10.0.0.1:5000".parse().unwrap()
}
/// The server's request port.
pub fn server_addr() -> SocketAddr {
    "10.0.0.2:69".parse().unwrap()
}
/// The server transfer's port (its transfer ID).
pub fn transfer_addr() -> SocketAddr {
    "10.0.0.2:6000".parse().unwrap()
}

#[derive(PartialEq, Eq)]
struct InFlight {
    at: Duration,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Min-heap on (at, seq).
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

struct Net {
    rng: Rng,
    faults: Faults,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    sent: u64,
    trace: bool,
}

impl Net {
    fn send(&mut self, now: Duration, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.sent += 1;
        let lost = self.rng.chance(self.faults.loss);
        if self.trace {
            let head = &bytes[..bytes.len().min(4)];
            eprintln!(
                "{now:?} {from} -> {to} {head:?} len {}{}",
                bytes.len(),
                if lost { " LOST" } else { "" }
            );
        }
        if lost {
            return;
        }
        let copies = if self.rng.chance(self.faults.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.faults.delay;
            let jitter = self.faults.jitter.as_micros() as u64;
            if jitter > 0 {
                at += Duration::from_micros(self.rng.below(jitter + 1));
            }
            if self.rng.chance(self.faults.reorder) {
                // Held back: overtaken by what follows.
                at += self.faults.delay * 3 + Duration::from_micros(self.rng.below(jitter + 1));
            }
            self.seq += 1;
            self.queue.push(InFlight {
                at,
                seq: self.seq,
                from,
                to,
                bytes: bytes.to_vec(),
            });
        }
    }
}

fn drain_events(t: &mut Transfer, result: &mut Option<Result<Stats, TransferError>>, n: &mut u32) {
    while let Some(e) = t.poll_event() {
        if let Event::Finished(r) = e {
            *n += 1;
            if result.is_none() {
                *result = Some(r);
            }
        }
    }
}

/// Runs a scenario to its end; panics if it takes more than `max_steps` clock steps or
/// stalls with no deadline while a machine is still open.
pub fn run(s: &Scenario) -> Outcome {
    let mut req = ClientRequest::new(s.direction, "file");
    req.mode = s.mode;
    req.blksize = s.blksize.map(|b| Blksize::new(b.into()).unwrap());
    req.windowsize = s.windowsize.map(|w| Windowsize::new(w.into()).unwrap());
    if s.tsize {
        req.tsize = Some(match s.direction {
            Direction::Read => 0,
            Direction::Write => s.file.len() as u64,
        });
    }
    let blk = usize::from(s.blksize.unwrap_or(512));
    let blocks = (s.file.len() * 2 / blk + 1) as u64;
    let max_steps = 100_000 + blocks * 400;

    let mut now = Duration::ZERO;
    let mut client = Transfer::client(now, server_addr(), &req, s.config).unwrap();
    let mut server: Option<Box<Transfer>> = None;
    let (mut client_store, mut server_store) = match s.direction {
        Direction::Read => (Vec::new(), s.file.clone()),
        Direction::Write => (s.file.clone(), Vec::new()),
    };
    let mut policy = AllowAll(s.file.len() as u64);
    let mut net = Net {
        rng: Rng::new(s.seed),
        faults: s.faults,
        queue: BinaryHeap::new(),
        seq: 0,
        sent: 0,
        trace: std::env::var_os("SIM_TRACE").is_some(),
    };
    let mut buf = vec![0u8; 65536];
    let mut client_result = None;
    let mut server_result = None;
    let mut finished = (0, 0);
    let mut steps = 0u64;
    loop {
        while let Some(t) = client.poll_transmit(now, &mut client_store, &mut buf) {
            net.send(now, client_addr(), t.destination, &buf[..t.len]);
        }
        if let Some(srv) = server.as_mut() {
            while let Some(t) = srv.poll_transmit(now, &mut server_store, &mut buf) {
                net.send(now, transfer_addr(), t.destination, &buf[..t.len]);
            }
            drain_events(srv, &mut server_result, &mut finished.1);
        }
        drain_events(&mut client, &mut client_result, &mut finished.0);
        let server_closed = server.as_ref().is_none_or(|t| t.is_closed());
        if client.is_closed() && server_closed {
            break;
        }
        let next = [
            client.poll_timeout(),
            server.as_ref().and_then(|t| t.poll_timeout()),
            net.queue.peek().map(|p| p.at),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            panic!(
                "stalled at {now:?}: client closed {}, server closed {server_closed}, nothing due",
                client.is_closed()
            );
        };
        now = now.max(next);
        steps += 1;
        assert!(steps <= max_steps, "no end after {steps} steps");
        while net.queue.peek().is_some_and(|p| p.at <= now) {
            let p = net.queue.pop().unwrap();
            if p.to == server_addr() {
                if server.is_none() {
                    let limits = s.limits;
                    match admit(now, p.from, &p.bytes, &limits, &mut policy) {
                        Admission::Accepted { transfer, .. } => server = Some(transfer),
                        other => panic!("not admitted: {other:?}"),
                    }
                }
                // Repeated requests reach a server that already answered: dropped here.
            } else if p.to == transfer_addr() {
                if let Some(srv) = server.as_mut() {
                    srv.handle_datagram(now, p.from, &p.bytes, &mut server_store);
                }
            } else if p.to == client_addr() {
                client.handle_datagram(now, p.from, &p.bytes, &mut client_store);
            }
        }
        client.handle_timeout(now);
        if let Some(srv) = server.as_mut() {
            srv.handle_timeout(now);
        }
    }
    let server_started = server.is_some();
    let (received, receiver_result) = match s.direction {
        Direction::Read => (client_store, &client_result),
        Direction::Write => (server_store, &server_result),
    };
    let receiver_ok = matches!(receiver_result, Some(Ok(_)));
    Outcome {
        client: client_result,
        server: server_result,
        server_started,
        received,
        receiver_ok,
        steps,
        now,
        datagrams: net.sent,
        finished_events: finished,
    }
}

/// The either/or rule: the receiver holds exactly the file and ends well, or the
/// transfer timed out on both sides. Never wrong data, never two `Finished` events.
pub fn check(s: &Scenario, o: &Outcome) -> Result<(), String> {
    let is_timeout = |r: &Option<Result<Stats, TransferError>>| {
        matches!(r, Some(Err(TransferError::Timeout { .. })))
    };
    if o.finished_events.0 != 1 {
        return Err(format!("client finished {} times", o.finished_events.0));
    }
    if o.server_started && o.finished_events.1 != 1 {
        return Err(format!("server finished {} times", o.finished_events.1));
    }
    if !s.file.starts_with(&o.received) {
        return Err(format!(
            "receiver holds {} bytes that are not a prefix of the file",
            o.received.len()
        ));
    }
    let (sender, receiver) = match s.direction {
        Direction::Read => (&o.server, &o.client),
        Direction::Write => (&o.client, &o.server),
    };
    if o.receiver_ok {
        if o.received != s.file {
            return Err(format!(
                "receiver finished with {} bytes, file has {}",
                o.received.len(),
                s.file.len()
            ));
        }
        // The sender may miss every copy of the final ACK: it times out, the data is there.
        match sender {
            Some(Ok(_)) => Ok(()),
            _ if is_timeout(sender) => Ok(()),
            other => Err(format!("receiver ok, sender ended {other:?}")),
        }
    } else {
        if !is_timeout(&o.client) {
            return Err(format!("receiver failed, client ended {:?}", o.client));
        }
        if o.server_started && !is_timeout(&o.server) {
            return Err(format!("receiver failed, server ended {:?}", o.server));
        }
        let _ = receiver;
        Ok(())
    }
}

/// A file of `len` bytes from `seed`, rich in CR, LF and NUL so that netascii is tested.
pub fn file(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0xF11E);
    (0..len)
        .map(|_| match rng.below(8) {
            0 => b'\r',
            1 => b'\n',
            2 => 0,
            _ => rng.next_u64() as u8,
        })
        .collect()
}
