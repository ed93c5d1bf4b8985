//! A network-boot storm: many lock-step clients, each from its own loopback address as
//! different machines would be, fetch one file from a `wirekit serve` process at once, and
//! then from atftpd, when it is installed, and from the [`bound`], in the same run. Every
//! download is checked byte for byte as it arrives. Printed per server: aggregate
//! throughput, the server's CPU seconds per GB served, and its peak resident memory. The
//! bound's CPU is what the kernel's per-datagram work alone costs: no server's figure can
//! fall below it.
//!
//! ```sh
//! cargo bench --features cli --bench load
//! WIREKIT_ATFTPD=/path/to/atftpd cargo bench --features cli --bench load  # atftpd not on PATH
//! WIREKIT_LOAD_CLIENTS=200 WIREKIT_LOAD_MIB=1 cargo bench --features cli --bench load
//! # the same storm against another build of the server, e.g. an older one:
//! WIREKIT_LOAD_SERVER=/path/to/old/wirekit cargo bench --features cli --bench load
//! ```

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod bound;
#[path = "../support/mod.rs"]
mod support;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use wirekit::tftp::{
    self, Blksize, ClientRequest, Config, Direction, Storage, StorageError, Transfer, TransferEvent,
};

const BLKSIZE: u64 = 1468;

/// Compares what arrives with the file, at its offset, without keeping it.
struct Check<'a> {
    expected: &'a [u8],
    offset: usize,
    wrong: bool,
}

impl Storage for Check<'_> {
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, StorageError> {
        Err(StorageError::write_only())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let end = self.offset + data.len();
        self.wrong |= self.expected.get(self.offset..end) != Some(data);
        self.offset = end;
        Ok(())
    }
}

struct Client<'a> {
    socket: UdpSocket,
    transfer: Transfer,
    check: Check<'a>,
    deadline: Option<tftp::Instant>,
    done: Option<bool>,
}

/// Client `i`'s own address: 127.1.0.1 to .250, then 127.2.0.1, and so on.
fn client_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (i / 250) as u8,
        0,
        1 + (i % 250) as u8,
    ))
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

/// Peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A server under the storm: a process, or the bound's thread.
enum Running {
    Process(support::Daemon),
    Thread(bound::Bound),
}

/// What a server spent on the storm.
struct Spent {
    cpu: f64,
    /// A process's; the bound shares this one's.
    peak_rss_mib: Option<f64>,
}

impl Running {
    /// CPU seconds so far; the bound counts its own from its start.
    fn cpu_seconds(&self) -> f64 {
        match self {
            Running::Process(daemon) => cpu_seconds(daemon.0.id()),
            Running::Thread(_) => 0.0,
        }
    }

    /// Stops it: what it spent since `cpu_before`, or how the process ended on its own.
    fn finish(self, cpu_before: f64) -> Result<Spent, String> {
        match self {
            Running::Process(mut daemon) => {
                let pid = daemon.0.id();
                let cpu = cpu_seconds(pid) - cpu_before;
                if let Ok(Some(status)) = daemon.0.try_wait() {
                    return Err(status.to_string());
                }
                Ok(Spent {
                    cpu,
                    peak_rss_mib: Some(peak_rss_mib(pid)),
                })
            }
            Running::Thread(bound) => Ok(Spent {
                cpu: bound.stop(),
                peak_rss_mib: None,
            }),
        }
    }
}

/// Runs every client to its end on one thread; returns how many arrived intact.
fn storm(server: SocketAddr, file: &[u8], clients: usize) -> usize {
    let mut poll = Poll::new().expect("poll");
    let epoch = Instant::now();
    let mut request = ClientRequest::new(Direction::Read, "image.bin");
    request.blksize = Some(Blksize::new(BLKSIZE).expect("in range"));
    let config = Config::new(Duration::from_secs(1), Duration::from_secs(4), 8);
    let mut all: Vec<Client<'_>> = (0..clients)
        .map(|i| {
            let std = std::net::UdpSocket::bind((client_ip(i), 0)).expect("bind a client");
            std.set_nonblocking(true).expect("nonblocking");
            let mut socket = UdpSocket::from_std(std);
            poll.registry()
                .register(&mut socket, Token(i), Interest::READABLE)
                .expect("register");
            let transfer = Transfer::client(
                tftp::Instant::from(epoch.elapsed()),
                server,
                &request,
                config,
            )
            .expect("a valid request");
            let check = Check {
                expected: file,
                offset: 0,
                wrong: false,
            };
            Client {
                socket,
                transfer,
                check,
                deadline: None,
                done: None,
            }
        })
        .collect();
    let mut timers: BTreeSet<(tftp::Instant, usize)> = BTreeSet::new();
    let mut buf = vec![0u8; 65_536];
    let mut events = Events::with_capacity(1024);
    let mut running = clients;
    let mut touched: Vec<usize> = (0..clients).collect();
    loop {
        let now = tftp::Instant::from(epoch.elapsed());
        for &i in &touched {
            let c = &mut all[i];
            while let Some(t) = c.transfer.poll_transmit(now, &mut c.check, &mut buf) {
                let _ = c.socket.send_to(&buf[..t.len], t.destination);
            }
            while let Some(e) = c.transfer.poll_event() {
                if let TransferEvent::Finished { result, .. } = e {
                    c.done = Some(result.is_ok() && !c.check.wrong && c.check.offset == file.len());
                    running -= 1;
                }
            }
            let deadline = if c.done.is_some() {
                None
            } else {
                c.transfer.poll_timeout()
            };
            if deadline != c.deadline {
                if let Some(d) = c.deadline {
                    timers.remove(&(d, i));
                }
                if let Some(d) = deadline {
                    timers.insert((d, i));
                }
                c.deadline = deadline;
            }
        }
        touched.clear();
        if running == 0 {
            break;
        }
        let timeout = timers.first().map(|&(d, _)| d - now);
        poll.poll(&mut events, timeout).expect("poll");
        let now = tftp::Instant::from(epoch.elapsed());
        for event in events.iter() {
            let i = event.token().0;
            let c = &mut all[i];
            loop {
                match c.socket.recv_from(&mut buf) {
                    Ok((n, from)) => c
                        .transfer
                        .handle_datagram(now, from, &buf[..n], &mut c.check),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // An ICMP error for an earlier datagram: the next read goes on.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                    Err(e) => panic!("client {i} cannot read: {e}"),
                }
            }
            touched.push(i);
        }
        while let Some(&(d, i)) = timers.first() {
            if d > now {
                break;
            }
            timers.pop_first();
            all[i].deadline = None;
            all[i].transfer.handle_timeout(now);
            touched.push(i);
        }
        touched.sort_unstable();
        touched.dedup();
    }
    all.iter().filter(|c| c.done == Some(true)).count()
}

