//! A TFTP client on smoltcp, as a device fetches its firmware or configuration (what
//! U-Boot's `tftpboot` and iPXE do in C): smoltcp's `Interface` and UDP socket over a TAP
//! device, smoltcp's `Instant` as the machine's clock, and nothing from `wirekit::net`:
//! only the no_std core (`wirekit::tftp`), as on a board.
//!
//! The host side, as smoltcp's own examples set it up (as root):
//!
//! ```sh
//! ip tuntap add name tap0 mode tap user $USER
//! ip link set tap0 up
//! ip addr add 192.168.69.100/24 dev tap0
//! wirekit serve /srv/tftp --listen 192.168.69.100:6969 --allow-create
//! ```
//!
//! Then, this stack at 192.168.69.1:
//!
//! ```sh
//! cargo run --release --example smoltcp_client -- --tap tap0 192.168.69.100:6969 get image.bin
//! cargo run --release --example smoltcp_client -- --tap tap0 --drop-chance 5 192.168.69.100:6969 get image.bin
//! cargo run --release --example smoltcp_client -- --tap tap0 192.168.69.100:6969 put dump.bin
//! ```
//!
//! It asks for blksize 1468 (a block per Ethernet frame: this smoltcp has no IP
//! fragmentation) and windowsize 16, and sizes the socket's rings for that window (see
//! [`transfer`]).

mod smoltcp_utils;

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::udp;
use smoltcp_utils::{NET_USAGE, Net, NetOptions, Outbox, delay, machine_time, ring};
use wirekit::tftp::{
    Blksize, ClientRequest, Config, DATA_HEADER_LEN, Direction, Mode, Stats, Storage, Transfer,
    TransferError, TransferEvent, Windowsize,
};

const USAGE: &str = "usage: smoltcp_client [OPTIONS] SERVER:PORT get REMOTE [LOCAL]
       smoltcp_client [OPTIONS] SERVER:PORT put LOCAL [REMOTE]
  --blksize N            block size to ask for [1468]
  --windowsize N         window size to ask for [16]
  --netascii             netascii mode (octet otherwise)";

/// What to transfer, and how.
#[derive(Clone, Debug)]
pub struct Args {
    /// The interface.
    pub net: NetOptions,
    /// The server's request port.
    pub server: SocketAddr,
    /// `get` or `put`.
    pub direction: Direction,
    /// The file's name on the server.
    pub remote: String,
    /// The file here.
    pub local: PathBuf,
    /// The block size to ask for.
    pub blksize: u16,
    /// The window size to ask for.
    pub windowsize: u16,
    /// Octet or netascii.
    pub mode: Mode,
}

/// Reads the command line (without the program's name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args: Vec<String> = args.into_iter().collect();
    let net = NetOptions::take(&mut args)?;
    let blksize = smoltcp_utils::take_number(&mut args, "--blksize", 8, 65_464)?;
    let windowsize = smoltcp_utils::take_number(&mut args, "--windowsize", 1, 65_535)?;
    let mode = match smoltcp_utils::take_flag(&mut args, "--netascii") {
        true => Mode::Netascii,
        false => Mode::Octet,
    };
    if let Some(unknown) = args.iter().find(|a| a.starts_with("--")) {
        return Err(format!("unknown option {unknown}"));
    }
    let [server, direction, file, rest @ ..] = args.as_slice() else {
        return Err("SERVER:PORT, get or put, and a file are needed".into());
    };
    let server = server
        .parse()
        .map_err(|_| format!("{server}: not an address:port"))?;
    let other = match rest {
        [] => None,
        [other] => Some(other.clone()),
        _ => return Err(format!("too many arguments: {rest:?}")),
    };
    let base_name = |path: &str| {
        std::path::Path::new(path)
            .file_name()
            .map_or(path.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let (direction, remote, local) = match direction.as_str() {
        "get" => {
            let local = other.unwrap_or_else(|| base_name(file));
            (Direction::Read, file.clone(), local)
        }
        "put" => {
            let remote = other.unwrap_or_else(|| base_name(file));
            (Direction::Write, remote, file.clone())
        }
        other => return Err(format!("{other}: get or put")),
    };
    Ok(Args {
        net,
        server,
        direction,
        remote,
        local: local.into(),
        blksize: blksize.unwrap_or(1468),
        windowsize: windowsize.unwrap_or(16),
        mode,
    })
}

/// Attaches to the TAP device and runs the transfer `args` describe: a download is
/// received into memory (as firmware is, before it is checked and written to flash) and
/// then written to `args.local`; an upload is sent from memory.
pub fn run(args: &Args) -> Result<Stats, Box<dyn Error>> {
    let mut net = Net::open(&args.net)?;
    // No IP fragmentation: a block larger than a frame could never arrive.
    let fits = net.max_udp_payload() - DATA_HEADER_LEN;
    if usize::from(args.blksize) > fits {
        return Err(format!(
            "blksize {} does not fit a frame ({fits} does)",
            args.blksize
        )
        .into());
    }
    let mut request = ClientRequest::new(args.direction, args.remote.as_str());
    request.mode = args.mode;
    request.blksize = Some(Blksize::new(args.blksize.into())?);
    request.windowsize = Some(Windowsize::new(args.windowsize.into())?);
    // A device on a lossy link stays after its final ACK to answer the server's repeat of
    // the last block (RFC 1350's dally): a lost final ACK would otherwise leave the server
    // to log a download the device completed as a failure.
    request.dally = true;
    // An ephemeral port (RFC 6335's range), from the seed: a new one for each run, as a
    // server may still hold the last run's transfer on the old one.
    let port = 49_152 + (args.net.seed % 16_384) as u16;
    match args.direction {
        Direction::Read => {
            // tsize: the server says how large the file is, and the memory is taken once.
            request.tsize = true;
            let mut file = Vec::new();
            let stats = transfer(
                &mut net,
                port,
                args.server,
                &request,
                &mut file,
                |event, file| {
                    if let TransferEvent::Negotiated(n) = event
                        && let Some(size) = n.tsize
                    {
                        // Not enough memory shows when a block is stored: ERROR 3 to the server.
                        let _ = file.try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX));
                    }
                },
            )?;
            std::fs::write(&args.local, &file)?;
            Ok(stats)
        }
        Direction::Write => {
            let file = std::fs::read(&args.local)?;
            // The server may check the size, and refuse what it cannot hold (the machine
            // announces it in octet mode only, where the size on the wire is the file's).
            request.tsize = true;
            request.size = Some(file.len() as u64);
            let mut source = file.as_slice();
            Ok(transfer(
                &mut net,
                port,
                args.server,
                &request,
                &mut source,
                |_, _| {},
            )?)
        }
    }
}

