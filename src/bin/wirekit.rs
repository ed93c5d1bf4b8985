//! The `wirekit` program: a TFTP server and client.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use wirekit::net::{self, ClientOptions, DirConfig, Server, ServerConfig};
use wirekit::tftp::server::{Limits, PortMode};
use wirekit::tftp::{Blksize, Config, Stats, Timeout, Windowsize};

// Beside the program rather than in src/bin/, where cargo would take it for a program.
#[cfg(unix)]
#[path = "wirekit/journal.rs"]
mod journal;
#[path = "wirekit/log_format.rs"]
mod log_format;
#[path = "wirekit/log_output.rs"]
mod log_output;
#[path = "wirekit/metrics_http.rs"]
mod metrics_http;

#[path = "wirekit/addrs.rs"]
mod addrs;
#[path = "wirekit/generate.rs"]
mod generate;
#[path = "wirekit/remap.rs"]
mod remap;
#[path = "wirekit/size.rs"]
mod size;

use addrs::HostPort;
use log_format::LogFormat;
use log_output::LogQueue;
use size::{parse_size, parse_size_u32};

/// `get` and `put` ask for what the library's client asks for by default
/// ([`ClientOptions::default`], which says why): the flags only show and change it.
fn default_blksize() -> u16 {
    ClientOptions::default()
        .blksize
        .map_or(Blksize::DEFAULT.get(), Blksize::get)
}

/// See [`default_blksize`].
fn default_windowsize() -> u16 {
    ClientOptions::default()
        .windowsize
        .map_or(Windowsize::DEFAULT.get(), Windowsize::get)
}

/// Default listen address of `wirekit serve`: loopback on a high port, so it runs without
/// privileges or configuration.
const DEFAULT_LISTEN: &str = "127.0.0.1:6969";

/// How long the last log lines may take to get out when the program ends: plenty for a
/// sink that reads, and a bounded wait for one that stalls.
const LOG_FLUSH: Duration = Duration::from_secs(2);

/// The server's log queue, once set up. Whatever the program says after that goes through
/// it too, so that no message waits on a stalled stderr.
static LOG: OnceLock<LogQueue> = OnceLock::new();

