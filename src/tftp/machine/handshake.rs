//! The opening of a transfer, the only part where client and server differ: what the
//! client asks for and how it judges the server's answer, and how the server negotiates.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::policy::{Limits, Refusal};
use super::transfer_error::TransferError;
use crate::tftp::wire::{
    Blksize, Direction, EncodeError, ErrorCode, Mode, Options, OutOfRange, Packet, Request, Text,
    Timeout, Windowsize,
};

/// The parameters a transfer runs with after negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// Data bytes per DATA packet.
    pub blksize: u16,
    /// Blocks per window.
    pub windowsize: u16,
    /// Retransmission timeout in seconds, when negotiated.
    pub timeout: Option<u8>,
    /// Transfer size: the file's size for a read, the announced size for a write. `None`
    /// when not asked for, and for a read of an empty file (see the server's negotiation).
    pub tsize: Option<u64>,
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated {
            blksize: Blksize::DEFAULT.get(),
            windowsize: Windowsize::DEFAULT.get(),
            timeout: None,
            tsize: None,
        }
    }
}

/// What a client asks for, and how it holds the server to it. Options left `None` are not
/// sent. Make one with [`ClientRequest::new`] and set the options to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientRequest<'a> {
    /// Download or upload.
    pub direction: Direction,
    /// The remote file name.
    pub filename: Text<'a>,
    /// `Octet` or `Netascii` (`Mail` is refused by servers).
    pub mode: Mode,
    /// Ask for this block size.
    pub blksize: Option<Blksize>,
    /// Ask for this window size.
    pub windowsize: Option<Windowsize>,
    /// Ask the server to use this retransmission timeout.
    pub timeout: Option<Timeout>,
    /// Use the transfer size option (RFC 2349). A read asks the server for the file's size
    /// (`tsize 0`); a write announces [`size`](Self::size), when it is known, so that a
    /// server can refuse up front a file it has no room for.
    ///
    /// Only in octet mode: in netascii the bytes on the wire are not the file's (a line
    /// end takes one byte in the file and two on the wire), so a size in either direction
    /// would mislead, and the option is left out.
    ///
    /// A download then holds the server to the size its OACK announced: a block that would
    /// take the file past it is not stored, the server is sent ERROR 3 and the transfer
    /// fails; a transfer that ends short of it fails too (the server is sent ERROR 0 in
    /// place of the final ACK). Both end with [`TransferError::SizeMismatch`].
    pub tsize: bool,
    /// Write: the number of bytes the upload will send, when known; announced with
    /// [`tsize`](Self::tsize). A server may hold the upload to it, so it must be exactly
    /// what the storage yields. Read: not used (the server tells the size).
    pub size: Option<u64>,
    /// Read: the most file bytes to accept, so a server cannot fill the disk. An OACK
    /// announcing a larger tsize (octet mode) is refused with ERROR 8; a block that would
    /// take the download past the limit is not stored, and the server is sent ERROR 3.
    /// Both end with [`TransferError::TooLarge`]. In netascii the bytes are counted as
    /// they arrive on the wire, where a line end takes two, so the file stored stays
    /// within the limit too. Write: not used.
    pub max_size: Option<u64>,
    /// Read: after the final ACK, stay a while to ACK the final DATA again should the
    /// server repeat it (it does when that ACK is lost), as RFC 1350 (section 6)
    /// encourages; the transfer is closed ([`Transfer::is_closed`]) only afterwards.
    /// [`TransferEvent::Finished`] still comes at the final block: the file is complete.
    /// The stay is twice the retransmission timeout (configured or negotiated, at most the
    /// maximum timeout), renewed by each repeat. Write: not used (a sender has nothing
    /// to repeat).
    ///
    /// Off by default, as in tftp-hpa's and curl's clients: only a stay longer than the
    /// server's own timeout (a second or more, for common servers) can catch its repeat,
    /// and the user of a download would wait that long on every one; without it, a lost
    /// final ACK costs the server a retransmission and a failed transfer in its log, never
    /// the client's file. Turn it on where the server's record must be right.
    ///
    /// [`Transfer::is_closed`]: crate::tftp::Transfer::is_closed
    /// [`TransferEvent::Finished`]: crate::tftp::TransferEvent::Finished
    pub dally: bool,
}

impl<'a> ClientRequest<'a> {
    /// A plain RFC 1350 request in octet mode, without options.
    pub fn new(direction: Direction, filename: impl Into<Text<'a>>) -> Self {
        ClientRequest {
            direction,
            filename: filename.into(),
            mode: Mode::Octet,
            blksize: None,
            windowsize: None,
            timeout: None,
            tsize: false,
            size: None,
            max_size: None,
            dally: false,
        }
    }

    /// The tsize option to send: see [`tsize`](Self::tsize).
    fn tsize_option(&self) -> Option<u64> {
        if !self.tsize || self.mode != Mode::Octet {
            return None;
        }
        match self.direction {
            // RFC 2349: a read request carries 0, and the server answers with the size.
            Direction::Read => Some(0),
            Direction::Write => self.size,
        }
    }

