//! The TFTP server on `std::net`: one thread per request socket, one per transfer.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::drive::{Hooks, drive};
use super::fs::{Root, RootOptions, Upload};
use super::udp::{RequestSocket, bind, bind_transfer};
use crate::tftp::server::{Admission, Limits, Policy, Refusal, admit};
use crate::tftp::{
    Direction, ErrorCode, Packet, Stats, Storage, StorageError, Text, TransferError,
};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The directory served.
    pub root: PathBuf,
    /// Request addresses, e.g. `0.0.0.0:69` and `[::]:69`.
    pub listen: Vec<SocketAddr>,
    /// Accept uploads of new files.
    pub allow_create: bool,
    /// Let uploads replace existing files (otherwise ERROR 6).
    pub allow_overwrite: bool,
    /// Refuse uploads larger than this (ERROR 3), by their tsize up front and by their
    /// bytes as they arrive.
    pub max_upload_size: Option<u64>,
    /// Permission bits of files uploads create, set exactly (`--create-mode`); `None`:
    /// `0o666` less the umask. Replaced files keep their own. See
    /// [`RootOptions::create_mode`].
    pub create_mode: Option<u32>,
    /// Refuse to serve or replace files with more than one hard link (`--refuse-linked`).
    /// See [`RootOptions::refuse_linked`].
    pub refuse_linked: bool,
    /// Refuse to serve or replace files not owned by the server's user (`--owned-only`).
    /// See [`RootOptions::owned_only`].
    pub owned_only: bool,
    /// Bounds on negotiation and the retransmission settings.
    pub limits: Limits,
    /// Take transfer ports from this range (for firewalls) instead of any free port.
    pub port_range: Option<RangeInclusive<u16>>,
    /// Transfers running at once; requests beyond it get ERROR 0 "server busy".
    pub max_transfers: usize,
    /// On shutdown, how long running transfers may go on before they are cut.
    pub grace: Duration,
    /// Log every packet (`-v`).
    pub verbose: bool,
}

impl ServerConfig {
    /// Serves `root` read-only on `listen`, with default limits.
    pub fn new(root: impl Into<PathBuf>, listen: Vec<SocketAddr>) -> Self {
        ServerConfig {
            root: root.into(),
            listen,
            allow_create: false,
            allow_overwrite: false,
            max_upload_size: None,
            create_mode: None,
            refuse_linked: false,
            owned_only: false,
            limits: Limits::default(),
            port_range: None,
            max_transfers: 1000,
            grace: Duration::from_secs(10),
            verbose: false,
        }
    }
}

/// One finished transfer, as the server logs it.
#[derive(Clone, Debug)]
pub struct TransferLog {
    /// The client.
    pub peer: SocketAddr,
    /// The file, as requested.
    pub filename: String,
    /// Read (download) or write (upload).
    pub direction: Direction,
    /// Counters, on success.
    pub stats: Stats,
    /// How it ended.
    pub outcome: Result<(), TransferError>,
}

impl fmt::Display for TransferLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::Read => "read",
            Direction::Write => "write",
        };
        let secs = self.stats.duration.as_secs_f64();
        let rate = if secs > 0.0 {
            self.stats.bytes as f64 / secs / 1e6
        } else {
            0.0
        };
        write!(
            f,
            "{} {dir} {:?}: {} bytes in {secs:.3}s ({rate:.1} MB/s), {} retransmissions, ",
            self.peer, self.filename, self.stats.bytes, self.stats.retransmissions
        )?;
        match &self.outcome {
            Ok(()) => f.write_str("ok"),
            Err(e) if e.is_clean() => write!(f, "ended: {e}"),
            Err(e) => write!(f, "failed: {e}"),
        }
    }
}

