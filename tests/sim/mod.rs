//! The machine-level test kit, shared by the rules tests, the simulation, the smoke test,
//! the transfer bench and the fuzz target:
//!
//! - [`ServerSide`]: the one adapter around the server's [`Endpoint`]. It plays the driver:
//!   it gives each transfer a port of its own (or routes everything through the request
//!   port in single-port mode), commits uploads, and keeps every event so a test can
//!   check what the server did;
//! - [`AllowAll`]: a policy that serves in-memory [`SimFile`]s and records every upload;
//! - a simulated network ([`run`], [`run_many`]): client machines and one endpoint,
//!   per-datagram seeded loss, duplication, reordering and delay, and a virtual clock that
//!   jumps to the next deadline. Same seed, same run.
//!
//! Set `SIM_TRACE=1` to print every datagram with its fate.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use wirekit::tftp::server::{
    Endpoint, EndpointEvent as ServerEvent, Inbound, Incoming, Limits, Outbound, Policy, PortMode,
    Refusal, Report, TransferId, TransferInfo,
};
use wirekit::tftp::{
    Blksize, ClientRequest, Config, Direction, ErrorCode, Instant, Mode, Packet, Stats, Storage,
    StorageError, Text, Transfer, TransferError, TransferEvent, Windowsize,
};

// The datagram builders the socket-level tests use too: one definition for both.
// A binary with `mod common;` too (empty_files, option_ranges) compiles the file twice,
// once in each tree: harmless for a few pure functions, and what lets the fuzz target and
// the bench have `sim` without `common`.
#[path = "../common/datagrams.rs"]
#[allow(clippy::duplicate_mod)]
mod datagrams;
#[allow(unused_imports)] // each binary uses some of them
pub use datagrams::{ack, data, error, request, rrq, wrq};

// ---------------------------------------------------------------------------------------
// Files and the policy
// ---------------------------------------------------------------------------------------

/// An in-memory file shared between the policy, the transfer using it and the test, so the
/// test can look at what an upload stored while the endpoint owns the storage.
#[derive(Clone, Debug, Default)]
pub struct SimFile(Rc<RefCell<FileState>>);

#[derive(Debug, Default)]
struct FileState {
    data: Vec<u8>,
    commits: u32,
    /// What `commit` answers (`Ok` when `None`).
    commit_error: Option<StorageError>,
    flushes: u32,
    /// What `flush` answers (`Ok` when `None`).
    flush_error: Option<StorageError>,
}

impl SimFile {
    /// A file holding `data`.
    pub fn new(data: Vec<u8>) -> SimFile {
        SimFile(Rc::new(RefCell::new(FileState {
            data,
            ..FileState::default()
        })))
    }

    /// A copy of its bytes.
    pub fn data(&self) -> Vec<u8> {
        self.0.borrow().data.clone()
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.0.borrow().data.len()
    }

    /// How many times it was committed.
    pub fn commits(&self) -> u32 {
        self.0.borrow().commits
    }

    /// Makes every later commit fail with `e`.
    pub fn fail_commits_with(&self, e: StorageError) {
        self.0.borrow_mut().commit_error = Some(e);
    }

    /// How many times it was flushed.
    pub fn flushes(&self) -> u32 {
        self.0.borrow().flushes
    }

    /// Makes every later flush fail with `e`.
    pub fn fail_flushes_with(&self, e: StorageError) {
        self.0.borrow_mut().flush_error = Some(e);
    }
}

impl Storage for SimFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        self.0.borrow_mut().data.read_at(offset, buf)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.0.borrow_mut().data.write(data)
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        let mut s = self.0.borrow_mut();
        s.flushes += 1;
        s.flush_error.clone().map_or(Ok(()), Err)
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        let mut s = self.0.borrow_mut();
        s.commits += 1;
        s.commit_error.clone().map_or(Ok(()), Err)
    }
}

/// An upload the policy granted.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The client.
    pub peer: SocketAddr,
    /// The name it asked for.
    pub filename: String,
    /// What it stored.
    pub file: SimFile,
}