#[derive(Parser)]
#[command(name = "wirekit", version, about = "A TFTP server and client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a directory over TFTP (read-only unless told otherwise).
    #[command(after_help = size::HELP)]
    Serve(ServeArgs),
    /// Download a file.
    #[command(after_help = size::HELP)]
    Get(GetArgs),
    /// Upload a file.
    Put(PutArgs),
    /// Show what a name becomes under a remap rule file, and which rules did it; or check
    /// the file.
    Remap(remap::RemapArgs),
    /// Write the man pages or shell completions (for packagers; see the README).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Directory to serve.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on, repeat for several: 192.0.2.10:69, [2001:db8::1]:69, a host
    /// name (those of its addresses this host has), or :69 for every address (0.0.0.0:69,
    /// and [::]:69 where the host has IPv6). The port is 69 unless given; port 0 takes a
    /// free port for each address. Default: the sockets a service manager passed (socket
    /// activation), else 127.0.0.1:6969.
    #[arg(short, long = "listen", value_name = "[HOST][:PORT]", value_parser = HostPort::parse)]
    listen: Vec<HostPort>,
    /// Serve the sockets the service manager passed (systemd socket activation:
    /// LISTEN_PID, LISTEN_FDS), and fail if there are none. Without --listen they are
    /// used when passed, flag or not.
    #[cfg(unix)]
    #[arg(long, conflicts_with_all = ["listen", "threads"])]
    systemd: bool,
    /// Once the sockets are bound, run as this user, with its group and no other (for a
    /// server started as root to bind port 69).
    #[cfg(unix)]
    #[arg(short, long, value_name = "NAME")]
    user: Option<String>,
    /// Accept uploads of new files.
    #[arg(long)]
    allow_create: bool,
    /// Let uploads replace existing files (alone: new files are refused).
    #[arg(long)]
    allow_overwrite: bool,
    /// Refuse uploads larger than this, e.g. 1G (K, M, G: powers of 1000; KiB, MiB, GiB:
    /// of 1024).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    max_upload_size: Option<u64>,
    /// Permission bits, in octal (e.g. 640), of files that uploads create, set exactly
    /// whatever the umask. Default: 666 less the umask. A replaced file keeps its own
    /// owner, group and permission bits.
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    create_mode: Option<u32>,
    /// Refuse to serve or replace files with more than one hard link, so a hard link
    /// planted in the directory to a file elsewhere is not served.
    #[arg(long)]
    refuse_linked: bool,
    /// Serve and replace only files owned by the user the server runs as (like dnsmasq's
    /// --tftp-secure).
    #[arg(long)]
    owned_only: bool,
    /// Refuse names with a backslash or a leading / (by default a backslash is read as /
    /// and a leading / as the served directory, as boot firmware means them).
    #[arg(long)]
    strict_names: bool,
    /// Rewrite or refuse requested names by the rules in FILE, in the format of
    /// tftp-hpa's -m (e.g. `rg \\ /` or `r ^/`); see the README for what is supported.
    #[arg(long, value_name = "FILE")]
    remap: Option<PathBuf>,
    /// Largest block size granted.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_blksize.get(), value_parser = clap::value_parser!(u16).range(8..=65464))]
    max_blksize: u16,
    /// Largest window size granted.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_windowsize.get(), value_parser = clap::value_parser!(u16).range(1..))]
    max_windowsize: u16,
    /// Largest window in bytes (windowsize × blksize), e.g. 4MiB; windowsize is lowered to
    /// fit. Default: what the server's socket buffers were granted.
    #[arg(long, value_name = "BYTES", value_parser = parse_size_u32)]
    max_window_bytes: Option<u32>,
    /// Largest `timeout` option accepted, in seconds; larger asks are ignored.
    #[arg(long, value_name = "S", default_value_t = Limits::DEFAULT.max_timeout.get(), value_parser = clap::value_parser!(u8).range(1..))]
    max_timeout: u8,
    /// Answer every transfer from the request port, for clients behind NAT, in
    /// containers or behind a load balancer.
    #[arg(long)]
    single_port: bool,
    /// Take transfer ports from this range, e.g. 30000-30100. A server that will not be
    /// privileged (--user, or not root) needs ports from net.ipv4.ip_unprivileged_port_start
    /// (usually 1024) up.
    #[arg(long, value_name = "A-B", value_parser = parse_range, conflicts_with = "single_port")]
    port_range: Option<(u16, u16)>,
    /// Transfers at once (at least 1); more are refused with an ERROR.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_transfers, value_parser = parse_transfers)]
    max_transfers: usize,
    /// Transfers at once from one client address (at least 1).
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_per_address, value_parser = parse_transfers)]
    max_per_address: usize,
    /// Event loops (threads); 0 means one per core.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Retransmission timeout in seconds (1-255) when the client negotiates none.
    #[arg(long, value_name = "S", default_value_t = Limits::DEFAULT.config.timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=255))]
    timeout: u64,
    /// Retries at the full timeout before a transfer is given up. The timeout doubles
    /// after each, up to 8 s: a client that falls silent holds its transfer for 31 s with
    /// the defaults (1 + 2 + 4 + 8 + 8 + 8), a little longer after short round trips were
    /// measured (those resend sooner, and do not count as retries). A client that never
    /// answered at all is dropped after 10 s.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.config.retries)]
    retries: u32,
    /// Seconds running transfers may go on after Ctrl-C (at most 86400, a day).
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=MAX_GRACE))]
    grace: u64,
    /// Log every request and packet, and which remap rules rewrote or refused a name.
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,
    /// Log only warnings and errors.
    #[arg(short, long)]
    quiet: bool,
    /// Check the configuration and exit, serving nothing (like `nginx -t`): the listen
    /// addresses resolve and are this host's, the ports may be bound, --user exists, the
    /// remap file reads, the directory opens for the user that serves it. Exit status 0,
    /// or 1 with what is wrong.
    #[arg(long)]
    check: bool,
    /// Log format. Default: journal when stderr goes to the systemd journal, else text.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Serve the server's counters (transfers, bytes, retransmissions, refusals, what each
    /// loop holds) in the Prometheus text format at http://ADDR:PORT/metrics, e.g.
    /// 127.0.0.1:9169. Off unless given.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
}