/// One transfer through smoltcp: the driver loop. Each turn polls the interface, hands
/// every datagram received to the machine, gives it its deadline, queues what it sends,
/// and sleeps until a frame or the next deadline, smoltcp's or the machine's.
///
/// The socket's rings are sized for the window: smoltcp's `Interface::poll` moves every
/// frame the device holds into the socket, and drops what does not fit, so the receive
/// ring holds one whole window, `windowsize` datagrams of `4 + blksize` bytes (25 KB for
/// 16 × 1468), plus a few slots for ACKs, OACKs and strays. The window the server grants
/// is never larger than the one asked for (RFC 7440: it may lower it, never raise it), so
/// sizing for the request covers whatever the OACK says. A download sends one ACK at a
/// time; an upload sends a window per ACK, so the transmit ring is the same size. A
/// smaller ring costs speed, not the file: what it drops is a gap the machine recovers.
pub fn transfer<S: Storage + ?Sized>(
    net: &mut Net,
    local_port: u16,
    server: SocketAddr,
    request: &ClientRequest<'_>,
    storage: &mut S,
    mut on_event: impl FnMut(&TransferEvent, &mut S),
) -> Result<Stats, Box<dyn Error>> {
    // At least 512: a server that ignores the options sends RFC 1350's 512-byte blocks.
    let blksize = request.blksize.map_or(512, Blksize::get).max(512);
    let windowsize = usize::from(request.windowsize.map_or(1, Windowsize::get));
    let max_datagram = DATA_HEADER_LEN + usize::from(blksize);
    let rx = ring(windowsize + 4, max_datagram);
    let tx = ring(windowsize + 4, max_datagram);
    let mut socket = udp::Socket::new(rx, tx);
    socket.bind(local_port)?;
    let mut storage_slots = [SocketStorage::EMPTY; 1];
    let mut sockets = SocketSet::new(&mut storage_slots[..]);
    let handle = sockets.add(socket);

    let now = machine_time(net.clock.now());
    let mut transfer = Transfer::client(now, server, request, Config::default())?;
    let mut outbox = Outbox::new(transfer.max_datagram_len().max(max_datagram));
    let mut finished: Option<(Stats, Result<(), TransferError>)> = None;
    loop {
        let timestamp = net.clock.now();
        net.iface.poll(timestamp, &mut net.device, &mut sockets);
        let now = machine_time(timestamp);
        // The ACK queued last turn is on the wire: a storage that gathers blocks writes
        // them now, while the server sends the next window. A failed write leaves an
        // ERROR to send.
        transfer.flush_storage(now, storage);
        let socket = sockets.get_mut::<udp::Socket>(handle);
        // Every datagram received, straight from smoltcp's ring: a DATA's payload is
        // copied once, into the storage. From any source: the machine answers strangers.
        while let Ok((datagram, meta)) = socket.recv() {
            transfer.handle_datagram(now, meta.endpoint.into(), datagram, storage);
        }
        if transfer
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            transfer.handle_timeout(now);
        }
        let queued = outbox.fill(socket, |buf| {
            let t = transfer.poll_transmit(now, storage, buf)?;
            Some((t.len, t.destination))
        });
        while let Some(event) = transfer.poll_event() {
            on_event(&event, storage);
            if let TransferEvent::Finished { stats, result } = event {
                finished = Some((stats, result));
            }
        }
        // Done once the final ACK is out and the dally is over (a repeated final DATA is
        // re-ACKed until then).
        if transfer.is_closed() && !outbox.is_holding() {
            net.iface
                .poll(net.clock.now(), &mut net.device, &mut sockets);
            break;
        }
        if queued {
            continue; // the next poll sends it
        }
        let wait = delay(&mut net.iface, &sockets, timestamp, transfer.poll_timeout());
        net.wait(wait)?;
    }
    let (stats, result) = finished.ok_or("the transfer closed without its end")?;
    result?;
    Ok(stats)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("smoltcp_client: {e}\n{USAGE}\n{NET_USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(stats) => {
            let secs = stats.duration.as_secs_f64();
            println!(
                "{} {} bytes in {secs:.3} s ({:.1} MB/s), {} resent",
                match args.direction {
                    Direction::Read => "received",
                    Direction::Write => "sent",
                },
                stats.bytes,
                stats.bytes as f64 / secs.max(1e-9) / 1e6,
                stats.retransmissions
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("smoltcp_client: {e}");
            ExitCode::FAILURE
        }
    }
}
