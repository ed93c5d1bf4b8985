//! The server's opening: parse a request, ask the application's policy, negotiate options
//! and start the transfer, or refuse with an ERROR.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::receiver::Receiver;
use super::sender::Sender;
use super::transfer::{Config, Control, Negotiated, Phase, Transfer};
use crate::tftp::wire::Text;
use crate::tftp::wire::{Blksize, Options, OutOfRange, Timeout, Windowsize};
use crate::tftp::wire::{ErrorCode, Mode, Packet, Request};

/// The application's answer to "may this peer do this?". A refusal becomes the ERROR sent
/// to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The ERROR code, e.g. [`ErrorCode::FileNotFound`] or [`ErrorCode::AccessViolation`].
    pub code: ErrorCode,
    /// The ERROR message.
    pub message: Cow<'static, str>,
}

impl Refusal {
    /// A refusal with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// What the server lets peers do. The driver implements it over its file system; a test
/// implements it over a map.
pub trait Policy {
    /// May `peer` read `filename`? `Ok(Some(size))` when the size is known (for `tsize`).
    fn read(&mut self, peer: SocketAddr, filename: Text<'_>) -> Result<Option<u64>, Refusal>;

    /// May `peer` write `filename`, announcing `tsize` bytes if it said?
    fn write(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        tsize: Option<u64>,
    ) -> Result<(), Refusal>;
}

/// The server's bounds on what clients may negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest blksize granted; larger asks are lowered to it.
    pub max_blksize: Blksize,
    /// Largest windowsize granted; larger asks are lowered to it.
    pub max_windowsize: Windowsize,
    /// Largest window in data bytes (windowsize × blksize) granted; windowsize is lowered
    /// to fit. A window larger than the receiver's socket buffer loses its tail on every
    /// window (Linux's default buffer is 208 KiB), turning each window into a timeout.
    pub max_window_bytes: u32,
    /// Smallest `timeout` accepted; a smaller ask is left out of the OACK.
    pub min_timeout: Timeout,
    /// Largest `timeout` accepted.
    pub max_timeout: Timeout,
    /// Retransmission settings when the client negotiates no timeout.
    pub config: Config,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blksize: Blksize::MAX,
            max_windowsize: Windowsize::new(64).unwrap_or(Windowsize::MAX),
            max_window_bytes: 192 * 1024,
            min_timeout: Timeout::MIN,
            max_timeout: Timeout::MAX,
            config: Config::default(),
        }
    }
}

/// What to do with a datagram that arrived on the request port.
#[derive(Debug)]
pub enum Admission<'a> {
    /// A transfer starts. Send its first packets from a new socket (the transfer ID).
    Accepted {
        /// The transfer, with its OACK, DATA 1 or ACK 0 ready to send.
        transfer: alloc::boxed::Box<Transfer>,
        /// The request as received.
        request: Request<'a>,
        /// Read (RRQ) or write (WRQ).
        direction: crate::tftp::wire::Direction,
    },
    /// Send `error` to the peer (from a new socket) and forget the request.
    Refused {
        /// The encoded ERROR packet.
        error: Vec<u8>,
        /// Why, for the log.
        refusal: Refusal,
        /// The request, when it parsed.
        request: Option<Request<'a>>,
    },
    /// Not a request: send nothing, so the server cannot be used to reflect traffic.
    Ignored,
}

fn refuse<'a>(refusal: Refusal, request: Option<Request<'a>>) -> Admission<'a> {
    let error = Packet::Error {
        code: refusal.code,
        message: Text::from(refusal.message.as_ref()),
    }
    .to_vec()
    .unwrap_or_default();
    Admission::Refused {
        error,
        refusal,
        request,
    }
}

