//! `Transfer`: one TFTP transfer as a pure state machine, client or server side.
//!
//! The machine is driven by two calls and drained by three:
//!
//! - [`Transfer::handle_datagram`] for every datagram received on the transfer's socket;
//! - [`Transfer::handle_timeout`] when the deadline from [`Transfer::poll_timeout`] passes;
//! - then, after either, [`Transfer::poll_transmit`] until it returns `None`, sending each
//!   datagram, and [`Transfer::poll_event`] until it returns `None`;
//! - the transfer is over when [`Transfer::is_closed`] is true.
//!
//! Time is a [`Duration`] since any fixed epoch the driver picks; the machine never reads a
//! clock. A server's transfers are made and driven by the
//! [`Endpoint`](super::endpoint::Endpoint).

use crate::tftp::Instant;
use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::handshake::{Asked, ClientRequest, Negotiated, SizeRefusal, SizeRules, check_oack};
use super::receiver::{DataOutcome, Receiver};
use super::retransmit::{Config, Expiry, Kind, Timer};
use super::sender::{AckOutcome, SendError, Sender};
use super::storage::{Storage, StorageError};
pub use super::transfer_error::TransferError;
use crate::tftp::wire::{
    DATA_HEADER_LEN, Direction, EncodeError, ErrorCode, Mode, Opcode, Packet, Text,
};

/// Counters of a transfer, true also when it failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// File bytes stored or sent (before netascii expansion).
    pub bytes: u64,
    /// DATA blocks delivered.
    pub blocks: u64,
    /// Packets sent again, after a timeout or a gap.
    pub retransmissions: u64,
    /// Timeouts on a measured round trip, shorter than the configured timeout: they
    /// resend early and do not count against the retries.
    pub early_timeouts: u64,
    /// Timeouts at the configured (or negotiated) timeout or its backoff: what
    /// [`Config::retries`] bounds, for each silence of the peer.
    pub retries: u64,
    /// Timeouts that the peer's answers later showed needless: its answer to the first
    /// sending was only late. Each lengthens this transfer's later timeouts.
    pub spurious: u64,
    /// From the transfer's creation to its end, on the caller's clock.
    pub duration: Duration,
}

/// Something the application should know.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferEvent {
    /// The client learnt what the server agreed to (an OACK, or a plain answer meaning
    /// defaults). `tsize` gives a progress bar its total.
    Negotiated(Negotiated),
    /// A server receiving a file stored its last block. The final ACK waits until the
    /// application has put the file in place and called [`Transfer::finish_upload`], so a
    /// client never hears "stored" for a file that was not.
    UploadComplete,
    /// The transfer ended, with its counters. A receiver may still dally a while after
    /// this to re-ACK a repeated final block (a server's always, a client's when
    /// [`ClientRequest::dally`] asks); keep driving it until [`Transfer::is_closed`].
    Finished {
        /// Counters up to the end, also when it failed.
        stats: Stats,
        /// How it ended.
        result: Result<(), TransferError>,
    },
}

/// What [`Transfer::poll_transmit`] put in the caller's buffer: one datagram, or with
/// [`Transfer::poll_transmit_batch`] several of `segment_size` bytes back to back (the last
/// may be shorter), all to one destination: the shape UDP GSO sends in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Its length, from the start of the buffer.
    pub len: usize,
    /// `Some(n)` when `len` bytes hold several datagrams of `n` bytes each.
    pub segment_size: Option<usize>,
}

impl Transmit {
    fn one(destination: SocketAddr, len: usize) -> Transmit {
        Transmit {
            destination,
            len,
            segment_size: None,
        }
    }
}

