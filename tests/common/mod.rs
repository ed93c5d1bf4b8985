//! Helpers shared by the robustness tests: content, temp dirs, servers, peers, /proc.
#![allow(dead_code)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use wirekit::net::{LogEvent, RunningServer, Server, ServerConfig};
use wirekit::tftp::Config;
use wirekit::tftp::server::Report;

/// Deterministic pseudo-random bytes (xorshift32 from `seed`).
pub fn content(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A fresh, empty directory under the system temp dir, unique per test process and call.
pub fn tempdir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("wirekit-robust-{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Names in `dir`, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every name under `dir`, recursively, relative, sorted.
pub fn list_tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// Names of temporary upload/download files left in `dir` (recursively).
pub fn part_files(dir: &Path) -> Vec<String> {
    list_tree(dir)
        .into_iter()
        .filter(|n| n.ends_with(".wirekit-part"))
        .collect()
}

/// Retransmission settings for fast tests.
pub fn fast_config(timeout_ms: u64, max_ms: u64, retries: u32) -> Config {
    Config {
        timeout: Duration::from_millis(timeout_ms),
        max_timeout: Duration::from_millis(max_ms),
        retries,
    }
}

/// A config serving `root` on a loopback port with the given retransmission settings.
pub fn server_config(root: &Path, config: Config) -> ServerConfig {
    let mut c = ServerConfig::new(root, vec!["127.0.0.1:0".parse().unwrap()]);
    c.limits.config = config;
    c.grace = Duration::from_secs(2);
    c
}

/// Starts a server; returns it and its request address.
pub fn spawn(config: ServerConfig) -> (RunningServer, SocketAddr) {
    let server = Server::bind(config).unwrap().spawn().unwrap();
    let addr = server.local_addrs()[0];
    (server, addr)
}

/// True when `program` runs. Otherwise prints the skip line, or panics when
/// `WIREKIT_REQUIRE_PEERS=1`.
pub fn have_peer(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("WIREKIT_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("{program} not installed and WIREKIT_REQUIRE_PEERS=1");
        }
        eprintln!("skipping: {program} not installed");
    }
    found
}

/// True when the env asks for every optional environment feature to be there.
pub fn require_peers() -> bool {
    std::env::var("WIREKIT_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// A field of `/proc/self/status` in its unit (kB for memory), e.g. `Threads`, `VmHWM`.
pub fn proc_status(field: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|r| r.count())
        .unwrap_or(0)
}

/// Polls `f` until it is true or `limit` has passed; returns its last value.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn no_progress() -> impl FnMut(u64, Option<u64>) {
    |_, _| {}
}

/// Runs a command, killing it after `limit`; returns (success, stdout+stderr). Output goes
/// to a file, not a pipe, so a chatty program cannot block on a full pipe.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> (bool, String) {
    use std::process::Stdio;
    static N: AtomicU32 = AtomicU32::new(0);
    let log = std::env::temp_dir().join(format!(
        "wirekit-robust-peer-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let out = fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn peer");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).into_owned();
    let _ = fs::remove_file(&log);
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("killed after {limit:?}\n{text}")),
    }
}

/// An octet RRQ with `opts` as option pairs, byte for byte.
pub fn rrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    request(1, name, opts)
}

/// An octet WRQ with `opts` as option pairs, byte for byte.
pub fn wrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    request(2, name, opts)
}

fn request(opcode: u8, name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![0, opcode];
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(b"\0octet\0");
    for (k, val) in opts {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

/// Spawns a server whose finished transfers are collected.
pub fn spawn_logged(
    config: ServerConfig,
) -> (
    wirekit::net::RunningServer,
    SocketAddr,
    Arc<Mutex<Vec<Report>>>,
) {
    let logs: Arc<Mutex<Vec<Report>>> = Arc::default();
    let l2 = logs.clone();
    let server = Server::bind(config)
        .unwrap()
        .with_logger(move |e| {
            if let LogEvent::Transfer(t) = e {
                l2.lock().unwrap().push((*t).clone());
            }
        })
        .spawn()
        .unwrap();
    let addr = server.local_addrs()[0];
    (server, addr, logs)
}

/// Fetches `name` once, so the server's listener is surely up, then waits until the
/// process's thread count holds still, and returns it: the baseline for leak checks.
pub fn warm_up_and_count_threads(addr: SocketAddr, name: &str) -> u64 {
    let mut warm = Vec::new();
    wirekit::net::get_into(
        addr,
        name,
        &mut warm,
        &Default::default(),
        &mut no_progress(),
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        let t = proc_status("Threads");
        std::thread::sleep(Duration::from_millis(300));
        t == proc_status("Threads")
    }));
    proc_status("Threads")
}
