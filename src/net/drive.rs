//! The loop that runs one client [`Transfer`] on one UDP socket. It makes no protocol
//! decision: it moves datagrams, reads the clock and reports progress. It reads a whole
//! burst per call (GRO) and sends a window per call (GSO) where the kernel can.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Token};

use super::precise_poll::PrecisePoll;
use super::udp::{GSO_BYTES, RecvBuffers, Udp, transient};
use crate::tftp::{
    self, ErrorCode, Negotiated, Stats, Storage, Transfer, TransferError, TransferEvent,
};

/// How often a cancellable transfer looks at its flag while it waits for a datagram.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// What a driven transfer tells its owner as it runs.
pub(crate) trait Progress {
    /// The options are settled.
    fn negotiated(&mut self, n: &Negotiated);
    /// File bytes moved so far.
    fn progress(&mut self, bytes: u64);
}

/// Runs `transfer` until it is closed, and returns the result it reported. Its end is
/// reported to `hooks` as soon as the transfer reports it, before any dally the machine
/// keeps ([`ClientRequest::dally`](crate::tftp::ClientRequest::dally)). I/O errors of the
/// socket other than ICMP-caused refusals end the loop.
///
/// When `cancel` is set, the transfer is aborted with an ERROR to the peer, and ends with
/// [`TransferError::Aborted`].
pub(crate) fn drive<S: Storage + ?Sized>(
    transfer: &mut Transfer,
    socket: UdpSocket,
    storage: &mut S,
    epoch: Instant,
    hooks: &mut dyn Progress,
    cancel: Option<&AtomicBool>,
) -> io::Result<Result<Stats, TransferError>> {
    let mut udp = Udp::transfer(socket)?;
    udp.report_unreachable()?;
    let mut poll = PrecisePoll::new(Token(1))?;
    poll.registry()
        .register(udp.source(), Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(4);
    let segments = udp.max_segments();
    let mut tx = vec![0u8; transfer.max_datagram_len().max(GSO_BYTES).max(65_536 + 4)];
    let mut rx = RecvBuffers::new();
    let mut outcome = None;
    loop {
        let now = tftp::Instant::from(epoch.elapsed());
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            transfer.abort(now, ErrorCode::NotDefined, "cancelled by the user");
        }
        while let Some(t) = transfer.poll_transmit_batch(now, storage, &mut tx, segments) {
            match udp.send(t.destination, None, &tx[..t.len], t.segment_size) {
                // An ERROR 5 to a stranger is a courtesy: one that cannot be sent (no route
                // back to it) leaves the transfer untouched, as the stranger's packet did.
                Err(_) if t.destination != transfer.peer() => {}
                // A lost datagram is the protocol's business; retransmission covers it.
                Err(e) if !(transient(&e) || e.kind() == io::ErrorKind::WouldBlock) => {
                    return Err(e);
                }
                _ => {}
            }
        }
        while let Some(event) = transfer.poll_event() {
            match event {
                TransferEvent::Negotiated(n) => hooks.negotiated(&n),
                TransferEvent::Finished { stats, result } => {
                    outcome = Some(result.map(|()| stats));
                }
                _ => {}
            }
        }
        hooks.progress(transfer.progress());
        if transfer.is_closed() {
            return Ok(outcome.expect("a client transfer reports its end before it closes"));
        }
        // The ACK is out: gathered blocks are written while the server sends on.
        if transfer.flush_storage(now, storage) {
            continue;
        }
        let deadline = transfer
            .poll_timeout()
            .expect("a client transfer keeps a timer until it is closed");
        let now = tftp::Instant::from(epoch.elapsed());
        if deadline <= now {
            transfer.handle_timeout(now);
            continue;
        }
        let wait = match cancel {
            Some(_) => (deadline - now).min(CANCEL_POLL),
            None => deadline - now,
        };
        match poll.poll(&mut events, Some(wait)) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        loop {
            match rx.recv(&udp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Port unreachable before any answer: nobody listens there. Later, it is
                // only a port of the server that closed after its last word.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    if !transfer.is_answered() {
                        return Err(e);
                    }
                }
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            }
            let now = tftp::Instant::from(epoch.elapsed());
            for (source, _, datagram) in rx.datagrams() {
                transfer.handle_datagram(now, source, datagram, storage);
            }
            if rx.drained() {
                break;
            }
        }
        transfer.handle_timeout(tftp::Instant::from(epoch.elapsed()));
    }
}
