//! The TFTP server on `std::net`: `--threads` event loops, each with its own request
//! sockets (sharing the port) and its own [`Endpoint`]. No thread per transfer.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use mio::Waker;

use super::descriptors;
use super::dir::{DirConfig, DirPolicy};
use super::event_loop::{Bound, Requests, Shared};
use super::log::{LogEvent, Logger};
use super::metrics::Metrics;
#[cfg(unix)]
use super::privileges::{User, switches_to};
use super::socket::{PortClaim, bind, ensure_free, transfer_window_bytes, window_bytes};
use super::udp::Udp;
use crate::tftp::server::{Admission, Endpoint, Limits, Policy, PortMode, SharedAdmission};

/// How a [`Server`] runs, whatever [`Policy`] it asks: where it listens, on how many
/// event loops, within which limits, from which ports it answers, and how it stops. What
/// the directory server of [`Server::bind`] serves is a [`DirConfig`]'s.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Request addresses, e.g. `0.0.0.0:69` and `[::]:69` (not used by
    /// [`Server::from_sockets`], which is given its sockets).
    pub listen: Vec<SocketAddr>,
    /// Bounds on negotiation, on transfers in total and per client address, and the
    /// retransmission settings. `max_transfers` is shared out among the loops, and lowered
    /// to what the process's file descriptors allow.
    pub limits: Limits,
    /// Whether each transfer gets a port of its own (RFC 1350, the default), or every
    /// transfer answers from the request port ([`PortMode::Single`]), for clients behind
    /// NAT, in containers or behind a load balancer.
    pub port_mode: PortMode,
    /// With [`PortMode::PerTransfer`], take transfer ports from this range (for
    /// firewalls) instead of any free port.
    pub port_range: Option<RangeInclusive<u16>>,
    /// Event loops, each on its own thread with its own request socket on every listen
    /// address (the kernel keeps each client on one loop); 0 means one per core.
    /// [`Server::from_sockets`] runs one.
    pub threads: usize,
    /// On shutdown, how long running transfers may go on before they are cut.
    pub grace: Duration,
    /// Log every packet (`-v`).
    pub verbose: bool,
}

impl Default for ServerConfig {
    /// [`ServerConfig::new`] with no listen address: for [`Server::from_sockets`].
    fn default() -> Self {
        ServerConfig::new(Vec::new())
    }
}

impl ServerConfig {
    /// Listens on `listen` with default limits, a port per transfer, one event loop per
    /// core and a grace of 10 s.
    pub fn new(listen: Vec<SocketAddr>) -> Self {
        ServerConfig {
            listen,
            limits: Limits::default(),
            port_mode: PortMode::PerTransfer,
            port_range: None,
            threads: 0,
            grace: Duration::from_secs(10),
            verbose: false,
        }
    }

    /// Looks for what would keep a server with this config from binding (and then from
    /// [`drop_privileges`](Server::drop_privileges) to `user`), without binding a
    /// request port or changing user: for `wirekit serve --check`, before a restart.
    /// Returns the first problem as an error. What the directory server would find in its
    /// root, [`DirConfig::check`] looks for.
    ///
    /// Looked at: each listen address is one of this host's (bound on a free port, not
    /// its own: the server being checked may hold that), and its port one this process may
    /// bind; this process may become `user`; the transfer ports the server, and then
    /// `user`, may bind. A port that another program holds is not looked at.
    #[cfg(unix)]
    pub fn check(&self, user: Option<&User>) -> io::Result<()> {
        use super::privileges::{is_root, may_bind_privileged_ports, unprivileged_port_start};
        let lowest = unprivileged_port_start();
        for &addr in &self.listen {
            let cannot =
                |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
            UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).map_err(|e| match e.kind() {
                io::ErrorKind::AddrNotAvailable => cannot(io::Error::new(
                    e.kind(),
                    format!("{} is not an address of this host ({e})", addr.ip()),
                )),
                _ => cannot(e),
            })?;
            if addr.port() != 0 && addr.port() < lowest && !may_bind_privileged_ports() {
                return Err(cannot(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "ports below {lowest} need root or CAP_NET_BIND_SERVICE, or sockets \
                         passed by a service manager"
                    ),
                )));
            }
        }
        if let Some(user) = user.filter(|u| switches_to(u))
            && !is_root()
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "--user {}: only a server started as root can switch users",
                    user.name()
                ),
            ));
        }
        if self.port_mode == PortMode::PerTransfer {
            check_port_range_here(self.port_range.as_ref())?;
            if let Some(user) = user {
                check_port_range_as(self.port_range.as_ref(), user)?;
            }
        }
        Ok(())
    }
}