    /// The request datagram, and what it asked for (to judge the OACK by).
    pub(crate) fn encode(&self) -> Result<(Vec<u8>, Asked), EncodeError> {
        let tsize = self.tsize_option();
        let body = Request {
            filename: self.filename,
            mode: self.mode,
            options: Options {
                blksize: self.blksize.map(Ok),
                timeout: self.timeout.map(Ok),
                tsize,
                windowsize: self.windowsize.map(Ok),
                unknown: Vec::new(),
            },
        };
        let packet = match self.direction {
            Direction::Read => Packet::Rrq(body),
            Direction::Write => Packet::Wrq(body),
        };
        let asked = Asked {
            blksize: self.blksize.map(Blksize::get),
            windowsize: self.windowsize.map(Windowsize::get),
            timeout: self.timeout.map(Timeout::get),
            tsize,
        };
        Ok((packet.to_vec()?, asked))
    }
}

/// What a receiver holds the sender's bytes to: a limit and, in octet mode, the size the
/// sender announced (tsize). The one owner of the size rules of both sides: a client's
/// download ([`ClientRequest::max_size`] and the server's OACK), and a server's upload
/// ([`Policy::upload_limit`](super::policy::Policy::upload_limit) and the client's WRQ).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SizeRules {
    /// [`ClientRequest::max_size`] of a read, or the policy's limit of an upload.
    limit: Option<u64>,
    /// The tsize the sender announced (octet mode only).
    announced: Option<u64>,
    /// A server taking an upload: its ERRORs name the upload and its numbers, as an
    /// operator's client shows them.
    upload: bool,
}

/// A transfer whose size breaks the rules: the ERROR to send the peer, and why.
#[derive(Debug)]
pub(crate) struct SizeRefusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: Cow<'static, str>,
    pub(crate) why: TransferError,
}

impl SizeRules {
    /// The rules of `request`: a limit for a read, none for a write.
    pub(crate) fn new(request: &ClientRequest<'_>) -> SizeRules {
        SizeRules {
            limit: match request.direction {
                Direction::Read => request.max_size,
                Direction::Write => None,
            },
            announced: None,
            upload: false,
        }
    }

    /// The rules of an upload a server is asked for: the policy's `limit`, and the
    /// client's `tsize`. An announce over the limit is refused here, at the request, so
    /// that no storage is opened for it (ERROR 3, RFC 2349: a file too large for the
    /// server). tsize is held only in octet mode; in netascii it is ill-defined.
    pub(crate) fn upload(
        limit: Option<u64>,
        tsize: Option<u64>,
        mode: Mode,
    ) -> Result<SizeRules, Refusal> {
        if let (Some(limit), Some(size)) = (limit, tsize)
            && size > limit
        {
            return Err(Refusal::new(
                ErrorCode::DiskFull,
                alloc::format!("upload of {size} bytes exceeds the {limit}-byte limit"),
            ));
        }
        Ok(SizeRules {
            limit,
            announced: tsize.filter(|_| mode != Mode::Netascii),
            upload: true,
        })
    }

    /// The server's answer settled `tsize` (only ever asked in octet mode): it is the size
    /// to hold the server to, and refused at once (ERROR 8, as any option the client
    /// dislikes) when it is over the limit.
    pub(crate) fn negotiated(&mut self, tsize: Option<u64>) -> Result<(), SizeRefusal> {
        let Some(size) = tsize else {
            return Ok(());
        };
        if let Some(limit) = self.limit.filter(|&l| size > l) {
            return Err(SizeRefusal {
                code: ErrorCode::OptionNegotiation,
                message: Cow::Borrowed("file larger than the client's size limit"),
                why: TransferError::TooLarge {
                    limit,
                    announced: Some(size),
                },
            });
        }
        self.announced = Some(size);
        Ok(())
    }

    /// Judges the next block in order before it is stored: `before` bytes received so far
    /// (on the wire: the file's bytes in octet mode), `len` in this block, `last` when it
    /// ends the transfer.
    ///
    /// More than announced is ERROR 3 (the announce was the allocation the sender asked
    /// for, and it is exceeded); fewer, ERROR 0, as no code fits better. RFC 2349 names
    /// only ERROR 3, for a size too large to take; tftp-hpa's server never checks a WRQ's
    /// tsize against the bytes, so there is no practice to follow beyond it.
    pub(crate) fn check_block(&self, before: u64, len: u64, last: bool) -> Result<(), SizeRefusal> {
        let after = before.saturating_add(len);
        if let Some(announced) = self.announced {
            if after > announced {
                return Err(SizeRefusal {
                    code: ErrorCode::DiskFull,
                    message: if self.upload {
                        Cow::Owned(alloc::format!(
                            "upload size differs from its tsize: more than the {announced} \
                             bytes announced"
                        ))
                    } else {
                        Cow::Borrowed("more data than the announced tsize")
                    },
                    why: TransferError::SizeMismatch {
                        announced,
                        received: after,
                    },
                });
            }
            if last && after < announced {
                return Err(SizeRefusal {
                    code: ErrorCode::NotDefined,
                    message: if self.upload {
                        Cow::Owned(alloc::format!(
                            "upload size differs from its tsize: received {after} bytes, \
                             announced {announced}"
                        ))
                    } else {
                        Cow::Borrowed("less data than the announced tsize")
                    },
                    why: TransferError::SizeMismatch {
                        announced,
                        received: after,
                    },
                });
            }
        }
        if let Some(limit) = self.limit.filter(|&l| after > l) {
            return Err(SizeRefusal {
                code: ErrorCode::DiskFull,
                message: if self.upload {
                    Cow::Owned(alloc::format!("upload exceeds the {limit}-byte limit"))
                } else {
                    Cow::Borrowed("file larger than the client's size limit")
                },
                why: TransferError::TooLarge {
                    limit,
                    announced: None,
                },
            });
        }
        Ok(())
    }
}

