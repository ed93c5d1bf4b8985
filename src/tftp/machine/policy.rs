//! What the application decides for the server: who may read or write what (`Policy`), and
//! the bounds on what clients may negotiate and hold (`Limits`).

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use core::net::SocketAddr;
use core::time::Duration;

use super::retransmit::Config;
use super::storage::Storage;
use crate::tftp::wire::{Blksize, ErrorCode, Text, Timeout, Windowsize};

/// The application's "no" to a request; it becomes the ERROR sent to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The ERROR code, e.g. [`ErrorCode::FileNotFound`] or [`ErrorCode::AccessViolation`].
    pub code: ErrorCode,
    /// The ERROR message.
    pub message: Cow<'static, str>,
    /// What the server's log should say beyond the message, which a client need not see:
    /// the OS error behind a refusal, say.
    pub detail: Option<String>,
}

impl Refusal {
    /// A refusal with this code and message. Control characters in the message are
    /// escaped as `\xNN` (see [`Text`]): it may carry a client's bytes (a remap rule's
    /// message can echo the name), and would otherwise forge lines of a log.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            message: escape_controls(message.into()),
            detail: None,
        }
    }

    /// The same refusal, with a detail for the server's log, escaped as the message is.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(escape_controls(Cow::Owned(detail.into())).into_owned());
        self
    }
}

/// `ERROR 2 access violation (detail)`: the code and message the peer is sent, and the
/// detail only the log gets, control characters escaped (the fields are public: whatever
/// was put in them since, a log line stays one line).
impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let message = Text::from(self.message.as_ref());
        write!(f, "ERROR {} {message}", self.code.as_u16())?;
        match &self.detail {
            Some(detail) => write!(f, " ({})", Text::from(detail.as_str())),
            None => Ok(()),
        }
    }
}

/// `text`, with its control characters escaped as [`Text`] prints them.
fn escape_controls(text: Cow<'static, str>) -> Cow<'static, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(Text::from(text.as_ref()).to_string())
    } else {
        text
    }
}

/// What a policy tells the server about the file behind a request, beyond yes or no: which
/// file it served (or refused) when that is not the one asked for, and why. It ends up in
/// the transfer's [`TransferInfo`](super::endpoint::TransferInfo) and in a refusal's event,
/// so that a log can say where a name went: `read "/pxelinux.cfg/default" ->
/// "pxelinux.cfg/192.0.2.7/default"`.
///
/// A policy fills it in [`Policy::read_served`] and [`Policy::write_served`]; one that
/// serves every name as asked leaves it empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Served {
    /// The name of the file served, when it differs from the one asked for (a name
    /// rewritten by rules, a per-client file). Control characters are escaped as [`Text`]
    /// prints them, so that it is safe to log. `None`: the name asked for.
    pub name: Option<String>,
    /// What led there, for a detailed log: `remap rules (lines 2, 3)`, say.
    pub via: Option<String>,
}

impl Served {
    /// Nothing to tell: the name asked for, served as asked.
    pub const fn new() -> Served {
        Served {
            name: None,
            via: None,
        }
    }
}

/// What the server lets peers do, and where their files live. The std server implements it
/// over a directory; an application can implement it over memory, flash or a database.
///
/// Opening the file is the answer: a granted request returns the [`Storage`] the transfer
/// reads from or writes to, and the server's endpoint keeps it for the transfer's life.
///
/// The endpoint asks [`read_served`](Self::read_served) and
/// [`write_served`](Self::write_served), which by default ask [`read`](Self::read) and
/// [`write`](Self::write): a policy that serves files under other names than those asked
/// for implements them too, to say which file it served (see [`Served`]).
pub trait Policy {
    /// Where a transfer's bytes come from and go to.
    type Storage: Storage;

    /// May `peer` read `filename`? The storage to send from, and the file's size when it is
    /// known (answered to a client that asks for `tsize`).
    fn read(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
    ) -> Result<(Self::Storage, Option<u64>), Refusal>;

    /// May `peer` write `filename`, announcing `tsize` bytes if it said? The storage to
    /// receive into; [`Storage::commit`] puts it in place once every block arrived.
    ///
    /// The storage only stores: the endpoint holds the upload to its size rules (see
    /// [`upload_limit`](Self::upload_limit)), so a block that breaks them never reaches
    /// [`Storage::write`], and an upload that breaks them is never committed.
    fn write(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        tsize: Option<u64>,
    ) -> Result<Self::Storage, Refusal>;