impl SharedAdmission for Mutex<Admission> {
    fn with(&self, f: &mut dyn FnMut(&mut Admission)) {
        // The counts are changed in steps that leave them consistent: a loop that panicked
        // holding the lock left nothing half done.
        f(&mut self.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Stops a running server from another thread or a signal handler.
#[derive(Clone)]
pub struct Stopper {
    requests: Arc<Requests>,
    wakers: Arc<Vec<Arc<Waker>>>,
}

impl fmt::Debug for Stopper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stopper")
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl Stopper {
    fn wake(&self) {
        for w in self.wakers.iter() {
            let _ = w.wake();
        }
    }

    /// Stops admitting requests (they are refused with "server shutting down") and lets
    /// running transfers finish within the grace period.
    pub fn stop(&self) {
        self.requests.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Stops at once: running transfers are sent an ERROR and their uploads removed.
    pub fn stop_now(&self) {
        self.requests.cut.store(true, Ordering::SeqCst);
        self.stop();
    }
}

/// A TFTP server, bound and ready to [`run`](Server::run).
pub struct Server<P: Policy = DirPolicy> {
    loops: Vec<Bound<P>>,
    addrs: Vec<SocketAddr>,
    stopper: Stopper,
    log: Logger,
    verbose: bool,
    grace: Duration,
    port_range: Option<RangeInclusive<u16>>,
    /// The policy the loops were given a clone of, for the application to ask about.
    policy: P,
    /// Each loop's limits.
    limits: Limits,
    ports: PortMode,
    /// The window cap came from the socket buffers (none was configured).
    auto_window: bool,
    metrics: Option<Metrics>,
}

impl<P: Policy> fmt::Debug for Server<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.addrs)
            .field("loops", &self.loops.len())
            .finish_non_exhaustive()
    }
}

/// Refuses transfer ports that a server privileged as `privileged` says could not bind:
/// each transfer would fail with "permission denied" and its client be told the server is
/// busy. `who` says who would lack the right.
#[cfg(unix)]
fn check_port_range(
    range: Option<&RangeInclusive<u16>>,
    privileged: bool,
    who: &str,
) -> io::Result<()> {
    let lowest = super::privileges::unprivileged_port_start();
    match range {
        Some(r) if !privileged && *r.start() < lowest => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "transfer ports {}-{} start below {lowest}, the lowest port an unprivileged \
                 process may bind (net.ipv4.ip_unprivileged_port_start), and {who}: every \
                 transfer would fail; take the range from {lowest} up",
                r.start(),
                r.end()
            ),
        )),
        _ => Ok(()),
    }
}

/// [`check_port_range`] for this process as it is.
#[cfg(unix)]
fn check_port_range_here(range: Option<&RangeInclusive<u16>>) -> io::Result<()> {
    check_port_range(
        range,
        super::privileges::may_bind_privileged_ports(),
        "this process may not (it is not root, nor holds CAP_NET_BIND_SERVICE)",
    )
}

/// [`check_port_range`] for the process once it runs as `user`.
#[cfg(unix)]
fn check_port_range_as(range: Option<&RangeInclusive<u16>>, user: &User) -> io::Result<()> {
    check_port_range(
        range,
        super::privileges::privileged_as(user),
        &format!("user {} may not", user.name()),
    )
}

