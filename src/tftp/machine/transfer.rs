//! `Transfer`: one TFTP transfer as a pure state machine, client or server side.
//!
//! The machine is driven by four calls and drained by three:
//!
//! - [`Transfer::handle_datagram`] for every datagram received on the transfer's socket;
//! - [`Transfer::handle_timeout`] when the deadline from [`Transfer::poll_timeout`] passes;
//! - then, after either, [`Transfer::poll_transmit`] until it returns `None`, sending each
//!   datagram, and [`Transfer::poll_event`] until it returns `None`;
//! - the transfer is over when [`Transfer::is_closed`] is true.
//!
//! Time is a [`Duration`] since any fixed epoch the driver picks; the machine never reads a
//! clock.

use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use super::receiver::{DataOutcome, Receiver};
use super::sender::{AckOutcome, Sender};
use super::storage::{Storage, StorageError};
use crate::tftp::wire::Text;
use crate::tftp::wire::{DATA_HEADER_LEN, ErrorCode, Packet};

/// Retransmission settings of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// First retransmission timeout; a negotiated `timeout` option replaces it.
    pub timeout: Duration,
    /// Backoff doubles the timeout after each retransmission, up to this.
    pub max_timeout: Duration,
    /// Retransmissions of one packet or window before the transfer gives up.
    pub retries: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            retries: 5,
        }
    }
}

/// The parameters a transfer runs with after negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Data bytes per DATA packet.
    pub blksize: u16,
    /// Blocks per window.
    pub windowsize: u16,
    /// Retransmission timeout in seconds, when negotiated.
    pub timeout: Option<u8>,
    /// Transfer size: the file's size for a read, the announced size for a write.
    pub tsize: Option<u64>,
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated {
            blksize: 512,
            windowsize: 1,
            timeout: None,
            tsize: None,
        }
    }
}

/// Counters of a finished transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// File bytes stored or sent (before netascii expansion).
    pub bytes: u64,
    /// DATA blocks delivered.
    pub blocks: u64,
    /// Packets sent again after a timeout or a gap.
    pub retransmissions: u64,
    /// From the transfer's creation to its end, on the caller's clock.
    pub duration: Duration,
}

/// How a transfer failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    /// The peer stayed silent through every retransmission.
    Timeout {
        /// Retransmissions made before giving up.
        retries: u32,
    },
    /// The peer sent an ERROR packet.
    Peer {
        /// Its code.
        code: ErrorCode,
        /// Its message, decoded lossily.
        message: String,
    },
    /// The peer answered our OACK with ERROR 8. UEFI firmware does this on purpose to learn
    /// a file's size: it is a normal end, see [`TransferError::is_clean`].
    OptionsDeclined,
    /// The server's OACK held an option or value we did not ask for; we sent ERROR 8.
    BadOack(&'static str),
    /// The application's storage failed; the peer was sent an ERROR.
    Storage(StorageError),
    /// The buffer given to [`Transfer::poll_transmit`] is smaller than
    /// [`Transfer::max_datagram_len`].
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl TransferError {
    /// True for ends that are part of normal operation and not worth a loud log line
    /// (the UEFI option probe).
    pub fn is_clean(&self) -> bool {
        matches!(self, TransferError::OptionsDeclined)
    }
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Timeout { retries } => {
                write!(f, "timed out: no answer after {retries} retransmissions")
            }
            TransferError::Peer { code, message } if message.is_empty() => {
                write!(
                    f,
                    "peer sent ERROR {}: {}",
                    code.as_u16(),
                    code.description()
                )
            }
            TransferError::Peer { code, message } => {
                write!(f, "peer sent ERROR {}: {message}", code.as_u16())
            }
            TransferError::OptionsDeclined => {
                f.write_str("peer declined the negotiated options (error 8)")
            }
            TransferError::BadOack(why) => write!(f, "refused the server's OACK: {why}"),
            TransferError::Storage(e) => write!(f, "storage failed: {e}"),
            TransferError::BufferTooSmall { needed } => {
                write!(f, "transmit buffer too small: need {needed} bytes")
            }
        }
    }
}

impl core::error::Error for TransferError {}

/// Something the application should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The client learnt what the server agreed to (an OACK, or a plain answer meaning
    /// defaults). `tsize` gives a progress bar its total.
    Negotiated(Negotiated),
    /// The transfer ended. A receiver may still dally a while after this to re-ACK a
    /// repeated final block; keep driving it until [`Transfer::is_closed`].
    Finished(Result<Stats, TransferError>),
}

/// A datagram that [`Transfer::poll_transmit`] put in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Its length, from the start of the buffer.
    pub len: usize,
}

