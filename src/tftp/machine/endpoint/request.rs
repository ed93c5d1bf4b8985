//! How a request becomes a transfer or a refusal: repeats, the checks before any limit,
//! admission against the limits, the policy's answer and the negotiation.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use super::admission::Over;
use super::{
    Contact, Endpoint, EndpointEvent, Entry, Incoming, Outbound, Outgoing, PortMode, RefusalCause,
    SHUTTING_DOWN, Stage, TransferId, TransferInfo,
};
use crate::tftp::Instant;
use crate::tftp::machine::handshake::{SizeRules, negotiate};
use crate::tftp::machine::policy::{Policy, Refusal, Served};
use crate::tftp::machine::transfer::{Transfer, TransferError, encode_error};
use crate::tftp::wire::{Direction, ErrorCode, Mode, Options, Packet, Request};

/// A refusal on its way to the client and into [`EndpointEvent::Refused`].
struct Refused {
    refusal: Refusal,
    served: Served,
    cause: RefusalCause,
}

impl Refused {
    fn new(refusal: Refusal, cause: RefusalCause) -> Refused {
        Refused {
            refusal,
            served: Served::new(),
            cause,
        }
    }
}

impl<P: Policy> Endpoint<P> {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        listener: usize,
        incoming: &Incoming,
        datagram: &[u8],
        buf: &mut [u8],
    ) -> Option<Outgoing> {
        let peer = incoming.source;
        if let Some(&id) = self.by_peer.get(&(listener, peer)) {
            if self.is_repeat(id, datagram) {
                // The transfer answers it already, on its own timer.
                return None;
            }
            if self.ports == PortMode::Single {
                // One transfer per client port: the client gave the old one up.
                if let Some(e) = self.entry_mut(id) {
                    e.transfer.drop_silently(now, TransferError::Abandoned);
                }
                self.sync_transfer(now, id);
            }
        }
        let (request, direction) = match Packet::parse(datagram) {
            Ok(Packet::Rrq(r)) => (r, Direction::Read),
            Ok(Packet::Wrq(r)) => (r, Direction::Write),
            Ok(_) => return None,
            Err(e) => {
                let refusal = Refusal::new(
                    ErrorCode::IllegalOperation,
                    alloc::format!("malformed request: {e}"),
                );
                let refused = Refused::new(refusal, RefusalCause::Malformed);
                return self.refuse(listener, incoming, refused, None, buf);
            }
        };
        let filename = Some(request.filename.to_string());
        if let Err(refused) = self.check_request(&request) {
            return self.refuse(listener, incoming, refused, filename, buf);
        }
        let limits = self.limits;
        match self.admission.with(|a| a.admit(peer.ip(), &limits)) {
            Ok(()) => {}
            Err(Over::Unanswered) => {
                // No answer at all: a forged flood reflects nothing, and a real client
                // asks again once its earlier transfers answered.
                self.events.push_back(EndpointEvent::Ignored {
                    peer,
                    filename,
                    why: "too many unanswered transfers from this address",
                });
                return None;
            }
            Err(over) => {
                let (message, cause) = match over {
                    Over::PerAddress => (
                        "too many transfers from your address, try again later",
                        RefusalCause::PerAddress,
                    ),
                    _ => ("server busy, try again later", RefusalCause::Busy),
                };
                let refused = Refused::new(Refusal::new(ErrorCode::NotDefined, message), cause);
                return self.refuse(listener, incoming, refused, filename, buf);
            }
        }
        let (transfer, storage, info) =
            match self.open(now, peer, incoming.local, &request, direction) {
                Ok(admitted) => admitted,
                Err(refused) => {
                    self.admission.with(|a| a.release(peer.ip(), false));
                    return self.refuse(listener, incoming, refused, filename, buf);
                }
            };
        let id = self.insert(Entry {
            transfer,
            storage: Some(storage),
            info: info.clone(),
            listener,
            request: datagram.to_vec(),
            contact: Contact::Awaited {
                reclaim_at: Some(now.saturating_add(self.limits.unanswered_timeout)),
            },
            timer: None,
            queued: false,
            stage: Stage::Running,
        });
        self.by_peer.insert((listener, peer), id);
        self.events.push_back(EndpointEvent::Started { id, info });
        self.enqueue(id);
        self.sync_transfer(now, id);
        None
    }

    /// A request identical to the one that started a transfer still waiting for its
    /// client. A client that has answered sends a new request when it wants the file
    /// again (tftp-hpa's interactive client reuses its port), except in single-port mode,
    /// where a running transfer is the client's only one.
    fn is_repeat(&self, id: TransferId, datagram: &[u8]) -> bool {
        self.entry(id).is_some_and(|e| {
            !e.transfer.is_finished()
                && e.request == datagram
                && (self.ports == PortMode::Single || e.contact != Contact::Answered)
        })
    }

    /// What refuses a request before any limit is counted.
    fn check_request(&self, request: &Request<'_>) -> Result<(), Refused> {
        if self.is_closing() {
            let refusal = Refusal::new(ErrorCode::NotDefined, SHUTTING_DOWN);
            return Err(Refused::new(refusal, RefusalCause::ShuttingDown));
        }
        if request.mode == Mode::Mail {
            let refusal = Refusal::new(ErrorCode::IllegalOperation, "mail mode is not supported");
            return Err(Refused::new(refusal, RefusalCause::Unsupported));
        }
        Ok(())
    }

    /// Asks the policy, negotiates, and builds the transfer.
    fn open(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        local: Option<IpAddr>,
        request: &Request<'_>,
        direction: Direction,
    ) -> Result<(Transfer, P::Storage, TransferInfo), Refused> {
        let mut served = Served::new();
        let mut size_rules = SizeRules::default();
        let opened = match direction {
            Direction::Read => self.policy.read_served(peer, request.filename, &mut served),
            Direction::Write => {
                let tsize = request.options.tsize;
                // Before `write`: an upload refused for its size opens no storage.
                let limit = self.policy.upload_limit(peer, request.filename);
                size_rules = SizeRules::upload(limit, tsize, request.mode)
                    .map_err(|refusal| Refused::new(refusal, RefusalCause::Policy))?;
                self.policy
                    .write_served(peer, request.filename, tsize, &mut served)
                    .map(|storage| (storage, None))
            }
        };
        let (storage, size) = match opened {
            Ok(opened) => opened,
            Err(refusal) => {
                return Err(Refused {
                    served,
                    ..Refused::new(refusal, RefusalCause::Policy)
                });
            }
        };
        let (negotiated, oack) = match negotiate(
            &request.options,
            &self.limits,
            direction,
            size,
            request.mode,
        ) {
            Ok(answer) => answer,
            Err(e) => {
                let message = alloc::format!("cannot answer: {e}");
                return Err(Refused {
                    served,
                    ..Refused::new(
                        Refusal::new(ErrorCode::NotDefined, message),
                        RefusalCause::Unanswerable,
                    )
                });
            }
        };
        let transfer = Transfer::server(
            now,
            peer,
            self.limits.config,
            direction,
            &negotiated,
            oack,
            request.mode,
            size_rules,
        );
        let o = &request.options;
        let info = TransferInfo {
            peer,
            local,
            filename: request.filename.to_string(),
            served,
            size,
            direction,
            mode: request.mode,
            requested: Options {
                blksize: o.blksize,
                timeout: o.timeout,
                tsize: o.tsize,
                windowsize: o.windowsize,
                unknown: Vec::new(),
            },
            negotiated,
        };
        Ok((transfer, storage, info))
    }

    fn refuse(
        &mut self,
        listener: usize,
        incoming: &Incoming,
        refused: Refused,
        filename: Option<String>,
        buf: &mut [u8],
    ) -> Option<Outgoing> {
        let Refused {
            refusal,
            served,
            cause,
        } = refused;
        let len = encode_error(refusal.code, &refusal.message, buf);
        self.events.push_back(EndpointEvent::Refused {
            peer: incoming.source,
            filename,
            served,
            refusal,
            cause,
        });
        let route = match self.ports {
            PortMode::Single => Outbound::Listener(listener),
            PortMode::PerTransfer => Outbound::OneOff { listener },
        };
        Some(Outgoing {
            route,
            destination: incoming.source,
            source: incoming.local,
            len,
            segment_size: None,
        })
    }
}
