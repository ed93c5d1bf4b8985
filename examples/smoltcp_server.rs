//! A TFTP server on smoltcp, as a device serves its logs, dumps or configuration: the same
//! `Endpoint` the std server runs, on smoltcp's `Interface` and one UDP socket over a TAP
//! device, serving files held in memory and taking uploads into memory. Single-port mode:
//! every transfer talks through that one socket, told apart by the client's address and
//! port, so the device needs one socket and one set of buffers. Only the no_std core
//! (`wirekit::tftp`) is used.
//!
//! The host side, as smoltcp's own examples set it up (as root):
//!
//! ```sh
//! ip tuntap add name tap0 mode tap user $USER
//! ip link set tap0 up
//! ip addr add 192.168.69.100/24 dev tap0
//! ```
//!
//! Then, this stack at 192.168.69.1, and clients on the host:
//!
//! ```sh
//! cargo run --release --example smoltcp_server -- --tap tap0 README.md Cargo.toml
//! curl -o readme.txt tftp://192.168.69.1/README.md
//! tftp -m netascii 192.168.69.1 -c get README.md
//! curl -T notes.txt tftp://192.168.69.1/notes.txt
//! ```

mod smoltcp_utils;

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::udp;
use smoltcp_utils::{NET_USAGE, Net, NetOptions, Outbox, delay, machine_time, ring};
use wirekit::tftp::server::{
    Endpoint, EndpointEvent, Inbound, Incoming, Limits, Policy, PortMode, Refusal,
};
use wirekit::tftp::{Blksize, DATA_HEADER_LEN, ErrorCode, Storage, StorageError, Text, Windowsize};

const USAGE: &str = "usage: smoltcp_server [OPTIONS] [FILE...]
  --port N               the request port [69]";

/// The largest window granted: what the rings below are sized for.
const MAX_WINDOW: u16 = 16;
/// Transfers at once. Each holds 2 KB of the heap (4 KB in netascii, which keeps a block
/// of the file to encode: see the README's "On another network stack"), and all share the
/// socket's rings.
const MAX_TRANSFERS: usize = 8;

/// What to serve, and where.
#[derive(Clone, Debug)]
pub struct Args {
    /// The interface.
    pub net: NetOptions,
    /// The request port on this stack.
    pub port: u16,
    /// The files served, by their names without the directory.
    pub files: Vec<PathBuf>,
}

/// Reads the command line (without the program's name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args: Vec<String> = args.into_iter().collect();
    let net = NetOptions::take(&mut args)?;
    let port = smoltcp_utils::take_number(&mut args, "--port", 1, 65_535)?.unwrap_or(69);
    if let Some(unknown) = args.iter().find(|a| a.starts_with("--")) {
        return Err(format!("unknown option {unknown}"));
    }
    Ok(Args {
        net,
        port,
        files: args.into_iter().map(PathBuf::from).collect(),
    })
}

/// The files, by name. `Rc`: a download shares the file with the table, copying nothing.
pub type Files = BTreeMap<Vec<u8>, Rc<[u8]>>;

/// Serves [`Files`]; uploads join them once committed.
pub struct Memory(pub Files);

/// A file being sent, or one being received.
pub enum MemoryFile {
    /// Shared with the table.
    Read(Rc<[u8]>),
    /// The upload's name and its bytes so far.
    Write {
        /// Its name.
        name: Vec<u8>,
        /// Its bytes.
        data: Vec<u8>,
    },
}

impl Storage for MemoryFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        match self {
            MemoryFile::Read(file) => {
                let mut file: &[u8] = file;
                file.read_at(offset, buf)
            }
            MemoryFile::Write { .. } => Err(StorageError::write_only()),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        match self {
            MemoryFile::Write { data, .. } => data.write(bytes),
            MemoryFile::Read(_) => Err(StorageError::read_only()),
        }
    }
}

impl Policy for Memory {
    type Storage = MemoryFile;

    fn read(
        &mut self,
        _: SocketAddr,
        name: Text<'_>,
    ) -> Result<(MemoryFile, Option<u64>), Refusal> {
        let file = self.0.get(name.as_bytes()).ok_or_else(|| {
            Refusal::new(
                ErrorCode::FileNotFound,
                ErrorCode::FileNotFound.description(),
            )
        })?;
        Ok((MemoryFile::Read(file.clone()), Some(file.len() as u64)))
    }

    fn write(
        &mut self,
        _: SocketAddr,
        name: Text<'_>,
        _: Option<u64>,
    ) -> Result<MemoryFile, Refusal> {
        Ok(MemoryFile::Write {
            name: name.as_bytes().to_vec(),
            data: Vec::new(),
        })
    }
}