/// A server the storm is run against.
enum Server {
    /// `wirekit serve` (or the build `WIREKIT_LOAD_SERVER` names), with these arguments.
    Wirekit(&'static [&'static str]),
    /// atftpd, at this path: the peer measured in the same run.
    Atftpd(String),
    /// The least any server can cost here ([`bound`]), in a thread of this process.
    Bound,
}

fn main() {
    let filter = support::case_filter();
    let clients = support::env_or("WIREKIT_LOAD_CLIENTS", 1000);
    let mib = support::env_or("WIREKIT_LOAD_MIB", 4);
    let program = std::env::var("WIREKIT_LOAD_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wirekit").to_string());
    let root = std::env::temp_dir().join(format!("wirekit-load-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("temp dir");
    let file = Arc::new(support::served_file(
        &root.join("image.bin"),
        mib,
        0x2545_f491,
    ));
    println!("{clients} lock-step clients, {mib} MiB each, blksize {BLKSIZE}, server {program}");
    println!("| server | intact | aggregate MB/s | server CPU s/GB | server peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    let atftpd = support::find("atftpd", "WIREKIT_ATFTPD");
    if atftpd.is_none() {
        println!("note: atftpd not found (WIREKIT_ATFTPD=/path/to/atftpd); its row is left out");
    }
    let cap = 2 * clients;
    let cap_arg = cap.to_string();
    let mut cases = vec![
        ("wirekit, a port per transfer", Server::Wirekit(&[])),
        ("wirekit, single port", Server::Wirekit(&["--single-port"])),
    ];
    cases.extend(atftpd.map(|path| ("atftpd", Server::Atftpd(path))));
    cases.push(("bound: answers from memory, nothing else", Server::Bound));
    let mut notes = Vec::new();
    for (name, kind) in cases {
        if !support::picked(&filter, name) {
            continue;
        }
        let ours = matches!(kind, Server::Wirekit(_));
        let (running, addr) = match kind {
            Server::Wirekit(extra) => {
                let mut args = vec!["--max-transfers", cap_arg.as_str()];
                args.extend(extra);
                let (daemon, addr) = support::serve(&program, &root, &args);
                (Running::Process(daemon), addr)
            }
            Server::Atftpd(path) => {
                let (daemon, addr) = support::atftpd(&path, &root, cap);
                (Running::Process(daemon), addr)
            }
            Server::Bound => {
                let bound = bound::Bound::start(file.clone(), BLKSIZE as usize);
                let addr = bound.addr();
                (Running::Thread(bound), addr)
            }
        };
        let cpu_before = running.cpu_seconds();
        let start = Instant::now();
        let intact = storm(addr, &file, clients);
        let secs = start.elapsed().as_secs_f64();
        let bytes = (clients * file.len()) as f64;
        match running.finish(cpu_before) {
            Ok(spent) => println!(
                "| {name} | {intact}/{clients} | {:.0} | {:.2} | {} |",
                bytes / secs / 1e6,
                spent.cpu / (bytes / 1e9),
                spent
                    .peak_rss_mib
                    .map_or_else(|| "–".to_string(), |m| format!("{m:.1}"))
            ),
            // A server that died mid-storm has no figures to give, only how it ended.
            Err(ended) => {
                println!("| {name} | {intact}/{clients} | – | – | – |");
                notes.push(format!("{name} ended during the storm: {ended}"));
            }
        }
        if ours {
            assert_eq!(intact, clients, "every download must arrive intact");
        }
    }
    for note in notes {
        println!("note: {note}");
    }
    let _ = std::fs::remove_dir_all(&root);
}
