//! `Endpoint`: the whole server side of TFTP as one pure state machine.
//!
//! It owns every transfer and makes every decision a server makes: admission through the
//! application's [`Policy`], repeated requests, the limits per client address and in total,
//! strangers, refusals and its own graceful stop. A driver only moves datagrams, reads the
//! clock, opens the sockets an [`Outbound`] route names, and commits uploads.
//! [`Endpoint`]'s own docs list the calls a driver makes.

use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
#[cfg(target_has_atomic = "ptr")]
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

mod admission;
mod report;
mod request;
mod route;

pub use admission::{Admission, SharedAdmission};
pub use report::{EndpointEvent, RefusalCause, Report, TransferInfo};
#[cfg(feature = "std")]
pub(crate) use report::{Names, direction_word};
pub use route::{Inbound, Incoming, Outbound, Outgoing, PortMode, TransferId};

use super::policy::{Limits, Policy};
use super::storage::{Storage, StorageError};
use super::transfer::{self, Transfer, TransferError, encode_error};
use crate::tftp::Instant;
use crate::tftp::wire::{DATA_HEADER_LEN, Direction, ErrorCode};

/// Stands in for an upload's storage while the application commits it. A transfer in its
/// commit neither reads nor writes (a repeated final DATA is only re-ACKed), so a call here
/// is a bug of the machine's: loud in debug builds, an ERROR to the client in release.
struct StorageInCommit;

impl StorageInCommit {
    fn misuse() -> StorageError {
        debug_assert!(false, "an upload's storage was used during its commit");
        StorageError::new(ErrorCode::NotDefined, "internal error")
    }
}

impl Storage for StorageInCommit {
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, StorageError> {
        Err(Self::misuse())
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Err(Self::misuse())
    }
}

struct Entry<S> {
    transfer: Transfer,
    storage: Option<S>,
    info: TransferInfo,
    listener: usize,
    /// The request's bytes, to recognise a repeat of it.
    request: Vec<u8>,
    contact: Contact,
    /// The deadline registered in `Endpoint::timers`.
    timer: Option<Instant>,
    /// In `Endpoint::ready`, which is a queue (transfers send in turn) and so cannot tell
    /// membership itself.
    queued: bool,
    stage: Stage,
}

/// Whether the client answered what the transfer sent first: until it does, the request
/// may have been forged, and the transfer counts against the unanswered limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contact {
    /// Not yet; the transfer is dropped without a word at `reclaim_at` (`None` once it
    /// was).
    Awaited {
        reclaim_at: Option<Instant>,
    },
    Answered,
}

/// Whether the transfer reported its end ([`EndpointEvent::Ended`]); an ended transfer
/// may still dally a while before it is freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Running,
    Ended,
}

struct Slot<S> {
    generation: u32,
    entry: Option<Entry<S>>,
}

/// The counts the limits are checked against: the endpoint's own, or those it shares with
/// the other endpoints of its process.
enum Held {
    Own(Admission),
    #[cfg(target_has_atomic = "ptr")]
    Shared(Arc<dyn SharedAdmission>),
}

impl Held {
    fn with<R>(&mut self, f: impl FnOnce(&mut Admission) -> R) -> R {
        match self {
            Held::Own(a) => f(a),
            #[cfg(target_has_atomic = "ptr")]
            Held::Shared(shared) => {
                let (mut f, mut out) = (Some(f), None);
                shared.with(&mut |a| out = f.take().map(|f| f(a)));
                out.expect("SharedAdmission::with runs its closure once")
            }
        }
    }
}

/// The whole server side of TFTP: every transfer, admission through the application's
/// [`Policy`], repeated requests, the limits per client address and in total, strangers,
/// refusals and its own graceful stop.
///
/// The calls, in the order a driver makes them:
///
/// - [`Endpoint::handle`] for every datagram received, saying on which [`Inbound`] it came; a
///   refusal it answers at once is written into the caller's buffer and returned;
/// - [`Endpoint::handle_timeout`] when the deadline from [`Endpoint::poll_timeout`] passes;
/// - [`Endpoint::committed`] when an upload the endpoint handed out in [`EndpointEvent::Commit`]
///   was put in place (or failed to be);
/// - then [`Endpoint::poll_transmit`] until `None`, sending each datagram from its route,
///   and [`Endpoint::poll_event`] until `None`;
/// - before waiting, [`Endpoint::flush_storage`], and the two polls again if it says it
///   ended a transfer;
/// - to stop, [`Endpoint::close`], then on until [`Endpoint::is_drained`].
///
/// The [crate documentation](crate) has a complete server loop.
pub struct Endpoint<P: Policy> {
    policy: P,
    limits: Limits,
    ports: PortMode,
    slots: Vec<Slot<P::Storage>>,
    free: Vec<u32>,
    live: usize,
    /// Transfers whose client has not answered yet.
    unanswered: usize,
    /// The latest transfer of each client address and port, per request socket: how a
    /// repeated request is recognised, and how single-port datagrams find their transfer.
    by_peer: BTreeMap<(usize, SocketAddr), TransferId>,
    admission: Held,
    timers: BTreeSet<(Instant, TransferId)>,
    /// Transfers that may have something to send, in turn.
    ready: VecDeque<TransferId>,
    /// Uploads whose storage was given data since `flush_storage` last ran.
    unflushed: BTreeSet<TransferId>,
    events: VecDeque<EndpointEvent<P::Storage>>,
    /// Scratch for `handle_timeout`.
    due: Vec<TransferId>,
    closing: Closing,
}