/// A policy that lets everyone read and write. A read gets `files[name]`, else `default`,
/// else ERROR 1; its size is the file's length. Each write gets a fresh [`SimFile`], kept
/// in `uploads`, and is held to `upload_limit`.
#[derive(Debug, Default)]
pub struct AllowAll {
    /// Files by name.
    pub files: BTreeMap<String, SimFile>,
    /// The file any other name reads.
    pub default: Option<SimFile>,
    /// Every upload granted, in order.
    pub uploads: Vec<Upload>,
    /// What [`Policy::upload_limit`] answers, for every client and name.
    pub upload_limit: Option<u64>,
}

impl AllowAll {
    /// Every name reads `data`.
    pub fn serving(data: Vec<u8>) -> AllowAll {
        AllowAll {
            default: Some(SimFile::new(data)),
            ..AllowAll::default()
        }
    }

    /// Adds a file under `name`.
    pub fn with_file(mut self, name: &str, file: SimFile) -> AllowAll {
        self.files.insert(name.to_string(), file);
        self
    }
}

impl Policy for AllowAll {
    type Storage = SimFile;

    fn read(
        &mut self,
        _: SocketAddr,
        filename: Text<'_>,
    ) -> Result<(SimFile, Option<u64>), Refusal> {
        let file = self
            .files
            .get(&filename.to_string())
            .or(self.default.as_ref());
        match file {
            Some(f) => Ok((f.clone(), Some(f.len() as u64))),
            None => Err(Refusal::new(ErrorCode::FileNotFound, "no such file")),
        }
    }

    fn upload_limit(&mut self, _: SocketAddr, _: Text<'_>) -> Option<u64> {
        self.upload_limit
    }

    fn write(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        _: Option<u64>,
    ) -> Result<SimFile, Refusal> {
        let file = SimFile::default();
        self.uploads.push(Upload {
            peer,
            filename: filename.to_string(),
            file: file.clone(),
        });
        Ok(file)
    }
}

// ---------------------------------------------------------------------------------------
// The server adapter
// ---------------------------------------------------------------------------------------

/// The client's address in one-client tests.
pub fn client_addr() -> SocketAddr {
    "10.0.0.1:5000".parse().unwrap()
}
/// The server's request port.
pub fn server_addr() -> SocketAddr {
    "10.0.0.2:69".parse().unwrap()
}
/// The port of the first transfer a [`ServerSide`] starts (its transfer ID).
pub fn transfer_addr() -> SocketAddr {
    "10.0.0.2:6000".parse().unwrap()
}

/// The first port handed to a transfer or a one-off refusal; later ones count up, never
/// reused, so a stale datagram cannot reach a newer transfer by accident.
const FIRST_PORT: u16 = 6000;

/// One datagram leaving the server.
#[derive(Clone, Copy, Debug)]
pub struct Sent<'a> {
    /// The server address and port it leaves from.
    pub from: SocketAddr,
    /// Where it goes.
    pub to: SocketAddr,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// One datagram leaving the server, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The server address and port it leaves from.
    pub from: SocketAddr,
    /// Where it goes.
    pub to: SocketAddr,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What the adapter saw of one transfer.
#[derive(Debug)]
pub struct Record {
    /// From `Event::Started`.
    pub info: TransferInfo,
    /// When it started.
    pub started_at: Instant,
    /// Its own port (port-per-transfer mode), once it sent something.
    pub port: Option<SocketAddr>,
    /// When it ended, and how; set once (the adapter panics on a second `Ended`).
    pub ended: Option<(Instant, Report)>,
    /// `Event::Closed` came.
    pub closed: bool,
    /// Its upload was handed out for the commit.
    pub commit_asked: bool,
}

