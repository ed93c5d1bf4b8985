//! One event loop that runs a server [`Endpoint`] over every socket it needs: its request
//! sockets and, one per transfer, the transfer sockets of RFC 1350. It decides nothing: it
//! reads datagrams into the endpoint, sends what the endpoint hands out, opens and closes
//! the sockets the endpoint's routes name, and passes uploads to the committer.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Token, Waker};

use super::commit::Committer;
use super::log::{LogEvent, Logger};
use super::metrics::LoopMetrics;
use super::precise_poll::PrecisePoll;
use super::socket::bind_transfer;
use super::udp::{GSO_BYTES, RecvBuffers, Udp, transient};
use crate::tftp::server::{
    Endpoint, EndpointEvent, Inbound, Incoming, Limits, Outbound, Outgoing, Policy, TransferId,
};
use crate::tftp::{self, ErrorCode, Packet, StorageError};

/// Wakes the loop for a stop request or a finished commit.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Ends a wait shorter than epoll's millisecond (a pause between bursts).
const TIMER: Token = Token(usize::MAX - 1);

/// The stop requests, shared by the loops and their [`Stopper`]s.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    pub(crate) stop: AtomicBool,
    pub(crate) cut: AtomicBool,
}

/// What the loops of one server share.
pub(crate) struct Shared {
    pub(crate) requests: Arc<Requests>,
    pub(crate) log: Logger,
    pub(crate) verbose: bool,
    pub(crate) grace: Duration,
    pub(crate) port_range: Option<RangeInclusive<u16>>,
}

impl Shared {
    pub(crate) fn log(&self, event: &LogEvent<'_>) {
        event.trace(self.verbose);
        (self.log)(event);
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.requests.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn cut_requested(&self) -> bool {
        self.requests.cut.load(Ordering::SeqCst)
    }
}

struct TransferSocket {
    token: Token,
    udp: Udp,
}

/// A loop's sockets and endpoint, bound and waiting to [`run`](Bound::run).
pub(crate) struct Bound<P: Policy> {
    poll: PrecisePoll,
    waker: Arc<Waker>,
    endpoint: Endpoint<P>,
    /// Request sockets; listener `i` is registered with token `i`.
    listeners: Vec<Udp>,
}

impl<P> Bound<P>
where
    P: Policy + Send,
    P::Storage: Send + 'static,
{
    pub(crate) fn new(endpoint: Endpoint<P>, mut listeners: Vec<Udp>) -> io::Result<Bound<P>> {
        let poll = PrecisePoll::new(TIMER)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(l.source(), Token(i), Interest::READABLE)?;
        }
        Ok(Bound {
            poll,
            waker,
            endpoint,
            listeners,
        })
    }

    /// Puts `limits` in force, before the loop runs.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.endpoint.set_limits(limits);
    }

    pub(crate) fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Serves until stopped, then lets running transfers finish within the grace period
    /// and cuts the rest; returns how many it cut. Counts what happens into `metrics`.
    pub(crate) fn run(
        self,
        shared: Arc<Shared>,
        metrics: Option<LoopMetrics>,
    ) -> io::Result<usize> {
        let committer = Committer::start(self.waker.clone())?;
        let tx = vec![0; self.endpoint.max_datagram_len().max(GSO_BYTES)];
        let gso_segments = self.listeners.first().map_or(1, Udp::max_segments);
        EventLoop {
            poll: self.poll,
            endpoint: self.endpoint,
            next_token: self.listeners.len(),
            listeners: self.listeners,
            transfers: HashMap::new(),
            by_token: HashMap::new(),
            shared,
            epoch: Instant::now(),
            rx: Some(RecvBuffers::new()),
            tx,
            gso_segments,
            metrics,
        }
        .run(&committer)
    }
}

struct EventLoop<P: Policy> {
    poll: PrecisePoll,
    endpoint: Endpoint<P>,
    listeners: Vec<Udp>,
    transfers: HashMap<TransferId, TransferSocket>,
    by_token: HashMap<Token, TransferId>,
    next_token: usize,
    shared: Arc<Shared>,
    epoch: Instant,
    rx: Option<RecvBuffers>,
    tx: Vec<u8>,
    /// Datagrams one send may carry (1 where the kernel has no UDP GSO).
    gso_segments: usize,
    metrics: Option<LoopMetrics>,
}

