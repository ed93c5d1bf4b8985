//! What an endpoint tells its driver and application: its events, and the report of a
//! transfer that ended, which is also its log line.

use alloc::string::String;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use super::TransferId;
use crate::tftp::machine::handshake::Negotiated;
use crate::tftp::machine::policy::{Refusal, Served};
use crate::tftp::machine::transfer::{Stats, TransferError};
use crate::tftp::wire::{Direction, Mode, OptionName, Options};

#[cfg(doc)]
use super::{Endpoint, Outbound};
#[cfg(doc)]
use crate::tftp::Storage;
#[cfg(doc)]
use crate::tftp::machine::policy::Limits;

/// What a request asked for and what it was granted: what a log line or a metric needs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferInfo {
    /// The client.
    pub peer: SocketAddr,
    /// The local address the request was sent to, when known.
    pub local: Option<IpAddr>,
    /// The file, as requested (escaped for printing, see [`Text`](crate::tftp::Text)).
    pub filename: String,
    /// Which file the policy served, when not the one asked for, and why (see
    /// [`Policy::read_served`](crate::tftp::server::Policy::read_served)).
    pub served: Served,
    /// The file's size, when the policy told it (a read).
    pub size: Option<u64>,
    /// Read (the client downloads) or write (it uploads).
    pub direction: Direction,
    /// Octet or netascii.
    pub mode: Mode,
    /// The known options the client asked for (unknown ones are not kept).
    pub requested: Options<'static>,
    /// What it was granted.
    pub negotiated: Negotiated,
}

/// How a transfer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The request.
    pub info: TransferInfo,
    /// Counters up to the end, also when it failed.
    pub stats: Stats,
    /// How it ended.
    pub result: Result<(), TransferError>,
}

impl fmt::Display for Report {
    /// The one-line log of a transfer: peer, direction, file (and the file served, when the
    /// policy served another), bytes, time, throughput, retransmissions, outcome, and the
    /// options asked for with what they were granted. The alternate form (`{:#}`) also
    /// says how the file served was found ([`Served::via`]), for a verbose log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.stats.duration.as_secs_f64();
        let rate = if secs > 0.0 {
            self.stats.bytes as f64 / secs / 1e6
        } else {
            0.0
        };
        let names = Names {
            asked: &self.info.filename,
            served: &self.info.served,
            verbose: f.alternate(),
        };
        write!(
            f,
            "{} {} {names}: {} bytes in {secs:.3}s ({rate:.1} MB/s), ",
            self.info.peer,
            direction_word(self.info.direction),
            self.stats.bytes
        )?;
        self.write_resent(f)?;
        match &self.result {
            Ok(()) => f.write_str("ok"),
            Err(e) if e.is_clean() => write!(f, "ended: {e}"),
            Err(e) => write!(f, "failed: {e}"),
        }?;
        if self.info.mode == Mode::Netascii {
            f.write_str("; netascii")?;
        }
        self.write_options(f)
    }
}

impl Report {
    /// `12 resent (3 early timeouts, 1 retry, 1 spurious), `: packets sent again, and the
    /// timeouts behind them by kind, in the words of [`TransferError::Timeout`]'s retries.
    fn write_resent(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(f, "{} resent", s.retransmissions)?;
        let kinds = [
            (s.early_timeouts, "early timeout", "early timeouts"),
            (s.retries, "retry", "retries"),
            (s.spurious, "spurious", "spurious"),
        ];
        let mut sep = " (";
        for (n, one, many) in kinds {
            if n > 0 {
                let word = if n == 1 { one } else { many };
                write!(f, "{sep}{n} {word}")?;
                sep = ", ";
            }
        }
        if sep == ", " {
            f.write_str(")")?;
        }
        f.write_str(", ")
    }

    /// `; blksize 1468, windowsize 16 (asked 64), tsize 300000`: each option asked for,
    /// with the value granted and, where it differs, the one asked. A tsize left out of
    /// the answer was not refused (a client asks it of every read): the server announces
    /// no size in netascii, nor for an empty file (see
    /// [`Negotiated::tsize`](crate::tftp::Negotiated::tsize)), nor one it does not know.
    fn write_options(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (asked, got) = (&self.info.requested, &self.info.negotiated);
        let granted = [
            (OptionName::Blksize, Some(u64::from(got.blksize))),
            (OptionName::Timeout, got.timeout.map(u64::from)),
            (OptionName::Tsize, got.tsize),
            (OptionName::Windowsize, Some(u64::from(got.windowsize))),
        ];
        let mut sep = "; ";
        for (option, granted) in granted {
            let Some(wanted) = asked.raw(option) else {
                continue;
            };
            match granted {
                Some(g) if g == wanted || option == OptionName::Tsize => {
                    write!(f, "{sep}{option} {g}")?
                }
                Some(g) => write!(f, "{sep}{option} {g} (asked {wanted})")?,
                None if option == OptionName::Tsize => {
                    let why = if self.info.mode == Mode::Netascii {
                        "not announced (netascii)"
                    } else if self.info.size == Some(0) {
                        "0 (not announced: empty file)"
                    } else {
                        "not announced (size unknown)"
                    };
                    write!(f, "{sep}{option} {why}")?
                }
                None => write!(f, "{sep}{option} refused (asked {wanted})")?,
            }
            sep = ", ";
        }
        Ok(())
    }
}

/// `read` or `write`, as a log says it.
pub(crate) fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Read => "read",
        Direction::Write => "write",
    }
}

/// A request's file as a log line names it: `"asked"`, then ` -> "served"` when the
/// policy served another name, then, when `verbose`, ` by how` when it said how. Names
/// are printed as sent, already escaped (see [`Text`](crate::tftp::Text)): a backslash
/// is one backslash.
pub(crate) struct Names<'a> {
    pub(crate) asked: &'a str,
    pub(crate) served: &'a Served,
    pub(crate) verbose: bool,
}