/// The server side of the machine tests: an [`Endpoint<AllowAll>`] and the little a driver
/// does around it. Every event is checked for consistency (one `Started` per id, one
/// `Ended`, `Closed` only after `Ended`, `Commit` only for uploads) and recorded.
pub struct ServerSide {
    /// The endpoint, for what the adapter does not wrap (`len`, `policy`, `close`).
    pub endpoint: Endpoint<AllowAll>,
    /// The request port.
    pub listen: SocketAddr,
    /// Port per transfer, or single port.
    pub ports: PortMode,
    /// Commit uploads as soon as the endpoint asks, calling [`Storage::commit`] then
    /// [`Endpoint::committed`] (the default). When false they wait in `commits` until the
    /// test calls [`ServerSide::committed`].
    pub auto_commit: bool,
    /// Uploads waiting for their commit (when not `auto_commit`).
    pub commits: Vec<(TransferId, SimFile)>,
    /// Every transfer started.
    pub transfers: BTreeMap<TransferId, Record>,
    /// Transfers in the order they started.
    pub started: Vec<TransferId>,
    /// Every refusal: the client, the file when the request parsed, and why.
    pub refused: Vec<(SocketAddr, Option<String>, Refusal)>,
    /// Every request dropped without an answer: the client.
    pub ignored: Vec<SocketAddr>,
    /// `Ended` reports not yet taken with [`ServerSide::take_ended`].
    ended: VecDeque<(TransferId, Report)>,
    by_port: BTreeMap<SocketAddr, TransferId>,
    next_port: u16,
    /// Refusals returned by `Endpoint::handle`, sent before the endpoint's own transmits.
    pending: VecDeque<Datagram>,
    buf: Vec<u8>,
}

impl ServerSide {
    /// A server on [`server_addr`].
    pub fn new(policy: AllowAll, limits: Limits, ports: PortMode) -> ServerSide {
        let endpoint = Endpoint::new(policy, limits, ports);
        let buf = vec![0; endpoint.max_datagram_len()];
        ServerSide {
            endpoint,
            listen: server_addr(),
            ports,
            auto_commit: true,
            commits: Vec::new(),
            transfers: BTreeMap::new(),
            started: Vec::new(),
            refused: Vec::new(),
            ignored: Vec::new(),
            ended: VecDeque::new(),
            by_port: BTreeMap::new(),
            next_port: FIRST_PORT,
            pending: VecDeque::new(),
            buf,
        }
    }

    /// A port-per-transfer server with the default limits, every name reading `file`.
    pub fn serving(file: Vec<u8>) -> ServerSide {
        ServerSide::new(
            AllowAll::serving(file),
            Limits::default(),
            PortMode::PerTransfer,
        )
    }

    /// Transfers running.
    pub fn len(&self) -> usize {
        self.endpoint.len()
    }

    /// True when no transfer runs.
    pub fn is_empty(&self) -> bool {
        self.endpoint.is_empty()
    }

    /// The policy, with its uploads.
    pub fn policy(&self) -> &AllowAll {
        self.endpoint.policy()
    }

    /// The last transfer started.
    pub fn latest(&self) -> Option<TransferId> {
        self.started.last().copied()
    }

    /// The record of the last transfer started.
    pub fn latest_record(&self) -> &Record {
        let id = self.latest().expect("a transfer started");
        &self.transfers[&id]
    }