/// Where the endpoint is in a graceful stop ([`Endpoint::close`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    Open,
    /// New requests are refused; the running transfers have until `deadline`.
    Draining {
        deadline: Instant,
    },
    /// The deadline passed: `cut` transfers were ended with an ERROR.
    Cut {
        cut: usize,
    },
}

/// What a client is told of a graceful stop: a request refused while closing, or a
/// transfer cut when the grace ran out.
const SHUTTING_DOWN: &str = "server shutting down";

impl<P: Policy> fmt::Debug for Endpoint<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("ports", &self.ports)
            .field("limits", &self.limits)
            .field("transfers", &self.live)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

/// The smallest buffer [`Endpoint::handle`] needs to write a refusal into.
const MIN_BUF: usize = 516;

/// A buffer too small for what it must hold is the caller's bug, reported at once.
fn assert_buffer(buf: &[u8], needed: usize) {
    assert!(
        buf.len() >= needed,
        "Endpoint: a buffer of {} bytes, below the {needed} it must hold",
        buf.len()
    );
}

fn is_request(datagram: &[u8]) -> bool {
    matches!(datagram, [0, 1 | 2, ..])
}

impl<P: Policy> Endpoint<P> {
    /// A server that asks `policy` about every request, within `limits`.
    pub fn new(policy: P, limits: Limits, ports: PortMode) -> Self {
        Endpoint {
            policy,
            limits,
            ports,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            unanswered: 0,
            by_peer: BTreeMap::new(),
            admission: Held::Own(Admission::new()),
            timers: BTreeSet::new(),
            ready: VecDeque::new(),
            unflushed: BTreeSet::new(),
            events: VecDeque::new(),
            due: Vec::new(),
            closing: Closing::Open,
        }
    }

    /// Checks the limits against counts shared with other endpoints, so that
    /// `max_transfers`, `max_per_address` and `max_unanswered_per_address` hold for all of
    /// them together: one endpoint per event loop, each given a clone of one `Arc`. Call it
    /// before the endpoint admits its first transfer.
    #[cfg(target_has_atomic = "ptr")]
    pub fn share_admission(&mut self, shared: Arc<dyn SharedAdmission>) {
        debug_assert!(self.is_empty(), "admission is shared before any transfer");
        self.admission = Held::Shared(shared);
    }

    /// The application's policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The application's policy, to change it while the server runs.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Puts `limits` in force for the requests that follow; running transfers keep what
    /// they negotiated. A larger `max_blksize` raises
    /// [`max_datagram_len`](Self::max_datagram_len): size the transmit buffer again.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Transfers running (dallying ones included).
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no transfer runs.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Transfers that have not reported their end ([`EndpointEvent::Ended`]): what a graceful stop
    /// waits for. A transfer that ended and only dallies, to re-ACK a repeated final
    /// block, is not counted.
    pub fn running(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .filter(|e| e.stage == Stage::Running)
            .count()
    }

    /// Transfers whose client has not answered the server's first packet yet: the ones
    /// [`Limits::max_unanswered_per_address`] bounds, and a forged flood fills.
    pub fn unanswered(&self) -> usize {
        self.unanswered
    }

    /// The smallest buffer [`poll_transmit`](Self::poll_transmit) accepts: a DATA of the
    /// largest blksize granted.
    pub fn max_datagram_len(&self) -> usize {
        (DATA_HEADER_LEN + usize::from(self.limits.max_blksize.get())).max(MIN_BUF)
    }