impl fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.asked)?;
        if let Some(name) = &self.served.name {
            write!(f, " -> \"{name}\"")?;
        }
        match &self.served.via {
            Some(via) if self.verbose => write!(f, " by {via}"),
            _ => Ok(()),
        }
    }
}

/// Why a request was refused: the application's policy said no, or the endpoint did,
/// for one of its own reasons. For a log or a metric that counts refusals by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalCause {
    /// The [`Policy`](crate::tftp::server::Policy) refused it; the refusal's code says
    /// how (file not found, access violation, ...).
    Policy,
    /// [`Limits::max_transfers`] transfers were running.
    Busy,
    /// The client's address held [`Limits::max_per_address`] transfers.
    PerAddress,
    /// The server was stopping ([`Endpoint::close`](super::Endpoint::close)).
    ShuttingDown,
    /// The request did not parse.
    Malformed,
    /// The request asked for something the server does not do (mail mode).
    Unsupported,
    /// The answer could not be built (an OACK too large to encode, say).
    Unanswerable,
}

impl RefusalCause {
    /// A short, stable name: `policy`, `busy`, `per_address`, `shutting_down`,
    /// `malformed`, `unsupported`, `unanswerable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefusalCause::Policy => "policy",
            RefusalCause::Busy => "busy",
            RefusalCause::PerAddress => "per_address",
            RefusalCause::ShuttingDown => "shutting_down",
            RefusalCause::Malformed => "malformed",
            RefusalCause::Unsupported => "unsupported",
            RefusalCause::Unanswerable => "unanswerable",
        }
    }
}

/// Something the driver or the application should know or do.
#[derive(Debug)]
#[non_exhaustive]
pub enum EndpointEvent<S> {
    /// A request was admitted and its transfer started.
    Started {
        /// The transfer.
        id: TransferId,
        /// The request and what was granted.
        info: TransferInfo,
    },
    /// A request was refused; its ERROR was returned by [`Endpoint::handle`].
    Refused {
        /// The client.
        peer: SocketAddr,
        /// The file, when the request parsed.
        filename: Option<String>,
        /// The file the policy refused, when not the one asked for, and why.
        served: Served,
        /// The ERROR sent.
        refusal: Refusal,
        /// Who refused, and why.
        cause: RefusalCause,
    },
    /// A request was dropped without an answer: its address holds as many transfers whose
    /// client has not answered as [`Limits::max_unanswered_per_address`] allows. A real
    /// client asks again after its timeout; a forged flood is reflected nowhere.
    Ignored {
        /// The client.
        peer: SocketAddr,
        /// The file, when the request parsed.
        filename: Option<String>,
        /// Why, for a log.
        why: &'static str,
    },
    /// Every block of an upload is stored. Put it in place ([`Storage::commit`]), anywhere
    /// and on any thread, then tell the endpoint with [`Endpoint::committed`]: only then
    /// does the client hear the final ACK (or the error).
    Commit {
        /// The transfer.
        id: TransferId,
        /// Its storage, handed over.
        storage: S,
    },
    /// A transfer ended; it may still dally to re-ACK a repeated final block.
    Ended {
        /// The transfer.
        id: TransferId,
        /// What happened.
        report: Report,
    },
    /// The transfer is gone: close its socket ([`Outbound::Transfer`]).
    Closed {
        /// The transfer.
        id: TransferId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::time::Duration;

    fn report(name: &str, served: Served, size: Option<u64>, tsize: Option<u64>) -> Report {
        let requested = Options {
            tsize: Some(0),
            ..Options::default()
        };
        Report {
            info: TransferInfo {
                peer: "192.0.2.7:2070".parse().unwrap(),
                local: None,
                filename: name.to_string(),
                served,
                size,
                direction: Direction::Read,
                mode: Mode::Octet,
                requested,
                negotiated: Negotiated {
                    tsize,
                    ..Negotiated::default()
                },
            },
            stats: Stats {
                duration: Duration::from_millis(2),
                ..Stats::default()
            },
            result: Ok(()),
        }
    }

    #[test]
    fn the_file_served_follows_the_name_asked_and_verbose_says_how() {
        let served = Served {
            name: Some("pxelinux.cfg/192.0.2.7/default".to_string()),
            via: Some("remap rules (lines 2, 3)".to_string()),
        };
        let r = report("/pxelinux.cfg/default", served, Some(4), Some(4));
        let line = r.to_string();
        assert!(
            line.starts_with(
                r#"192.0.2.7:2070 read "/pxelinux.cfg/default" -> "pxelinux.cfg/192.0.2.7/default": 0 bytes"#
            ),
            "{line}"
        );
        let verbose = alloc::format!("{r:#}");
        assert!(
            verbose
                .contains(r#"-> "pxelinux.cfg/192.0.2.7/default" by remap rules (lines 2, 3): "#),
            "{verbose}"
        );
    }

    #[test]
    fn a_tsize_left_out_is_not_called_refused() {
        let empty = report("empty", Served::new(), Some(0), None).to_string();
        assert!(
            empty.ends_with("; tsize 0 (not announced: empty file)"),
            "{empty}"
        );
        let unknown = report("pipe", Served::new(), None, None).to_string();
        assert!(
            unknown.ends_with("; tsize not announced (size unknown)"),
            "{unknown}"
        );
        let mut text = report("notes.txt", Served::new(), Some(10), None);
        text.info.mode = Mode::Netascii;
        let text = text.to_string();
        assert!(text.ends_with("; tsize not announced (netascii)"), "{text}");
    }
}