#[derive(Args)]
struct TransferArgs {
    /// Block size to ask for (8-65464); a server that grants less is taken at its word.
    #[arg(long, value_name = "N", default_value_t = default_blksize(), value_parser = clap::value_parser!(u16).range(8..=65464))]
    blksize: u16,
    /// Window size to ask for (1-65535); a server without windows answers in lock-step.
    #[arg(long, value_name = "N", default_value_t = default_windowsize(), value_parser = clap::value_parser!(u16).range(1..))]
    windowsize: u16,
    /// Ask for no option at all: a plain RFC 1350 request, for servers that mishandle them.
    #[arg(long, conflicts_with_all = ["blksize", "windowsize", "timeout"])]
    no_options: bool,
    /// Retransmission timeout in seconds, also asked of the server (1-255).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u8).range(1..))]
    timeout: Option<u8>,
    /// Retransmissions before giving up.
    #[arg(long, value_name = "N", default_value_t = Config::default().retries)]
    retries: u32,
    /// Transfer as text, converting line ends (netascii).
    #[arg(long)]
    netascii: bool,
    /// Do not ask for or announce the transfer size.
    #[arg(long)]
    no_tsize: bool,
}

#[derive(Args)]
struct GetArgs {
    /// Server, as HOST or HOST:PORT (port 69 by default); every address a name resolves to
    /// is tried in turn.
    #[arg(value_parser = HostPort::parse)]
    server: HostPort,
    /// File on the server.
    remote: String,
    /// Where to write it (default: the remote file's name).
    local: Option<PathBuf>,
    /// Refuse a file larger than this, e.g. 10M (K, M, G: powers of 1000; KiB, MiB, GiB: of
    /// 1024): up front when the server announces its size, or with an ERROR to the server
    /// as soon as the bytes pass it.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    max_size: Option<u64>,
    /// After the last block, stay twice the timeout to answer the server's repeat of it
    /// (RFC 1350's dally): on a lossy network, the server then logs the download as the
    /// success it was even when the final ACK is lost. The file is complete either way.
    #[arg(long)]
    dally: bool,
    #[command(flatten)]
    opts: TransferArgs,
}

#[derive(Args)]
struct PutArgs {
    /// Server, as HOST or HOST:PORT (port 69 by default); every address a name resolves to
    /// is tried in turn.
    #[arg(value_parser = HostPort::parse)]
    server: HostPort,
    /// File to send, or - for standard input (its size is announced only when it is a
    /// regular file).
    local: PathBuf,
    /// Name on the server (default: the local file's name; needed with -).
    remote: Option<String>,
    #[command(flatten)]
    opts: TransferArgs,
}

/// Longest `--grace`: a day is more than any shutdown should take, and keeps the end of
/// the grace period a time the clock can hold.
const MAX_GRACE: u64 = 24 * 60 * 60;

/// A number of transfers: 0 would refuse every request, which is no way to run a server.
fn parse_transfers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 would refuse every request: expected at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a number of transfers, at least 1: {e}")),
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').ok_or("expected A-B")?;
    let a: u16 = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
    let b: u16 = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
    if a == 0 || a > b {
        return Err("expected 1 <= A <= B".into());
    }
    Ok((a, b))
}

/// Permission bits in octal, 0-777, with or without a leading 0 or 0o.
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err("expected permission bits in octal, 0 to 777 (e.g. 640)".into()),
    }
}

/// Runs `transfer` against each address in turn, until one has a server that answers.
fn each_address<T>(
    addrs: &[SocketAddr],
    mut transfer: impl FnMut(SocketAddr) -> Result<T, net::ClientError>,
) -> Result<T, (SocketAddr, net::ClientError)> {
    let mut last = None;
    for &addr in addrs {
        match transfer(addr) {
            Err(e @ (net::ClientError::Unreachable(_) | net::ClientError::NoAnswer(_))) => {
                last = Some((addr, e));
            }
            Err(e) => return Err((addr, e)),
            Ok(done) => return Ok(done),
        }
    }
    Err(last.expect("resolve gives at least one address"))
}

