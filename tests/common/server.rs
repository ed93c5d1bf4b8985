//! Our server in a test: configs for both port modes, and a running server whose log
//! (finished transfers, refusals, OACKs) the test can read and wait on.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wirekit::net::{DirConfig, LogEvent, RunningServer, Server, ServerConfig};
use wirekit::tftp::Config;
use wirekit::tftp::server::{PortMode, Refusal, Report};

use super::wait::wait_for;

/// Both ways a server can answer: from a port per transfer (RFC 1350), and from the
/// request port only.
pub const PORT_MODES: [PortMode; 2] = [PortMode::PerTransfer, PortMode::Single];

/// Retransmission settings for fast tests.
pub fn fast_config(timeout_ms: u64, max_ms: u64, retries: u32) -> Config {
    Config::new(
        Duration::from_millis(timeout_ms),
        Duration::from_millis(max_ms),
        retries,
    )
}

/// A server on `listen` (port 0 in the tests), answering in `ports` mode, with a grace of
/// 2 s on stop.
pub fn config_on(listen: SocketAddr, ports: PortMode) -> ServerConfig {
    let mut c = ServerConfig::new(vec![listen]);
    c.port_mode = ports;
    c.grace = Duration::from_secs(2);
    c
}

/// [`config_on`] 127.0.0.1:0.
pub fn config(ports: PortMode) -> ServerConfig {
    config_on("127.0.0.1:0".parse().unwrap(), ports)
}

/// [`config`] with these retransmission settings.
pub fn config_with(ports: PortMode, retransmission: Config) -> ServerConfig {
    let mut c = config(ports);
    c.limits.config = retransmission;
    c
}

/// Serves `root` with uploads of new files allowed (not over existing ones).
pub fn uploads_to(root: &Path) -> DirConfig {
    let mut dir = DirConfig::new(root);
    dir.uploads.allow_create = true;
    dir
}

/// What the server reported so far.
#[derive(Debug, Default)]
pub struct Log {
    /// Finished transfers.
    pub reports: Vec<Report>,
    /// Requests refused with an ERROR: the client, the file when the request parsed, and
    /// the ERROR.
    pub refusals: Vec<(SocketAddr, Option<String>, Refusal)>,
    /// Requests dropped without an answer: the client.
    pub ignored: Vec<SocketAddr>,
    /// Everything as one line each: transfers and refusals, I/O errors, cuts, and OACKs
    /// sent (with [`ServerConfig::verbose`]).
    pub lines: Vec<String>,
}

/// Our server on a background thread, with what it reported.
pub struct OurServer {
    running: Option<RunningServer>,
    /// Its (first) request address.
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl OurServer {
    /// Binds and starts a server with `config`, serving `dir`.
    pub fn start(config: ServerConfig, dir: DirConfig) -> OurServer {
        OurServer::try_start(config, dir).expect("bind our server")
    }

    /// Binds and starts a server with `config`, serving `dir`, or says why it cannot bind.
    pub fn try_start(config: ServerConfig, dir: DirConfig) -> io::Result<OurServer> {
        // As the program does: storms of hundreds of transfers need more than 1024.
        wirekit::net::raise_descriptor_limit();
        let log = Arc::new(Mutex::new(Log::default()));
        let sink = log.clone();
        let server = Server::bind(config, dir)?.with_logger(move |e: &LogEvent<'_>| {
            let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
            let line = match e {
                LogEvent::Packet { summary, .. } if summary.starts_with("OACK") => summary.clone(),
                LogEvent::Packet { .. } => return,
                LogEvent::Refused {
                    peer,
                    filename,
                    refusal,
                    ..
                } => {
                    log.refusals
                        .push((*peer, filename.clone(), (*refusal).clone()));
                    format!("{peer} refused {filename:?}: {refusal:?}")
                }
                LogEvent::Transfer(report) => {
                    log.reports.push((*report).clone());
                    report.to_string()
                }
                LogEvent::Ignored { peer, why, .. } => {
                    log.ignored.push(*peer);
                    format!("{peer} ignored: {why}")
                }
                LogEvent::CutAtStop { transfers } => format!("cut {transfers} transfers"),
                LogEvent::Error(e) => format!("error: {e}"),
                other => format!("{other:?}"),
            };
            log.lines.push(line);
        });
        let running = server.spawn()?;
        let addr = running.local_addrs()[0];
        Ok(OurServer {
            running: Some(running),
            addr,
            log,
        })
    }

    /// Serves `root` on a port 0 of `listen`'s address in `ports` mode, uploads allowed
    /// (also over existing files), as the interop tests want it. When a test ends, what
    /// still runs is an upload dallying for a repeated final DATA, or a transfer its
    /// client abandoned (curl leaves silently after refusing an OACK): a grace of zero
    /// cuts them at once rather than waiting for them.
    pub fn open(root: &Path, listen: SocketAddr, ports: PortMode) -> OurServer {
        OurServer::open_with(root, listen, ports, |_, _| {})
    }

    /// Like [`OurServer::open`], with the configs adjusted by `tweak` first.
    pub fn open_with(
        root: &Path,
        listen: SocketAddr,
        ports: PortMode,
        tweak: impl FnOnce(&mut ServerConfig, &mut DirConfig),
    ) -> OurServer {
        let mut config = config_on(listen, ports);
        config.grace = Duration::ZERO;
        let mut dir = DirConfig::new(root);
        dir.uploads.allow_create = true;
        dir.uploads.allow_overwrite = true;
        tweak(&mut config, &mut dir);
        OurServer::start(config, dir)
    }

    /// Every bound request address.
    pub fn addrs(&self) -> &[SocketAddr] {
        self.running.as_ref().expect("running").local_addrs()
    }

    /// The request port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The log, locked.
    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.log().lines.clone()
    }

    /// The finished transfers so far.
    pub fn reports(&self) -> Vec<Report> {
        self.log().reports.clone()
    }

    /// Empties the log.
    pub fn clear_log(&self) {
        *self.log() = Log::default();
    }

    /// Waits (at most `limit`) until `f` holds for the log; fails the test otherwise.
    pub fn wait_for_log(&self, limit: Duration, what: &str, mut f: impl FnMut(&Log) -> bool) {
        wait_for(
            limit,
            || f(&self.log()),
            || format!("{what}; log: {:?}", self.lines()),
        );
    }

    /// Waits until at least `n` transfers have finished.
    pub fn wait_for_reports(&self, n: usize, limit: Duration) -> Vec<Report> {
        self.wait_for_log(limit, &format!("{n} finished transfers"), |l| {
            l.reports.len() >= n
        });
        self.reports()
    }

    /// Stops the server and waits until it has wound down.
    pub fn stop(mut self) -> io::Result<()> {
        self.running.take().map_or(Ok(()), RunningServer::stop)
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        drop(self.running.take());
        // Shown only when the test fails.
        for line in self.lines() {
            eprintln!("our server: {line}");
        }
    }
}