    /// A datagram from `from` arriving at the server address `to`: the request port, or a
    /// transfer's port. Datagrams to a port nobody holds are lost, as on a real host.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let route = if to == self.listen {
            Inbound::Listener(0)
        } else if let Some(&id) = self.by_port.get(&to) {
            Inbound::Transfer(id)
        } else {
            return;
        };
        let incoming = Incoming::new(route, from, Some(self.listen.ip()));
        if let Some(t) = self.endpoint.handle(now, incoming, bytes, &mut self.buf) {
            let from = self.route_addr(t.route);
            assert_eq!(
                t.source,
                Some(self.listen.ip()),
                "answer from the address asked"
            );
            self.pending.push_back(Datagram {
                from,
                to: t.destination,
                bytes: self.buf[..t.len].to_vec(),
            });
        }
        self.pump(now);
    }

    /// A request (or anything) on the request port.
    pub fn request(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let to = self.listen;
        self.handle(now, from, to, bytes);
    }

    /// A datagram to the latest transfer: to its port, or to the request port in
    /// single-port mode (where the endpoint finds the transfer by `from`).
    pub fn feed(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let to = match self.ports {
            PortMode::Single => self.listen,
            _ => self
                .latest_record()
                .port
                .expect("the transfer has a port once its first packet was drained"),
        };
        self.handle(now, from, to, bytes);
    }

    /// The earliest deadline of the endpoint.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }

    /// Passes the clock to the endpoint.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.pump(now);
    }

    /// Has the storages that received data write what they gathered.
    pub fn flush_storage(&mut self, now: Instant) -> bool {
        let ended = self.endpoint.flush_storage(now);
        self.pump(now);
        ended
    }

    /// The outcome of a commit the test held back (`auto_commit` off).
    pub fn committed(&mut self, now: Instant, id: TransferId, result: Result<(), StorageError>) {
        self.commits.retain(|(c, _)| *c != id);
        self.endpoint.committed(now, id, result);
        self.pump(now);
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Sent<'_>> {
        if let Some(d) = self.pending.pop_front() {
            self.buf[..d.bytes.len()].copy_from_slice(&d.bytes);
            return Some(Sent {
                from: d.from,
                to: d.to,
                bytes: &self.buf[..d.bytes.len()],
            });
        }
        let t = self.endpoint.poll_transmit(now, &mut self.buf);
        self.pump(now);
        let t = t?;
        assert_eq!(
            t.source,
            Some(self.listen.ip()),
            "answer from the address asked"
        );
        let from = self.route_addr(t.route);
        Some(Sent {
            from,
            to: t.destination,
            bytes: &self.buf[..t.len],
        })
    }

    /// Everything due now, as (destination, bytes).
    pub fn drain(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        self.drain_sent(now)
            .into_iter()
            .map(|d| (d.to, d.bytes))
            .collect()
    }

    /// Everything due now, with the port each leaves from.
    pub fn drain_sent(&mut self, now: Instant) -> Vec<Datagram> {
        let mut out = Vec::new();
        while let Some(s) = self.poll_transmit(now) {
            out.push(Datagram {
                from: s.from,
                to: s.to,
                bytes: s.bytes.to_vec(),
            });
            assert!(out.len() < 1_000_000, "transmit flood");
        }
        out
    }

    /// The `Ended` reports since the last call, in order.
    pub fn take_ended(&mut self) -> Vec<(TransferId, Report)> {
        self.ended.drain(..).collect()
    }

    /// The port a transmit on `route` leaves from.
    fn route_addr(&mut self, route: Outbound) -> SocketAddr {
        match route {
            Outbound::Listener(0) => self.listen,
            Outbound::Transfer(id) => {
                if let Some(port) = self.transfers.get(&id).and_then(|r| r.port) {
                    return port;
                }
                // The driver opens a transfer's socket on its first datagram.
                let port = self.fresh_port();
                self.by_port.insert(port, id);
                self.transfers
                    .get_mut(&id)
                    .expect("a transfer sends only after it started")
                    .port = Some(port);
                port
            }
            // A refusal leaves from a port of its own, closed at once.
            Outbound::OneOff { listener: 0 } => self.fresh_port(),
            other => panic!("route {other:?} of no socket"),
        }
    }

    fn fresh_port(&mut self) -> SocketAddr {
        let port = SocketAddr::new(self.listen.ip(), self.next_port);
        self.next_port = self
            .next_port
            .checked_add(1)
            .expect("fewer than 59000 ports in one test");
        port
    }

    /// Takes every event the endpoint has, checks it against what came before, and
    /// commits uploads when `auto_commit` says so.
    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                ServerEvent::Started { id, info } => {
                    let record = Record {
                        info,
                        started_at: now,
                        port: None,
                        ended: None,
                        closed: false,
                        commit_asked: false,
                    };
                    assert!(
                        self.transfers.insert(id, record).is_none(),
                        "{id} started twice"
                    );
                    self.started.push(id);
                }
                ServerEvent::Refused {
                    peer,
                    filename,
                    refusal,
                    ..
                } => self.refused.push((peer, filename, refusal)),
                ServerEvent::Ignored { peer, .. } => self.ignored.push(peer),
                ServerEvent::Commit { id, mut storage } => {
                    let r = self
                        .transfers
                        .get_mut(&id)
                        .expect("commit of a started transfer");
                    assert_eq!(r.info.direction, Direction::Write, "{id}: commit of a read");
                    assert!(
                        !r.commit_asked && r.ended.is_none(),
                        "{id}: a second commit"
                    );
                    r.commit_asked = true;
                    if self.auto_commit {
                        let result = storage.commit();
                        self.endpoint.committed(now, id, result);
                    } else {
                        self.commits.push((id, storage));
                    }
                }
                ServerEvent::Ended { id, report } => {
                    let r = self
                        .transfers
                        .get_mut(&id)
                        .expect("end of a started transfer");
                    assert!(r.ended.is_none(), "{id} ended twice");
                    assert_eq!(report.info, r.info, "{id}: the report's request");
                    r.ended = Some((now, report.clone()));
                    self.ended.push_back((id, report));
                }
                ServerEvent::Closed { id } => {
                    let r = self
                        .transfers
                        .get_mut(&id)
                        .expect("close of a started transfer");
                    assert!(r.ended.is_some(), "{id} closed before it ended");
                    assert!(!r.closed, "{id} closed twice");
                    r.closed = true;
                    if let Some(port) = r.port {
                        self.by_port.remove(&port);
                    }
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The simulated network
// ---------------------------------------------------------------------------------------

// One vocabulary of faults for the simulated network and the real relay. A test binary
// with both the sim and tests/common gets two copies of these small types, never mixed.
#[allow(clippy::duplicate_mod)]
#[path = "../common/faults.rs"]
mod faults;
pub use faults::{Faults, Rng};

/// The rule tests' retransmission settings: 1 s doubling up to 4 s, 4 retries.
pub fn rule_config() -> Config {
    Config::new(Duration::from_secs(1), Duration::from_secs(4), 4)
}

/// The default limits with [`rule_config`].
pub fn rule_limits() -> Limits {
    let mut l = Limits::default();
    l.config = rule_config();
    l
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// Everything a client machine wants to send now, as (destination, bytes); more than
/// `runaway` datagrams fail the test.
pub fn drain_client<S: Storage + ?Sized>(
    t: &mut Transfer,
    now: Instant,
    storage: &mut S,
    runaway: usize,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    while let Some(tx) = t.poll_transmit(now, storage, &mut buf) {
        out.push((tx.destination, buf[..tx.len].to_vec()));
        assert!(out.len() < runaway, "more than {runaway} datagrams at once");
    }
    out
}

/// The code of an ERROR datagram; panics on anything else.
pub fn error_code(bytes: &[u8]) -> ErrorCode {
    match Packet::parse(bytes).unwrap() {
        Packet::Error { code, .. } => code,
        p => panic!("not an ERROR: {p:?}"),
    }
}

/// The retransmission settings of the simulated machines: patient enough that moderate
/// loss completes.
pub fn sim_config() -> Config {
    Config::new(Duration::from_secs(1), Duration::from_secs(8), 12)
}

/// The network and server of a run.
#[derive(Clone, Debug)]
pub struct Network {
    /// What happens to datagrams.
    pub faults: Faults,
    /// Seed of the fault generator.
    pub seed: u64,
    /// Retransmission settings of the clients.
    pub config: Config,
    /// The server's bounds (its retransmission settings included).
    pub limits: Limits,
    /// Port per transfer, or single port.
    pub ports: PortMode,
}

impl Network {
    /// A lossless network and a port-per-transfer server, both with [`sim_config`].
    pub fn new() -> Network {
        let mut limits = Limits::default();
        limits.config = sim_config();
        Network {
            faults: Faults::none(),
            seed: 1,
            config: sim_config(),
            limits,
            ports: PortMode::PerTransfer,
        }
    }
}

/// One client of a run.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Its address and port.
    pub addr: SocketAddr,
    /// The file it asks for.
    pub filename: String,
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
    /// A reading client dallies after its final ACK.
    pub dally: bool,
}

impl ClientSpec {
    /// A client at `addr` moving `file` under `filename`, without options.
    pub fn new(addr: SocketAddr, filename: &str, direction: Direction, file: Vec<u8>) -> Self {
        ClientSpec {
            addr,
            filename: filename.to_string(),
            direction,
            mode: Mode::Octet,
            file,
            blksize: None,
            windowsize: None,
            tsize: false,
            dally: false,
        }
    }
}

/// A run with one client, as most tests want it.
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
    /// A reading client dallies after its final ACK.
    pub dally: bool,
    /// The network.
    pub faults: Faults,
    /// Seed of the fault generator.
    pub seed: u64,
    /// Retransmission settings of both machines.
    pub config: Config,
    /// The server's bounds.
    pub limits: Limits,
    /// Port per transfer, or single port.
    pub ports: PortMode,
}