fn client_options(a: &TransferArgs) -> Result<ClientOptions, String> {
    let mut config = Config::default();
    config.retries = a.retries;
    if let Some(t) = a.timeout {
        config.timeout = Duration::from_secs(t.into());
    }
    let cancel = net::Cancel::new();
    let on_signal = cancel.clone();
    ctrlc::set_handler(move || on_signal.cancel())
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    let mut opts = if a.no_options {
        ClientOptions::plain()
    } else {
        let mut opts = ClientOptions::default();
        opts.blksize = Blksize::new(a.blksize.into()).ok();
        opts.windowsize = Windowsize::new(a.windowsize.into()).ok();
        opts.timeout = a.timeout.and_then(|t| Timeout::new(t.into()).ok());
        opts
    };
    if a.no_tsize {
        opts.tsize = false;
    }
    opts.netascii = a.netascii;
    opts.config = config;
    opts.cancel = Some(cancel);
    Ok(opts)
}

/// Runs a transfer with a progress bar naming `name` on a terminal, and nothing in scripts.
/// Once the size is known (tsize), the spinner becomes a bar with a total; at the end a
/// one-line summary stays.
fn with_progress<E>(
    name: &str,
    run: impl FnOnce(net::ProgressFn<'_>) -> Result<Stats, E>,
) -> Result<Stats, E> {
    let bar = std::io::stderr()
        .is_terminal()
        .then(ProgressBar::new_spinner);
    if let Some(bar) = &bar {
        bar.set_message(name.to_string());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}") {
            bar.set_style(style);
        }
    }
    let mut sized = false;
    let result = run(&mut |bytes, total| {
        let Some(bar) = &bar else { return };
        if let (Some(t), false) = (total, sized) {
            sized = true;
            bar.set_length(t);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta}",
            ) {
                bar.set_style(style);
            }
        }
        bar.set_position(bytes);
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
        if let Ok(stats) = &result {
            say(&format!("{name}: {}", summary(stats)));
        }
    }
    result
}