/// What differs between the two ends once the opening is over.
#[derive(Debug)]
enum Side {
    /// `locked` once the server's transfer port is known from its first answer; before,
    /// answers are taken from any port of the server's address. `size`: what a download
    /// holds the server's bytes to. `dally`: [`ClientRequest::dally`].
    Client {
        locked: bool,
        size: SizeRules,
        dally: bool,
    },
    /// A server holds its final ACK of an upload until the application committed it.
    /// `answered` once the client sent what the transfer waited for. `size`: what an
    /// upload holds the client's bytes to (no rules for a read).
    Server { answered: bool, size: SizeRules },
}

impl Side {
    fn answered(&mut self) {
        if let Side::Server { answered, .. } = self {
            *answered = true;
        }
    }
}

/// A packet control_due to the peer, other than DATA.
#[derive(Clone, Debug)]
enum Control {
    /// The request (client) or OACK (server) kept in `Transfer::opening`.
    Opening,
    Ack(u16),
    Error(ErrorCode, Cow<'static, str>),
}

#[derive(Debug)]
enum Phase {
    /// Client: request sent, waiting for the server's first answer.
    Requesting {
        direction: Direction,
        asked: Asked,
        mode: Mode,
    },
    /// Server read after an OACK: DATA 1 waits for the client's ACK 0.
    AwaitingAck0(Sender),
    Sending(Sender),
    Receiving(Receiver),
    /// Server: every block is stored; the final ACK waits for the commit.
    Committing {
        last: u16,
    },
    /// Receiver done: re-ACK a repeated final block until the deadline.
    Dallying {
        last: u16,
    },
    Closed,
}

/// Unknown-TID errors waiting to go out; more are dropped, so a flood costs nothing.
const MAX_STRANGERS: usize = 8;

/// One TFTP transfer. A client builds it with [`Transfer::client`]; a server's come from
/// its [`Endpoint`](super::endpoint::Endpoint).
#[derive(Debug)]
pub struct Transfer {
    side: Side,
    peer: SocketAddr,
    timer: Timer,
    start: Instant,
    stats: Stats,
    phase: Phase,
    /// The request (client) or OACK (server), kept for retransmission until answered.
    opening: Vec<u8>,
    control_due: Option<Control>,
    unknown_senders: VecDeque<SocketAddr>,
    events: VecDeque<TransferEvent>,
    /// `TransferEvent::Finished` was emitted: there is only ever one.
    finished: bool,
    /// A sender that lost part of a window sends the next ones in bursts: the next burst
    /// may go at this time.
    paused_until: Option<Instant>,
    /// A sender: when the current window's first block went out, unless part of the window
    /// was sent twice; its ACK then measures a round trip.
    window_sent_at: Option<Instant>,
    /// A sender: when the current window first went out, resent or not.
    window_opened_at: Option<Instant>,
    /// A sender whose timer resent a window: how its answers tell whether that was needed.
    resend_check: Option<ResendCheck>,
}

/// Whether a timeout's resend was needless, told the way F-RTO and Eifel tell it for TCP:
/// a receiver that had the window already acknowledges it, then answers the resent copy
/// with a duplicate of that same ACK.
#[derive(Clone, Copy, Debug)]
enum ResendCheck {
    /// Waiting for the first ACK after the resend of a window first sent at `sent_at`.
    Resent { sent_at: Instant },
    /// That ACK acknowledged up to `block`, `delay` after the first sending.
    Acked { block: u16, delay: Duration },
}

impl Transfer {
    fn new(now: Instant, side: Side, peer: SocketAddr, config: Config, phase: Phase) -> Self {
        Transfer {
            side,
            peer,
            timer: Timer::new(now, config),
            start: now,
            stats: Stats::default(),
            phase,
            opening: Vec::new(),
            control_due: None,
            unknown_senders: VecDeque::new(),
            events: VecDeque::new(),
            finished: false,
            paused_until: None,
            window_sent_at: None,
            window_opened_at: None,
            resend_check: None,
        }
    }

