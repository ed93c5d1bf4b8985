//! What an endpoint tells its driver and application: its events, and the report of a
//! transfer that ended, which is also its log line.

use alloc::string::String;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use super::TransferId;
use crate::tftp::machine::handshake::Negotiated;
use crate::tftp::machine::policy::Refusal;
use crate::tftp::machine::transfer::{Stats, TransferError};
use crate::tftp::wire::{Direction, Mode, OptionName, Options};

#[cfg(doc)]
use super::{Endpoint, Route};
#[cfg(doc)]
use crate::tftp::Storage;
#[cfg(doc)]
use crate::tftp::machine::policy::Limits;

/// What a request asked for and what it was granted: what a log line or a metric needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferInfo {
    /// The client.
    pub peer: SocketAddr,
    /// The local address the request was sent to, when known.
    pub local: Option<IpAddr>,
    /// The file, as requested (escaped for printing, see [`Text`](crate::tftp::Text)).
    pub filename: String,
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
    /// The one-line log of a transfer: peer, direction, file, bytes, time, throughput,
    /// retransmissions, outcome, and the options asked for with what they were granted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.info.direction {
            Direction::Read => "read",
            Direction::Write => "write",
        };
        let secs = self.stats.duration.as_secs_f64();
        let rate = if secs > 0.0 {
            self.stats.bytes as f64 / secs / 1e6
        } else {
            0.0
        };
        write!(
            f,
            "{} {dir} \"{}\": {} bytes in {secs:.3}s ({rate:.1} MB/s), ",
            self.info.peer, self.info.filename, self.stats.bytes
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
    /// with the value granted and, where it differs, the one asked.
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
                None => write!(f, "{sep}{option} refused (asked {wanted})")?,
            }
            sep = ", ";
        }
        Ok(())
    }
}

/// Something the driver or the application should know or do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<S> {
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
        /// The ERROR sent.
        refusal: Refusal,
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
    /// The transfer is gone: close its socket ([`Route::Transfer`]).
    Closed {
        /// The transfer.
        id: TransferId,
    },
}
