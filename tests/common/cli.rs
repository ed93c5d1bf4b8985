//! The built `wirekit` program: `wirekit serve` in the background, with the address it
//! bound (read from its banner) and the lines it logs; other commands run to their end.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use super::wait::wait_for;

/// The program cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_wirekit");

/// A running `wirekit serve`, killed when dropped.
pub struct Serving {
    /// The server process.
    pub child: Child,
    /// Its banner: `[TIME LEVEL] serving DIR on ADDR[, ADDR...] (MODE); stop with Ctrl-C`.
    pub banner: String,
    /// The addresses it bound, from the banner.
    pub addrs: Vec<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
    /// Set once the log has been read to its end (the process closed its stderr).
    log_ended: Arc<AtomicBool>,
}

impl Serving {
    /// Runs `wirekit serve ARGS` in `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> Serving {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").args(args).current_dir(dir);
        Serving::spawn(cmd)
    }

    /// Runs `wirekit serve DIR --listen 127.0.0.1:0 --threads 1 ARGS`.
    pub fn loopback(dir: &Path, args: &[&str]) -> Serving {
        Serving::spawn(serve_on_loopback(dir, args))
    }

    /// Runs `cmd`, which must end up running `wirekit serve` (e.g. through `sh -c '...;
    /// exec wirekit serve ...'`), and waits for its banner.
    pub fn spawn(mut cmd: Command) -> Serving {
        cmd.stdin(Stdio::null());
        Serving::spawn_with_stdin(cmd)
    }

    /// Like [`spawn`](Self::spawn), with the standard input `cmd` was given (a socket
    /// passed the way a service manager passes it, say).
    pub fn spawn_with_stdin(cmd: Command) -> Serving {
        let (serving, stderr) = Serving::spawn_keeping_stderr(cmd);
        // Keep reading the log, so the server never blocks on a full pipe and tests can look.
        let (sink, ended) = (serving.log.clone(), serving.log_ended.clone());
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
            ended.store(true, Ordering::Release);
        });
        serving
    }

    /// Runs `cmd` like [`spawn_with_stdin`](Self::spawn_with_stdin) and reads its stderr up
    /// to the banner, then hands the rest of it to the caller, who reads it when (and if)
    /// the test wants: the log of the returned `Serving` holds the lines before the banner
    /// only.
    pub fn spawn_keeping_stderr(mut cmd: Command) -> (Serving, BufReader<ChildStderr>) {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The Command holds the parent's copy of a passed descriptor until dropped.
        drop(cmd);
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        // Lines before the banner (warnings) are kept with the rest of the log.
        let mut early = Vec::new();
        // Lines as `BufRead::lines` gives them, read one at a time so that whatever follows
        // the banner stays in the reader handed back.
        let unterminated = |line: &str| {
            let line = line.strip_suffix('\n').unwrap_or(line);
            line.strip_suffix('\r').unwrap_or(line).to_string()
        };
        let banner = loop {
            let mut line = String::new();
            match stderr.read_line(&mut line) {
                Ok(n) if n > 0 && line.contains("serving ") => break unterminated(&line),
                Ok(n) if n > 0 => early.push(unterminated(&line)),
                other => {
                    let _ = child.kill();
                    panic!(
                        "wirekit serve printed no banner: {other:?} after {early:?}; {:?}",
                        child.wait()
                    );
                }
            }
        };
        let addrs = bound_addresses(&banner);
        let serving = Serving {
            child,
            banner,
            addrs,
            log: Arc::new(Mutex::new(early)),
            log_ended: Arc::default(),
        };
        (serving, stderr)
    }

    /// Runs `cmd`, a `wirekit serve` with `--listen 127.0.0.1:0` (one address, port 0),
    /// with `stderr` as its standard error, where no banner can be read: learns the port
    /// the server bound from the kernel instead (its one UDP socket, in `/proc`), then
    /// waits (bounded) until it answers a request there. Its log stays empty.
    pub fn spawn_on(mut cmd: Command, stderr: Stdio) -> Serving {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut serving = Serving {
            child,
            banner: String::new(),
            addrs: Vec::new(),
            log: Arc::default(),
            // Its stderr is the caller's: there is no log to read to its end.
            log_ended: Arc::new(AtomicBool::new(true)),
        };
        let pid = serving.child.id();
        let mut bound = Vec::new();
        wait_for(
            Duration::from_secs(10),
            || {
                bound = udp_sockets_of(pid);
                !bound.is_empty() || serving.child.try_wait().is_ok_and(|s| s.is_some())
            },
            || format!("wirekit serve (PID {pid}) bound no UDP socket"),
        );
        assert_eq!(
            bound.len(),
            1,
            "one --listen address, one socket: {bound:?}"
        );
        let addr = bound[0];
        serving.addrs = vec![addr];
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // A request for a file nobody has: any answer (an ERROR) says the server is up.
        let request = b"\x00\x01no such file, a probe\x00octet\x00";
        let mut buf = [0u8; 1024];
        wait_for(
            Duration::from_secs(10),
            || {
                let _ = probe.send_to(request, addr);
                probe.recv_from(&mut buf).is_ok()
                    || serving.child.try_wait().is_ok_and(|s| s.is_some())
            },
            || format!("wirekit serve did not answer on {addr}"),
        );
        assert!(
            serving.child.try_wait().unwrap().is_none(),
            "wirekit serve ended at start: {:?}",
            serving.child.try_wait()
        );
        serving
    }

    /// Its (first) request address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Waits (bounded) for the process to end, and says whether it ended well.
    pub fn wait_for_exit(&mut self) -> bool {
        let mut status = None;
        wait_for(
            Duration::from_secs(20),
            || {
                status = self.child.try_wait().unwrap();
                status.is_some()
            },
            || "the server did not end".to_string(),
        );
        status.is_some_and(|s| s.success())
    }

    /// Waits (bounded) until the process has ended and its log has been read to the end,
    /// and returns every line of it: what a server logged while it stopped, or up to the
    /// moment it was killed, is all there.
    pub fn final_lines(&mut self) -> Vec<String> {
        self.wait_for_exit();
        wait_for(
            Duration::from_secs(10),
            || self.log_ended.load(Ordering::Acquire),
            || "the server's log did not end with it".to_string(),
        );
        self.lines()
    }

    /// The lines logged so far (after the banner).
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) for a log line containing every one of `parts`, and returns it.
    pub fn wait_for_log(&self, parts: &[&str]) -> String {
        let find = || {
            self.lines()
                .into_iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
        };
        wait_for(
            Duration::from_secs(10),
            || find().is_some(),
            || format!("no log line with {parts:?} in {:?}", self.lines()),
        );
        find().unwrap()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed and reaped when dropped, whatever way the test ends: no process
/// outlives its test, and no watchdog is left to signal a PID the system has since given to
/// another process (a `Child` is reaped only through its handle, so its PID stays its own
/// until `wait` returns).
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Spawns `cmd` with stdin from /dev/null, stdout discarded and stderr piped.
    pub fn spawn_piped(mut cmd: Command) -> KillOnDrop {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        KillOnDrop(child)
    }

    /// Waits at most `limit` for the first line the process writes to its (piped) stderr:
    /// `None` when it wrote none by then, or closed its stderr first. The reading thread
    /// ends when the process does, at the latest when this guard is dropped.
    pub fn first_stderr_line(&mut self, limit: Duration) -> Option<String> {
        let stderr = self
            .0
            .stderr
            .take()
            .expect("stderr piped, and not yet taken");
        let (send, receive) = mpsc::channel();
        thread::spawn(move || {
            let first = BufReader::new(stderr).lines().next().and_then(Result::ok);
            let _ = send.send(first);
        });
        receive.recv_timeout(limit).ok().flatten()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The IPv4 UDP sockets process `pid` holds, with the addresses they are bound to: its
/// descriptors (`/proc/PID/fd`, `socket:[INODE]`) looked up in `/proc/PID/net/udp`.
pub fn udp_sockets_of(pid: u32) -> Vec<SocketAddr> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: Vec<String> = fds
        .flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.path()).ok()?;
            let link = link.to_str()?;
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).unwrap_or_default();
    // `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
    // inode ...`, the address as `0100007F:1F90`: the IPv4 address as the kernel holds it
    // (network order) printed as a native integer, the port in host order.
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode = fields.get(9)?;
            if !inodes.iter().any(|i| i == inode) {
                return None;
            }
            let (ip, port) = fields.get(1)?.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some(SocketAddr::from((ip.to_ne_bytes(), port)))
        })
        .collect()
}

/// The addresses in a banner `[TIME LEVEL] serving DIR on A, B (MODE); ...`.
pub fn bound_addresses(banner: &str) -> Vec<SocketAddr> {
    let serving = banner.find("serving ").map_or(banner, |i| &banner[i..]);
    let list = serving
        .rsplit_once(" on ")
        .and_then(|(_, rest)| rest.split_once(" ("))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no addresses in the banner {banner:?}"));
    list.split(", ")
        .map(|a| {
            a.parse()
                .unwrap_or_else(|e| panic!("{a:?} in the banner {banner:?}: {e}"))
        })
        .collect()
}

/// `wirekit serve DIR --listen 127.0.0.1:0 --threads 1 ARGS`, to adjust before
/// [`Serving::spawn`].
pub fn serve_on_loopback(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .args(args);
    cmd
}

/// Sends the signal `name` (`INT`, `TERM`, ...) to `child`, as `kill -NAME PID` does.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}: {status}");
}

/// Asserts that a `wirekit` command ended well, and shows what it printed when not.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `wirekit ARGS` in `dir` to its end.
pub fn wirekit(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