/// Handles a datagram from `peer` on the request port.
pub fn admit<'a, P: Policy + ?Sized>(
    now: Duration,
    peer: SocketAddr,
    datagram: &'a [u8],
    limits: &Limits,
    policy: &mut P,
) -> Admission<'a> {
    use crate::tftp::wire::Direction;
    let (request, direction) = match Packet::parse(datagram) {
        Ok(Packet::Rrq(r)) => (r, Direction::Read),
        Ok(Packet::Wrq(r)) => (r, Direction::Write),
        Ok(_) => return Admission::Ignored,
        Err(e) => {
            // A broken request still gets an answer; anything else is dropped.
            let opcode = datagram
                .get(..2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_be_bytes);
            if matches!(opcode, Some(1 | 2)) {
                let msg = alloc::format!("malformed request: {e}");
                return refuse(Refusal::new(ErrorCode::IllegalOperation, msg), None);
            }
            return Admission::Ignored;
        }
    };
    if request.mode == Mode::Mail {
        return refuse(
            Refusal::new(ErrorCode::IllegalOperation, "mail mode is not supported"),
            Some(request),
        );
    }
    let netascii = request.mode == Mode::Netascii;
    let size = match direction {
        Direction::Read => policy.read(peer, request.filename),
        Direction::Write => policy
            .write(peer, request.filename, request.options.tsize)
            .map(|()| None),
    };
    let size = match size {
        Ok(size) => size,
        Err(refusal) => return refuse(refusal, Some(request)),
    };
    let (negotiated, oack) = negotiate(&request.options, limits, direction, size, netascii);
    let phase = match direction {
        Direction::Read => Phase::Sending(Sender::new(
            negotiated.blksize,
            negotiated.windowsize,
            netascii,
        )),
        Direction::Write => Phase::Receiving(Receiver::new(
            negotiated.blksize,
            negotiated.windowsize,
            netascii,
        )),
    };
    let mut transfer = Transfer::new(now, peer, limits.config, phase);
    transfer.netascii = netascii;
    if let Some(t) = negotiated.timeout {
        transfer.set_base_timeout(t);
        transfer.progressed(now);
    }
    match (oack, direction) {
        (Some(oack), _) => {
            transfer.opening = oack;
            transfer.oack_unacked = direction == Direction::Read;
            transfer.control = Some(Control::Opening);
        }
        (None, Direction::Write) => transfer.control = Some(Control::Ack(0)),
        // DATA 1 goes out from the sender on the first poll.
        (None, Direction::Read) => {}
    }
    Admission::Accepted {
        transfer: alloc::boxed::Box::new(transfer),
        request,
        direction,
    }
}

/// RFC 2347: answer only what was asked, lower but never raise blksize and windowsize,
/// take timeout as given or leave it out, and include tsize only when asked.
fn negotiate(
    asked: &Options<'_>,
    limits: &Limits,
    direction: crate::tftp::wire::Direction,
    size: Option<u64>,
    netascii: bool,
) -> (Negotiated, Option<Vec<u8>>) {
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
        let fits = (u64::from(limits.max_window_bytes) / u64::from(n.blksize)).max(1);
        let w = w.min(limits.max_windowsize.get().into()).min(fits);
        n.windowsize = w as u16;
        oack.windowsize = Some(Windowsize::new(w));
    }
    if let Some(Ok(t)) = asked.timeout {
        if t >= limits.min_timeout && t <= limits.max_timeout {
            n.timeout = Some(t.get());
            oack.timeout = Some(Ok(t));
        }
    }
    if let Some(announced) = asked.tsize {
        // tsize is ill-defined in netascii: offer it only in octet mode, as tftp-hpa does.
        n.tsize = match direction {
            crate::tftp::wire::Direction::Read if !netascii => size,
            crate::tftp::wire::Direction::Read => None,
            crate::tftp::wire::Direction::Write => Some(announced),
        };
        oack.tsize = n.tsize;
    }
    let oack = (!oack.is_empty()).then(|| Packet::Oack(oack).to_vec().unwrap_or_default());
    (n, oack)
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
