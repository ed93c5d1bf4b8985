//! The TFTP client on `std::net`: get and put, to and from files or any [`Storage`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::drive::{Progress, drive};
use super::write_batch::BatchedFile;
use crate::tftp::{
    Blksize, ClientRequest, Config, Direction, EncodeError, ErrorCode, Mode, Negotiated, Stats,
    Storage, StorageError, Text, Timeout, Transfer, TransferError, Windowsize,
};

/// Stops a client transfer from another thread or a signal handler (the `wirekit` program
/// cancels on Ctrl-C and SIGTERM): the server is sent an ERROR, a download's partial file
/// is removed, and the call returns [`ClientError::Cancelled`] within a tenth of a second.
/// Clones cancel the same transfers.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle that has not cancelled anything yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancels every transfer run with this handle (or a clone), now and later.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Two handles are equal when they cancel the same transfers.
impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cancel {}

/// What a client asks for. The default asks for what moves a file fast and is widely
/// granted, as the `wirekit` program does:
///
/// - blksize 1468: the most data a block can carry in one 1500-byte Ethernet frame (1500
///   bytes less 20 of IPv4 header, 8 of UDP and 4 of TFTP), so no block is fragmented on
///   the usual LAN, nearly three times the data of RFC 1350's 512 bytes per round trip;
/// - windowsize 16: sixteen blocks per ACK (RFC 7440, whose section 4 measures how much
///   windows shorten a transfer): over loopback 1468 × 16 moves six times what 1468 × 1
///   does (`docs/speed.md`), and its 23 KiB fit any receiver's socket buffer, where a much
///   larger window overflows small buffers and costs retransmissions;
/// - tsize: the server's size of the file, for a progress bar's total and for holding the
///   download to it (a put announces its file's size).
///
/// A server grants less, or ignores options altogether, as it sees fit: one that ignores
/// them answers with plain 512-byte blocks in lock-step, and the client follows. A server
/// that mishandles options (refuses the request or sends a broken OACK) needs
/// [`ClientOptions::plain`]: RFC 1350's plain request, 512-byte blocks in lock-step.
///
/// Start from either and set what you need:
///
/// ```
/// use wirekit::net::ClientOptions;
/// use wirekit::tftp::Blksize;
///
/// let mut opts = ClientOptions::default();
/// // The most that fits a 1500-byte frame over IPv6, whose header takes 40 bytes.
/// opts.blksize = Some(Blksize::new(1448)?);
/// opts.max_size = Some(64 << 20);
///
/// let old_server = ClientOptions::plain();
/// assert_eq!((old_server.blksize, old_server.windowsize, old_server.tsize), (None, None, false));
/// # Ok::<(), wirekit::tftp::OutOfRange>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Ask for this block size.
    pub blksize: Option<Blksize>,
    /// Ask for this window size.
    pub windowsize: Option<Windowsize>,
    /// Ask the server to use this retransmission timeout (and use it here).
    pub timeout: Option<Timeout>,
    /// Ask for (get) or announce (put) the transfer size, in octet mode. A download is then
    /// held to the size the server announces: see [`ClientRequest::tsize`].
    pub tsize: bool,
    /// Get: the most bytes to accept, refused up front when the server announces more
    /// and stopped with ERROR 3 when the bytes pass it; see [`ClientRequest::max_size`].
    pub max_size: Option<u64>,
    /// Transfer in netascii mode, converting line ends.
    pub netascii: bool,
    /// Retransmission settings.
    pub config: Config,
    /// Stops the transfer when cancelled, e.g. from a Ctrl-C handler.
    pub cancel: Option<Cancel>,
    /// Send from this local address (port 0: any free port), e.g. to pick the interface
    /// of a host with several. Default: the wildcard address of the server's family, any
    /// free port.
    pub local_addr: Option<SocketAddr>,
    /// Get: stay after the final ACK to answer a repeated final DATA, and return only
    /// then; see [`ClientRequest::dally`]. The progress callback hears of the whole file
    /// at once all the same. Off by default: the call returns as soon as the file is
    /// complete.
    pub dally: bool,
}

/// Asked for by default: see [`ClientOptions`].
const BLKSIZE: Blksize = match Blksize::new(1468) {
    Ok(b) => b,
    Err(_) => panic!("1468 is a valid blksize"),
};
const WINDOWSIZE: Windowsize = match Windowsize::new(16) {
    Ok(w) => w,
    Err(_) => panic!("16 is a valid windowsize"),
};

