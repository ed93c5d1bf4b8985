//! The blocking loop that runs one [`Transfer`] on one UDP socket. It makes no protocol
//! decision: it moves datagrams, reads the clock and calls the application's hooks.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::tftp::{Event, Negotiated, Stats, Storage, StorageError, Transfer, TransferError};

/// Longest wait on the socket before the loop looks at its cancel flag again.
const POLL: Duration = Duration::from_millis(100);

/// What a driven transfer tells its owner as it runs. Every method has a default that
/// does nothing.
pub(crate) trait Hooks<S: ?Sized> {
    /// The options are settled (client side).
    fn negotiated(&mut self, _n: &Negotiated) {}
    /// The transfer reports success; returning an error turns it into a failure that is
    /// told to the peer (an upload that cannot be put in place).
    fn completed(&mut self, _storage: &mut S) -> Result<(), StorageError> {
        Ok(())
    }
    /// File bytes moved so far.
    fn progress(&mut self, _bytes: u64) {}
    /// A datagram went out (`sent`) or came in.
    fn packet(&mut self, _sent: bool, _peer: SocketAddr, _bytes: &[u8]) {}
    /// Whether to stay after a completed receive to re-ACK a repeated final block. A server
    /// does (its thread costs the client nothing); a client returns at once, as tftp-hpa's
    /// and curl's do, since its file is complete either way.
    fn dally(&self) -> bool {
        true
    }
    /// Stop now: the peer is sent this error.
    fn cancelled(&mut self) -> Option<StorageError> {
        None
    }
}

/// Runs `transfer` to its end and returns its result. I/O errors of the socket other than
/// timeouts and ICMP-caused refusals end the loop.
pub(crate) fn drive<S: Storage + ?Sized>(
    transfer: &mut Transfer,
    socket: &UdpSocket,
    storage: &mut S,
    epoch: Instant,
    hooks: &mut dyn Hooks<S>,
) -> io::Result<Result<Stats, TransferError>> {
    let mut send_buf = vec![0u8; transfer.max_datagram_len().max(65_536 + 4)];
    let mut recv_buf = vec![0u8; 65_536 + 4];
    let mut result = None;
    loop {
        let now = epoch.elapsed();
        drain_events(transfer, storage, hooks, now, &mut result);
        if let Some(e) = hooks.cancelled() {
            if result.is_some() {
                break;
            }
            transfer.cancel(now, e);
            drain_events(transfer, storage, hooks, now, &mut result);
        }
        while let Some(t) = transfer.poll_transmit(now, storage, &mut send_buf) {
            let datagram = send_buf.get(..t.len).unwrap_or_default();
            hooks.packet(true, t.destination, datagram);
            match socket.send_to(datagram, t.destination) {
                Ok(_) => {}
                // A lost datagram is the protocol's business; retransmission covers it.
                Err(e) if transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
        // A storage failure met while sending ends the transfer here.
        drain_events(transfer, storage, hooks, now, &mut result);
        hooks.progress(transfer.progress());
        if transfer.is_closed() || (result.is_some() && !hooks.dally()) {
            break;
        }
        let wait = transfer
            .poll_timeout()
            .map_or(POLL, |d| d.saturating_sub(now))
            .clamp(Duration::from_millis(1), POLL);
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut recv_buf) {
            Ok((n, source)) => {
                let datagram = recv_buf.get(..n).unwrap_or_default();
                hooks.packet(false, source, datagram);
                transfer.handle_datagram(epoch.elapsed(), source, datagram, storage);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                transfer.handle_timeout(epoch.elapsed());
            }
            Err(e) if transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(result.unwrap_or(Err(TransferError::Timeout { retries: 0 })))
}

fn drain_events<S: ?Sized>(
    transfer: &mut Transfer,
    storage: &mut S,
    hooks: &mut dyn Hooks<S>,
    now: Duration,
    result: &mut Option<Result<Stats, TransferError>>,
) {
    while let Some(event) = transfer.poll_event() {
        match event {
            Event::Negotiated(n) => hooks.negotiated(&n),
            Event::Finished(Ok(stats)) => match hooks.completed(storage) {
                Ok(()) => *result = Some(Ok(stats)),
                // Replaces the final ACK still waiting in the machine.
                Err(e) => {
                    *result = Some(Err(TransferError::Storage(e.clone())));
                    transfer.cancel(now, e);
                }
            },
            Event::Finished(Err(e)) => *result = Some(Err(e)),
        }
    }
}

/// Errors after which the socket is still usable: an interrupted call, or an ICMP error
/// from an earlier datagram (a peer port that closed).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    )
}