    /// Starts a graceful stop: later requests are refused with ERROR 0 "server shutting
    /// down", and the running transfers have `grace` to end. When it runs out (at the
    /// [`handle_timeout`](Self::handle_timeout) its deadline in
    /// [`poll_timeout`](Self::poll_timeout) asks for), the transfers still running are cut:
    /// their clients are sent the same ERROR, and uploads not committed are dropped with
    /// their storage. An upload handed out in [`EndpointEvent::Commit`] is left to its
    /// commit, whose outcome its client hears at [`committed`](Self::committed).
    ///
    /// Called again, it can only bring the deadline forward: `close(now, Duration::ZERO)`
    /// cuts at the next `handle_timeout` (a second Ctrl-C). The driver stops once
    /// [`is_drained`](Self::is_drained).
    pub fn close(&mut self, now: Instant, grace: Duration) {
        let deadline = now.saturating_add(grace);
        match self.closing {
            Closing::Draining { deadline: d } if d <= deadline => {}
            Closing::Open | Closing::Draining { .. } => {
                self.closing = Closing::Draining { deadline };
            }
            Closing::Cut { .. } => {}
        }
    }

    /// [`close`](Self::close) was called.
    pub fn is_closing(&self) -> bool {
        self.closing != Closing::Open
    }

    /// Closing, and nothing left to wait for: every transfer ended (a transfer that only
    /// dallies is not waited for) and every commit reported.
    pub fn is_drained(&self) -> bool {
        self.is_closing() && self.running() == 0
    }

    /// How many transfers the end of the grace cut; zero until then.
    pub fn cut(&self) -> usize {
        match self.closing {
            Closing::Cut { cut } => cut,
            _ => 0,
        }
    }

    /// Ends every running transfer but those committing with ERROR 0 "server shutting
    /// down"; a transfer that already ended only stops dallying. Returns how many had not
    /// ended.
    fn cut_running(&mut self, now: Instant) -> usize {
        let ids: Vec<TransferId> = self.ids().collect();
        let mut cut = 0;
        for id in ids {
            if let Some(e) = self.entry_mut(id) {
                if e.transfer.is_committing() {
                    continue;
                }
                cut += usize::from(!e.transfer.is_finished());
                e.transfer.abort(now, ErrorCode::NotDefined, SHUTTING_DOWN);
                e.storage = None;
            }
            self.enqueue(id);
            self.sync_transfer(now, id);
        }
        cut
    }

    /// Uploads handed out in [`EndpointEvent::Commit`] whose outcome [`committed`](Self::committed)
    /// has not yet told: a driver that stops waits for them.
    pub fn committing(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .filter(|e| e.transfer.is_committing())
            .count()
    }