/// The options a client sent, as numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Asked {
    blksize: Option<u16>,
    windowsize: Option<u16>,
    timeout: Option<u8>,
    tsize: Option<u64>,
}

/// Accepts an OACK only if every option in it was asked for, with a value no larger than
/// asked (blksize, windowsize) or equal to it (timeout).
pub(crate) fn check_oack(asked: &Asked, oack: &Options<'_>) -> Result<Negotiated, &'static str> {
    if !oack.unknown.is_empty() {
        return Err("OACK holds an option that was not asked for");
    }
    let mut n = Negotiated::default();
    if let Some(v) = oack.blksize {
        let (Some(max), Ok(v)) = (asked.blksize, v) else {
            return Err("OACK blksize not asked for or out of range");
        };
        if v.get() > max {
            return Err("OACK blksize larger than asked");
        }
        n.blksize = v.get();
    }
    if let Some(v) = oack.windowsize {
        let (Some(max), Ok(v)) = (asked.windowsize, v) else {
            return Err("OACK windowsize not asked for or out of range");
        };
        if v.get() > max {
            return Err("OACK windowsize larger than asked");
        }
        n.windowsize = v.get();
    }
    if let Some(v) = oack.timeout {
        if asked.timeout != v.ok().map(Timeout::get) {
            return Err("OACK timeout differs from the one asked");
        }
        n.timeout = asked.timeout;
    }
    if let Some(v) = oack.tsize {
        if asked.tsize.is_none() {
            return Err("OACK tsize not asked for");
        }
        n.tsize = Some(v);
    }
    Ok(n)
}

/// The server's side of RFC 2347: answer only what was asked, lower but never raise blksize
/// and windowsize, take timeout as given or leave it out, and include tsize only when asked
/// (and, for a read, only when the file's size is known and not 0). Returns the parameters
/// and, when any option is answered, the OACK to send.
pub(crate) fn negotiate(
    asked: &Options<'_>,
    limits: &Limits,
    direction: Direction,
    size: Option<u64>,
    mode: Mode,
) -> Result<(Negotiated, Option<Vec<u8>>), EncodeError> {
    let mut n = Negotiated::default();
    let mut oack = Options::default();
    if let Some(b) = ask(asked.blksize, Blksize::MAX.get().into(), |b| b.get().into()) {
        let b = b.min(limits.max_blksize.get().into());
        n.blksize = b as u16;
        oack.blksize = Some(Blksize::new(b));
    }
    if let Some(w) = ask(asked.windowsize, Windowsize::MAX.get().into(), |w| {
        w.get().into()
    }) {
        let fits = limits.max_window_bytes.map_or(u64::MAX, |cap| {
            (u64::from(cap) / u64::from(n.blksize)).max(1)
        });
        let w = w.min(limits.max_windowsize.get().into()).min(fits);
        n.windowsize = w as u16;
        oack.windowsize = Some(Windowsize::new(w));
    }
    if let Some(Ok(t)) = asked.timeout
        && t >= limits.min_timeout
        && t <= limits.max_timeout
    {
        n.timeout = Some(t.get());
        oack.timeout = Some(Ok(t));
    }
    if let Some(announced) = asked.tsize {
        n.tsize = match direction {
            // tsize is ill-defined in netascii: offer it only in octet mode, as tftp-hpa
            // does. Nor for an empty file: curl takes `tsize 0` in an OACK for an error
            // and gives up, so an empty file is answered as if tsize was not asked, to
            // every client (the one empty DATA tells its size all the same).
            Direction::Read if mode != Mode::Netascii => size.filter(|&s| s > 0),
            Direction::Read => None,
            Direction::Write => Some(announced),
        };
        oack.tsize = n.tsize;
    }
    let oack = if oack.is_empty() {
        None
    } else {
        Some(Packet::Oack(oack).to_vec()?)
    };
    Ok((n, oack))
}

/// The number asked for a size-like option. Above the RFC range counts as a large ask
/// to be lowered (tftp-hpa does the same); below it, the option is ignored.
fn ask<T>(v: Option<Result<T, OutOfRange>>, rfc_max: u64, get: impl Fn(T) -> u64) -> Option<u64> {
    match v? {
        Ok(v) => Some(get(v)),
        Err(e) if e.value > rfc_max => Some(u64::MAX),
        Err(_) => None,
    }
}
