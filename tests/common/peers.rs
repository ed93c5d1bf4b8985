//! Peer programs: finding them, running them with a deadline, and keeping a TFTP server of
//! theirs (`in.tftpd`) running for a test.
//!
//! A missing peer program skips its test with `skipping: <program> not installed`, unless
//! `WIREKIT_REQUIRE_PEERS=1` is set, where it fails the test.

use std::env;
use std::fs;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a peer program may run before it is killed and the test fails.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The Python interpreter with the `tftpy` package (from PyPI, installed by
/// `.ci/install-peers`), as a program that runs [`TFTPY_CLIENT`].
pub fn tftpy() -> Option<PathBuf> {
    let python = peer("python3")?;
    let out = run(Command::new(&python).args(["-c", "import tftpy"]));
    if !out.status.success() {
        missing("tftpy", "not installed (pip install tftpy)");
        return None;
    }
    Some(python)
}

/// A tftpy client: `python3 -c TFTPY_CLIENT get|put HOST PORT REMOTE LOCAL [BLKSIZE]`.
pub const TFTPY_CLIENT: &str = r#"
import logging, sys, tftpy
logging.getLogger("tftpy").setLevel(logging.WARNING)
op, host, port, remote, local = sys.argv[1:6]
options = {"blksize": int(sys.argv[6])} if len(sys.argv) > 6 else {}
client = tftpy.TftpClient(host, int(port), options)
if op == "get":
    client.download(remote, local, timeout=5)
else:
    client.upload(remote, local, timeout=5)
"#;

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
    run_for(cmd, &[], CHILD_TIMEOUT)
}

/// Like [`run`], with `input` written to the program's stdin (then closed).
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    run_for(cmd, input, CHILD_TIMEOUT)
}

/// Runs `cmd` with no stdin, killing it (and failing the test) after `limit`; whether it
/// succeeded, and its stdout and stderr together.
pub fn run_quietly(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let out = run_for(cmd, &[], limit);
    (
        out.status.success(),
        format!("{}{}", out.stdout, out.stderr),
    )
}

/// Runs `cmd` with `input` on its stdin, killing it (and failing the test) after `limit`.
pub fn run_for(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
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
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill_group(&mut child, false);
                let (stdout, stderr) = (
                    out.join().unwrap_or_default(),
                    err.join().unwrap_or_default(),
                );
                panic!(
                    "{what} still running after {limit:?}; killed\nstdout: {stdout}\nstderr: {stderr}"
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

/// Kills a child started with `process_group(0)` together with anything it forked
/// (through `sudo -n` when it runs as root and we do not).
fn kill_group(child: &mut Child, sudo: bool) {
    let mut kill = if sudo {
        let mut c = Command::new("sudo");
        c.args(["-n", "kill"]);
        c
    } else {
        Command::new("kill")
    };
    let _ = kill
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
    /// It runs as root through `sudo -n`: so must the signal that stops it.
    sudo: bool,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_group(&mut self.child, self.sudo);
    }
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether this process runs as root, which the calling test needs (`why` says for
/// what); otherwise prints the skip line, or fails the test when
/// `WIREKIT_REQUIRE_PEERS=1`.
pub fn root_for(why: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !require_peers(),
        "needs root {why}, and WIREKIT_REQUIRE_PEERS=1 makes that a failure"
    );
    eprintln!("skipping: needs root {why}");
    false
}

/// `in.tftpd` from tftp-hpa, serving `root` (create and permissive) on a port 0 socket of
/// `ip`. The socket is bound here and handed to it as its standard input, the way inetd
/// starts it ("wait" mode: it serves every request on that socket, forking one process
/// per transfer), so no port is guessed and nothing races for one. It chroots and
/// switches user, so it needs root: as another user it runs through `sudo -n` when that
/// works, and is reported unusable otherwise.
pub fn in_tftpd(root: &Path, ip: IpAddr) -> Option<(Daemon, SocketAddr)> {
    in_tftpd_with(root, ip, &[])
}

/// [`in_tftpd`] with more of its options, e.g. `-R 30000:30003`.
pub fn in_tftpd_with(root: &Path, ip: IpAddr, args: &[&str]) -> Option<(Daemon, SocketAddr)> {
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
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind a socket for in.tftpd");
    let addr = socket.local_addr().unwrap();
    let mut cmd = if sudo {
        let mut c = Command::new("sudo");
        c.arg("-n").arg(&program);
        c
    } else {
        Command::new(&program)
    };
    // -t: how long it waits for the next request before it exits; the test ends first.
    cmd.args(["-c", "-p", "-u", "root", "-t", "600"])
        .args(args)
        .arg("-s")
        .arg(root)
        .stdin(Stdio::from(OwnedFd::from(socket)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    // Requests wait in the socket until in.tftpd reads them: nothing to wait for here.
    Some((Daemon { child, sudo }, addr))
}
