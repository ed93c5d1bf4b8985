//! Shared helpers for the interop tests: finding peer programs, temporary directories,
//! loopback ports, child processes with a deadline, file contents, and our own server.
//!
//! A missing peer program skips its test with `skipping: <program> not installed`, unless
//! `WIREKIT_REQUIRE_PEERS=1` is set, where it fails the test.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::env;
use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wirekit::net::{LogEvent, RunningServer, Server, ServerConfig};

/// How long a peer program may run before it is killed and the test fails.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The file sizes every peer is tried with: empty, one byte, around one 512-byte block,
/// and 1 MiB.
pub const SIZES: [usize; 6] = [0, 1, 511, 512, 513, 1 << 20];

/// More than 65535 blocks of 512 bytes, so the block number wraps past 65535.
pub const WRAP_SIZE: usize = 512 * 70_000 + 123;

/// Whether a missing peer is a failure (`WIREKIT_REQUIRE_PEERS=1`, set by CI).
pub fn require_peers() -> bool {
    env::var("WIREKIT_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Handles a peer that is absent or unusable: panics when peers are required, otherwise
/// prints the skip line and lets the caller return.
pub fn missing(program: &str, why: &str) {
    if require_peers() {
        panic!("{program} {why}, and WIREKIT_REQUIRE_PEERS=1 makes that a failure");
    }
    eprintln!("skipping: {program} {why}");
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `name` on `PATH` or in the usual sbin directories (the daemons live there and
/// `PATH` of a plain user often lacks them).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ]
        .map(PathBuf::from),
    );
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// The peer program `name`, or `None` after reporting it missing (see [`missing`]).
pub fn peer(name: &str) -> Option<PathBuf> {
    let found = find_program(name);
    if found.is_none() {
        missing(name, "not installed");
    }
    found
}

/// curl, when it is installed and built with TFTP.
pub fn curl() -> Option<PathBuf> {
    let curl = peer("curl")?;
    let out = run(Command::new(&curl).arg("--version"));
    let has_tftp = out
        .stdout
        .lines()
        .any(|l| l.starts_with("Protocols:") && l.split_whitespace().any(|p| p == "tftp"));
    if !has_tftp {
        missing("curl", "is built without TFTP support");
        return None;
    }
    Some(curl)
}

/// busybox, when it is installed with its `tftp` applet.
pub fn busybox() -> Option<PathBuf> {
    let bb = peer("busybox")?;
    let out = run(Command::new(&bb).arg("--list"));
    if !out.stdout.lines().any(|l| l.trim() == "tftp") {
        missing("busybox", "has no tftp applet");
        return None;
    }
    Some(bb)
}

/// A directory of its own for one test, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `wirekit-interop-<tag>-<pid>-<n>` in the system temp directory.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            env::temp_dir().join(format!("wirekit-interop-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        // in.tftpd drops to its user; the directory must stay usable for it.
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o777));
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago (bind to port 0, read it back, release it).
/// Only for programs that cannot be told to bind port 0 themselves.
pub fn free_udp_port(ip: IpAddr) -> u16 {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind a free port");
    s.local_addr().expect("local addr").port()
}

/// Whether `::1` can be bound here (it cannot in some containers).
pub fn ipv6_loopback() -> bool {
    match UdpSocket::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping: cannot bind [::1] ({e})");
            false
        }
    }
}

/// What a finished child process printed, and how it ended.
#[derive(Debug)]
pub struct Output {
    /// The exit status.
    pub status: ExitStatus,
    /// Its standard output, lossily decoded.
    pub stdout: String,
    /// Its standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Panics with everything printed unless the program exited with 0.
    pub fn success(self, what: &str) -> Output {
        assert!(
            self.status.success(),
            "{what}: {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `cmd` to its end with no stdin, killing it (and failing the test) after
/// [`CHILD_TIMEOUT`], so a hung peer cannot hang the suite.
pub fn run(cmd: &mut Command) -> Output {
    run_with_stdin(cmd, &[])
}

/// Like [`run`], with `input` written to the program's stdin (then closed).
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // From a thread: a program that does not read its input must not block us.
        thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill_group(&mut child);
                let (stdout, stderr) = (
                    out.join().unwrap_or_default(),
                    err.join().unwrap_or_default(),
                );
                panic!(
                    "{what} still running after {CHILD_TIMEOUT:?}; killed\nstdout: {stdout}\nstderr: {stderr}"
                );
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Kills a child started with `process_group(0)` together with anything it forked.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A background peer (a server). Killed with everything it forked when dropped, also
/// when the test panics.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    name: String,
    log: PathBuf,
    /// A file where the daemon writes its own pid (it may run under sudo, as a grandchild).
    pidfile: Option<PathBuf>,
    /// Signals to it go through `sudo -n`.
    sudo: bool,
}

impl Daemon {
    /// Starts `cmd` in its own process group, its output going to `log`.
    pub fn spawn(
        cmd: &mut Command,
        log: &Path,
        pidfile: Option<PathBuf>,
        sudo: bool,
    ) -> io::Result<Daemon> {
        let file = fs::File::create(log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()?;
        Ok(Daemon {
            child,
            name: format!("{cmd:?}"),
            log: log.to_path_buf(),
            pidfile,
            sudo,
        })
    }

    /// `Some(description)` when the daemon has already exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited with {status}: {}",
                self.name,
                fs::read_to_string(&self.log).unwrap_or_default()
            )),
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The daemon's own pid first: under sudo it is not our child.
        let pid = self
            .pidfile
            .as_ref()
            .and_then(|p| fs::read_to_string(p).ok())
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let mut kill = if self.sudo {
                let mut c = Command::new("sudo");
                c.args(["-n", "kill"]);
                c
            } else {
                Command::new("kill")
            };
            let _ = kill
                .args(["-TERM", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(10));
            }
        }
        kill_group(&mut self.child);
        let _ = fs::remove_file(&self.log);
    }
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `in.tftpd` from tftp-hpa, serving `root` (create and permissive) on a free port of
/// `ip`, in the foreground. It chroots and switches user, so it needs root: as another
/// user it runs through `sudo -n` when that works, and is reported unusable otherwise.
pub fn in_tftpd(root: &Path, ip: IpAddr) -> Option<(Daemon, SocketAddr)> {
    let program = peer("in.tftpd")?;
    let sudo = !is_root();
    if sudo {
        let ok = Command::new("sudo")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing(
                "in.tftpd",
                "needs root (it chroots and changes user), and sudo -n fails",
            );
            return None;
        }
    }
    let scratch = root.with_extension("tftpd");
    let mut last = String::new();
    // The port is found free and released before in.tftpd binds it: another test may
    // take it in between, so a failed start is retried on a new port.
    for attempt in 0..5 {
        let addr = SocketAddr::new(ip, free_udp_port(ip));
        let log = PathBuf::from(format!("{}-{attempt}.log", scratch.display()));
        let pidfile = PathBuf::from(format!("{}-{attempt}.pid", scratch.display()));
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.arg("-n").arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.arg(if ip.is_ipv4() { "-4" } else { "-6" })
            .args([
                "-L",
                "-a",
                &addr.to_string(),
                "-c",
                "-p",
                "-u",
                "root",
                "-P",
            ])
            .arg(&pidfile)
            .arg("-s")
            .arg(root);
        let mut daemon = Daemon::spawn(&mut cmd, &log, Some(pidfile.clone()), sudo)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        if wait_for_tftp(addr, Duration::from_secs(5)) {
            return Some((daemon, addr));
        }
        last = daemon
            .exited()
            .unwrap_or_else(|| format!("in.tftpd on {addr} does not answer"));
        drop(daemon);
        let _ = fs::remove_file(&pidfile);
    }
    panic!("in.tftpd would not start: {last}");
}