/// What the server reports as it runs.
#[derive(Debug)]
pub enum LogEvent<'a> {
    /// A transfer ended.
    Transfer(&'a TransferLog),
    /// A request was refused with an ERROR.
    Refused {
        /// The client.
        peer: SocketAddr,
        /// The file, when the request parsed.
        filename: Option<String>,
        /// The ERROR sent.
        refusal: &'a Refusal,
    },
    /// A packet went out or came in (only with [`ServerConfig::verbose`]).
    Packet {
        /// True for a packet sent.
        sent: bool,
        /// The other side.
        peer: SocketAddr,
        /// The packet, summarized.
        summary: String,
    },
    /// An I/O error outside any transfer.
    Error(&'a io::Error),
}

type Logger = Arc<dyn Fn(&LogEvent<'_>) + Send + Sync>;

/// Stops a running server from another thread (or a signal handler).
#[derive(Clone, Debug)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    /// Asks the server to stop accepting requests and wind down.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Shared {
    config: ServerConfig,
    root: Root,
    log: Logger,
    stopping: AtomicBool,
    /// Set when the grace period is over: transfers still running end at once.
    cut: AtomicBool,
    /// The transfers running, by id, so that a repeated request does not start a second
    /// one.
    active: Mutex<HashMap<u64, Active>>,
    next_id: AtomicU64,
    idle: Condvar,
}

/// A running transfer, as the request port sees it.
struct Active {
    /// The client.
    peer: SocketAddr,
    /// The request that started it.
    request: Vec<u8>,
    /// The client has sent something to the transfer's port: it has our answer, so a
    /// request from it now is a new one, not a repeat of this one.
    heard: bool,
}

/// A TFTP server, bound and ready to [`run`](Server::run).
pub struct Server {
    sockets: Vec<RequestSocket>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the root and binds every listen address.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let root = Root::open(&config.root)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open {}: {e}", config.root.display()),
                )
            })?
            .with_options(RootOptions {
                create_mode: config.create_mode,
                refuse_linked: config.refuse_linked,
                owned_only: config.owned_only,
            });
        // Leftovers of uploads cut short by a crash of an earlier run.
        root.sweep();
        let sockets = config
            .listen
            .iter()
            .map(|&a| {
                bind(a)
                    .and_then(RequestSocket::new)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let log: Logger = Arc::new(|_: &LogEvent<'_>| {});
        let shared = Shared {
            config,
            root,
            log,
            stopping: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            active: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            idle: Condvar::new(),
        };
        Ok(Server {
            sockets,
            shared: Arc::new(shared),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Sends the server's reports to `log`.
    pub fn with_logger(mut self, log: impl Fn(&LogEvent<'_>) + Send + Sync + 'static) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.log = Arc::new(log);
        }
        self
    }

    /// The addresses actually bound (a port 0 in the config becomes the real port).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.socket.local_addr().ok())
            .collect()
    }

    /// The served root.
    pub fn root(&self) -> &std::path::Path {
        self.shared.root.path()
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Serves until stopped, then lets running transfers finish within the grace period,
    /// cuts the rest (their uploads are removed), and returns.
    pub fn run(self) -> io::Result<()> {
        let listeners: Vec<_> = self
            .sockets
            .into_iter()
            .map(|s| {
                let shared = self.shared.clone();
                let stop = self.stop.clone();
                thread::Builder::new()
                    .name("tftp-listen".into())
                    .spawn(move || listen(&s, &shared, &stop))
            })
            .collect::<io::Result<_>>()?;
        for l in listeners {
            let _ = l.join();
        }
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        let lock = shared.active.lock().unwrap_or_else(PoisonError::into_inner);
        let (lock, _) = shared
            .idle
            .wait_timeout_while(lock, shared.config.grace, |a| !a.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        drop(lock);
        shared.cut.store(true, Ordering::SeqCst);
        // Cut transfers notice within one poll interval and clean up.
        let lock = shared.active.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = shared
            .idle
            .wait_timeout_while(lock, Duration::from_secs(5), |a| !a.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        Ok(())
    }

    /// Runs the server on a background thread; for tests and embedding.
    pub fn spawn(self) -> io::Result<RunningServer> {
        let addrs = self.local_addrs();
        let stopper = self.stopper();
        let handle = thread::Builder::new()
            .name("tftp-server".into())
            .spawn(move || self.run())?;
        Ok(RunningServer {
            addrs,
            stopper,
            handle: Some(handle),
        })
    }
}

/// A server running on its own thread. Dropping it stops it and waits for it.
#[derive(Debug)]
pub struct RunningServer {
    addrs: Vec<SocketAddr>,
    stopper: Stopper,
    handle: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// The bound request addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops the server and waits until it has wound down.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.stopper.stop();
        match self.handle.take().map(thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

fn listen(socket: &RequestSocket, shared: &Arc<Shared>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_536];
    let _ = socket
        .socket
        .set_read_timeout(Some(Duration::from_millis(100)));
    while !stop.load(Ordering::SeqCst) {
        match socket.recv(&mut buf) {
            Ok((n, peer, local)) => {
                if let Some(datagram) = buf.get(..n) {
                    accept(shared, datagram, peer, local);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                (shared.log)(&LogEvent::Error(&e));
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The server's policy over its root: opening the file is the check.
struct FsPolicy<'a> {
    shared: &'a Shared,
    file: Option<FileKind>,
}

enum FileKind {
    Read(std::fs::File),
    Write(Upload),
}

impl Policy for FsPolicy<'_> {
    fn read(&mut self, _: SocketAddr, filename: Text<'_>) -> Result<Option<u64>, Refusal> {
        let (file, size) = self.shared.root.open_read(filename)?;
        self.file = Some(FileKind::Read(file));
        Ok(Some(size))
    }

    fn write(
        &mut self,
        _: SocketAddr,
        filename: Text<'_>,
        tsize: Option<u64>,
    ) -> Result<(), Refusal> {
        let c = &self.shared.config;
        if !c.allow_create && !c.allow_overwrite {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "uploads are disabled",
            ));
        }
        if let (Some(max), Some(size)) = (c.max_upload_size, tsize) {
            if size > max {
                return Err(Refusal::new(
                    ErrorCode::DiskFull,
                    format!("upload of {size} bytes exceeds the {max}-byte limit"),
                ));
            }
        }
        let upload = self.shared.root.create_upload(
            filename,
            c.allow_overwrite,
            c.max_upload_size,
            tsize,
        )?;
        if !c.allow_create && !upload.replaces_existing() {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "creating new files is disabled",
            ));
        }
        self.file = Some(FileKind::Write(upload));
        Ok(())
    }
}

fn accept(shared: &Arc<Shared>, datagram: &[u8], peer: SocketAddr, local: IpAddr) {
    if shared.stopping.load(Ordering::SeqCst) {
        return;
    }
    {
        let active = shared.active.lock().unwrap_or_else(PoisonError::into_inner);
        // A repeated request while its transfer waits for the client's first answer: the
        // transfer answers it already. A different request, or any request once the client
        // has spoken on the transfer's port, is a new one: tftp-hpa's interactive client
        // sends every command from the same port, right after the previous transfer (and
        // during the dally of an upload).
        if active
            .values()
            .any(|a| a.peer == peer && !a.heard && a.request == datagram)
        {
            return;
        }
        if active.len() >= shared.config.max_transfers {
            drop(active);
            let refusal = Refusal::new(ErrorCode::NotDefined, "server busy, try again later");
            return refuse(shared, peer, local, None, &refusal);
        }
    }
    let epoch = Instant::now();
    let mut policy = FsPolicy { shared, file: None };
    match admit(
        Duration::ZERO,
        peer,
        datagram,
        &shared.config.limits,
        &mut policy,
    ) {
        Admission::Ignored => {}
        Admission::Refused {
            refusal, request, ..
        } => {
            let name = request.map(|r| r.filename.to_string());
            refuse(shared, peer, local, name, &refusal);
        }
        Admission::Accepted {
            transfer,
            request,
            direction,
        } => {
            let Some(file) = policy.file.take() else {
                return;
            };
            let filename = request.filename.to_string();
            let socket = match bind_transfer(local, shared.config.port_range.as_ref()) {
                Ok(s) => s,
                Err(e) => return (shared.log)(&LogEvent::Error(&e)),
            };
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            shared
                .active
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    id,
                    Active {
                        peer,
                        request: datagram.to_vec(),
                        heard: false,
                    },
                );
            let shared2 = shared.clone();
            let spawned = thread::Builder::new()
                .name("tftp-transfer".into())
                .spawn(move || {
                    let mut transfer = transfer;
                    let log = run_transfer(
                        &shared2,
                        id,
                        &mut transfer,
                        &socket,
                        file,
                        epoch,
                        peer,
                        filename,
                        direction,
                    );
                    (shared2.log)(&LogEvent::Transfer(&log));
                    let mut active = shared2
                        .active
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    active.remove(&id);
                    shared2.idle.notify_all();
                });
            if let Err(e) = spawned {
                shared
                    .active
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                (shared.log)(&LogEvent::Error(&e));
            }
        }
    }
}

fn refuse(
    shared: &Shared,
    peer: SocketAddr,
    local: IpAddr,
    filename: Option<String>,
    refusal: &Refusal,
) {
    (shared.log)(&LogEvent::Refused {
        peer,
        filename,
        refusal,
    });
    let packet = Packet::Error {
        code: refusal.code,
        message: Text::from(refusal.message.as_ref()),
    };
    if let (Ok(bytes), Ok(socket)) = (
        packet.to_vec(),
        bind_transfer(local, shared.config.port_range.as_ref()),
    ) {
        let _ = socket.send_to(&bytes, peer);
    }
}

impl Storage for FileKind {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        match self {
            FileKind::Read(f) => f.read_at(offset, buf),
            FileKind::Write(u) => u.read_at(offset, buf),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        match self {
            FileKind::Read(f) => Storage::write(f, data),
            FileKind::Write(u) => u.write(data),
        }
    }
}

struct ServerHooks<'a> {
    shared: &'a Shared,
    /// The transfer's key in [`Shared::active`].
    id: u64,
    /// The client.
    peer: SocketAddr,
    /// Whether the client was heard from (and `active` says so).
    heard: bool,
}

impl Hooks<FileKind> for ServerHooks<'_> {
    fn completed(&mut self, file: &mut FileKind) -> Result<(), StorageError> {
        match file {
            FileKind::Write(u) => u.commit().map_err(StorageError::from),
            FileKind::Read(_) => Ok(()),
        }
    }

    fn packet(&mut self, sent: bool, peer: SocketAddr, bytes: &[u8]) {
        if !sent && !self.heard && peer == self.peer {
            self.heard = true;
            let mut active = self
                .shared
                .active
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(a) = active.get_mut(&self.id) {
                a.heard = true;
            }
        }
        if self.shared.config.verbose {
            let summary = summarize(bytes);
            (self.shared.log)(&LogEvent::Packet {
                sent,
                peer,
                summary,
            });
        }
    }

    /// Dally after an upload, but not past shutdown: its outcome is already settled.
    fn dally(&self) -> bool {
        !self.shared.stopping.load(Ordering::SeqCst)
    }

    fn cancelled(&mut self) -> Option<StorageError> {
        self.shared
            .cut
            .load(Ordering::SeqCst)
            .then(|| StorageError::new(ErrorCode::NotDefined, "server shutting down"))
    }
}

/// One line per packet for `-v`; DATA payloads are not printed.
pub(crate) fn summarize(bytes: &[u8]) -> String {
    match Packet::parse(bytes) {
        Ok(Packet::Data { block, data }) => format!("DATA block {block}, {} bytes", data.len()),
        Ok(Packet::Ack { block }) => format!("ACK block {block}"),
        Ok(Packet::Error { code, message }) => format!("ERROR {code}: {message}"),
        Ok(Packet::Oack(o)) => format!("OACK {o:?}"),
        Ok(Packet::Rrq(r)) => format!("RRQ {} {}", r.filename, r.mode),
        Ok(Packet::Wrq(r)) => format!("WRQ {} {}", r.filename, r.mode),
        Err(e) => format!("malformed ({e})"),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_transfer(
    shared: &Shared,
    id: u64,
    transfer: &mut crate::tftp::Transfer,
    socket: &UdpSocket,
    file: FileKind,
    epoch: Instant,
    peer: SocketAddr,
    filename: String,
    direction: Direction,
) -> TransferLog {
    let mut file = file;
    let outcome = drive(
        transfer,
        socket,
        &mut file,
        epoch,
        &mut ServerHooks {
            shared,
            id,
            peer,
            heard: false,
        },
    );
    let outcome = outcome.unwrap_or_else(|e| Err(TransferError::Storage(StorageError::from(e))));
    TransferLog {
        peer,
        filename,
        direction,
        stats: outcome.as_ref().copied().unwrap_or_default(),
        outcome: outcome.map(|_| ()),
    }
}