/// The default window cap in single-port mode. There, a forged request and ACKs sent
/// blindly to the request port (the one number TFTP would keep secret is then known) make
/// the server send a window to the forged source for each 32-byte ACK: the window's size
/// is the attack's gain (about 2000 times at 64 KiB, 35 000 times at the 4 MiB a socket
/// buffer allows). A port per transfer gives such ACKs nothing to land on.
const SINGLE_PORT_WINDOW_BYTES: u32 = 64 * 1024;

/// The default window cap: what the kernel's buffers hold (those of the request socket
/// where transfers run on it, else those a transfer socket would get), and in single-port
/// mode no more than [`SINGLE_PORT_WINDOW_BYTES`].
fn window_cap(ports: PortMode, listener: &UdpSocket) -> Option<u32> {
    match ports {
        PortMode::Single => Some(
            window_bytes(listener).map_or(SINGLE_PORT_WINDOW_BYTES, |b| {
                b.min(SINGLE_PORT_WINDOW_BYTES)
            }),
        ),
        _ => transfer_window_bytes(listener.local_addr().ok()?.is_ipv6()),
    }
}

impl Server<DirPolicy> {
    /// Opens the directory `dir` names (see [`DirPolicy::open`]) and binds every listen
    /// address to serve it.
    pub fn bind(config: ServerConfig, dir: DirConfig) -> io::Result<Server<DirPolicy>> {
        let policy = DirPolicy::open(&dir)?;
        Server::bind_with_policy(config, policy)
    }

    /// Opens the directory `dir` names (see [`DirPolicy::open`]) and serves it on request
    /// sockets bound elsewhere: passed by a service manager
    /// ([`systemd::listen_sockets`](super::systemd::listen_sockets)) or by a parent that
    /// bound them. `config.listen` and `config.threads` are not used:
    /// the sockets are served by one event loop. More loops would need more sockets on
    /// the same addresses: a copy (`dup`) of a socket shares its queue, and so would hand
    /// one client's datagrams to different loops, and a socket of our own would join the
    /// passed one's port only if that had `SO_REUSEPORT` and the same owner, and only for a
    /// process allowed to bind the port, which a socket-activated service need not be.
    ///
    /// The sockets are used as they are: their buffers, which hold whole windows in
    /// single-port mode, are for whoever bound them to size (systemd: `ReceiveBuffer=`,
    /// `SendBuffer=`); asking again without privileges could only shrink them.
    ///
    /// An IPv6 socket must be IPv6-only, unless in [single-port
    /// mode](PortMode::Single): transfer sockets are IPv6-only, so they cannot
    /// answer the mapped IPv4 addresses a dual-stack socket hands out. Pass an IPv4 socket
    /// beside it instead.
    pub fn from_sockets(
        config: ServerConfig,
        dir: DirConfig,
        sockets: Vec<UdpSocket>,
    ) -> io::Result<Server<DirPolicy>> {
        let policy = DirPolicy::open(&dir)?;
        Server::from_sockets_with_policy(config, policy, sockets)
    }

    /// The served root.
    pub fn root(&self) -> &Path {
        self.policy.root().path()
    }
}