/// A packet owed to the peer, other than DATA.
#[derive(Clone, Debug)]
pub(crate) enum Control {
    /// The request (client) or OACK (server) stored in `Transfer::opening`.
    Opening,
    Ack(u16),
    Error(ErrorCode, Cow<'static, str>),
}

#[derive(Debug)]
pub(crate) enum Phase {
    /// Client: request sent, waiting for the server's first answer.
    Requesting(super::handshake_client::Handshake),
    Sending(Sender),
    Receiving(Receiver),
    /// Receiver done: re-ACK a repeated final block until the deadline.
    Dallying {
        last: u16,
    },
    Closed,
}

/// Unknown-TID errors waiting to go out; more are dropped, so a flood costs nothing.
const MAX_STRANGERS: usize = 8;

/// One TFTP transfer. Build it with [`Transfer::client`] or [`super::handshake_server::admit`].
#[derive(Debug)]
pub struct Transfer {
    pub(crate) peer: SocketAddr,
    /// Client only: false until the server's transfer port is known.
    pub(crate) locked: bool,
    pub(crate) config: Config,
    pub(crate) base_rto: Duration,
    rto: Duration,
    retries: u32,
    deadline: Option<Duration>,
    start: Duration,
    pub(crate) stats: Stats,
    pub(crate) phase: Phase,
    /// The request (client) or OACK (server), kept for retransmission.
    pub(crate) opening: Vec<u8>,
    /// Server sending after an OACK: waiting for ACK 0.
    pub(crate) oack_unacked: bool,
    pub(crate) control: Option<Control>,
    strangers: VecDeque<SocketAddr>,
    events: VecDeque<Event>,
    pub(crate) netascii: bool,
    /// True for the client side (it dallies briefly; a server dallies longer).
    pub(crate) is_client: bool,
    /// `Event::Finished` was emitted: there is only ever one.
    finished: bool,
}

impl Transfer {
    pub(crate) fn new(now: Duration, peer: SocketAddr, config: Config, phase: Phase) -> Transfer {
        Transfer {
            peer,
            locked: true,
            config,
            base_rto: config.timeout,
            rto: config.timeout,
            retries: 0,
            deadline: Some(now + config.timeout),
            start: now,
            stats: Stats::default(),
            phase,
            opening: Vec::new(),
            oack_unacked: false,
            control: None,
            strangers: VecDeque::new(),
            events: VecDeque::new(),
            netascii: false,
            is_client: false,
            finished: false,
        }
    }

    /// The peer's address: for a client, the server's transfer port once it answered.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// File bytes moved so far, for progress reports.
    pub fn progress(&self) -> u64 {
        self.stats.bytes
    }

    /// The smallest buffer [`poll_transmit`](Self::poll_transmit) accepts.
    pub fn max_datagram_len(&self) -> usize {
        let blksize = match &self.phase {
            Phase::Sending(s) => s.blksize(),
            Phase::Receiving(r) => r.blksize(),
            _ => 512,
        };
        (DATA_HEADER_LEN + blksize).max(self.opening.len()).max(516)
    }

    /// True when the transfer has nothing more to send or wait for.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed) && self.control.is_none() && self.strangers.is_empty()
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called,
    /// or `None` when no timer runs. Call it after each `handle_*` and `poll_transmit`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// The next event, if any. Call it until `None` after each `handle_*`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    fn arm(&mut self, now: Duration) {
        self.deadline = Some(now + self.rto);
    }

    /// Progress was made: the next silence is judged afresh.
    pub(crate) fn progressed(&mut self, now: Duration) {
        self.retries = 0;
        self.rto = self.base_rto;
        self.arm(now);
    }

    pub(crate) fn set_base_timeout(&mut self, seconds: u8) {
        self.base_rto = Duration::from_secs(seconds.into());
        self.rto = self.base_rto;
    }

    /// How long a receiver stays after its final ACK, and again after each re-ACK. The
    /// sender retransmits its final DATA after its timeout, with backoff up to the maximum
    /// timeout. A server, whose client reports success only on the final ACK, waits twice
    /// the maximum timeout so that one lost retransmission does not end the dally; a
    /// client, whose user waits on it, twice the base timeout (a lost final ACK then costs
    /// the server a log line, not the file).
    fn dally_time(&self) -> Duration {
        let max = self.config.max_timeout.max(self.base_rto);
        if self.is_client {
            (self.base_rto * 2).min(max)
        } else {
            max * 2
        }
    }

