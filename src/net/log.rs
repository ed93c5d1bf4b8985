//! What the server reports as it runs; the program decides where it goes.
//!
//! Each report goes out through `tracing` as one event whose message is the line a person
//! reads, and whose fields say the same for a program: `event` (`transfer`, `refused`,
//! `ignored`, `packet`, `cut`, `error`), then, as they apply, `peer`, `local`,
//! `direction`, `file` (as asked), `served` and `via` (see
//! [`Served`](crate::tftp::server::Served)), `mode`, `size`, `bytes`, `blocks`,
//! `duration_s`, `resent`, `early_timeouts`, `retries`, `spurious`, `outcome` (`ok`, or a
//! [`TransferError::kind`](crate::tftp::TransferError::kind)), `error`, the options asked
//! for (`asked_blksize`, `asked_timeout`, `asked_tsize`, `asked_windowsize`) and those in
//! force (`blksize`, `timeout`, `tsize`, `windowsize`); for a refusal `code`, `refusal`
//! (the ERROR's message), `detail` and `reason` (as [`metrics`](super::metrics) counts
//! it); `why` for a request ignored; `sent` and `packet` for a packet; `transfers` for
//! transfers cut. Names are escaped as [`Text`] prints them, never quoted Rust-style.

use std::io;
use std::net::SocketAddr;

use super::metrics::{outcome, refusal_reason};
use crate::tftp::server::{Names, Refusal, RefusalCause, Report, Served, direction_word};
use crate::tftp::{OptionName, Text};

/// What the server reports as it runs.
#[derive(Debug)]
#[non_exhaustive]
pub enum LogEvent<'a> {
    /// A transfer ended.
    Transfer(&'a Report),
    /// A request was refused with an ERROR.
    Refused {
        /// The client.
        peer: SocketAddr,
        /// The file, when the request parsed.
        filename: Option<String>,
        /// The file the policy refused, when not the one asked for, and why.
        served: &'a Served,
        /// The ERROR sent.
        refusal: &'a Refusal,
        /// Who refused, and why.
        cause: RefusalCause,
    },
    /// A request was dropped without an answer (at `debug`: a flood would fill the log).
    Ignored {
        /// The client.
        peer: SocketAddr,
        /// The file, when the request parsed.
        filename: Option<String>,
        /// Why.
        why: &'static str,
    },
    /// A packet went out or came in (only with [`ServerConfig::verbose`](super::ServerConfig::verbose)).
    Packet {
        /// True for a packet sent.
        sent: bool,
        /// The other side.
        peer: SocketAddr,
        /// The packet, summarized.
        summary: String,
    },
    /// The server stopped with transfers still running, at the end of the grace period
    /// or at [`Stopper::stop_now`](super::Stopper::stop_now): they were cut (their clients
    /// were sent an ERROR, their uploads removed). Logged once, after every loop stopped.
    CutAtStop {
        /// How many, across all loops.
        transfers: usize,
    },
    /// An I/O error outside any transfer.
    Error(&'a io::Error),
}

pub(crate) type Logger = Box<dyn Fn(&LogEvent<'_>) + Send + Sync>;

/// Emits one transfer's event at `$level`, with its fields.
macro_rules! transfer_event {
    ($level:expr, $report:expr, $text:expr) => {{
        let r: &Report = $report;
        let (i, s, n) = (&r.info, &r.stats, &r.info.negotiated);
        let asked = |o| i.requested.raw(o);
        tracing::event!(
            $level,
            event = "transfer",
            peer = %i.peer,
            local = i.local.map(tracing::field::display),
            direction = direction_word(i.direction),
            file = i.filename.as_str(),
            served = i.served.name.as_deref(),
            via = i.served.via.as_deref(),
            mode = i.mode.as_str(),
            size = i.size,
            bytes = s.bytes,
            blocks = s.blocks,
            duration_s = s.duration.as_secs_f64(),
            resent = s.retransmissions,
            early_timeouts = s.early_timeouts,
            retries = s.retries,
            spurious = s.spurious,
            outcome = outcome(&r.result),
            error = r.result.as_ref().err().map(tracing::field::display),
            asked_blksize = asked(OptionName::Blksize),
            asked_timeout = asked(OptionName::Timeout),
            asked_tsize = asked(OptionName::Tsize),
            asked_windowsize = asked(OptionName::Windowsize),
            blksize = n.blksize,
            timeout = n.timeout,
            tsize = n.tsize,
            windowsize = n.windowsize,
            "{}",
            $text
        )
    }};
}

impl LogEvent<'_> {
    /// Emits the event through `tracing`: transfers and refusals at `info` (a failed
    /// transfer at `warn`), packets and ignored requests at `debug`, cut transfers at
    /// `warn`, I/O errors at `error`. `verbose` lines also say how a file served under
    /// another name was found.
    pub(crate) fn trace(&self, verbose: bool) {
        match self {
            LogEvent::Transfer(report) => {
                let text = Verbose {
                    event: self,
                    verbose,
                };
                match &report.result {
                    Err(e) if !quiet_failure(e) => {
                        transfer_event!(tracing::Level::WARN, report, text)
                    }
                    _ => transfer_event!(tracing::Level::INFO, report, text),
                }
            }
            LogEvent::Refused {
                peer,
                filename,
                served,
                refusal,
                cause,
            } => {
                let text = Verbose {
                    event: self,
                    verbose,
                };
                tracing::info!(
                    event = "refused",
                    peer = %peer,
                    file = filename.as_deref(),
                    served = served.name.as_deref(),
                    via = served.via.as_deref(),
                    code = refusal.code.as_u16(),
                    refusal = %Text::from(refusal.message.as_ref()),
                    detail = refusal.detail.as_deref(),
                    reason = refusal_reason(*cause, refusal.code),
                    "{text}"
                );
            }
            LogEvent::Ignored {
                peer,
                filename,
                why,
            } => tracing::debug!(
                event = "ignored",
                peer = %peer,
                file = filename.as_deref(),
                why = *why,
                "{self}"
            ),
            LogEvent::Packet {
                sent,
                peer,
                summary,
            } => tracing::debug!(
                event = "packet",
                sent = *sent,
                peer = %peer,
                packet = summary.as_str(),
                "{self}"
            ),
            LogEvent::CutAtStop { transfers } => {
                tracing::warn!(event = "cut", transfers = *transfers as u64, "{self}")
            }
            LogEvent::Error(e) => tracing::error!(event = "error", error = %e, "{self}"),
        }
    }
}

/// The line a person reads, as the log prints it. The alternate form (`{:#}`) adds what
/// `-v` adds: how a file served under another name was found.
impl std::fmt::Display for LogEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verbose = f.alternate();
        match self {
            LogEvent::Transfer(report) if verbose => write!(f, "{report:#}"),
            LogEvent::Transfer(report) => write!(f, "{report}"),
            LogEvent::Refused {
                peer,
                filename,
                served,
                refusal,
                ..
            } => {
                write!(f, "{peer} refused")?;
                if let Some(asked) = filename.as_deref() {
                    let names = Names {
                        asked,
                        served,
                        verbose,
                    };
                    write!(f, " {names}")?;
                }
                write!(f, ": {refusal}")
            }
            LogEvent::Ignored {
                peer,
                filename,
                why,
            } => {
                write!(f, "{peer} ignored{}: {why}", quoted(filename.as_deref()))
            }
            LogEvent::Packet {
                sent,
                peer,
                summary,
            } => {
                let arrow = if *sent { "->" } else { "<-" };
                write!(f, "{arrow} {peer} {summary}")
            }
            LogEvent::CutAtStop { transfers } => write!(
                f,
                "stopped: cut {transfers} running transfer(s), sending their clients an ERROR"
            ),
            LogEvent::Error(e) => write!(f, "{e}"),
        }
    }
}

