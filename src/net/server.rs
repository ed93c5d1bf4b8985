//! The TFTP server on `std::net`: `--threads` event loops, each with its own request
//! sockets (sharing the port) and its own [`Endpoint`]. No thread per transfer.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use mio::Waker;

use super::descriptors;
use super::dir::{DirPolicy, UploadRules};
use super::event_loop::{Bound, Requests, Shared};
use super::fs::{Root, RootOptions};
use super::log::{LogEvent, Logger};
use super::remap::Remap;
use super::socket::{bind, window_bytes};
use super::udp::Udp;
use crate::tftp::server::{Endpoint, Limits, Policy, PortMode};

/// How the server runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The directory served (by [`Server::bind`]; a server with its own policy has none).
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
    /// Refuse names with a backslash or a leading `/` (`--strict-names`), instead of
    /// reading them as firmware means them. See [`RootOptions::strict_names`].
    pub strict_names: bool,
    /// Filename remapping rules run on every requested name (`--remap`, the format of
    /// tftp-hpa's `-m`). See [`Remap`].
    pub remap: Option<Remap>,
    /// Bounds on negotiation, on transfers in total and per client address, and the
    /// retransmission settings. `max_transfers` is shared out among the loops, and lowered
    /// to what the process's file descriptors allow.
    pub limits: Limits,
    /// Answer every transfer from the request port ([`PortMode::Single`]), for clients
    /// behind NAT, in containers or behind a load balancer; otherwise each transfer gets a
    /// port of its own (RFC 1350).
    pub single_port: bool,
    /// Take transfer ports from this range (for firewalls) instead of any free port.
    pub port_range: Option<RangeInclusive<u16>>,
    /// Event loops, each on its own thread with its own request socket on every listen
    /// address (the kernel keeps each client on one loop); 0 means one per core.
    pub threads: usize,
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
            strict_names: false,
            remap: None,
            limits: Limits::default(),
            single_port: false,
            port_range: None,
            threads: 0,
            grace: Duration::from_secs(10),
            verbose: false,
        }
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
}

impl<P: Policy> fmt::Debug for Server<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.addrs)
            .field("loops", &self.loops.len())
            .finish_non_exhaustive()
    }
}

impl Server<DirPolicy> {
    /// Opens the root and binds every listen address.
    pub fn bind(config: ServerConfig) -> io::Result<Server<DirPolicy>> {
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
                strict_names: config.strict_names,
            });
        // Leftovers of uploads cut short by a crash of an earlier run.
        root.sweep();
        let uploads = UploadRules {
            allow_create: config.allow_create,
            allow_overwrite: config.allow_overwrite,
            max_size: config.max_upload_size,
        };
        let mut policy = DirPolicy::new(root, uploads);
        if let Some(rules) = config.remap.clone() {
            policy = policy.with_remap(rules);
        }
        Server::bind_with_policy(config, policy)
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
    /// every request. The root, upload, name and remap fields of `config` belong to the
    /// directory policy of [`Server::bind`] and are not used here.
    pub fn bind_with_policy(config: ServerConfig, policy: P) -> io::Result<Server<P>> {
        let threads = match config.threads {
            0 => thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let ports = if config.single_port {
            PortMode::Single
        } else {
            PortMode::PerTransfer
        };
        let mut limits = descriptors::limits_per_loop(&config.limits, threads, ports);
        let mut addrs: Vec<SocketAddr> = Vec::new();
        let mut loops = Vec::with_capacity(threads);
        for first in std::iter::once(true)
            .chain(std::iter::repeat(false))
            .take(threads)
        {
            let mut listeners = Vec::with_capacity(config.listen.len());
            for (j, &wanted) in config.listen.iter().enumerate() {
                // Later loops join the port the first one was given (it may have asked
                // for port 0).
                let addr = if first { wanted } else { addrs[j] };
                let cannot = |e: io::Error| {
                    io::Error::new(e.kind(), format!("cannot listen on {wanted}: {e}"))
                };
                let socket = bind(addr, threads > 1).map_err(cannot)?;
                // Every socket asks for the same buffers: a window that fits this one's
                // fits a transfer socket's too.
                if limits.max_window_bytes.is_none() {
                    limits.max_window_bytes = window_bytes(&socket);
                }
                let listener = Udp::new(socket).map_err(cannot)?;
                if first {
                    addrs.push(listener.local_addr()?);
                }
                listeners.push(listener);
            }
            let endpoint = Endpoint::new(policy.clone(), limits, ports);
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
        })
    }

    /// Sends the server's reports to `log`.
    pub fn with_logger(mut self, log: impl Fn(&LogEvent<'_>) + Send + Sync + 'static) -> Self {
        self.log = Box::new(log);
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
    /// [`LogEvent::Cut`] with how many, and returns.
    pub fn run(self) -> io::Result<()> {
        let shared = Arc::new(Shared {
            requests: self.stopper.requests.clone(),
            log: self.log,
            verbose: self.verbose,
            grace: self.grace,
            port_range: self.port_range,
        });
        let mut loops = self.loops.into_iter();
        let first = loops.next();
        let others: Vec<_> = loops
            .map(|l| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name("tftp-loop".into())
                    .spawn(move || l.run(shared))
            })
            .collect::<io::Result<_>>()?;
        let mut result = first.map_or(Ok(0), |l| l.run(shared.clone()));
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
            shared.log(&LogEvent::Cut { transfers });
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
