//! Whole transfers over loopback, wirekit side by side with the peers, in one run: a file
//! on tmpfs fetched by a client process from a server process, per block size and window.
//! Peers that are not installed are left out, with a note. Every download is compared with
//! the file. Printed: a table of MB/s (median of the runs) and wirekit's ratio to the best
//! peer pair and to iperf3's one-datagram-per-send UDP rate; then, for scale, how fast one
//! thread writes the file to tmpfs, which bounds every client here.
//!
//! ```sh
//! cargo bench --features cli --bench loopback
//! WIREKIT_BENCH_MIB=50 WIREKIT_BENCH_RUNS=1 cargo bench --features cli --bench loopback
//! cargo bench --features cli --bench loopback -- 65464/  # only the rows of one block size
//! WIREKIT_ATFTPD=/path/to/atftpd cargo bench --features cli --bench loopback  # atftpd not on PATH
//! # wirekit's server with more flags, e.g. in single-port mode (its 64 KiB window cap, then
//! # the cap lifted):
//! WIREKIT_BENCH_SERVE="--single-port" cargo bench --features cli --bench loopback
//! WIREKIT_BENCH_SERVE="--single-port --max-window-bytes 4194304" cargo bench --features cli --bench loopback
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod support;
use std::time::{Duration, Instant};
use support::Daemon;

enum Server {
    Wirekit,
    Atftpd(String),
    TftpHpa(String),
}