    pub(crate) fn finish(&mut self, now: Duration, result: Result<(), TransferError>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.stats.duration = now.saturating_sub(self.start);
        let stats = self.stats;
        self.push_event(Event::Finished(result.map(|()| stats)));
        if !matches!(self.phase, Phase::Dallying { .. }) {
            self.phase = Phase::Closed;
            self.deadline = None;
        }
    }

    /// Ends the transfer with an ERROR to the peer.
    pub(crate) fn abort(
        &mut self,
        now: Duration,
        code: ErrorCode,
        message: Cow<'static, str>,
        why: TransferError,
    ) {
        self.control = Some(Control::Error(code, message));
        self.phase = Phase::Closed;
        self.finish(now, Err(why));
    }

    /// Handles the deadline from [`poll_timeout`](Self::poll_timeout): retransmits with
    /// backoff, or gives up with [`TransferError::Timeout`]. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        if let Phase::Dallying { .. } = self.phase {
            self.phase = Phase::Closed;
            self.deadline = None;
            return;
        }
        if self.retries >= self.config.retries {
            let retries = self.retries;
            self.phase = Phase::Closed;
            self.finish(now, Err(TransferError::Timeout { retries }));
            return;
        }
        self.retries += 1;
        self.rto = (self.rto * 2).min(self.config.max_timeout.max(self.base_rto));
        self.arm(now);
        match &mut self.phase {
            Phase::Requesting(_) => self.control = Some(Control::Opening),
            Phase::Sending(_) if self.oack_unacked => self.control = Some(Control::Opening),
            Phase::Sending(s) => s.rewind(),
            Phase::Receiving(r) if r.received() == 0 && !self.opening.is_empty() => {
                self.control = Some(Control::Opening)
            }
            Phase::Receiving(r) => self.control = Some(Control::Ack(r.ack_sent())),
            Phase::Dallying { .. } | Phase::Closed => {}
        }
        if !matches!(self.phase, Phase::Sending(_)) || self.oack_unacked {
            self.stats.retransmissions += 1;
        }
    }

    /// Handles one datagram that arrived from `source` on the transfer's socket.
    ///
    /// File data received is written to `storage` before this returns. Malformed packets
    /// are ignored; packets from any other address or port are answered with ERROR 5
    /// (unless they are ERRORs themselves) and leave the transfer untouched.
    pub fn handle_datagram<S: Storage + ?Sized>(
        &mut self,
        now: Duration,
        source: SocketAddr,
        datagram: &[u8],
        storage: &mut S,
    ) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let from_peer = if self.locked {
            source == self.peer
        } else {
            source.ip() == self.peer.ip()
        };
        let Ok(packet) = Packet::parse(datagram) else {
            if !from_peer {
                self.stranger(source);
            }
            return;
        };
        if !from_peer {
            if !matches!(packet, Packet::Error { .. }) {
                self.stranger(source);
            }
            return;
        }
        if let Packet::Error { code, message } = packet {
            if !self.locked {
                self.peer = source;
                self.locked = true;
            }
            return self.on_peer_error(now, code, message);
        }
        if let Phase::Requesting(_) = self.phase {
            return self.on_first_answer(now, source, packet, storage);
        }
        self.on_packet(now, packet, storage);
    }

    fn stranger(&mut self, source: SocketAddr) {
        if self.strangers.len() < MAX_STRANGERS {
            self.strangers.push_back(source);
        }
    }

    fn on_peer_error(&mut self, now: Duration, code: ErrorCode, message: Text<'_>) {
        let declined = code == ErrorCode::OptionNegotiation
            && (self.oack_unacked
                || matches!(&self.phase, Phase::Receiving(r) if r.received() == 0 && !self.opening.is_empty()));
        let why = if declined {
            TransferError::OptionsDeclined
        } else {
            TransferError::Peer {
                code,
                message: alloc::string::ToString::to_string(&message),
            }
        };
        if matches!(self.phase, Phase::Dallying { .. }) {
            self.phase = Phase::Closed;
            self.deadline = None;
            return;
        }
        self.phase = Phase::Closed;
        self.finish(now, Err(why));
    }

    pub(crate) fn on_packet<S: Storage + ?Sized>(
        &mut self,
        now: Duration,
        packet: Packet<'_>,
        storage: &mut S,
    ) {
        match (&mut self.phase, packet) {
            (Phase::Sending(s), Packet::Ack { block }) => {
                if self.oack_unacked {
                    if block == 0 {
                        self.oack_unacked = false;
                        self.progressed(now);
                    }
                    return;
                }
                match s.on_ack(block) {
                    AckOutcome::Ignored => {}
                    AckOutcome::Progress => self.progressed(now),
                    AckOutcome::Done => {
                        self.stats.blocks = s.acked();
                        self.finish(now, Ok(()));
                    }
                }
            }
            (Phase::Receiving(r), Packet::Data { block, data }) => {
                match r.on_data(block, data, storage) {
                    Ok((stored, outcome)) => {
                        self.stats.bytes += stored;
                        self.stats.blocks = r.received();
                        match outcome {
                            DataOutcome::Wait => {}
                            DataOutcome::InOrder => self.progressed(now),
                            DataOutcome::Ack(b) => {
                                self.control = Some(Control::Ack(b));
                                self.progressed(now);
                            }
                            DataOutcome::Final(b) => {
                                self.control = Some(Control::Ack(b));
                                self.phase = Phase::Dallying { last: b };
                                self.deadline = Some(now + self.dally_time());
                                self.finish(now, Ok(()));
                            }
                        }
                    }
                    Err(e) => {
                        let (code, message) = (e.code, e.message.clone());
                        self.abort(now, code, message, TransferError::Storage(e));
                    }
                }
            }
            (Phase::Dallying { last }, Packet::Data { block, .. }) if block == *last => {
                // The sender missed our final ACK: answer, and stay for its next try.
                self.control = Some(Control::Ack(block));
                self.deadline = Some(now + self.dally_time());
            }
            // The server repeated its OACK: our ACK 0 was lost (a client read).
            (Phase::Receiving(r), Packet::Oack(_))
                if self.is_client && r.received() == 0 && self.opening.is_empty() =>
            {
                self.control = Some(Control::Ack(0));
            }
            // Anything else from the peer (a duplicate request, a stray OACK) is ignored.
            _ => {}
        }
    }

    /// Puts the next datagram to send into `buf` and says where it goes, or returns `None`
    /// when nothing is due. Call it until `None` after each `handle_*` call and at start.
    ///
    /// DATA is read from `storage` straight into `buf`. `buf` must hold at least
    /// [`max_datagram_len`](Self::max_datagram_len) bytes.
    #[must_use]
    pub fn poll_transmit<S: Storage + ?Sized>(
        &mut self,
        now: Duration,
        storage: &mut S,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        if let Some(to) = self.strangers.pop_front() {
            let p = Packet::Error {
                code: ErrorCode::UnknownTransferId,
                message: Text::from(ErrorCode::UnknownTransferId.description()),
            };
            return p.encode(buf).ok().map(|len| Transmit {
                destination: to,
                len,
            });
        }
        let needed = self.max_datagram_len();
        if buf.len() < needed {
            if !matches!(self.phase, Phase::Closed) {
                self.phase = Phase::Closed;
                self.finish(now, Err(TransferError::BufferTooSmall { needed }));
            }
            return None;
        }
        if let Some(c) = self.control.take() {
            let len = match c {
                Control::Opening => {
                    let len = self.opening.len();
                    buf.get_mut(..len)?.copy_from_slice(&self.opening);
                    len
                }
                Control::Ack(block) => Packet::Ack { block }.encode(buf).ok()?,
                Control::Error(code, message) => {
                    let msg = Text::from(message.as_ref());
                    Packet::Error { code, message: msg }.encode(buf).ok()?
                }
            };
            return Some(Transmit {
                destination: self.peer,
                len,
            });
        }
        let Phase::Sending(s) = &mut self.phase else {
            return None;
        };
        if self.oack_unacked || !s.wants_to_send() {
            return None;
        }
        match s.next_block(storage, buf) {
            Ok(block) => {
                self.stats.bytes += block.new_bytes;
                self.stats.retransmissions += u64::from(block.retransmission);
                Some(Transmit {
                    destination: self.peer,
                    len: block.len,
                })
            }
            Err(e) => {
                let (code, message) = (e.code, e.message.clone());
                self.abort(now, code, message, TransferError::Storage(e));
                self.poll_transmit(now, storage, buf)
            }
        }
    }
}

impl Transfer {
    /// Ends the transfer from the application's side: the peer is sent an ERROR with the
    /// error's code and message in place of anything still pending, and, unless the
    /// transfer already reported its end, a `Finished(Err(TransferError::Storage(error)))`
    /// event follows.
    ///
    /// A receiving server uses it when a completed upload cannot be put in place: called
    /// right after `Finished(Ok)`, before `poll_transmit`, it replaces the final ACK, so the
    /// client never believes a file was stored when it was not. The application then
    /// knows the outcome itself; no second `Finished` is emitted.
    pub fn cancel(&mut self, now: Duration, error: StorageError) {
        let (code, message) = (error.code, error.message.clone());
        self.abort(now, code, message, TransferError::Storage(error));
    }
}