    fn ids(&self) -> impl Iterator<Item = TransferId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| TransferId {
                index: i as u32,
                generation: s.generation,
            })
        })
    }

    fn entry(&self, id: TransferId) -> Option<&Entry<P::Storage>> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation).then_some(())?;
        slot.entry.as_ref()
    }

    fn entry_mut(&mut self, id: TransferId) -> Option<&mut Entry<P::Storage>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        (slot.generation == id.generation).then_some(())?;
        slot.entry.as_mut()
    }

    /// Handles one datagram. A refusal answered at once (a request refused, malformed or
    /// over a limit) is written into `buf`, which needs at least 516 bytes, and returned;
    /// everything else comes out of [`poll_transmit`](Self::poll_transmit).
    ///
    /// Datagrams on a request socket that are not requests get no answer, so the server
    /// cannot be used to reflect traffic; in [`PortMode::Single`] they go to the transfer of
    /// their source, if it has one.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than 516 bytes (a caller's bug, reported at once).
    pub fn handle(
        &mut self,
        now: Instant,
        incoming: Incoming,
        datagram: &[u8],
        buf: &mut [u8],
    ) -> Option<Outgoing> {
        assert_buffer(buf, MIN_BUF);
        match incoming.route {
            Inbound::Transfer(id) => self.deliver(now, id, incoming.source, datagram),
            Inbound::Listener(listener) if is_request(datagram) => {
                return self.on_request(now, listener, &incoming, datagram, buf);
            }
            Inbound::Listener(listener) if self.ports == PortMode::Single => {
                if let Some(&id) = self.by_peer.get(&(listener, incoming.source)) {
                    self.deliver(now, id, incoming.source, datagram);
                }
            }
            Inbound::Listener(_) => {}
        }
        None
    }

    fn deliver(&mut self, now: Instant, id: TransferId, source: SocketAddr, datagram: &[u8]) {
        let Some(e) = self.entry_mut(id) else { return };
        let stored = match &mut e.storage {
            Some(s) => {
                e.transfer.handle_datagram(now, source, datagram, s);
                true
            }
            None => {
                e.transfer
                    .handle_datagram(now, source, datagram, &mut StorageInCommit);
                false
            }
        };
        // Only uploads write: a download's ACKs leave nothing to flush.
        let unflushed = stored && e.info.direction == Direction::Write;
        // Only the answer the transfer waits for counts: any datagram from the client's
        // port would otherwise lift the guard against forged requests.
        let first_answer = e.contact != Contact::Answered && e.transfer.is_answered();
        if first_answer {
            e.contact = Contact::Answered;
        }
        let ip = e.info.peer.ip();
        if unflushed {
            self.unflushed.insert(id);
        }
        if first_answer {
            self.unanswered -= 1;
            self.admission.with(|a| a.answered(ip));
        }
        self.enqueue(id);
        self.sync_transfer(now, id);
    }

    fn insert(&mut self, entry: Entry<P::Storage>) -> TransferId {
        self.live += 1;
        self.unanswered += usize::from(entry.contact != Contact::Answered);
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.entry = Some(entry);
            return TransferId {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 transfers at once");
        self.slots.push(Slot {
            generation: 0,
            entry: Some(entry),
        });
        TransferId {
            index,
            generation: 0,
        }
    }

    fn enqueue(&mut self, id: TransferId) {
        if let Some(e) = self.entry_mut(id)
            && !e.queued
        {
            e.queued = true;
            self.ready.push_back(id);
        }
    }

    /// After anything happened to a transfer: turn its events into the endpoint's, keep
    /// its deadline registered, and free it once it is closed.
    fn sync_transfer(&mut self, now: Instant, id: TransferId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let Some(e) = slot.entry.as_mut() else { return };
        while let Some(event) = e.transfer.poll_event() {
            match event {
                transfer::TransferEvent::UploadComplete => match e.storage.take() {
                    Some(storage) => self.events.push_back(EndpointEvent::Commit { id, storage }),
                    None => {
                        let lost = StorageError::new(ErrorCode::NotDefined, "upload storage lost");
                        e.transfer.finish_upload(now, Err(lost));
                    }
                },
                transfer::TransferEvent::Finished { stats, result } => {
                    e.stage = Stage::Ended;
                    let report = Report {
                        info: e.info.clone(),
                        stats,
                        result,
                    };
                    self.events.push_back(EndpointEvent::Ended { id, report });
                }
                _ => {}
            }
        }
        if e.transfer.is_closed() {
            return self.free(id);
        }
        let reclaim_at = match e.contact {
            Contact::Awaited { reclaim_at } => reclaim_at,
            Contact::Answered => None,
        };
        let wanted = match (e.transfer.poll_timeout(), reclaim_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wanted != e.timer {
            if let Some(old) = e.timer {
                self.timers.remove(&(old, id));
            }
            if let Some(new) = wanted {
                self.timers.insert((new, id));
            }
            e.timer = wanted;
        }
    }

    fn free(&mut self, id: TransferId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        let Some(e) = slot.entry.take() else { return };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.live -= 1;
        let answered = e.contact == Contact::Answered;
        self.unanswered -= usize::from(!answered);
        debug_assert!(
            e.stage == Stage::Ended,
            "a transfer closes only after it reported its end"
        );
        if let Some(t) = e.timer {
            self.timers.remove(&(t, id));
        }
        let key = (e.listener, e.info.peer);
        if self.by_peer.get(&key) == Some(&id) {
            self.by_peer.remove(&key);
        }
        let ip = e.info.peer.ip();
        self.admission.with(|a| a.release(ip, answered));
        self.events.push_back(EndpointEvent::Closed { id });
    }

    /// The earliest deadline, of all transfers and of a graceful stop's grace, at which
    /// [`handle_timeout`](Self::handle_timeout) must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let transfers = self.timers.first().map(|&(at, _)| at);
        match self.closing {
            Closing::Draining { deadline } => Some(transfers.map_or(deadline, |t| t.min(deadline))),
            _ => transfers,
        }
    }

    /// Handles every deadline that has passed: retransmissions, transfers given up,
    /// transfers whose client never answered, which are dropped without a word, and the end
    /// of a graceful stop's grace.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Closing::Draining { deadline } = self.closing
            && deadline <= now
        {
            let cut = self.cut_running(now);
            self.closing = Closing::Cut { cut };
        }
        let mut due = core::mem::take(&mut self.due);
        due.extend(
            self.timers
                .iter()
                .take_while(|&&(at, _)| at <= now)
                .map(|&(_, id)| id),
        );
        for &id in &due {
            let Some(e) = self.entry_mut(id) else {
                continue;
            };
            let reclaim_due = matches!(
                e.contact,
                Contact::Awaited { reclaim_at: Some(at) } if at <= now
            );
            if reclaim_due {
                e.contact = Contact::Awaited { reclaim_at: None };
                e.transfer.drop_silently(now, TransferError::Unanswered);
            } else {
                e.transfer.handle_timeout(now);
            }
            self.enqueue(id);
            self.sync_transfer(now, id);
        }
        due.clear();
        self.due = due;
    }

    /// Puts the next datagram to send into `buf` and says where it goes, or returns `None`
    /// when nothing is due. A transfer's window goes out in one run.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`max_datagram_len`](Self::max_datagram_len), the
    /// caller's bug, reported at once rather than as transfers that fail without a word.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Outgoing> {
        self.poll_transmit_batch(now, buf, 1)
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but a transfer's DATA come up to
    /// `max_segments` at a time, as many as `buf` holds, for one GSO send (UDP GSO takes
    /// at most 64 KiB in all: size `buf` to that).
    #[must_use]
    pub fn poll_transmit_batch(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        max_segments: usize,
    ) -> Option<Outgoing> {
        assert_buffer(buf, self.max_datagram_len());
        while let Some(&id) = self.ready.front() {
            let ports = self.ports;
            let Some(e) = self.entry_mut(id) else {
                self.ready.pop_front();
                continue;
            };
            let sent = match &mut e.storage {
                Some(s) => e.transfer.poll_transmit_batch(now, s, buf, max_segments),
                None => {
                    e.transfer
                        .poll_transmit_batch(now, &mut StorageInCommit, buf, max_segments)
                }
            };
            let Some(t) = sent else {
                e.queued = false;
                self.ready.pop_front();
                self.sync_transfer(now, id);
                continue;
            };
            let route = match ports {
                PortMode::Single => Outbound::Listener(e.listener),
                PortMode::PerTransfer => Outbound::Transfer(id),
            };
            let transmit = Outgoing {
                route,
                destination: t.destination,
                source: e.info.local,
                len: t.len,
                segment_size: t.segment_size,
            };
            self.sync_transfer(now, id);
            return Some(transmit);
        }
        None
    }

    /// Has the storages of the transfers that received data since the last call write what
    /// they gathered ([`Transfer::flush_storage`]): call it once what
    /// [`poll_transmit`](Self::poll_transmit) gave is sent and before waiting, so uploads
    /// reach their files after their ACKs went out. A storage that fails ends its transfer;
    /// this returns true then: poll for transmits and events again before waiting.
    pub fn flush_storage(&mut self, now: Instant) -> bool {
        let mut ended = false;
        while let Some(id) = self.unflushed.pop_first() {
            let Some(e) = self.entry_mut(id) else {
                continue;
            };
            let Some(storage) = &mut e.storage else {
                continue;
            };
            if e.transfer.flush_storage(now, storage) {
                ended = true;
                self.enqueue(id);
                self.sync_transfer(now, id);
            }
        }
        ended
    }

    /// The next event, if any. Call it until `None` after each `handle_*` and
    /// `poll_transmit`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<EndpointEvent<P::Storage>> {
        self.events.pop_front()
    }

    /// The outcome of an upload's commit ([`EndpointEvent::Commit`]): on success the client is sent
    /// the final ACK, otherwise the error's ERROR. An id that is gone is ignored.
    pub fn committed(&mut self, now: Instant, id: TransferId, result: Result<(), StorageError>) {
        let Some(e) = self.entry_mut(id) else { return };
        e.transfer.finish_upload(now, result);
        self.enqueue(id);
        self.sync_transfer(now, id);
    }

    /// The driver could not open a socket for a transfer's [`Outbound::Transfer`] (no
    /// descriptor, or every port of its range taken). The transfer ends, and the client is
    /// told from the request socket instead: its ERROR is written into `buf` (at least 516
    /// bytes, or this panics) and returned.
    pub fn port_unavailable(
        &mut self,
        now: Instant,
        id: TransferId,
        buf: &mut [u8],
    ) -> Option<Outgoing> {
        assert_buffer(buf, MIN_BUF);
        let message = "server busy: no transfer port free, try again later";
        let e = self.entry_mut(id)?;
        let (listener, peer, local) = (e.listener, e.info.peer, e.info.local);
        let why = TransferError::Aborted {
            code: ErrorCode::NotDefined,
            message: Cow::Borrowed(message),
        };
        e.transfer.drop_silently(now, why);
        e.storage = None;
        self.sync_transfer(now, id);
        Some(Outgoing {
            route: Outbound::Listener(listener),
            destination: peer,
            source: local,
            len: encode_error(ErrorCode::NotDefined, message, buf),
            segment_size: None,
        })
    }
}