    /// The most bytes `peer` may upload as `filename`, or `None` for no limit (the
    /// default). The endpoint asks it before [`write_served`](Self::write_served) and
    /// holds the upload to it:
    ///
    /// - a request whose `tsize` announces more is refused with ERROR 3 before `write` is
    ///   asked, so no storage is opened for it (in any mode: an announce over the limit
    ///   promises too much even where netascii makes it approximate);
    /// - an upload that passes it without having announced its size ends with ERROR 3 at
    ///   the block that passes it, none of that block stored, and
    ///   [`TransferError::TooLarge`](super::TransferError::TooLarge). Bytes are counted
    ///   as they arrive on the wire: in netascii, where a line end takes two, the file
    ///   stored stays within the limit too.
    ///
    /// Whatever the limit, an upload in octet mode that announced its size must send
    /// exactly that many bytes (RFC 2349 `tsize`), or it ends with
    /// [`TransferError::SizeMismatch`](super::TransferError::SizeMismatch) and is not
    /// committed: more bytes are refused with ERROR 3 at the block that passes the size
    /// (the announce was the allocation asked for), none of it stored; fewer get ERROR 0
    /// in place of the final ACK. tsize is ill-defined in netascii, where it is not held.
    ///
    /// A limit that depends on the name is asked with the name requested; a policy that
    /// serves it under another (see [`Served`]) maps it here as well.
    fn upload_limit(&mut self, peer: SocketAddr, filename: Text<'_>) -> Option<u64> {
        let _ = (peer, filename);
        None
    }

    /// [`read`](Self::read), also telling in `served` which file answers the request,
    /// whether it is granted or refused (a refusal of a rewritten name is best logged with
    /// the name that was not found). The default asks `read` and tells nothing.
    fn read_served(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        served: &mut Served,
    ) -> Result<(Self::Storage, Option<u64>), Refusal> {
        let _ = served;
        self.read(peer, filename)
    }

    /// [`write`](Self::write), also telling in `served` which file the upload goes to,
    /// whether it is granted or refused. The default asks `write` and tells nothing.
    fn write_served(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        tsize: Option<u64>,
        served: &mut Served,
    ) -> Result<Self::Storage, Refusal> {
        let _ = served;
        self.write(peer, filename, tsize)
    }
}

/// The server's bounds: what clients may negotiate, and how much of the server one client
/// address may hold.
///
/// The cheap attack on a TFTP server is a request that is never answered: a spoofed source,
/// or one port sending thousands of requests. Transfers whose client has not answered yet
/// are capped per address and reclaimed after [`unanswered_timeout`](Self::unanswered_timeout),
/// whatever timeout they negotiated. Transfers whose client answers are capped far more
/// generously, since many real clients share one address behind NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest blksize granted; larger asks are lowered to it.
    pub max_blksize: Blksize,
    /// Largest windowsize granted; larger asks are lowered to it.
    pub max_windowsize: Windowsize,
    /// Largest window in data bytes (windowsize × blksize) granted; windowsize is lowered
    /// to fit. A window larger than the receiver's socket buffer loses its tail until the
    /// sender's bursts shrink (Linux's default buffer is 208 KiB). `None`: no cap here; the
    /// std server then caps at what its own socket buffers were granted.
    pub max_window_bytes: Option<u32>,
    /// Smallest `timeout` option accepted; a smaller ask is left out of the OACK.
    pub min_timeout: Timeout,
    /// Largest `timeout` option accepted; a larger ask is left out of the OACK, so a client
    /// cannot make a dead transfer linger for minutes.
    pub max_timeout: Timeout,
    /// Retransmission settings when the client negotiates no timeout.
    pub config: Config,
    /// Transfers at once; requests beyond it are refused with ERROR 0.
    pub max_transfers: usize,
    /// Transfers at once from one client address.
    pub max_per_address: usize,
    /// Transfers at once from one client address whose client has not answered yet.
    pub max_unanswered_per_address: usize,
    /// A transfer whose client has not answered within this time is dropped silently.
    pub unanswered_timeout: Duration,
}

impl Limits {
    /// The default limits, as a constant for the program's option defaults.
    pub const DEFAULT: Limits = Limits {
        max_blksize: Blksize::MAX,
        max_windowsize: match Windowsize::new(64) {
            Ok(w) => w,
            Err(_) => Windowsize::MAX,
        },
        max_window_bytes: None,
        min_timeout: Timeout::MIN,
        max_timeout: match Timeout::new(10) {
            Ok(t) => t,
            Err(_) => Timeout::MAX,
        },
        config: Config::new(Duration::from_secs(1), Duration::from_secs(8), 5),
        max_transfers: 1000,
        max_per_address: 256,
        max_unanswered_per_address: 32,
        unanswered_timeout: Duration::from_secs(10),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_texts_carry_no_raw_control_characters() {
        let r = Refusal::new(
            ErrorCode::AccessViolation,
            String::from("no\r\nINFO forged"),
        )
        .with_detail("a\x1b[2Jb");
        assert_eq!(r.message, "no\\x0d\\x0aINFO forged");
        assert_eq!(r.detail.as_deref(), Some("a\\x1b[2Jb"));
        // A clean static text stays borrowed.
        let clean = Refusal::new(ErrorCode::FileNotFound, "file not found");
        assert!(matches!(clean.message, Cow::Borrowed(_)));
        assert_eq!(
            r.to_string(),
            "ERROR 2 no\\x0d\\x0aINFO forged (a\\x1b[2Jb)"
        );
        let mut edited = clean;
        edited.message = Cow::Borrowed("raw\nline");
        assert_eq!(edited.to_string(), "ERROR 1 raw\\x0aline");
    }
}