impl Scenario {
    /// A lossless scenario with the given file and defaults.
    pub fn new(direction: Direction, file: Vec<u8>) -> Scenario {
        let net = Network::new();
        Scenario {
            direction,
            mode: Mode::Octet,
            file,
            blksize: None,
            windowsize: None,
            tsize: false,
            dally: false,
            faults: net.faults,
            seed: net.seed,
            config: net.config,
            limits: net.limits,
            ports: net.ports,
        }
    }

    /// Its client.
    pub fn spec(&self) -> ClientSpec {
        ClientSpec {
            mode: self.mode,
            blksize: self.blksize,
            windowsize: self.windowsize,
            tsize: self.tsize,
            dally: self.dally,
            ..ClientSpec::new(client_addr(), "file", self.direction, self.file.clone())
        }
    }

    /// Its network; the server uses the same retransmission settings as the client.
    pub fn network(&self) -> Network {
        let mut limits = self.limits;
        limits.config = self.config;
        Network {
            faults: self.faults,
            seed: self.seed,
            config: self.config,
            limits,
            ports: self.ports,
        }
    }
}

/// How one client's run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The client's `Finished` result; `None` if it never finished.
    pub client: Option<Result<Stats, TransferError>>,
    /// The server transfer the client settled on: the one whose port it locked on to
    /// (port-per-transfer mode), or the only one it started (single-port mode). `None` when
    /// there is no such transfer.
    pub server: Option<Result<Stats, TransferError>>,
    /// The client's other server transfers, in order, with how they ended (`None`: never).
    pub extra: Vec<Option<Result<Stats, TransferError>>>,
    /// True when the server admitted a request of this client.
    pub server_started: bool,
    /// What the receiving side stored: the client's file for a read; for a write, the
    /// committed upload (or, with none, the longest one).
    pub received: Vec<u8>,
    /// Every upload of this client and whether it was committed.
    pub uploads: Vec<(Vec<u8>, bool)>,
    /// Whether the receiver finished with success.
    pub receiver_ok: bool,
    /// Clock steps the run took (whole run).
    pub steps: u64,
    /// Virtual time at the end (whole run).
    pub now: Instant,
    /// Datagrams put on the network (whole run).
    pub datagrams: u64,
    /// Number of `Finished` events of the client, and of `Ended` events of the server's
    /// settled transfer (each must be one).
    pub finished_events: (u32, u32),
    /// The server's port mode.
    pub ports: PortMode,
}

