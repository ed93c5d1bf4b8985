//! What the benchmarks of whole servers share: settings from the environment, the file
//! served, a `wirekit serve` process and the peers' servers.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server process, killed when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `program serve ROOT --listen 127.0.0.1:0 ARGS` and reads the port it was given
/// from its banner; its log is read on, so it never blocks on a full pipe.
pub fn serve(program: &str, root: &Path, args: &[&str]) -> (Daemon, SocketAddr) {
    let mut child = Command::new(program)
        .arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let banner = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("serving "))
        .expect("a banner");
    let addr = banner
        .split(" on ")
        .nth(1)
        .and_then(|rest| rest.split([' ', ',']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"));
    std::thread::spawn(move || for _ in lines {});
    (Daemon(child), addr)
}

/// The bench's arguments that pick cases: `cargo bench` passes `--bench`, and any other
/// argument is part of the names of the cases to run.
pub fn case_filter() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// True when the case `name` is picked by `filter`: by no filter, or by one that is part
/// of the name.
pub fn picked(filter: &[String], name: &str) -> bool {
    filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
}

/// A number from the environment variable `name`, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `mib` MiB of pseudo-random bytes (xorshift32 from `seed`), written to `path` too.
pub fn served_file(path: &Path, mib: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    let file: Vec<u8> = (0..mib << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(path, &file).expect("write the file");
    file
}

/// A program, if it is installed here: `env_override` names it, or a system directory
/// holds it.
pub fn find(name: &str, env_override: &str) -> Option<String> {
    if let Ok(p) = std::env::var(env_override) {
        return Some(p);
    }
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .map(|p| p.to_string_lossy().into_owned())
}

/// A free UDP port on loopback, for peers that cannot be told to take port 0.
pub fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// Waits until a TFTP server answers on `addr` (an RRQ for a missing file gets an ERROR).
pub fn wait_ready(addr: SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 600];
    for _ in 0..100 {
        let _ = s.send_to(b"\0\x01no-such-file\0octet\0", addr);
        if s.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("no TFTP server answers on {addr}");
}

/// Runs atftpd (at `path`) on a free loopback port, serving `root` with up to `threads`
/// transfers at once, and waits until it answers.
pub fn atftpd(path: &str, root: &Path, threads: usize) -> (Daemon, SocketAddr) {
    let port = free_port();
    let child = Command::new(path)
        .args(["--daemon", "--no-fork", "--logfile", "/dev/null", "--port"])
        .arg(port.to_string())
        .args(["--bind-address", "127.0.0.1", "--maxthread"])
        .arg(threads.to_string())
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {path}: {e}"));
    let daemon = Daemon(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_ready(addr);
    (daemon, addr)
}