impl Default for ClientOptions {
    /// blksize 1468, windowsize 16 and tsize asked, octet mode, the default
    /// retransmission settings; see [`ClientOptions`] for why.
    fn default() -> Self {
        ClientOptions {
            blksize: Some(BLKSIZE),
            windowsize: Some(WINDOWSIZE),
            tsize: true,
            ..ClientOptions::plain()
        }
    }
}

impl ClientOptions {
    /// A plain RFC 1350 request: no option asked, so 512-byte blocks in lock-step and no
    /// size asked or announced, for a server that mishandles options. Octet mode, the
    /// default retransmission settings.
    pub fn plain() -> ClientOptions {
        ClientOptions {
            blksize: None,
            windowsize: None,
            timeout: None,
            tsize: false,
            max_size: None,
            netascii: false,
            config: Config::default(),
            cancel: None,
            local_addr: None,
            dally: false,
        }
    }
}

/// Why a client transfer failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// A local file or socket failed.
    Io(io::Error),
    /// The request could not be encoded (a NUL in the name, or too long).
    Request(EncodeError),
    /// The transfer failed: timeout, the server's ERROR, or storage.
    Transfer(TransferError),
    /// The transfer was cancelled through [`ClientOptions::cancel`]; the server was sent
    /// an ERROR.
    Cancelled,
    /// Nobody listens there: the request was answered with an ICMP "port unreachable".
    Unreachable(SocketAddr),
    /// The request went unanswered through every retransmission.
    NoAnswer(SocketAddr),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Request(e) => write!(f, "bad request: {e}"),
            ClientError::Transfer(e) => write!(f, "{e}"),
            ClientError::Cancelled => f.write_str("cancelled"),
            ClientError::Unreachable(server) => write!(
                f,
                "nobody listens on {server} (port unreachable): is a TFTP server running \
                 there, on that port?"
            ),
            ClientError::NoAnswer(server) => write!(
                f,
                "no answer from {server}: is a TFTP server running there, and does a \
                 firewall let its answers through?"
            ),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Request(e) => Some(e),
            ClientError::Transfer(e) => Some(e),
            ClientError::Cancelled | ClientError::Unreachable(_) | ClientError::NoAnswer(_) => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// Progress of a client transfer: bytes so far and, when known, the total.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u64, Option<u64>);

struct ClientHooks<'a> {
    total: Option<u64>,
    progress: ProgressFn<'a>,
}

impl Progress for ClientHooks<'_> {
    fn negotiated(&mut self, n: &Negotiated) {
        if n.tsize.is_some() {
            self.total = n.tsize;
        }
    }

    fn progress(&mut self, bytes: u64) {
        (self.progress)(bytes, self.total);
    }
}

fn run<S: Storage + ?Sized>(
    server: SocketAddr,
    request: &ClientRequest<'_>,
    storage: &mut S,
    opts: &ClientOptions,
    total: Option<u64>,
    progress: ProgressFn<'_>,
) -> Result<Stats, ClientError> {
    let local = opts.local_addr.unwrap_or_else(|| {
        let any: IpAddr = if server.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        SocketAddr::new(any, 0)
    });
    let socket = super::socket::bind(local, false)?;
    let epoch = Instant::now();
    let mut transfer = Transfer::client(
        crate::tftp::Instant::from(epoch.elapsed()),
        server,
        request,
        opts.config,
    )
    .map_err(ClientError::Request)?;
    let mut hooks = ClientHooks { total, progress };
    let cancel = opts.cancel.as_ref().map(|c| &*c.0);
    let result = drive(&mut transfer, socket, storage, epoch, &mut hooks, cancel);
    let answered = transfer.is_answered();
    match result {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && !answered => {
            Err(ClientError::Unreachable(server))
        }
        Err(e) => Err(e.into()),
        Ok(Err(_)) if opts.cancel.as_ref().is_some_and(Cancel::is_cancelled) => {
            Err(ClientError::Cancelled)
        }
        Ok(Err(TransferError::Timeout { .. })) if !answered => Err(ClientError::NoAnswer(server)),
        Ok(result) => result.map_err(ClientError::Transfer),
    }
}

