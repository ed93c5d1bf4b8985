//! The client's opening: send RRQ or WRQ, check the server's first answer, and go on as
//! receiver or sender.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::receiver::Receiver;
use super::sender::Sender;
use super::storage::Storage;
use super::transfer::{Config, Control, Event, Negotiated, Phase, Transfer, TransferError};
use crate::tftp::wire::EncodeError;
use crate::tftp::wire::Text;
use crate::tftp::wire::{Blksize, Options, Timeout, Windowsize};
use crate::tftp::wire::{Direction, ErrorCode, Mode, Packet, Request};

/// What a client asks for. Options left `None` are not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Read: `Some(0)` asks the server for the file's size. Write: the size we will send.
    pub tsize: Option<u64>,
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
            tsize: None,
        }
    }

    fn options(&self) -> Options<'a> {
        Options {
            blksize: self.blksize.map(Ok),
            timeout: self.timeout.map(Ok),
            tsize: self.tsize,
            windowsize: self.windowsize.map(Ok),
            unknown: Vec::new(),
        }
    }
}

/// The client's state before the server's first answer.
#[derive(Debug)]
pub(crate) struct Handshake {
    direction: Direction,
    asked: ClientRequestOptions,
}

#[derive(Clone, Copy, Debug)]
struct ClientRequestOptions {
    blksize: Option<u16>,
    windowsize: Option<u16>,
    timeout: Option<u8>,
    tsize: Option<u64>,
}

impl Transfer {
    /// A client transfer with `server` (its request port, usually 69). The request is
    /// ready for [`poll_transmit`](Self::poll_transmit) at once.
    ///
    /// Fails only if the request cannot be encoded (a NUL in the filename, or over 512
    /// bytes with its options).
    pub fn client(
        now: Duration,
        server: SocketAddr,
        request: &ClientRequest<'_>,
        config: Config,
    ) -> Result<Transfer, EncodeError> {
        let body = Request {
            filename: request.filename,
            mode: request.mode,
            options: request.options(),
        };
        let packet = match request.direction {
            Direction::Read => Packet::Rrq(body),
            Direction::Write => Packet::Wrq(body),
        };
        let opening = packet.to_vec()?;
        let asked = ClientRequestOptions {
            blksize: request.blksize.map(Blksize::get),
            windowsize: request.windowsize.map(Windowsize::get),
            timeout: request.timeout.map(Timeout::get),
            tsize: request.tsize,
        };
        let phase = Phase::Requesting(Handshake {
            direction: request.direction,
            asked,
        });
        let mut t = Transfer::new(now, server, config, phase);
        t.locked = false;
        t.is_client = true;
        t.opening = opening;
        t.netascii = request.mode == Mode::Netascii;
        t.control = Some(Control::Opening);
        Ok(t)
    }

    pub(crate) fn on_first_answer<S: Storage + ?Sized>(
        &mut self,
        now: Duration,
        source: SocketAddr,
        packet: Packet<'_>,
        storage: &mut S,
    ) {
        let Phase::Requesting(h) = &self.phase else {
            return;
        };
        let (direction, asked) = (h.direction, h.asked);
        let negotiated = match (&packet, direction) {
            (Packet::Oack(o), _) => match check_oack(&asked, o) {
                Ok(n) => n,
                Err(why) => {
                    self.peer = source;
                    self.locked = true;
                    let msg = alloc::borrow::Cow::Borrowed(why);
                    self.abort(
                        now,
                        ErrorCode::OptionNegotiation,
                        msg,
                        TransferError::BadOack(why),
                    );
                    return;
                }
            },
            (Packet::Data { block: 1, .. }, Direction::Read)
            | (Packet::Ack { block: 0 }, Direction::Write) => Negotiated::default(),
            // Not an answer to our request: wait for one.
            _ => return,
        };
        self.peer = source;
        self.locked = true;
        self.opening = Vec::new();
        if let Some(t) = negotiated.timeout {
            self.set_base_timeout(t);
        }
        self.progressed(now);
        self.push_event(Event::Negotiated(negotiated));
        let (blksize, windowsize) = (negotiated.blksize, negotiated.windowsize);
        match direction {
            Direction::Read => {
                self.phase = Phase::Receiving(Receiver::new(blksize, windowsize, self.netascii));
                if let Packet::Oack(_) = packet {
                    self.control = Some(Control::Ack(0));
                } else {
                    self.on_packet(now, packet, storage);
                }
            }
            Direction::Write => {
                self.phase = Phase::Sending(Sender::new(blksize, windowsize, self.netascii));
            }
        }
    }
}

/// Accepts an OACK only if every option in it was asked for, with a value no larger than
/// asked (blksize, windowsize) or equal to it (timeout).
fn check_oack(
    asked: &ClientRequestOptions,
    oack: &Options<'_>,
) -> Result<Negotiated, &'static str> {
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