/// An event's line, in the alternate form when `verbose`: formatted only if a subscriber
/// takes the event.
struct Verbose<'a> {
    event: &'a LogEvent<'a>,
    verbose: bool,
}

impl std::fmt::Display for Verbose<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.verbose {
            write!(f, "{:#}", self.event)
        } else {
            write!(f, "{}", self.event)
        }
    }
}

/// ` "name"`, as a log shows a requested name (already escaped, see [`Text`]), or nothing.
fn quoted(filename: Option<&str>) -> String {
    filename.map_or_else(String::new, |f| format!(" \"{f}\""))
}

/// Ends that happen by the thousand under a spoofed flood, or by a client's own choice:
/// not worth a warning each.
fn quiet_failure(e: &crate::tftp::TransferError) -> bool {
    use crate::tftp::TransferError;
    e.is_clean() || matches!(e, TransferError::Unanswered | TransferError::Abandoned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedder's logger can print an event as the program's log does:
    /// `with_logger(|e| eprintln!("{e}"))`.
    #[test]
    fn an_event_prints_as_its_log_line() {
        let peer: SocketAddr = "192.0.2.7:1234".parse().unwrap();
        let refusal = Refusal::new(crate::tftp::ErrorCode::FileNotFound, "file not found");
        let served = Served::new();
        let refused = LogEvent::Refused {
            peer,
            filename: Some("pxelinux.0".into()),
            served: &served,
            refusal: &refusal,
            cause: RefusalCause::Policy,
        };
        assert_eq!(
            refused.to_string(),
            "192.0.2.7:1234 refused \"pxelinux.0\": ERROR 1 file not found"
        );
        let ignored = LogEvent::Ignored {
            peer,
            filename: None,
            why: "too many unanswered transfers from this address",
        };
        assert_eq!(
            ignored.to_string(),
            "192.0.2.7:1234 ignored: too many unanswered transfers from this address"
        );
        assert_eq!(
            LogEvent::CutAtStop { transfers: 2 }.to_string(),
            "stopped: cut 2 running transfer(s), sending their clients an ERROR"
        );
    }
}