/// The request for what the user asked; the protocol's rules (which tsize, when to leave
/// it out) are the request's.
fn request<'a>(
    direction: Direction,
    remote: &'a str,
    opts: &ClientOptions,
    size: Option<u64>,
) -> ClientRequest<'a> {
    let mut r = ClientRequest::new(direction, Text::from(remote));
    r.mode = if opts.netascii {
        Mode::Netascii
    } else {
        Mode::Octet
    };
    r.blksize = opts.blksize;
    r.windowsize = opts.windowsize;
    r.timeout = opts.timeout;
    r.max_size = opts.max_size;
    r.tsize = opts.tsize;
    r.size = size;
    r.dally = opts.dally;
    r
}

/// Downloads `remote` from `server` into `storage`.
pub fn get_into<S: Storage + ?Sized>(
    server: SocketAddr,
    remote: &str,
    storage: &mut S,
    opts: &ClientOptions,
    progress: ProgressFn<'_>,
) -> Result<Stats, ClientError> {
    run(
        server,
        &request(Direction::Read, remote, opts, None),
        storage,
        opts,
        None,
        progress,
    )
}

/// Uploads `size` bytes (when known, for tsize) from `storage` to `remote` on `server`.
pub fn put_from<S: Storage + ?Sized>(
    server: SocketAddr,
    remote: &str,
    storage: &mut S,
    size: Option<u64>,
    opts: &ClientOptions,
    progress: ProgressFn<'_>,
) -> Result<Stats, ClientError> {
    run(
        server,
        &request(Direction::Write, remote, opts, size),
        storage,
        opts,
        size,
        progress,
    )
}

/// A file being downloaded under a temporary name beside its target; removed unless
/// renamed into place.
struct PartFile {
    path: PathBuf,
    done: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Downloads `remote` to the file `local`, which appears only when the download is
/// complete (it is written under a temporary name beside it, `.NAME.PID.wirekit-part`,
/// and renamed). The temporary file is created before the request is sent, so a `local`
/// that cannot be written fails before the server hears of it; it is removed when the
/// download fails or is cancelled.
///
/// A `local` that exists and is no regular file (a device such as `/dev/null`, a FIFO, a
/// terminal) is opened and written as the blocks arrive: renaming over it would replace
/// the device with a file.
pub fn get(
    server: SocketAddr,
    remote: &str,
    local: &Path,
    opts: &ClientOptions,
    progress: ProgressFn<'_>,
) -> Result<Stats, ClientError> {
    let dir = local
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = local
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "local path names no file"))?;
    if local.is_dir() {
        return Err(local_error(
            io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
            "cannot download to",
            local,
        ));
    }
    if fs::metadata(local).is_ok_and(|m| !m.is_file()) {
        return get_in_place(server, remote, local, opts, progress);
    }
    let path = dir.join(format!(
        ".{}.{}.wirekit-part",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| local_error(e, "cannot create the partial file", &path))?;
    let mut part = PartFile { path, done: false };
    // Blocks reach the file in batches, written after their ACK while the server sends on.
    let mut file = Local::writing(BatchedFile::new(file, BatchedFile::DOWNLOAD));
    let result = get_into(server, remote, &mut file, opts, progress);
    let stats = file.outcome(result, "cannot write", &part.path.display())?;
    file.storage.commit().map_err(|e| {
        let e = io::Error::other(e.message.into_owned());
        local_error(e, "cannot write", &part.path)
    })?;
    fs::rename(&part.path, local)
        .map_err(|e| local_error(e, "cannot move the download to", local))?;
    part.done = true;
    Ok(stats)
}

/// [`get`] to a device, FIFO or terminal, written in place through a buffer.
fn get_in_place(
    server: SocketAddr,
    remote: &str,
    local: &Path,
    opts: &ClientOptions,
    progress: ProgressFn<'_>,
) -> Result<Stats, ClientError> {
    let file = OpenOptions::new()
        .write(true)
        .open(local)
        .map_err(|e| local_error(e, "cannot open", local))?;
    let out = io::BufWriter::with_capacity(BatchedFile::DOWNLOAD, file);
    let mut out = Local::writing(out);
    let result = get_into(server, remote, &mut out, opts, progress);
    let stats = out.outcome(result, "cannot write", &local.display())?;
    io::Write::flush(&mut out.storage).map_err(|e| local_error(e, "cannot write", local))?;
    Ok(stats)
}