    /// A client transfer with `server` (its request port, usually 69). The request is
    /// ready for [`poll_transmit`](Self::poll_transmit) at once.
    ///
    /// Fails only if the request cannot be encoded (a NUL in the filename, or over 512
    /// bytes with its options).
    pub fn client(
        now: Instant,
        server: SocketAddr,
        request: &ClientRequest<'_>,
        config: Config,
    ) -> Result<Transfer, EncodeError> {
        let (opening, asked) = request.encode()?;
        let phase = Phase::Requesting {
            direction: request.direction,
            asked,
            mode: request.mode,
        };
        let side = Side::Client {
            locked: false,
            size: SizeRules::new(request),
            dally: request.dally,
        };
        let mut t = Transfer::new(now, side, server, config, phase);
        t.opening = opening;
        t.control_due = Some(Control::Opening);
        Ok(t)
    }

    /// A server transfer for an admitted request: its OACK, DATA 1 or ACK 0 is ready to
    /// send. `size`: the rules an upload is held to.
    #[allow(clippy::too_many_arguments)] // each is one fact of the admitted request
    pub(crate) fn server(
        now: Instant,
        client: SocketAddr,
        config: Config,
        direction: Direction,
        negotiated: &Negotiated,
        oack: Option<Vec<u8>>,
        mode: Mode,
        size: SizeRules,
    ) -> Transfer {
        let (blksize, windowsize) = (negotiated.blksize, negotiated.windowsize);
        let phase = match (direction, oack.is_some()) {
            (Direction::Read, true) => Phase::AwaitingAck0(Sender::new(blksize, windowsize, mode)),
            // DATA 1 goes out from the sender on the first poll.
            (Direction::Read, false) => Phase::Sending(Sender::new(blksize, windowsize, mode)),
            (Direction::Write, _) => Phase::Receiving(Receiver::new(blksize, windowsize, mode)),
        };
        let side = Side::Server {
            answered: false,
            size,
        };
        let mut t = Transfer::new(now, side, client, config, phase);
        if direction == Direction::Read && windowsize > 1 {
            t.timer.windowed();
        }
        if let Some(seconds) = negotiated.timeout {
            t.timer.set_base(seconds);
            t.timer.progressed(now);
        }
        match oack {
            Some(oack) => {
                t.opening = oack;
                t.control_due = Some(Control::Opening);
            }
            None if direction == Direction::Write => t.control_due = Some(Control::Ack(0)),
            None => {}
        }
        t
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
            Phase::AwaitingAck0(s) | Phase::Sending(s) => s.blksize(),
            Phase::Receiving(r) => r.blksize(),
            _ => 512,
        };
        (DATA_HEADER_LEN + blksize).max(self.opening.len()).max(516)
    }

