//! What the benchmarks of whole servers share: settings from the environment, the file
//! served, and a `wirekit serve` process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

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