/// Uploads the file `local` to `remote` on `server`.
///
/// The file is opened, and looked at, before the request is sent: one that cannot be
/// opened, or a directory, fails with [`ClientError::Io`] and the server hears nothing. A
/// regular file's size is announced (with [`ClientOptions::tsize`]); anything else that
/// opens (a FIFO, `/dev/stdin`, a device) is read once, front to back, as
/// [`put_reader`] reads, and no size is announced. A read that fails during the upload
/// fails it with [`ClientError::Io`] naming the file; the server is sent an ERROR that
/// says the client gave up, not the local error.
pub fn put(
    server: SocketAddr,
    local: &Path,
    remote: &str,
    opts: &ClientOptions,
    progress: ProgressFn<'_>,
) -> Result<Stats, ClientError> {
    let file = File::open(local).map_err(|e| local_error(e, "cannot open", local))?;
    let meta = file
        .metadata()
        .map_err(|e| local_error(e, "cannot read", local))?;
    if meta.is_dir() {
        let e = io::Error::new(io::ErrorKind::IsADirectory, "is a directory");
        return Err(local_error(e, "cannot upload", local));
    }
    if !meta.is_file() {
        let mut stream = Local::reading(Stream::new(file, opts));
        let result = put_from(server, remote, &mut stream, None, opts, progress);
        return stream.outcome(result, "cannot read", &local.display());
    }
    let mut file = Local::reading(file);
    let result = put_from(server, remote, &mut file, Some(meta.len()), opts, progress);
    file.outcome(result, "cannot read", &local.display())
}

/// Uploads what `reader` yields, up to its end, to `remote` on `server`: standard input,
/// a pipe, a decompressor. `size` is announced as the transfer size (with
/// [`ClientOptions::tsize`]) and must then be exactly what `reader` yields; pass `None`
/// when it is not known.
///
/// The reader is read once, front to back, as the blocks go out; what a retransmission
/// may send again (a window) is kept in memory, nothing more. A read that fails fails the
/// upload with [`ClientError::Io`]; the server is sent an ERROR that says the client gave
/// up, not the local error. A read blocks the transfer while it waits, so a reader slower
/// than the server's patience (its timeout times its retries) loses the upload.
///
/// When [`ClientOptions::cancel`] is cancelled while a read waits, the end of the input
/// that may follow (a Ctrl-C also ends the program writing into a pipe) does not end the
/// upload as complete: the call returns [`ClientError::Cancelled`].
pub fn put_reader<R: Read + ?Sized>(
    server: SocketAddr,
    remote: &str,
    reader: &mut R,
    size: Option<u64>,
    opts: &ClientOptions,
    progress: ProgressFn<'_>,
) -> Result<Stats, ClientError> {
    let mut stream = Local::reading(Stream::new(reader, opts));
    let result = put_from(server, remote, &mut stream, size, opts, progress);
    stream.outcome(result, "cannot read", &"the input")
}

/// The client's own file or stream in a transfer. What goes wrong with it is for the user
/// to read, not for the server (a local path, an OS error): the server is sent the ERROR
/// code with a message saying the client gave up, and the error itself is kept for the
/// caller.
struct Local<S> {
    storage: S,
    /// What the server is told when this side fails.
    told: &'static str,
    failure: Option<StorageError>,
}

impl<S> Local<S> {
    /// The client's file or stream to upload.
    fn reading(storage: S) -> Local<S> {
        Local {
            storage,
            told: "the client cannot read the file it is uploading",
            failure: None,
        }
    }

    /// The client's file to download into.
    fn writing(storage: S) -> Local<S> {
        Local {
            storage,
            told: "the client cannot write the file it is downloading",
            failure: None,
        }
    }

    fn keep(&mut self, e: StorageError) -> StorageError {
        // A full disk is ERROR 3's own case; anything else is the client's failure, which
        // no other code describes.
        let told = match e.code {
            ErrorCode::DiskFull => StorageError::new(e.code, e.code.description()),
            _ => StorageError::new(ErrorCode::NotDefined, self.told),
        };
        self.failure = Some(e);
        told
    }

