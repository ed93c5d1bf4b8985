//! `wirekit serve` run as a user runs it, on a loopback port the kernel picks, for the
//! tests of names, remap rules and empty files.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The program under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wirekit");

/// A running `wirekit serve`, its request address and what it has logged since the
/// banner. Killed when dropped.
pub struct Serving {
    child: Child,
    /// The bound request address, from the banner.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serving {
    /// Serves `dir` on `127.0.0.1:0` with `args`, and waits for the "serving ... on
    /// ADDR" banner on stderr.
    pub fn start(dir: &Path, args: &[&str]) -> Serving {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--threads", "1"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wirekit serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Lines before the banner (warnings) are kept with the rest of the log.
        let mut early = Vec::new();
        let banner = loop {
            match lines.next().and_then(Result::ok) {
                Some(line) if line.contains("serving ") => break line,
                Some(line) => early.push(line),
                None => panic!("wirekit serve said no banner: {early:?} {:?}", child.wait()),
            }
        };
        let addr =
            banner_addr(&banner).unwrap_or_else(|| panic!("no address in the banner {banner:?}"));
        // Keep reading, so the server never blocks on a full pipe and tests can look.
        let log = Arc::new(Mutex::new(early));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Serving { child, addr, log }
    }

    /// The lines logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) for a log line containing every one of `parts`, and returns it.
    pub fn wait_for_log(&self, parts: &[&str]) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .log()
                .into_iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no log line with {parts:?} in {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serving ROOT on ADDR[, ADDR...] (MODE); stop with Ctrl-C` → the first ADDR.
fn banner_addr(banner: &str) -> Option<SocketAddr> {
    // After the log line's timestamp and level.
    let banner = &banner[banner.find("serving ")? + "serving ".len()..];
    let (head, _mode) = banner.rsplit_once(" (")?;
    let (_root, addrs) = head.rsplit_once(" on ")?;
    addrs.split(", ").next()?.parse().ok()
}
