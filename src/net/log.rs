//! What the server reports as it runs; the program decides where it goes.

use std::io;
use std::net::SocketAddr;

use crate::tftp::Text;
use crate::tftp::server::{Refusal, Report};

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
        /// The ERROR sent.
        refusal: &'a Refusal,
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
    Cut {
        /// How many, across all loops.
        transfers: usize,
    },
    /// An I/O error outside any transfer.
    Error(&'a io::Error),
}

pub(crate) type Logger = Box<dyn Fn(&LogEvent<'_>) + Send + Sync>;

impl LogEvent<'_> {
    /// Emits the event through `tracing`: transfers and refusals at `info` (a failed
    /// transfer at `warn`), packets at `debug`, cut transfers at `warn`, I/O errors at
    /// `error`.
    pub(crate) fn trace(&self) {
        match self {
            LogEvent::Transfer(report) => match &report.result {
                Err(e) if !quiet_failure(e) => tracing::warn!("{report}"),
                _ => tracing::info!("{report}"),
            },
            LogEvent::Refused {
                peer,
                filename,
                refusal,
            } => {
                let file = quoted(filename.as_deref());
                let detail = refusal
                    .detail
                    .as_ref()
                    .map_or_else(String::new, |d| format!(" ({})", Text::from(d.as_str())));
                tracing::info!(
                    "{peer} refused{file}: ERROR {} {}{detail}",
                    refusal.code.as_u16(),
                    Text::from(refusal.message.as_ref()),
                );
            }
            LogEvent::Ignored {
                peer,
                filename,
                why,
            } => {
                let file = quoted(filename.as_deref());
                tracing::debug!("{peer} ignored{file}: {why}");
            }
            LogEvent::Packet {
                sent,
                peer,
                summary,
            } => {
                let arrow = if *sent { "->" } else { "<-" };
                tracing::debug!("{arrow} {peer} {summary}");
            }
            LogEvent::Cut { transfers } => {
                tracing::warn!(
                    "stopped: cut {transfers} running transfer(s), sending their clients an ERROR"
                )
            }
            LogEvent::Error(e) => tracing::error!("{e}"),
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