    /// The transfer's `result`, with a failure of this storage told as the local error it
    /// was: `doing` `what`, and what failed.
    fn outcome(
        &mut self,
        result: Result<Stats, ClientError>,
        doing: &str,
        what: &dyn fmt::Display,
    ) -> Result<Stats, ClientError> {
        match (result, self.failure.take()) {
            (Err(ClientError::Transfer(TransferError::Storage(_))), Some(e)) => {
                let kind = match e.code {
                    ErrorCode::DiskFull => io::ErrorKind::StorageFull,
                    ErrorCode::AccessViolation => io::ErrorKind::PermissionDenied,
                    _ => io::ErrorKind::Other,
                };
                let message = format!("{doing} {what}: {}", e.message);
                Err(ClientError::Io(io::Error::new(kind, message)))
            }
            (result, _) => result,
        }
    }
}

impl<S: Storage> Storage for Local<S> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        self.storage.read_at(offset, buf).map_err(|e| self.keep(e))
    }

    fn read_segments_at(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        layout: crate::tftp::Segments,
    ) -> Result<usize, StorageError> {
        self.storage
            .read_segments_at(offset, buf, layout)
            .map_err(|e| self.keep(e))
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.storage.write(data).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.storage.flush().map_err(|e| self.keep(e))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.storage.commit().map_err(|e| self.keep(e))
    }
}

/// A stream being uploaded, read once from front to back. A sender reads again only
/// within its current window (and, in netascii, from the start of a block), so the bytes
/// kept are those of the last window and one block more: what lies before that is never
/// asked for again.
struct Stream<R> {
    reader: R,
    /// The bytes from offset `start` on, read and still kept.
    kept: Vec<u8>,
    start: u64,
    /// The end of the furthest read asked for.
    furthest: u64,
    /// Bytes before `furthest` that a later read may ask for again.
    keep: u64,
    ended: bool,
    cancel: Option<Cancel>,
}

impl<R: Read> Stream<R> {
    fn new(reader: R, opts: &ClientOptions) -> Stream<R> {
        // The server may grant less than asked, never more; one that ignores the options
        // sends 512-byte blocks, one at a time.
        let blksize = opts.blksize.map_or(512, |b| b.get().max(512));
        let windowsize = opts.windowsize.map_or(1, |w| w.get());
        Stream {
            reader,
            kept: Vec::new(),
            start: 0,
            furthest: 0,
            keep: (u64::from(windowsize) + 1) * u64::from(blksize),
            ended: false,
            cancel: opts.cancel.clone(),
        }
    }

    /// Reads until the kept bytes reach `end`, or the stream ends.
    fn fill(&mut self, end: u64) -> io::Result<()> {
        while !self.ended && self.start + (self.kept.len() as u64) < end {
            let have = self.kept.len();
            let want = usize::try_from(end - self.start).unwrap_or(usize::MAX);
            self.kept.resize(want.max(have + 8192), 0);
            let got = self.reader.read(&mut self.kept[have..]);
            self.kept.truncate(have + got.as_ref().map_or(0, |&n| n));
            match got {
                Ok(0) => self.ended = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Storage for Stream<R> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        let Some(at) = offset.checked_sub(self.start) else {
            return Err(StorageError::new(
                ErrorCode::NotDefined,
                "a block before the window was asked for again",
            ));
        };
        let end = offset + buf.len() as u64;
        self.fill(end)?;
        if self.ended && self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
            // The input may have ended because the Ctrl-C that cancelled also ended the
            // program writing it: not the file's end.
            return Err(StorageError::new(ErrorCode::NotDefined, "cancelled"));
        }
        let at = usize::try_from(at)
            .unwrap_or(usize::MAX)
            .min(self.kept.len());
        let n = buf.len().min(self.kept.len() - at);
        buf[..n].copy_from_slice(&self.kept[at..at + n]);
        self.furthest = self.furthest.max(end);
        // Dropped in large steps, so that each byte is moved a few times at most.
        let drop = self
            .furthest
            .saturating_sub(self.keep)
            .saturating_sub(self.start);
        if drop > self.keep {
            let drop = usize::try_from(drop)
                .unwrap_or(usize::MAX)
                .min(self.kept.len());
            self.kept.drain(..drop);
            self.start += drop as u64;
        }
        Ok(n)
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::read_only())
    }
}

/// A local file's error, saying what was done to which path.
fn local_error(e: io::Error, doing: &str, path: &Path) -> ClientError {
    ClientError::Io(io::Error::new(
        e.kind(),
        format!("{doing} {}: {e}", path.display()),
    ))
}