/// Loads the named files into memory, each under its name without the directory.
pub fn load(paths: &[PathBuf]) -> std::io::Result<Files> {
    let mut files = Files::new();
    for path in paths {
        let name = path.file_name().unwrap_or(path.as_os_str());
        files.insert(
            name.as_encoded_bytes().to_vec(),
            std::fs::read(path)?.into(),
        );
    }
    Ok(files)
}

/// Attaches to the TAP device and serves `args.files` until `stop` says so, handing each
/// log line (a transfer's report, a refusal, an upload stored) to `log`.
pub fn run(
    args: &Args,
    mut stop: impl FnMut() -> bool,
    mut log: impl FnMut(String),
) -> Result<(), Box<dyn Error>> {
    let mut net = Net::open(&args.net)?;
    let files = load(&args.files)?;
    log(format!(
        "serving {} files on {}:{}",
        files.len(),
        args.net.address.address(),
        args.port
    ));

    let mut limits = Limits::default();
    // No IP fragmentation: a block must fit in one frame (1468 bytes on Ethernet).
    let max_block = net.max_udp_payload() - DATA_HEADER_LEN;
    limits.max_blksize = Blksize::new(max_block.min(65_464) as u64)?;
    limits.max_windowsize = Windowsize::new(MAX_WINDOW.into())?;
    limits.max_transfers = MAX_TRANSFERS;
    let mut server = Endpoint::new(Memory(files), limits, PortMode::Single);

    // The rings, for the window: `Interface::poll` moves every frame the device holds into
    // the socket and drops what does not fit, so the receive ring holds an upload's whole
    // window (`MAX_WINDOW` datagrams of `4 + blksize` bytes), and slots for the small
    // datagrams (requests, ACKs) of every other transfer besides. The transmit ring holds
    // a window too: a download's window then goes out in one poll. Every transfer shares
    // them: two uploads at once that overrun the ring lose blocks, which their clients
    // resend (a gap costs a round trip, not the file).
    let max_datagram = server.max_datagram_len();
    let slots = usize::from(MAX_WINDOW) + 2 * MAX_TRANSFERS;
    let mut socket = udp::Socket::new(ring(slots, max_datagram), ring(slots, max_datagram));
    socket.bind(args.port)?;
    let mut storage_slots = [SocketStorage::EMPTY; 1];
    let mut sockets = SocketSet::new(&mut storage_slots[..]);
    let handle = sockets.add(socket);

    let mut outbox = Outbox::new(max_datagram);
    let mut refusal = vec![0u8; 516];
    while !stop() {
        let timestamp = net.clock.now();
        net.iface.poll(timestamp, &mut net.device, &mut sockets);
        let now = machine_time(timestamp);
        // The ACKs queued last turn are on the wire: uploads write what they gathered.
        server.flush_storage(now);
        let socket = sockets.get_mut::<udp::Socket>(handle);
        while let Ok((datagram, meta)) = socket.recv() {
            let incoming = Incoming::new(Inbound::Listener(0), meta.endpoint.into(), None);
            // A refusal comes back at once. The ring full, it is lost as on the wire,
            // and the client asks again.
            if let Some(t) = server.handle(now, incoming, datagram, &mut refusal)
                && let SocketAddr::V4(to) = t.destination
            {
                let _ = socket.send_slice(&refusal[..t.len], to);
            }
        }
        if server
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            server.handle_timeout(now);
        }
        let queued = outbox.fill(socket, |buf| {
            let t = server.poll_transmit(now, buf)?;
            Some((t.len, t.destination))
        });
        while let Some(event) = server.poll_event() {
            match event {
                // In memory, the commit is the upload joining the table; a store with an
                // fsync or a flash erase would do it off the loop and call `committed`
                // when done.
                EndpointEvent::Commit { id, storage } => {
                    if let MemoryFile::Write { name, data } = storage {
                        log(format!(
                            "stored \"{}\" ({} bytes)",
                            Text::from(&name[..]),
                            data.len()
                        ));
                        server.policy_mut().0.insert(name, data.into());
                    }
                    server.committed(now, id, Ok(()));
                }
                EndpointEvent::Ended { report, .. } => log(report.to_string()),
                EndpointEvent::Refused { peer, refusal, .. } => {
                    log(format!("{peer} refused: {refusal}"))
                }
                _ => {}
            }
        }
        if queued {
            continue; // the next poll sends it
        }
        // A tenth of a second at most, so that `stop` is looked at.
        let wait = delay(&mut net.iface, &sockets, timestamp, server.poll_timeout())
            .map_or(MAX_NAP, |d| d.min(MAX_NAP));
        net.wait(Some(wait))?;
    }
    Ok(())
}

const MAX_NAP: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(100);

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("smoltcp_server: {e}\n{USAGE}\n{NET_USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args, || false, |line| eprintln!("{line}")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smoltcp_server: {e}");
            ExitCode::FAILURE
        }
    }
}