/// `1.4 MiB in 120.3 ms (11.6 MiB/s)`, and the retransmissions if there were any.
fn summary(stats: &Stats) -> String {
    let secs = stats.duration.as_secs_f64();
    let rate = if secs > 0.0 {
        format!(" ({}/s)", HumanBytes((stats.bytes as f64 / secs) as u64))
    } else {
        String::new()
    };
    let resent = match stats.retransmissions {
        0 => String::new(),
        n => format!(", {n} retransmissions"),
    };
    let took = if secs < 1.0 {
        format!("{:.1} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    };
    format!("{} in {took}{rate}{resent}", HumanBytes(stats.bytes))
}

fn get(a: GetArgs) -> Result<(), String> {
    let servers = addrs::server_addresses(&a.server)?;
    let mut opts = client_options(&a.opts)?;
    opts.max_size = a.max_size;
    opts.dally = a.dally;
    let remote = a.remote.as_str();
    let result = if a.local.as_deref() == Some(std::path::Path::new("-")) {
        // To standard output, through a buffer; the progress bar and errors go to stderr.
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
        each_address(&servers, |server| {
            with_progress(remote, |progress| {
                net::get_into(server, remote, &mut out, &opts, progress)
            })
        })
        .and_then(|stats| {
            std::io::Write::flush(&mut out)
                .map(|()| stats)
                .map_err(|e| (servers[0], net::ClientError::Io(e)))
        })
    } else {
        let local = a.local.unwrap_or_else(|| {
            PathBuf::from(
                remote
                    .rsplit(['/', '\\'])
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("download"),
            )
        });
        each_address(&servers, |server| {
            with_progress(remote, |progress| {
                net::get(server, remote, &local, &opts, progress)
            })
        })
    };
    result
        .map(|_| ())
        .map_err(|(server, e)| format!("get {remote} from {server}: {e}"))
}

fn put(a: PutArgs) -> Result<(), String> {
    let servers = addrs::server_addresses(&a.server)?;
    let stdin = a.local.as_os_str() == "-";
    let remote = match a.remote {
        Some(r) => r,
        None if stdin => {
            return Err(
                "put from standard input (-) needs the name to give it on the \
                        server: wirekit put HOST - NAME"
                    .into(),
            );
        }
        None => a
            .local
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .ok_or("the local path names no file")?,
    };
    let opts = client_options(&a.opts)?;
    let result = if stdin {
        let (mut input, size) = standard_input()?;
        each_address(&servers, |server| {
            with_progress(&remote, |progress| {
                net::put_reader(server, &remote, &mut input, size, &opts, progress)
            })
        })
    } else {
        each_address(&servers, |server| {
            with_progress(&remote, |progress| {
                net::put(server, &a.local, &remote, &opts, progress)
            })
        })
    };
    let local = if stdin {
        "standard input".into()
    } else {
        a.local.display().to_string()
    };
    result
        .map(|_| ())
        .map_err(|(server, e)| format!("put {local} to {server}: {e}"))
}

/// Standard input to upload, and its size when it is a regular file (`< file`): from
/// where it stands to its end. A pipe or a terminal has no size to announce.
#[cfg(unix)]
fn standard_input() -> Result<(Box<dyn std::io::Read>, Option<u64>), String> {
    use std::io::Seek;
    use std::os::fd::AsFd;
    let cannot = |e: std::io::Error| format!("cannot read standard input: {e}");
    let mut file = std::fs::File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(cannot)?,
    );
    let meta = file.metadata().map_err(cannot)?;
    if meta.is_dir() {
        return Err("cannot read standard input: it is a directory".into());
    }
    let size = if meta.is_file() {
        let at = file.stream_position().map_err(cannot)?;
        Some(meta.len().saturating_sub(at))
    } else {
        None
    };
    // Read through the same open file, which shares its position with standard input.
    Ok((Box::new(file), size))
}

#[cfg(not(unix))]
fn standard_input() -> Result<(Box<dyn std::io::Read>, Option<u64>), String> {
    Ok((Box::new(std::io::stdin()), None))
}

/// The sockets a service manager passed, with their names: asked for with `--systemd`,
/// looked for without `--listen`. Taken before anything else opens a descriptor.
#[cfg(unix)]
fn passed_sockets(a: &ServeArgs) -> Result<Vec<net::systemd::ListenSocket>, String> {
    // A check serves nothing, and takes nothing from a service manager.
    if a.check || !a.systemd && !a.listen.is_empty() {
        return Ok(Vec::new());
    }
    let passed = net::systemd::listen_sockets().map_err(|e| e.to_string())?;
    if a.systemd && passed.is_empty() {
        let none = "no sockets were passed (LISTEN_PID and LISTEN_FDS name none for this process)";
        return Err(format!("--systemd: {none}"));
    }
    Ok(passed)
}

/// Tells the service manager, if one listens (NOTIFY_SOCKET); a failure is reported, not
/// fatal.
#[cfg(unix)]
fn notify(state: &str) {
    if let Err(e) = net::systemd::notify(state) {
        tracing::warn!("cannot notify the service manager: {e}");
    }
}

#[cfg(not(unix))]
fn notify(_: &str) {}

fn serve(a: ServeArgs) -> Result<(), String> {
    #[cfg(unix)]
    let (passed, names): (Vec<UdpSocket>, Vec<String>) = {
        let passed = passed_sockets(&a)?;
        let names = passed.iter().filter_map(|p| p.name.clone()).collect();
        (passed.into_iter().map(|p| p.socket).collect(), names)
    };
    #[cfg(not(unix))]
    let (passed, names): (Vec<UdpSocket>, Vec<String>) = (Vec::new(), Vec::new());
    // Looked up before binding, so that a wrong name costs nothing.
    #[cfg(unix)]
    let user = a
        .user
        .as_deref()
        .map(net::User::lookup)
        .transpose()
        .map_err(|e| format!("--user: {e}"))?;
    let listen = if a.listen.is_empty() {
        let default = DEFAULT_LISTEN
            .parse()
            .expect("DEFAULT_LISTEN is an address");
        vec![default]
    } else {
        addrs::listen_addresses(&a.listen)?
    };
    let mut dir = DirConfig::new(&a.dir);
    dir.uploads.allow_create = a.allow_create;
    dir.uploads.allow_overwrite = a.allow_overwrite;
    dir.uploads.max_size = a.max_upload_size;
    dir.root_options.create_mode = a.create_mode;
    dir.root_options.refuse_linked = a.refuse_linked;
    dir.root_options.owned_only = a.owned_only;
    dir.root_options.strict_names = a.strict_names;
    if let Some(path) = &a.remap {
        dir.remap = Some(
            net::Remap::load(path).map_err(|e| format!("remap file {}: {e}", path.display()))?,
        );
    }
    let mut config = ServerConfig::new(listen);
    config.port_range = a.port_range.map(|(a, b)| a..=b);
    config.port_mode = if a.single_port {
        PortMode::Single
    } else {
        PortMode::PerTransfer
    };
    config.threads = a.threads;
    config.grace = Duration::from_secs(a.grace);
    config.verbose = a.verbose;
    let limits = &mut config.limits;
    limits.max_blksize = Blksize::new(a.max_blksize.into()).map_err(|e| e.to_string())?;
    limits.max_windowsize = Windowsize::new(a.max_windowsize.into()).map_err(|e| e.to_string())?;
    limits.max_window_bytes = a.max_window_bytes.or(limits.max_window_bytes);
    limits.max_timeout = Timeout::new(a.max_timeout.into()).map_err(|e| e.to_string())?;
    limits.max_transfers = a.max_transfers;
    limits.max_per_address = a.max_per_address;
    limits.config.timeout = Duration::from_secs(a.timeout);
    limits.config.retries = a.retries;
    if a.check {
        if a.systemd {
            // The sockets are the service manager's to bind: nothing to check here.
            config.listen.clear();
        }
        #[cfg(unix)]
        return check(&config, &dir, user.as_ref(), &a);
        #[cfg(not(unix))]
        return Err("--check is not supported on this system".into());
    }
    init_logging(a.log_format, a.verbose, a.quiet)?;
    let activated = !passed.is_empty();
    // A transfer holds a descriptor or two: take every one the hard limit allows.
    net::raise_descriptor_limit();
    let server = if activated {
        Server::from_sockets(config, dir, passed)
    } else {
        Server::bind(config, dir)
    };
    #[allow(unused_mut)]
    let mut server = server.map_err(|e| e.to_string())?;
    // Bound with the sockets, before any switch of user: a port below 1024 needs it.
    let metrics_at = match a.metrics {
        Some(addr) => {
            let metrics = net::metrics::Metrics::new();
            server = server.with_metrics(&metrics);
            Some(metrics_http::serve(addr, metrics)?)
        }
        None => None,
    };
    // Bound, and the root open and swept: root's rights are needed no more.
    #[cfg(unix)]
    let identity = match &user {
        Some(user) => {
            server
                .drop_privileges(user)
                .map_err(|e| format!("--user: {e}"))?;
            Some(Ok(format!("running as user {user}")))
        }
        None if rustix::process::geteuid().is_root() => Some(Err(
            "running as root; --user NAME would serve as NAME once bound",
        )),
        None => None,
    };
    #[cfg(not(unix))]
    let identity: Option<Result<String, &str>> = None;
    // Asked as the user that serves, after any switch: a root it may not search serves
    // nothing, so it is refused here rather than request by request.
    if let Some(e) = server.policy().unusable() {
        #[cfg(unix)]
        let who = user
            .as_ref()
            .map_or_else(String::new, |u| format!(" as user {}", u.name()));
        #[cfg(not(unix))]
        let who = String::new();
        return Err(format!(
            "cannot open files in {}{who}: {e}; nothing could be served",
            server.root().display()
        ));
    }
    let mode = uploads(&a);
    let addrs: Vec<String> = server
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let from = match (activated, names.is_empty()) {
        (false, _) => String::new(),
        (true, true) => " (sockets from the service manager)".to_string(),
        (true, false) => format!(" (sockets from the service manager: {})", names.join(", ")),
    };
    let status = format!(
        "serving {} on {}{from} ({mode})",
        server.root().display(),
        addrs.join(", ")
    );
    tracing::info!("{status}; stop with Ctrl-C");
    if let Some(addr) = metrics_at {
        tracing::info!("metrics at http://{addr}/metrics");
    }
    match identity {
        Some(Ok(user)) => tracing::info!("{user}"),
        Some(Err(root)) => tracing::warn!("{root}"),
        None => {}
    }
    // Where part still works (files served but not listed, or no uploads), a warning.
    for problem in server.policy().access_problems() {
        tracing::warn!("{problem}");
    }
    let stopper = server.stopper();
    static SIGNALS: AtomicUsize = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        match SIGNALS.fetch_add(1, Ordering::SeqCst) {
            0 => {}
            // A second Ctrl-C: cut running transfers now, telling their clients. Uploads
            // whose commit is under way finish it first, so their clients hear the truth.
            1 => return stopper.stop_now(),
            // A third: whatever a commit is waiting for (a hung file system), quit.
            _ => std::process::exit(1),
        }
        // Stopping first: nothing after it may keep the server from stopping.
        stopper.stop();
        tracing::info!("stopping: finishing running transfers (Ctrl-C again to quit now)");
        notify("STOPPING=1");
    })
    .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    // Listening, as the user it serves as, and stoppable: ready.
    notify(&format!("READY=1\nSTATUS={status}"));
    server.run().map_err(|e| e.to_string())
}

