//! Running under a service manager, as systemd does it: sockets passed by socket
//! activation (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, see `sd_listen_fds(3)`), and
//! state notifications (`NOTIFY_SOCKET`, see `sd_notify(3)`). Both are plain protocols,
//! spoken here without linking libsystemd; any service manager that speaks them works.
//!
//! ```no_run
//! use wirekit::net::{DirConfig, Server, ServerConfig, systemd};
//!
//! // First thing in the program, before anything else opens a descriptor.
//! let passed = systemd::listen_sockets()?;
//! let sockets = passed.into_iter().map(|s| s.socket).collect();
//! let server = Server::from_sockets(ServerConfig::default(), DirConfig::new("/srv/tftp"), sockets)?;
//! systemd::notify("READY=1")?;
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::net::UdpSocket;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::FileType;
use rustix::io::FdFlags;
use rustix::net::{AddressFamily, SocketType};

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;
/// More descriptors than any socket unit passes: a larger `LISTEN_FDS` is a corrupt one.
const MAX_FDS: u32 = 4096;

/// Set once the passed descriptors have been taken: each is owned by one socket only.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// A UDP socket passed by the service manager.
#[derive(Debug)]
#[non_exhaustive]
pub struct ListenSocket {
    /// The bound socket, close-on-exec.
    pub socket: UdpSocket,
    /// Its name from `LISTEN_FDNAMES`: systemd's `FileDescriptorName=`, by default the
    /// socket unit's name.
    pub name: Option<String>,
}

/// Takes the sockets a service manager passed to this process: descriptors 3 to
/// 3 + `LISTEN_FDS` - 1, when `LISTEN_PID` is this process's ID. None were passed when the
/// variables are unset or name another process (they were inherited by a child); the
/// result is then empty, and so is that of every call after the first.
///
/// Call it first thing, before anything else in the process opens descriptors: the
/// descriptors are taken over on the word of the environment. Each is checked to be an
/// open UDP socket (IPv4 or IPv6) before it is taken; a passed descriptor that is anything
/// else (say a `ListenStream=` socket) is an error that names it, and is left alone. The
/// variables stay set (changing the environment is not thread-safe): a child process sees
/// a `LISTEN_PID` that is not its own, and takes nothing.
pub fn listen_sockets() -> io::Result<Vec<ListenSocket>> {
    let Some(count) = passed_count()? else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let names = std::env::var("LISTEN_FDNAMES").ok();
    let names: Vec<&str> = names
        .as_deref()
        .map_or(Vec::new(), |n| n.split(':').collect());
    let count = RawFd::try_from(count).expect("LISTEN_FDS is at most MAX_FDS");
    let mut sockets = Vec::new();
    for (i, fd) in (FIRST_FD..FIRST_FD + count).enumerate() {
        // Names only count when there is one for every descriptor.
        let name = (names.len() == count as usize).then(|| names[i].to_owned());
        let socket = adopt_udp(fd).map_err(|e| {
            let named = name.as_ref().map_or(String::new(), |n| format!(" ({n})"));
            io::Error::new(
                e.kind(),
                format!("descriptor {fd}{named} passed by the service manager: {e}"),
            )
        })?;
        sockets.push(ListenSocket { socket, name });
    }
    Ok(sockets)
}

/// `LISTEN_FDS` when `LISTEN_PID` names this process.
fn passed_count() -> io::Result<Option<u32>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    let Ok(pid) = std::env::var("LISTEN_PID") else {
        return Ok(None);
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| invalid("LISTEN_PID is not a process ID"))?;
    if pid != std::process::id() {
        return Ok(None);
    }
    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    match count.trim().parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= MAX_FDS => Ok(Some(n)),
        _ => Err(invalid("LISTEN_FDS is not a count of descriptors")),
    }
}

/// Takes descriptor `fd` over as a UDP socket, once it is seen to be one.
fn adopt_udp(fd: RawFd) -> io::Result<UdpSocket> {
    let owned = adopt(fd, |borrowed| {
        let not = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        let stat = rustix::fs::fstat(borrowed)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Socket {
            return Err(not("not a socket".into()));
        }
        let kind = rustix::net::sockopt::socket_type(borrowed)?;
        if kind != SocketType::DGRAM {
            return Err(not(format!(
                "not a datagram socket ({kind:?}); TFTP needs ListenDatagram="
            )));
        }
        let family = rustix::net::getsockname(borrowed)?.address_family();
        if family != AddressFamily::INET && family != AddressFamily::INET6 {
            return Err(not("not an IPv4 or IPv6 socket".into()));
        }
        Ok(())
    })?;
    // The manager may have passed it inheritable; no child of ours is to have it.
    rustix::io::fcntl_setfd(&owned, FdFlags::CLOEXEC)?;
    Ok(UdpSocket::from(owned))
}

/// Takes ownership of the inherited descriptor `fd` once `check` passes on it; a
/// descriptor that is not open, or that fails the check, is left alone.
#[allow(unsafe_code)]
fn adopt(fd: RawFd, check: impl FnOnce(BorrowedFd<'_>) -> io::Result<()>) -> io::Result<OwnedFd> {
    // A descriptor that is not open must not even be borrowed: ask the kernel first.
    // SAFETY: fcntl(F_GETFD) on any integer is defined; on a closed one it fails with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and is not closed during this borrow, which ends
    // with `check`.
    check(unsafe { BorrowedFd::borrow_raw(fd) })?;
    // SAFETY: the service manager passed descriptors FIRST_FD.. to this process (LISTEN_PID
    // is our ID) for it to own, and TAKEN lets them be taken once: nothing else in the
    // process owns `fd`, given listen_sockets' documented precondition that it runs before
    // anything else opens descriptors.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `state` (newline-separated `KEY=VALUE` assignments: `READY=1`, `STOPPING=1`,
/// `STATUS=...`) to the service manager at `NOTIFY_SOCKET`: a unix datagram socket, by path
/// or, starting with `@`, in the abstract namespace. Returns `false` when `NOTIFY_SOCKET`
/// is unset (not run by a service manager that listens), `true` once sent.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let address = notify_address(target.as_encoded_bytes())?;
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(state.as_bytes(), &address)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the notification was cut short",
        ));
    }
    Ok(true)
}

fn notify_address(target: &[u8]) -> io::Result<SocketAddr> {
    match target {
        [b'@', name @ ..] => abstract_address(name),
        [b'/', ..] => {
            // Back to an OsStr: `target` came from one.
            use std::os::unix::ffi::OsStrExt;
            SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(target))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "NOTIFY_SOCKET is neither an absolute path nor an abstract address (@name)",
        )),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix socket addresses exist on Linux only",
    ))
}