/// Waits until a TFTP server answers on `addr` (any reply to a read request for a file
/// that does not exist), for at most `patience`.
pub fn wait_for_tftp(addr: SocketAddr, patience: Duration) -> bool {
    let any: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let Ok(s) = UdpSocket::bind(SocketAddr::new(any, 0)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let rrq = b"\x00\x01wirekit-probe-no-such-file\x00octet\x00";
    let deadline = Instant::now() + patience;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        let _ = s.send_to(rrq, addr);
        if s.recv_from(&mut buf).is_ok() {
            return true;
        }
    }
    false
}

/// Pseudo-random bytes (xorshift64*), the same for the same seed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text with LF line ends, lines of varying length (some empty), about `len` bytes, so
/// that netascii's CR LF expansion crosses block boundaries.
pub fn text_lf(len: usize) -> Vec<u8> {
    let words = [
        "wirekit",
        "tftp",
        "netascii",
        "line",
        "",
        "block",
        "CR LF",
        "0123456789",
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0usize;
    while out.len() < len {
        for _ in 0..(i % 7) {
            out.extend_from_slice(words[(i * 5 + out.len()) % words.len()].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
        i += 1;
    }
    out
}

/// Asserts two file contents are equal, with a short message instead of megabytes of
/// bytes when they differ.
pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {} bytes, first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// Reads a file a peer wrote, failing with its path when it is not there.
pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Our server, on a background thread, with what it reported.
pub struct OurServer {
    /// The running server (stopped when dropped).
    pub running: RunningServer,
    /// Its request address.
    pub addr: SocketAddr,
    /// One line per report: `OACK ...` packet summaries (when verbose), refusals and
    /// finished transfers.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl OurServer {
    /// Serves `root` on `listen` (port 0 for any free port), uploads allowed. With
    /// `verbose`, packet summaries of OACKs are kept in the log too.
    pub fn start(root: &Path, listen: SocketAddr, verbose: bool) -> OurServer {
        Self::start_with(root, listen, verbose, |_| {})
    }

    /// Like [`OurServer::start`], with the config adjusted by `tweak` first.
    pub fn start_with(
        root: &Path,
        listen: SocketAddr,
        verbose: bool,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> OurServer {
        let mut config = ServerConfig::new(root, vec![listen]);
        config.allow_create = true;
        config.allow_overwrite = true;
        config.verbose = verbose;
        // When a test ends, what still runs is an upload dallying for a repeated final
        // DATA, or a transfer its client abandoned (curl leaves silently after refusing an
        // OACK): cut them at once rather than wait for them.
        config.grace = Duration::ZERO;
        tweak(&mut config);
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let server =
            Server::bind(config)
                .expect("bind our server")
                .with_logger(move |e: &LogEvent<'_>| {
                    let line = match e {
                        LogEvent::Packet { summary, .. } if summary.starts_with("OACK") => {
                            summary.clone()
                        }
                        LogEvent::Packet { .. } => return,
                        LogEvent::Refused {
                            filename, refusal, ..
                        } => format!("refused {filename:?}: {refusal:?}"),
                        LogEvent::Transfer(t) => t.to_string(),
                        LogEvent::Error(e) => format!("error: {e}"),
                    };
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                });
        let running = server.spawn().expect("spawn our server");
        let addr = running.local_addrs()[0];
        OurServer { running, addr, log }
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Empties the log.
    pub fn clear_log(&self) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The request port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        // Shown only when the test fails.
        for line in self.log() {
            eprintln!("our server: {line}");
        }
    }
}