/// Which uploads the server accepts, as the banner says it.
fn uploads(a: &ServeArgs) -> &'static str {
    match (a.allow_create, a.allow_overwrite) {
        (false, false) => "read-only",
        (true, false) => "uploads may create new files, not replace existing ones",
        (false, true) => "uploads may replace existing files; new files refused",
        (true, true) => "uploads may create and replace files",
    }
}

/// `serve --check`: what would keep the server from starting, as an error; else what it
/// would serve, and what it would warn about, on standard output.
#[cfg(unix)]
fn check(
    config: &ServerConfig,
    dir: &DirConfig,
    user: Option<&net::User>,
    a: &ServeArgs,
) -> Result<(), String> {
    config.check(user).map_err(|e| e.to_string())?;
    let warnings = dir.check(user).map_err(|e| e.to_string())?;
    let on = if a.systemd {
        "the sockets the service manager passes".to_string()
    } else {
        let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
        listen.join(", ")
    };
    let mut out = String::new();
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let remap = dir
        .remap
        .as_ref()
        .map_or_else(String::new, |r| format!(", {} remap rules", r.len()));
    out.push_str(&format!(
        "configuration ok: would serve {} on {on} ({}{remap})\n",
        a.dir.display(),
        uploads(a)
    ));
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// The server's log goes to stderr, one line per event (text or JSON), with its level,
/// and with a timestamp unless the journal (which adds its own) is listening; or to the
/// journal itself, as entries with fields (see `log_format`). Either way it passes
/// through a bounded queue to a writer thread: a sink that stalls or closes costs log
/// lines (counted in the log), never a transfer, a signal or the process.
fn init_logging(format: Option<LogFormat>, verbose: bool, quiet: bool) -> Result<(), String> {
    let queue = log_format::init(format, verbose, quiet)?;
    let _ = LOG.set(queue);
    Ok(())
}

/// Prints `text` as a line on stderr: through the log queue once the server has one, else
/// directly. A stderr that is closed or full is no reason to panic over a message.
fn say(text: &str) {
    match LOG.get() {
        Some(log) => log.push_text(text),
        None => {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Get(a) => get(a),
        Command::Put(a) => put(a),
        Command::Remap(a) => remap::run(a),
        Command::Generate(a) => generate::run(a, Cli::command()),
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("wirekit: {e}"));
            ExitCode::FAILURE
        }
    };
    // The last lines ("stopped: ...", an error) out before the process ends, unless the
    // sink stalls.
    if let Some(log) = LOG.get() {
        log.flush(LOG_FLUSH);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name resolving to an address nobody listens on first (`localhost` as `::1`, say)
    /// is served by the next one.
    #[test]
    fn each_address_moves_on_past_addresses_nobody_listens_on() {
        let addrs: Vec<SocketAddr> =
            vec!["[::1]:69".parse().unwrap(), "127.0.0.1:69".parse().unwrap()];
        let mut tried = Vec::new();
        let got = each_address(&addrs, |a| {
            tried.push(a);
            if a.is_ipv6() {
                Err(net::ClientError::Unreachable(a))
            } else {
                Ok(7)
            }
        });
        assert_eq!(got.ok(), Some(7));
        assert_eq!(tried, addrs);
    }

    /// A server that answered with an error is the answer: no other address is tried.
    #[test]
    fn each_address_stops_at_a_server_that_answered() {
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:69".parse().unwrap(),
            "127.0.0.2:69".parse().unwrap(),
        ];
        let mut tried = 0;
        let got: Result<(), _> = each_address(&addrs, |_| {
            tried += 1;
            Err(net::ClientError::Cancelled)
        });
        assert!(matches!(got, Err((_, net::ClientError::Cancelled))));
        assert_eq!(tried, 1);
    }
}