impl<P> Server<P>
where
    P: Policy + Clone + Send + 'static,
    P::Storage: Send + 'static,
{
    /// Binds every listen address for a server that asks `policy` (a clone per loop) about
    /// every request.
    pub fn bind_with_policy(config: ServerConfig, policy: P) -> io::Result<Server<P>> {
        // A server with no request socket would run, hearing nothing, until stopped.
        if config.listen.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no address to listen on",
            ));
        }
        let threads = match config.threads {
            0 => thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let cannot = |wanted: SocketAddr| {
            move |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {wanted}: {e}"))
        };
        let claim = if threads > 1 {
            let claim = PortClaim::take(&config.listen)?;
            for &wanted in &config.listen {
                ensure_free(wanted, &claim).map_err(cannot(wanted))?;
            }
            Some(claim)
        } else {
            None
        };
        let mut sets: Vec<Vec<UdpSocket>> = Vec::with_capacity(threads);
        let mut bound: Vec<SocketAddr> = Vec::with_capacity(config.listen.len());
        for _ in 0..threads {
            let mut set = Vec::with_capacity(config.listen.len());
            for (j, &wanted) in config.listen.iter().enumerate() {
                // Later loops join the port the first one was given (it may have asked
                // for port 0).
                let addr = bound.get(j).copied().unwrap_or(wanted);
                let socket = bind(addr, threads > 1).map_err(cannot(wanted))?;
                if bound.len() == j {
                    bound.push(socket.local_addr().map_err(cannot(wanted))?);
                }
                set.push(socket);
            }
            sets.push(set);
        }
        drop(claim);
        Server::assemble(config, policy, sets)
    }

    /// A server on request sockets bound elsewhere, for a server that asks `policy`
    /// about every request: see [`Server::from_sockets`]. `config.listen` and
    /// `config.threads` are not used.
    pub fn from_sockets_with_policy(
        config: ServerConfig,
        policy: P,
        sockets: Vec<UdpSocket>,
    ) -> io::Result<Server<P>> {
        if sockets.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no request socket to serve on",
            ));
        }
        for socket in &sockets {
            let addr = socket.local_addr()?;
            // An IPv6 socket that also takes IPv4 (as `[::]:69` does by default) hands out
            // IPv4 clients as mapped addresses, which transfer sockets, IPv6-only like
            // every IPv6 socket of this server, cannot answer. In single-port mode the
            // request socket answers them itself, and can.
            let dual_stack = addr.is_ipv6() && !socket2::SockRef::from(socket).only_v6()?;
            if dual_stack && config.port_mode == PortMode::PerTransfer {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{addr} also takes IPv4, which transfer ports cannot answer: make it \
                         IPv6-only (systemd: BindIPv6Only=ipv6-only) and pass an IPv4 socket \
                         beside it, or answer from the request port (single-port mode)"
                    ),
                ));
            }
        }
        Server::assemble(config, policy, vec![sockets])
    }

    /// The loops, one per set of request sockets (one socket per listen address each,
    /// every set on the same addresses).
    fn assemble(
        config: ServerConfig,
        policy: P,
        sets: Vec<Vec<UdpSocket>>,
    ) -> io::Result<Server<P>> {
        let ports = config.port_mode;
        #[cfg(unix)]
        if ports == PortMode::PerTransfer {
            check_port_range_here(config.port_range.as_ref())?;
        }
        let mut limits = descriptors::fit_to_descriptors(&config.limits, ports);
        let first = sets.first().and_then(|set| set.first());
        let auto_window = limits.max_window_bytes.is_none();
        if auto_window {
            limits.max_window_bytes = first.and_then(|s| window_cap(ports, s));
        }
        // The loops count against the limits together: a limit per client address is one,
        // whichever loop the kernel hands a request to.
        let admission: Arc<dyn SharedAdmission> = Arc::new(Mutex::new(Admission::new()));
        let mut addrs = Vec::new();
        let mut loops = Vec::with_capacity(sets.len());
        for set in sets {
            let listeners = set
                .into_iter()
                .map(|socket| {
                    let addr = socket.local_addr()?;
                    Udp::listener(socket).map_err(|e| {
                        io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                    })
                })
                .collect::<io::Result<Vec<_>>>()?;
            if loops.is_empty() {
                addrs = listeners
                    .iter()
                    .map(Udp::local_addr)
                    .collect::<io::Result<_>>()?;
            }
            let mut endpoint = Endpoint::new(policy.clone(), limits, ports);
            endpoint.share_admission(admission.clone());
            loops.push(Bound::new(endpoint, listeners)?);
        }
        let stopper = Stopper {
            requests: Arc::default(),
            wakers: Arc::new(loops.iter().map(Bound::waker).collect()),
        };
        Ok(Server {
            loops,
            addrs,
            stopper,
            log: Box::new(|_: &LogEvent<'_>| {}),
            verbose: config.verbose,
            grace: config.grace,
            port_range: config.port_range,
            policy,
            limits,
            ports,
            auto_window,
            metrics: None,
        })
    }

    /// Makes the whole process `user` (every thread; supplementary groups cleared to the
    /// user's primary group), for a server started as root to bind port 69: call it after
    /// binding and before [`run`](Server::run), which reads the first request. The root
    /// directory stays open and the request sockets bound. Transfer ports are bound as
    /// `user` from then on, so a [`port_range`](ServerConfig::port_range) starting below
    /// `net.ipv4.ip_unprivileged_port_start` (1024 by default) is refused, with nothing
    /// changed, unless `user` is root. Where the window cap comes from the socket buffers,
    /// it is measured again: the user may no longer force large buffers.
    ///
    /// A process already running as `user` (and not as root) changes nothing. Fails where
    /// the process may not switch; the switch may then be half done (groups changed, user
    /// not), so the server is not to be run.
    #[cfg(unix)]
    pub fn drop_privileges(&mut self, user: &User) -> io::Result<()> {
        if self.ports == PortMode::PerTransfer {
            check_port_range_as(self.port_range.as_ref(), user)?;
        }
        super::privileges::switch_to(user)?;
        if self.auto_window && self.ports == PortMode::PerTransfer {
            let ipv6 = self.addrs.first().is_some_and(SocketAddr::is_ipv6);
            if let Some(cap) = transfer_window_bytes(ipv6)
                && self.limits.max_window_bytes.is_none_or(|was| cap < was)
            {
                self.limits.max_window_bytes = Some(cap);
                for l in &mut self.loops {
                    l.set_limits(self.limits);
                }
            }
        }
        Ok(())
    }

    /// Sends the server's reports to `log`.
    pub fn with_logger(mut self, log: impl Fn(&LogEvent<'_>) + Send + Sync + 'static) -> Self {
        self.log = Box::new(log);
        self
    }

    /// Counts what the server does into `metrics` (each event loop attached in turn, see
    /// [`Metrics::event_loop`]), for the application to read while it runs.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The addresses actually bound (a port 0 in the config becomes the real port).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// The policy the server asks (each loop has a clone of it).
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Serves until stopped, then lets running transfers finish within the grace period,
    /// cuts the rest (their clients are sent an ERROR, their uploads are removed), logs
    /// [`LogEvent::CutAtStop`] with how many, and returns.
    pub fn run(self) -> io::Result<()> {
        let shared = Arc::new(Shared {
            requests: self.stopper.requests.clone(),
            log: self.log,
            verbose: self.verbose,
            grace: self.grace,
            port_range: self.port_range,
        });
        let metrics = self.metrics;
        // Attached in the loops' order, so that a loop's number is its place here.
        let mut loops = self
            .loops
            .into_iter()
            .map(|l| (l, metrics.as_ref().map(Metrics::event_loop)));
        let first = loops.next();
        let others: Vec<_> = loops
            .map(|(l, m)| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name("tftp-loop".into())
                    .spawn(move || l.run(shared, m))
            })
            .collect::<io::Result<_>>()?;
        let mut result = first.map_or(Ok(0), |(l, m)| l.run(shared.clone(), m));
        for handle in others {
            let joined = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("server loop panicked")));
            result = match (result, joined) {
                (Ok(a), Ok(b)) => Ok(a + b),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        let transfers = result?;
        if transfers > 0 {
            shared.log(&LogEvent::CutAtStop { transfers });
        }
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

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
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