impl<P> EventLoop<P>
where
    P: Policy + Send,
    P::Storage: Send + 'static,
{
    fn now(&self) -> tftp::Instant {
        tftp::Instant::from(self.epoch.elapsed())
    }

    fn run(mut self, committer: &Committer<P::Storage>) -> io::Result<usize> {
        let mut events = Events::with_capacity(256);
        loop {
            let mut now = self.now();
            for (id, result) in committer.finished() {
                self.endpoint.committed(now, id, result);
            }
            self.close_if_asked(now);
            if self.endpoint.poll_timeout().is_some_and(|at| at <= now) {
                // A loop that woke late (a busy machine) may find the answer it waited for
                // already queued: read it before a timer takes its silence for a loss.
                self.read_ready(&mut events)?;
                now = self.now();
            }
            self.endpoint.handle_timeout(now);
            self.flush(now, committer);
            // The ACKs are out: uploads write what they gathered while clients send on.
            if self.endpoint.flush_storage(now) {
                self.flush(now, committer);
            }
            // Done once stopped and nothing is left running: the rest was cut when the
            // grace ran out, or at once when the cut was asked for. The server logs the
            // total cut of all its loops once.
            if self.endpoint.is_drained() {
                return Ok(self.endpoint.cut());
            }
            let timeout = self.endpoint.poll_timeout().map(|at| at - now);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.read_events(&events);
        }
    }

    /// Reads whatever is waiting now, without sleeping.
    fn read_ready(&mut self, events: &mut Events) -> io::Result<()> {
        match self.poll.poll_now(events) {
            Ok(()) => self.read_events(events),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn read_events(&mut self, events: &Events) {
        for event in events.iter() {
            if event.token() != WAKER && event.token() != TIMER {
                self.read(event.token());
            }
        }
    }

    /// Sends what the endpoint has to send and carries out its events.
    fn flush(&mut self, now: tftp::Instant, committer: &Committer<P::Storage>) {
        // Before anything goes out: a client that got its answer may read the gauges next,
        // and must find what its own datagram changed.
        self.count_unanswered();
        loop {
            while let Some(t) =
                self.endpoint
                    .poll_transmit_batch(now, &mut self.tx, self.gso_segments)
            {
                self.send(now, t);
            }
            let Some(event) = self.endpoint.poll_event() else {
                self.count_unanswered();
                return;
            };
            if let Some(m) = &mut self.metrics {
                m.record(&event);
            }
            self.on_event(now, event, committer);
        }
    }

    fn count_unanswered(&self) {
        if let Some(m) = &self.metrics {
            m.set_unanswered(self.endpoint.unanswered());
        }
    }

    fn on_event(
        &mut self,
        now: tftp::Instant,
        event: EndpointEvent<P::Storage>,
        committer: &Committer<P::Storage>,
    ) {
        match event {
            EndpointEvent::Refused {
                peer,
                filename,
                served,
                refusal,
                cause,
            } => self.shared.log(&LogEvent::Refused {
                peer,
                filename,
                served: &served,
                refusal: &refusal,
                cause,
            }),
            EndpointEvent::Commit { id, storage } => {
                // Only a loop winding down has no committer left.
                let refused = committer.submit(id, storage).is_err();
                if refused {
                    let gone = StorageError::new(
                        ErrorCode::NotDefined,
                        "the server stopped before the upload was stored",
                    );
                    self.endpoint.committed(now, id, Err(gone));
                }
            }
            EndpointEvent::Ended { report, .. } => self.shared.log(&LogEvent::Transfer(&report)),
            EndpointEvent::Ignored {
                peer,
                filename,
                why,
            } => self.shared.log(&LogEvent::Ignored {
                peer,
                filename,
                why,
            }),
            EndpointEvent::Closed { id } => {
                if let Some(mut s) = self.transfers.remove(&id) {
                    self.by_token.remove(&s.token);
                    let _ = self.poll.registry().deregister(s.udp.source());
                }
            }
            _ => {}
        }
    }

    /// Passes a stop request on to the endpoint, whose grace deadline then shows in its
    /// `poll_timeout`; a cut request brings that deadline to now.
    /// Asked again on every turn: `close` only ever brings its deadline forward, so the
    /// first call's deadline holds.
    fn close_if_asked(&mut self, now: tftp::Instant) {
        if self.shared.cut_requested() {
            self.endpoint.close(now, Duration::ZERO);
        } else if self.shared.stop_requested() {
            self.endpoint.close(now, self.shared.grace);
        }
    }

    /// Reads every datagram waiting on the socket of `token` into the endpoint.
    fn read(&mut self, token: Token) {
        let route = match self.by_token.get(&token) {
            Some(&id) => Inbound::Transfer(id),
            None if token.0 < self.listeners.len() => Inbound::Listener(token.0),
            None => return,
        };
        // Out of `self` while its datagrams are handed to the endpoint.
        let Some(mut rx) = self.rx.take() else { return };
        while let Some(udp) = self.udp(route) {
            match rx.recv(udp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if transient(&e) => continue,
                Err(e) => {
                    self.shared.log(&LogEvent::Error(&e));
                    break;
                }
            }
            let now = self.now();
            for (source, local, datagram) in rx.datagrams() {
                self.log_packet(false, source, datagram);
                let incoming = Incoming::new(route, source, local);
                if let Some(t) = self.endpoint.handle(now, incoming, datagram, &mut self.tx) {
                    self.send(now, t);
                }
            }
            if rx.drained() {
                break;
            }
        }
        self.rx = Some(rx);
    }

    fn udp(&self, route: Inbound) -> Option<&Udp> {
        match route {
            Inbound::Listener(i) => self.listeners.get(i),
            Inbound::Transfer(id) => self.transfers.get(&id).map(|s| &s.udp),
        }
    }

    /// Sends the datagram in `tx` from the socket its route names, opening a transfer's
    /// socket on its first datagram.
    fn send(&mut self, now: tftp::Instant, t: Outgoing) {
        let data = &self.tx[..t.len];
        let segment = t.segment_size.unwrap_or(t.len).max(1);
        for datagram in data.chunks(segment) {
            self.log_packet(true, t.destination, datagram);
        }
        let sent = match t.route {
            Outbound::Listener(i) => match self.listeners.get(i) {
                Some(l) => l.send(t.destination, t.source, data, t.segment_size),
                None => return,
            },
            Outbound::Transfer(id) => {
                if !self.transfers.contains_key(&id)
                    && let Err(e) = self.open_transfer_socket(id, t.source, t.destination)
                {
                    self.shared.log(&LogEvent::Error(&e));
                    if let Some(t) = self.endpoint.port_unavailable(now, id, &mut self.tx) {
                        self.send(now, t);
                    }
                    return;
                }
                match self.transfers.get(&id) {
                    Some(s) => s
                        .udp
                        .send(t.destination, None, &self.tx[..t.len], t.segment_size),
                    None => return,
                }
            }
            Outbound::OneOff { listener } => {
                let ip = t.source.unwrap_or_else(|| unspecified(t.destination));
                let fresh = bind_transfer(ip, self.shared.port_range.as_ref())
                    .and_then(|s| s.send_to(data, t.destination));
                match (fresh, self.listeners.get(listener)) {
                    (Ok(_), _) => Ok(()),
                    (Err(_), Some(l)) => l.send(t.destination, t.source, data, None),
                    (Err(e), None) => Err(e),
                }
            }
        };
        match sent {
            // A datagram the kernel had no room for is lost like any other: the
            // protocol's retransmission covers it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || transient(&e) => {}
            Err(e) => self.shared.log(&LogEvent::Error(&e)),
            Ok(()) => {}
        }
    }

    fn open_transfer_socket(
        &mut self,
        id: TransferId,
        source: Option<IpAddr>,
        destination: SocketAddr,
    ) -> io::Result<()> {
        let ip = source.unwrap_or_else(|| unspecified(destination));
        let mut udp = Udp::transfer(bind_transfer(ip, self.shared.port_range.as_ref())?)?;
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll
            .registry()
            .register(udp.source(), token, Interest::READABLE)?;
        self.by_token.insert(token, id);
        self.transfers.insert(id, TransferSocket { token, udp });
        Ok(())
    }

    fn log_packet(&self, sent: bool, peer: SocketAddr, bytes: &[u8]) {
        if self.shared.verbose {
            self.shared.log(&LogEvent::Packet {
                sent,
                peer,
                summary: summarize(bytes),
            });
        }
    }
}

fn unspecified(peer: SocketAddr) -> IpAddr {
    match peer {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// One line per packet for `-v`; DATA payloads are not printed.
pub(crate) fn summarize(bytes: &[u8]) -> String {
    match Packet::parse(bytes) {
        Ok(Packet::Data { block, data }) => format!("DATA block {block}, {} bytes", data.len()),
        Ok(Packet::Ack { block }) => format!("ACK block {block}"),
        Ok(Packet::Error { code, message }) => format!("ERROR {}: {message}", code.as_u16()),
        Ok(Packet::Oack(o)) => format!("OACK {o}"),
        Ok(Packet::Rrq(r)) => format!("RRQ \"{}\" {} {}", r.filename, r.mode, r.options),
        Ok(Packet::Wrq(r)) => format!("WRQ \"{}\" {} {}", r.filename, r.mode, r.options),
        Err(e) => format!("malformed ({e})"),
    }
}