#[derive(PartialEq, Eq)]
struct InFlight {
    at: Instant,
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
    fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
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

struct SimClient {
    transfer: Transfer,
    store: Vec<u8>,
    result: Option<Result<Stats, TransferError>>,
    finished: u32,
}

impl SimClient {
    fn events(&mut self) {
        while let Some(e) = self.transfer.poll_event() {
            if let TransferEvent::Finished { stats, result } = e {
                self.finished += 1;
                if self.result.is_none() {
                    self.result = Some(result.map(|()| stats));
                }
            }
        }
    }
}

fn report_result(r: &Record) -> Option<Result<Stats, TransferError>> {
    r.ended
        .as_ref()
        .map(|(_, rep)| rep.result.clone().map(|()| rep.stats))
}

/// Runs one client to its end; see [`run_many`].
pub fn run(s: &Scenario) -> Outcome {
    run_many(&s.network(), &[s.spec()])
        .pop()
        .expect("one outcome per client")
}

/// Runs every client against one server until every machine is closed and the network
/// is empty. Panics if the run stalls with no deadline while a machine is still open, or
/// takes an unreasonable number of clock steps.
pub fn run_many(n: &Network, specs: &[ClientSpec]) -> Vec<Outcome> {
    let mut policy = AllowAll::default();
    let mut clients = Vec::new();
    let mut max_steps = 100_000u64;
    for spec in specs {
        let mut req = ClientRequest::new(spec.direction, spec.filename.as_str());
        req.mode = spec.mode;
        req.blksize = spec.blksize.map(|b| Blksize::new(b.into()).unwrap());
        req.windowsize = spec.windowsize.map(|w| Windowsize::new(w.into()).unwrap());
        req.tsize = spec.tsize;
        if spec.direction == Direction::Write {
            req.size = Some(spec.file.len() as u64);
        }
        req.dally = spec.dally;
        let blk = usize::from(spec.blksize.unwrap_or(512));
        max_steps += (spec.file.len() * 2 / blk + 1) as u64 * 400;
        let transfer = Transfer::client(Instant::ZERO, server_addr(), &req, n.config).unwrap();
        let store = match spec.direction {
            Direction::Read => {
                let file = SimFile::new(spec.file.clone());
                policy.files.insert(spec.filename.clone(), file);
                Vec::new()
            }
            Direction::Write => spec.file.clone(),
        };
        clients.push(SimClient {
            transfer,
            store,
            result: None,
            finished: 0,
        });
    }
    let by_addr: BTreeMap<SocketAddr, usize> =
        specs.iter().enumerate().map(|(i, s)| (s.addr, i)).collect();
    assert_eq!(
        by_addr.len(),
        specs.len(),
        "one client per address and port"
    );

    let mut server = ServerSide::new(policy, n.limits, n.ports);
    let mut net = Net {
        rng: Rng::new(n.seed),
        faults: n.faults,
        queue: BinaryHeap::new(),
        seq: 0,
        sent: 0,
        trace: std::env::var_os("SIM_TRACE").is_some(),
    };
    let mut buf = vec![0u8; 65536];
    let mut now = Instant::ZERO;
    let mut steps = 0u64;
    loop {
        for (c, spec) in clients.iter_mut().zip(specs) {
            while let Some(t) = c.transfer.poll_transmit(now, &mut c.store, &mut buf) {
                net.send(now, spec.addr, t.destination, &buf[..t.len]);
            }
            c.events();
        }
        while let Some(s) = server.poll_transmit(now) {
            net.send(now, s.from, s.to, s.bytes);
        }
        let clients_closed = clients.iter().all(|c| c.transfer.is_closed());
        if clients_closed && server.is_empty() && net.queue.is_empty() {
            break;
        }
        let next = clients
            .iter()
            .filter_map(|c| c.transfer.poll_timeout())
            .chain(server.poll_timeout())
            .chain(net.queue.peek().map(|p| p.at))
            .min();
        let Some(next) = next else {
            panic!(
                "stalled at {now:?}: clients closed {clients_closed}, server transfers {}, nothing due",
                server.len()
            );
        };
        now = now.max(next);
        steps += 1;
        assert!(steps <= max_steps, "no end after {steps} steps");
        while net.queue.peek().is_some_and(|p| p.at <= now) {
            let p = net.queue.pop().unwrap();
            if p.to.ip() == server_addr().ip() {
                server.handle(now, p.from, p.to, &p.bytes);
            } else if let Some(&i) = by_addr.get(&p.to) {
                let c = &mut clients[i];
                c.transfer
                    .handle_datagram(now, p.from, &p.bytes, &mut c.store);
            }
        }
        for c in &mut clients {
            c.transfer.handle_timeout(now);
        }
        server.handle_timeout(now);
    }

    let uploads = &server.policy().uploads;
    clients
        .into_iter()
        .zip(specs)
        .map(|(c, spec)| {
            let mine: Vec<&Record> = server
                .started
                .iter()
                .map(|id| &server.transfers[id])
                .filter(|r| r.info.peer == spec.addr)
                .collect();
            let settled = match n.ports {
                PortMode::Single if mine.len() == 1 => mine.first().copied(),
                PortMode::Single => None,
                _ => mine
                    .iter()
                    .copied()
                    .find(|r| r.port == Some(c.transfer.peer())),
            };
            let uploads: Vec<(Vec<u8>, bool)> = uploads
                .iter()
                .filter(|u| u.peer == spec.addr)
                .map(|u| (u.file.data(), u.file.commits() > 0))
                .collect();
            let (received, receiver_ok) = match spec.direction {
                Direction::Read => (c.store, matches!(c.result, Some(Ok(_)))),
                Direction::Write => {
                    let committed = uploads.iter().find(|(_, c)| *c);
                    let longest = uploads.iter().max_by_key(|(d, _)| d.len());
                    let received = committed.or(longest).map(|(d, _)| d.clone());
                    let ok = mine.iter().any(|r| matches!(report_result(r), Some(Ok(_))));
                    (received.unwrap_or_default(), ok)
                }
            };
            Outcome {
                client: c.result,
                server: settled.and_then(report_result),
                extra: mine
                    .iter()
                    .filter(|r| settled.is_none_or(|s| !std::ptr::eq(**r, s)))
                    .map(|r| report_result(r))
                    .collect(),
                server_started: !mine.is_empty(),
                received,
                uploads,
                receiver_ok,
                steps,
                now,
                datagrams: net.sent,
                finished_events: (c.finished, settled.map_or(0, |r| r.ended.is_some() as u32)),
                ports: n.ports,
            }
        })
        .collect()
}

/// The either/or rule for one client: the receiver holds exactly the file and ends well,
/// or the transfer timed out on both sides. Never wrong data, never two ends.
///
/// Since the server is a whole endpoint, a client may own more than one server transfer:
/// a duplicated request that arrives after the client answered starts a second one
/// (port-per-transfer mode), and a transfer whose client never answered is reclaimed
/// (`Unanswered`) so the client's next retry starts another. Those extra transfers must
/// end as the client left them: told off with ERROR 5 as strangers, or never answered. In
/// single-port mode, where the client cannot tell transfers apart, a late duplicate
/// request after the end may also run to an end of its own (a re-ACKed one-block file).
pub fn check(s: &Scenario, o: &Outcome) -> Result<(), String> {
    check_client(&s.file, s.direction, o)
}

/// [`check`] for one client of [`run_many`].
pub fn check_client(file: &[u8], direction: Direction, o: &Outcome) -> Result<(), String> {
    type Ended = Option<Result<Stats, TransferError>>;
    let is_timeout = |r: &Ended| matches!(r, Some(Err(TransferError::Timeout { .. })));
    // A server transfer the client stopped answering, or never answered.
    let gave_up = |r: &Ended| {
        matches!(
            r,
            Some(Err(
                TransferError::Timeout { .. } | TransferError::Unanswered
            ))
        )
    };
    // A server transfer the client refused as a stranger to its own.
    let told_off = |r: &Ended| {
        matches!(
            r,
            Some(Err(TransferError::Peer {
                code: ErrorCode::UnknownTransferId,
                ..
            }))
        )
    };
    if o.finished_events.0 != 1 {
        return Err(format!("client finished {} times", o.finished_events.0));
    }
    if o.server.is_some() && o.finished_events.1 != 1 {
        return Err(format!("server finished {} times", o.finished_events.1));
    }
    let extra_ok = |r: &Ended| match o.ports {
        PortMode::Single => matches!(r, Some(Ok(_))) || gave_up(r),
        _ => gave_up(r) || told_off(r),
    };
    if !o.extra.iter().all(extra_ok) {
        return Err(format!("an extra server transfer ended {:?}", o.extra));
    }
    if !file.starts_with(&o.received) {
        return Err(format!(
            "receiver holds {} bytes that are not a prefix of the file",
            o.received.len()
        ));
    }
    for (data, committed) in &o.uploads {
        if !file.starts_with(data) || (*committed && data != file) {
            return Err(format!(
                "an upload holds {} bytes (committed: {committed}) of a {}-byte file",
                data.len(),
                file.len()
            ));
        }
    }
    let sender = match direction {
        Direction::Read => &o.server,
        Direction::Write => &o.client,
    };
    if o.receiver_ok {
        if o.received != file {
            return Err(format!(
                "receiver finished with {} bytes, file has {}",
                o.received.len(),
                file.len()
            ));
        }
        // The sender may miss every copy of the final ACK: it times out, or, for a server
        // whose client's every ACK was lost, is reclaimed as never answered.
        match sender {
            Some(Ok(_)) => Ok(()),
            _ if gave_up(sender) => Ok(()),
            // Several transfers of one client on the single port: none is "the" one.
            None if o.ports == PortMode::Single && !o.extra.is_empty() => Ok(()),
            other => Err(format!("receiver ok, sender ended {other:?}")),
        }
    } else {
        if !is_timeout(&o.client) {
            return Err(format!("receiver failed, client ended {:?}", o.client));
        }
        if o.server_started && o.server.is_some() && !gave_up(&o.server) {
            return Err(format!("receiver failed, server ended {:?}", o.server));
        }
        // A server read ends well only on the client's final ACK, sent once it has it all.
        if o.extra.iter().any(|r| matches!(r, Some(Ok(_)))) {
            return Err(format!(
                "receiver failed, a server transfer ended ok: {:?}",
                o.extra
            ));
        }
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