fn start(server: &Server, wirekit: &str, root: &Path) -> (Daemon, SocketAddr) {
    match server {
        Server::Wirekit => {
            let extra = std::env::var("WIREKIT_BENCH_SERVE").unwrap_or_default();
            let mut args = vec!["--max-windowsize", "64"];
            args.extend(extra.split_whitespace());
            support::serve(wirekit, root, &args)
        }
        Server::Atftpd(path) => support::atftpd(path, root, 1000),
        Server::TftpHpa(path) => {
            let port = support::free_port();
            let child = Command::new(path)
                .args(["-L", "-a"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("-s")
                .arg(root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("in.tftpd");
            let daemon = Daemon(child);
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            support::wait_ready(addr);
            (daemon, addr)
        }
    }
}

#[derive(Clone, Copy)]
enum Client {
    Wirekit,
    Atftp,
    Curl,
}

/// One download; its duration, or `None` when the client failed or the file differs.
fn fetch(
    client: Client,
    wirekit: &str,
    server: SocketAddr,
    blksize: u16,
    window: u16,
    out: &Path,
) -> Option<Duration> {
    let _ = std::fs::remove_file(out);
    let (ip, port) = (server.ip().to_string(), server.port().to_string());
    let mut cmd = match client {
        Client::Wirekit => {
            let mut c = Command::new(wirekit);
            c.args(["get", &server.to_string(), "big.bin"]).arg(out);
            c.args([
                "--blksize",
                &blksize.to_string(),
                "--windowsize",
                &window.to_string(),
            ]);
            c
        }
        Client::Atftp => {
            let mut c = Command::new("atftp");
            c.args(["--option", &format!("blksize {blksize}")]);
            if window > 1 {
                c.args(["--option", &format!("windowsize {window}")]);
            }
            c.args(["-g", "-r", "big.bin", "-l"])
                .arg(out)
                .args([&ip, &port]);
            c
        }
        Client::Curl => {
            let mut c = Command::new("curl");
            c.args(["-sS", "--tftp-blksize", &blksize.to_string(), "-o"])
                .arg(out)
                .arg(format!("tftp://{server}/big.bin"));
            c
        }
    };
    let start = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let took = start.elapsed();
    status.success().then_some(took)
}

/// iperf3's UDP rate with one datagram of `len` bytes per send, in MB/s.
fn iperf3(len: usize) -> Option<f64> {
    let port = support::free_port().to_string();
    let _server = Daemon(
        Command::new("iperf3")
            .args(["-s", "-1", "-p", &port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?,
    );
    for _ in 0..50 {
        let out = Command::new("iperf3")
            .args([
                "-c",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                "-b",
                "0",
                "-t",
                "3",
                "--json",
                "-l",
            ])
            .arg(len.to_string())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // The receiver's figure: what arrived, not what was sent.
        if let Some(rate) = text
            .split("\"sum_received\"")
            .nth(1)
            .or_else(|| text.split("\"sum\"").nth(1))
            .and_then(|s| s.split("\"bits_per_second\":").nth(1))
            .and_then(|s| s.split([',', '\n', '}']).next())
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            return Some(rate / 8e6);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// MB/s at which this thread writes `file` to a new file `out` on tmpfs in writes of
/// `blksize` bytes, and does nothing else: the most a client that writes each block to a
/// tmpfs file as it arrives could reach here, if receiving cost nothing.
fn tmpfs_write_rate(file: &[u8], blksize: usize, out: &Path) -> f64 {
    let _ = std::fs::remove_file(out);
    let mut f = std::fs::File::create(out).expect("create on tmpfs");
    let start = Instant::now();
    for block in file.chunks(blksize) {
        f.write_all(block).expect("write to tmpfs");
    }
    let took = start.elapsed();
    drop(f);
    let _ = std::fs::remove_file(out);
    file.len() as f64 / took.as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// True when the case `blksize/window` is asked for: by no filter, or by a filter that is
/// part of its name (`65464/16`, `1468/`).
fn wanted(filter: &[String], blksize: u16, window: u16) -> bool {
    support::picked(filter, &format!("{blksize}/{window}"))
}

fn main() {
    // Cases are named `blksize/window`, e.g. `65464/16`.
    let filter = support::case_filter();
    let mib = support::env_or("WIREKIT_BENCH_MIB", 100);
    let runs = support::env_or("WIREKIT_BENCH_RUNS", 3);
    let wirekit = env!("CARGO_BIN_EXE_wirekit");
    let dir = Path::new("/dev/shm").join(format!("wirekit-loopback-{}", std::process::id()));
    let root = dir.join("root");
    std::fs::create_dir_all(&root).expect("tmpfs dir");
    let file = support::served_file(&root.join("big.bin"), mib, 0x9e37_79b9);
    let out: PathBuf = dir.join("out.bin");
    let atftpd = support::find("atftpd", "WIREKIT_ATFTPD");
    let tftpd = support::find("in.tftpd", "WIREKIT_IN_TFTPD");
    let have = |p: &str| Command::new(p).arg("--version").output().is_ok();
    let (atftp, curl, iperf) = (have("atftp"), have("curl"), have("iperf3"));
    for (what, ok) in [
        ("atftpd", atftpd.is_some()),
        ("atftp", atftp),
        ("in.tftpd", tftpd.is_some()),
        ("curl", curl),
        ("iperf3", iperf),
    ] {
        if !ok {
            println!("note: {what} not found; its column is left out");
        }
    }
    println!("{mib} MiB over loopback, median of {runs}, MB/s");
    println!(
        "| blksize | window | wirekit←wirekit | atftp←atftpd | curl←tftp-hpa | atftp←wirekit | iperf3 UDP | wirekit / best peer | wirekit / iperf3 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut servers = vec![("wirekit", Server::Wirekit)];
    if let Some(p) = atftpd.clone() {
        servers.push(("atftpd", Server::Atftpd(p)));
    }
    if let Some(p) = tftpd.clone() {
        servers.push(("tftp-hpa", Server::TftpHpa(p)));
    }
    let mut scale = Vec::new();
    for blksize in [1468u16, 65464] {
        let windows: Vec<u16> = [1u16, 16, 64]
            .into_iter()
            .filter(|w| wanted(&filter, blksize, *w))
            .collect();
        if windows.is_empty() {
            continue;
        }
        let udp = if iperf {
            iperf3(usize::from(blksize) + 4)
        } else {
            None
        };
        let writes = (0..runs)
            .map(|_| tmpfs_write_rate(&file, usize::from(blksize), &out))
            .collect();
        scale.push((blksize, median(writes), udp));
        for window in windows {
            // (client, server) pairs of this row; curl and tftp-hpa know no windowsize.
            let pairs: [(Client, &str, bool); 4] = [
                (Client::Wirekit, "wirekit", true),
                (Client::Atftp, "atftpd", atftp),
                (Client::Curl, "tftp-hpa", curl && window == 1),
                (Client::Atftp, "wirekit", atftp),
            ];
            let mut cells = Vec::new();
            for (client, server_name, usable) in pairs {
                let server = servers.iter().find(|(n, _)| *n == server_name);
                let (true, Some((_, server))) = (usable, server) else {
                    cells.push(None);
                    continue;
                };
                let (_daemon, addr) = start(server, wirekit, &root);
                let mut rates = Vec::new();
                for _ in 0..runs {
                    let took = fetch(client, wirekit, addr, blksize, window, &out);
                    let intact = std::fs::read(&out).ok().is_some_and(|got| got == file);
                    rates.push(match took {
                        Some(t) if intact => file.len() as f64 / t.as_secs_f64() / 1e6,
                        _ => 0.0,
                    });
                }
                cells.push(Some(median(rates)));
            }
            let cell = |v: Option<f64>| v.map_or("–".to_string(), |r| format!("{r:.0}"));
            let best_peer = cells[1..3].iter().flatten().copied().fold(0.0, f64::max);
            let ours = cells[0].unwrap_or(0.0);
            let ratio = |d: f64| {
                if d > 0.0 {
                    format!("{:.2}x", ours / d)
                } else {
                    "–".into()
                }
            };
            println!(
                "| {blksize} | {window} | {} | {} | {} | {} | {} | {} | {} |",
                cell(cells[0]),
                cell(cells[1]),
                cell(cells[2]),
                cell(cells[3]),
                cell(udp),
                ratio(best_peer),
                ratio(udp.unwrap_or(0.0)),
            );
        }
    }
    for (blksize, write, udp) in scale {
        print!(
            "for scale: this process writes the file to tmpfs in {blksize}-byte writes, and nothing else, at {write:.0} MB/s"
        );
        // Receiving at iperf3's rate, then writing, one after the other in one thread.
        match udp {
            Some(udp) => println!(
                "; a client that receives at iperf3's rate and writes in turn: at most {:.0} MB/s",
                1.0 / (1.0 / udp + 1.0 / write)
            ),
            None => println!(),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