    /// True when the transfer has nothing more to send or wait for.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
            && self.control_due.is_none()
            && self.unknown_senders.is_empty()
    }

    /// True while a server's upload waits for [`finish_upload`](Self::finish_upload).
    pub(crate) fn is_committing(&self) -> bool {
        matches!(self.phase, Phase::Committing { .. })
    }

    /// True once the transfer has reported its end (it may still dally).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// True once the peer has answered: for a client, once the server's first reply
    /// arrived; for a server, once its client sent the ACK or DATA the transfer waited
    /// for, or an ERROR. Anything else from the client's port proves nothing.
    pub fn is_answered(&self) -> bool {
        !matches!(
            self.side,
            Side::Client { locked: false, .. }
                | Side::Server {
                    answered: false,
                    ..
                }
        )
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called,
    /// or `None` when no timer runs. Call it after each `handle_*` and `poll_transmit`.
    ///
    /// A sender pacing a window's bursts sets deadlines well under a millisecond apart
    /// (from 50 µs). A driver whose timer rounds up to whole milliseconds (tokio's, or
    /// epoll's timeout) still works: its bursts only go out further apart, and slower.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timer.deadline(), self.paused_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event, if any. Call it until `None` after each `handle_*`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TransferEvent> {
        self.events.pop_front()
    }

    /// How long a receiver stays after its final ACK, and again after each re-ACK. The
    /// sender retransmits its final DATA after its timeout, with backoff up to the maximum
    /// timeout. A server, whose client reports success only on the final ACK, waits twice
    /// the maximum timeout so that one lost retransmission does not end the dally; a
    /// client that was asked to dally, whose user waits on it, twice the base timeout (a
    /// lost final ACK then costs the server a log line, not the file).
    fn dally_time(&self) -> Duration {
        match self.side {
            Side::Client { .. } => self.timer.base().saturating_mul(2).min(self.timer.max()),
            Side::Server { .. } => self.timer.max().saturating_mul(2),
        }
    }

    fn finish(&mut self, now: Instant, result: Result<(), TransferError>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.stats.duration = now.duration_since(self.start);
        let stats = self.stats;
        self.events
            .push_back(TransferEvent::Finished { stats, result });
        if !matches!(self.phase, Phase::Dallying { .. }) {
            self.close();
        }
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.timer.stop();
        // A sender paused between bursts has nothing left to send: no deadline may outlive
        // the transfer, or a driver would spin on it.
        self.paused_until = None;
    }

    /// Ends the transfer with an ERROR to the peer in place of anything still control_due.
    fn fail(
        &mut self,
        now: Instant,
        code: ErrorCode,
        message: Cow<'static, str>,
        why: TransferError,
    ) {
        self.control_due = Some(Control::Error(code, message));
        self.close();
        self.finish(now, Err(why));
    }

    /// Ends the transfer from the application's side: the peer is sent an ERROR with this
    /// code and message in place of anything still control_due, and, unless the transfer already
    /// reported its end, `Finished` follows with [`TransferError::Aborted`].
    pub fn abort(&mut self, now: Instant, code: ErrorCode, message: impl Into<Cow<'static, str>>) {
        if self.finished {
            // Its outcome is settled: stop dallying, but send nothing that contradicts it.
            return self.close();
        }
        let message = message.into();
        let why = TransferError::Aborted {
            code,
            message: message.clone(),
        };
        self.fail(now, code, message, why);
    }

    /// Ends the transfer without a word to the peer: a server dropping a transfer whose
    /// client never answered, or one its client replaced with a new request.
    pub(crate) fn drop_silently(&mut self, now: Instant, why: TransferError) {
        self.control_due = None;
        self.unknown_senders.clear();
        self.close();
        self.finish(now, Err(why));
    }

    /// A server's upload after [`TransferEvent::UploadComplete`]: the application's commit
    /// succeeded (the final ACK goes out, then the transfer dallies) or failed (the client
    /// is sent the error's ERROR in place of the final ACK).
    pub fn finish_upload(&mut self, now: Instant, result: Result<(), StorageError>) {
        let Phase::Committing { last } = self.phase else {
            return;
        };
        match result {
            Ok(()) => {
                self.control_due = Some(Control::Ack(last));
                self.phase = Phase::Dallying { last };
                self.timer
                    .set_deadline(now.saturating_add(self.dally_time()));
                self.finish(now, Ok(()));
            }
            Err(e) => self.fail_storage(now, e),
        }
    }

    /// Has `storage` write the blocks it gathered ([`Storage::flush`]) while a receiving
    /// transfer waits: call it after sending what [`poll_transmit`](Self::poll_transmit)
    /// gave and before waiting, so the ACK went out first and the file is written while
    /// the peer sends on. A failure ends the transfer as a failed write does: the peer is
    /// sent the error's ERROR, and `Finished` follows with [`TransferError::Storage`]. Returns
    /// true then: poll for them before waiting.
    pub fn flush_storage<S: Storage + ?Sized>(&mut self, now: Instant, storage: &mut S) -> bool {
        if self.finished || !matches!(self.phase, Phase::Receiving(_)) {
            return false;
        }
        match storage.flush() {
            Ok(()) => false,
            Err(e) => {
                self.fail_storage(now, e);
                true
            }
        }
    }

    fn refuse_size(&mut self, now: Instant, refusal: SizeRefusal) {
        self.fail(now, refusal.code, refusal.message, refusal.why);
    }

    fn fail_storage(&mut self, now: Instant, e: StorageError) {
        let (code, message) = (e.code, e.message.clone());
        self.fail(now, code, message, TransferError::Storage(e));
    }

    /// A rule of the machine's own broke (see [`TransferError::Internal`]).
    fn fail_internal(&mut self, now: Instant, what: &'static str) {
        debug_assert!(false, "wirekit bug: {what}");
        let message = Cow::Borrowed("internal error");
        self.fail(
            now,
            ErrorCode::NotDefined,
            message,
            TransferError::Internal(what),
        );
    }

    /// Handles the deadline from [`poll_timeout`](Self::poll_timeout): retransmits with
    /// backoff, or gives up with [`TransferError::Timeout`]. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.timer.is_due(now) {
            return;
        }
        if let Phase::Dallying { .. } = self.phase {
            self.close();
            return;
        }
        match self.timer.expire(now) {
            Expiry::GiveUp { retries } => {
                self.close();
                self.finish(now, Err(TransferError::Timeout { retries }));
                return;
            }
            Expiry::Retransmit(Kind::Early) => self.stats.early_timeouts += 1,
            Expiry::Retransmit(Kind::Retry) => self.stats.retries += 1,
        }
        let control_due = match &mut self.phase {
            Phase::Requesting { .. } | Phase::AwaitingAck0(_) => Control::Opening,
            Phase::Receiving(r) if r.received() == 0 && !self.opening.is_empty() => {
                Control::Opening
            }
            Phase::Receiving(r) => Control::Ack(r.ack_sent()),
            // The sender counts each block it sends again.
            Phase::Sending(s) => {
                self.paused_until = None;
                self.window_sent_at = None;
                if let Some(sent_at) = self.window_opened_at {
                    self.resend_check = Some(ResendCheck::Resent { sent_at });
                }
                return s.rewind();
            }
            Phase::Committing { .. } | Phase::Dallying { .. } | Phase::Closed => return,
        };
        self.control_due = Some(control_due);
        self.stats.retransmissions += 1;
    }

    /// Handles one datagram that arrived from `source` on the transfer's socket.
    ///
    /// File data received is written to `storage` before this returns. Malformed packets
    /// are ignored; packets from any other address or port are answered with ERROR 5
    /// (unless they are ERRORs themselves) and leave the transfer untouched.
    pub fn handle_datagram<S: Storage + ?Sized>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &[u8],
        storage: &mut S,
    ) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let from_peer = match self.side {
            Side::Client { locked: false, .. } => source.ip() == self.peer.ip(),
            _ => source == self.peer,
        };
        let packet = Packet::parse(datagram);
        if !from_peer {
            if !matches!(packet, Ok(Packet::Error { .. })) {
                self.stranger(source);
            }
            return;
        }
        let packet = match packet {
            Ok(p) => p,
            // The server's first answer is an OACK we cannot read: refuse it now rather
            // than wait out the retransmissions for an answer that will not come.
            Err(e)
                if matches!(self.phase, Phase::Requesting { .. })
                    && datagram.get(..2) == Some(&(Opcode::Oack as u16).to_be_bytes()) =>
            {
                self.lock(source);
                let code = ErrorCode::OptionNegotiation;
                let why = TransferError::MalformedOack(e);
                return self.fail(now, code, Cow::Borrowed("malformed OACK"), why);
            }
            // Anything else malformed is junk: ignored.
            Err(_) => return,
        };
        // An ERROR from the server's address ends the opening: its port is the server's.
        if let Side::Client { locked: false, .. } = self.side
            && matches!(packet, Packet::Error { .. })
        {
            self.lock(source);
        }
        match packet {
            Packet::Error { code, message } => self.on_peer_error(now, code, message),
            packet if matches!(self.phase, Phase::Requesting { .. }) => {
                self.on_first_answer(now, source, packet, storage)
            }
            packet => self.on_packet(now, packet, storage),
        }
    }

    /// A client learnt the server's transfer port: only it is the peer from now on.
    fn lock(&mut self, source: SocketAddr) {
        if let Side::Client { locked, .. } = &mut self.side {
            *locked = true;
            self.peer = source;
        }
    }

    fn stranger(&mut self, source: SocketAddr) {
        if self.unknown_senders.len() < MAX_STRANGERS {
            self.unknown_senders.push_back(source);
        }
    }

    /// True before the peer has seen anything but our opening: an ERROR 8 then is a
    /// refusal of the options, not a failure.
    fn opening_unanswered(&self) -> bool {
        match &self.phase {
            Phase::AwaitingAck0(_) => true,
            Phase::Receiving(r) => r.received() == 0 && !self.opening.is_empty(),
            _ => false,
        }
    }

    fn on_peer_error(&mut self, now: Instant, code: ErrorCode, message: Text<'_>) {
        self.side.answered();
        if matches!(self.phase, Phase::Dallying { .. }) {
            return self.close();
        }
        let why = if code == ErrorCode::OptionNegotiation && self.opening_unanswered() {
            TransferError::OptionsDeclined
        } else {
            TransferError::Peer {
                code,
                message: message.to_string(),
            }
        };
        self.close();
        self.finish(now, Err(why));
    }

    fn on_first_answer<S: Storage + ?Sized>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        packet: Packet<'_>,
        storage: &mut S,
    ) {
        let Phase::Requesting {
            direction,
            asked,
            mode,
        } = self.phase
        else {
            return;
        };
        let negotiated = match (&packet, direction) {
            (Packet::Oack(o), _) => check_oack(&asked, o),
            (Packet::Data { block: 1, .. }, Direction::Read)
            | (Packet::Ack { block: 0 }, Direction::Write) => Ok(Negotiated::default()),
            // Not an answer to our request: wait for one.
            _ => return,
        };
        self.lock(source);
        let negotiated = match negotiated {
            Ok(n) => n,
            Err(why) => {
                let message = Cow::Borrowed(why);
                return self.fail(
                    now,
                    ErrorCode::OptionNegotiation,
                    message,
                    TransferError::BadOack(why),
                );
            }
        };
        if let (Direction::Read, Side::Client { size, .. }) = (direction, &mut self.side)
            && let Err(refusal) = size.negotiated(negotiated.tsize)
        {
            return self.refuse_size(now, refusal);
        }
        self.opening = Vec::new();
        if let Some(t) = negotiated.timeout {
            self.timer.set_base(t);
        }
        self.timer.progressed(now);
        self.events.push_back(TransferEvent::Negotiated(negotiated));
        let (blksize, windowsize) = (negotiated.blksize, negotiated.windowsize);
        match direction {
            Direction::Read => {
                self.phase = Phase::Receiving(Receiver::new(blksize, windowsize, mode));
                if let Packet::Oack(_) = packet {
                    self.control_due = Some(Control::Ack(0));
                } else {
                    self.on_packet(now, packet, storage);
                }
            }
            Direction::Write => {
                self.phase = Phase::Sending(Sender::new(blksize, windowsize, mode));
                if windowsize > 1 {
                    self.timer.windowed();
                }
            }
        }
    }

    fn on_packet<S: Storage + ?Sized>(
        &mut self,
        now: Instant,
        packet: Packet<'_>,
        storage: &mut S,
    ) {
        if let (Phase::AwaitingAck0(_), Packet::Ack { block: 0 }) = (&self.phase, &packet) {
            if let Phase::AwaitingAck0(s) = core::mem::replace(&mut self.phase, Phase::Closed) {
                self.phase = Phase::Sending(s);
            }
            self.side.answered();
            return self.timer.progressed(now);
        }
        match (&mut self.phase, packet) {
            (Phase::Sending(s), Packet::Ack { block }) => match s.on_ack(block) {
                AckOutcome::Ignored => {
                    if let Some(ResendCheck::Acked { block: b, delay }) = self.resend_check
                        && b == block
                    {
                        self.resend_check = None;
                        self.stats.spurious += 1;
                        self.timer.spurious(now, delay);
                    }
                }
                AckOutcome::Progress => {
                    self.side.answered();
                    self.paused_until = None;
                    self.resend_check = match self.resend_check {
                        Some(ResendCheck::Resent { sent_at }) => Some(ResendCheck::Acked {
                            block,
                            delay: now.duration_since(sent_at),
                        }),
                        _ => None,
                    };
                    self.window_opened_at = None;
                    if let Some(sent) = self.window_sent_at.take() {
                        self.timer.sample(now.duration_since(sent));
                    }
                    // Counted as they are acknowledged, so a transfer that fails later
                    // still reports the blocks it delivered.
                    self.stats.blocks = s.acked();
                    self.timer.progressed(now);
                }
                AckOutcome::Done => {
                    self.side.answered();
                    self.stats.blocks = s.acked();
                    self.finish(now, Ok(()));
                }
            },
            (Phase::Receiving(r), Packet::Data { block, data }) => {
                // The next block is judged against the size rules before it is stored,
                // on either side.
                if let Side::Client { size, .. } | Side::Server { size, .. } = &self.side
                    && r.is_next(block)
                    && data.len() <= r.blksize()
                {
                    let before = r.received() * r.blksize() as u64;
                    let last = data.len() < r.blksize();
                    if let Err(refusal) = size.check_block(before, data.len() as u64, last) {
                        return self.refuse_size(now, refusal);
                    }
                }
                let before = r.received();
                let (stored, outcome) = match r.on_data(block, data, storage) {
                    Ok(done) => done,
                    Err(e) => return self.fail_storage(now, e),
                };
                if r.received() > before {
                    self.side.answered();
                }
                self.stats.bytes += stored;
                self.stats.blocks = r.received();
                match outcome {
                    DataOutcome::Wait => {}
                    DataOutcome::InOrder => self.timer.progressed(now),
                    DataOutcome::Ack(b) => {
                        self.control_due = Some(Control::Ack(b));
                        self.timer.progressed(now);
                    }
                    DataOutcome::Final(last) => self.on_final_block(now, last),
                }
            }
            (Phase::Dallying { last }, Packet::Data { block, .. }) if block == *last => {
                // The sender missed our final ACK: answer, and stay for its next try.
                self.control_due = Some(Control::Ack(block));
                let until = now.saturating_add(self.dally_time());
                self.timer.set_deadline(until);
            }
            // The server repeated its OACK: our ACK 0 was lost (a client read).
            (Phase::Receiving(r), Packet::Oack(_))
                if matches!(self.side, Side::Client { .. }) && r.received() == 0 =>
            {
                self.control_due = Some(Control::Ack(0));
            }
            // Anything else from the peer (a duplicate request, a stray OACK, a repeated
            // final DATA while the upload is committed) is ignored.
            _ => {}
        }
    }

    fn on_final_block(&mut self, now: Instant, last: u16) {
        match self.side {
            Side::Server { .. } => {
                self.phase = Phase::Committing { last };
                self.timer.stop();
                self.events.push_back(TransferEvent::UploadComplete);
            }
            Side::Client { dally, .. } => {
                self.control_due = Some(Control::Ack(last));
                if dally {
                    self.phase = Phase::Dallying { last };
                    self.timer
                        .set_deadline(now.saturating_add(self.dally_time()));
                }
                // Without a dally, the transfer closes once the final ACK is out.
                self.finish(now, Ok(()));
            }
        }
    }

    /// Puts the next datagram to send into `buf` and says where it goes, or returns `None`
    /// when nothing is due. Call it until `None` after each `handle_*` call and at start.
    ///
    /// DATA is read from `storage` straight into `buf`.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`max_datagram_len`](Self::max_datagram_len): a caller's
    /// bug, reported at once rather than as a transfer that fails without a word to its
    /// peer.
    #[must_use]
    pub fn poll_transmit<S: Storage + ?Sized>(
        &mut self,
        now: Instant,
        storage: &mut S,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        self.poll_transmit_batch(now, storage, buf, 1)
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but a window's DATA go out together:
    /// up to `max_segments` of them, as many as `buf` holds, back to back, their payloads
    /// read from `storage` in one call. Control packets still come one at a time.
    #[must_use]
    pub fn poll_transmit_batch<S: Storage + ?Sized>(
        &mut self,
        now: Instant,
        storage: &mut S,
        buf: &mut [u8],
        max_segments: usize,
    ) -> Option<Transmit> {
        let needed = self.max_datagram_len();
        assert!(
            buf.len() >= needed,
            "Transfer::poll_transmit: a buffer of {} bytes, below max_datagram_len() = {needed}",
            buf.len()
        );
        if let Some(to) = self.unknown_senders.pop_front() {
            let code = ErrorCode::UnknownTransferId;
            let message = Text::from(code.description());
            let len = encode_infallible(&Packet::Error { code, message }, buf);
            return Some(Transmit::one(to, len));
        }
        if let Some(c) = self.control_due.take() {
            let len = match c {
                Control::Opening => {
                    let len = self.opening.len();
                    buf.get_mut(..len)?.copy_from_slice(&self.opening);
                    len
                }
                Control::Ack(block) => encode_infallible(&Packet::Ack { block }, buf),
                Control::Error(code, message) => encode_error(code, &message, buf),
            };
            return Some(Transmit::one(self.peer, len));
        }
        let Phase::Sending(s) = &mut self.phase else {
            return None;
        };
        if let Some(at) = self.paused_until {
            if now < at {
                return None;
            }
            self.paused_until = None;
            s.next_burst();
        }
        if !s.wants_to_send() {
            return None;
        }
        match s.next_blocks(storage, buf, max_segments) {
            Ok(blocks) => {
                self.stats.bytes += blocks.new_bytes;
                self.stats.retransmissions += blocks.retransmissions;
                if blocks.retransmissions > 0 {
                    // Karn's rule: a window sent twice measures nothing.
                    self.window_sent_at = None;
                } else if blocks.first_in_window {
                    self.window_sent_at = Some(now);
                    self.window_opened_at = Some(now);
                }
                self.timer.sent(now);
                if s.burst_spent() {
                    self.paused_until = Some(now + s.gap());
                }
                Some(Transmit {
                    destination: self.peer,
                    len: blocks.len,
                    segment_size: (blocks.count > 1).then_some(DATA_HEADER_LEN + s.blksize()),
                })
            }
            Err(SendError::Storage(e)) => {
                self.fail_storage(now, e);
                self.poll_transmit(now, storage, buf)
            }
            Err(SendError::Internal(what)) => {
                self.fail_internal(now, what);
                self.poll_transmit(now, storage, buf)
            }
        }
    }
}

/// Encodes a packet that fits any buffer of at least 516 bytes and has no text field that
/// could hold a NUL.
fn encode_infallible(packet: &Packet<'_>, buf: &mut [u8]) -> usize {
    packet
        .encode(buf)
        .expect("ACKs and fixed ERRORs fit the 516 bytes every transmit buffer has")
}

/// Encodes an ERROR with the application's message; a message that cannot go on the wire
/// (a NUL inside, or too long for the buffer) is replaced by the code's description.
pub(crate) fn encode_error(code: ErrorCode, message: &str, buf: &mut [u8]) -> usize {
    let packet = Packet::Error {
        code,
        message: Text::from(message),
    };
    packet.encode(buf).unwrap_or_else(|_| {
        let message = Text::from(code.description());
        encode_infallible(&Packet::Error { code, message }, buf)
    })
}
