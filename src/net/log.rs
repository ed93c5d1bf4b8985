//! What the server reports as it runs; the program decides where it goes.

use std::io;
use std::net::SocketAddr;

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
