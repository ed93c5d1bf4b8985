//! How a transfer fails: the one error type of both sides' machines.

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt;

use super::storage::StorageError;
use crate::tftp::wire::{ErrorCode, ParseError};

#[cfg(doc)]
use super::{ClientRequest, Transfer, policy::Limits};

/// How a transfer failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    /// The peer stayed silent through every retransmission.
    Timeout {
        /// Retransmissions made before giving up.
        retries: u32,
    },
    /// The client never answered the server's first packet, and the server reclaimed the
    /// transfer (see [`Limits::unanswered_timeout`](crate::tftp::server::Limits::unanswered_timeout)).
    Unanswered,
    /// The peer sent an ERROR packet.
    Peer {
        /// Its code.
        code: ErrorCode,
        /// Its message, decoded lossily.
        message: String,
    },
    /// The peer answered our OACK with ERROR 8. UEFI firmware does this on purpose to learn
    /// a file's size: it is a normal end, see [`TransferError::is_clean`].
    OptionsDeclined,
    /// The server's OACK held an option or value we did not ask for; we sent ERROR 8.
    BadOack(&'static str),
    /// The server's first answer was an OACK that does not parse; we sent ERROR 8.
    MalformedOack(ParseError),
    /// A download in octet mode did not match the size the server's OACK announced
    /// ([`ClientRequest::tsize`]): more bytes came (we sent ERROR 3 and stored none of
    /// the block that passed it), or the transfer ended with fewer (we sent ERROR 0 in
    /// place of the final ACK, and stored none of the final block).
    SizeMismatch {
        /// The size announced.
        announced: u64,
        /// The bytes received, up to and including the block that broke the rule.
        received: u64,
    },
    /// A download passed the client's limit ([`ClientRequest::max_size`]): the server
    /// announced a larger size (we refused its OACK with ERROR 8), or sent more bytes (we
    /// sent ERROR 3 and stored none of the block that passed it).
    TooLarge {
        /// The limit.
        limit: u64,
        /// The size the server announced, when that is what was refused.
        announced: Option<u64>,
    },
    /// The application's storage failed; the peer was sent an ERROR.
    Storage(StorageError),
    /// The application ended the transfer ([`Transfer::abort`]); the peer was sent this
    /// ERROR.
    Aborted {
        /// The code sent.
        code: ErrorCode,
        /// The message sent.
        message: Cow<'static, str>,
    },
    /// The client sent a new request from the same address and port before this transfer
    /// ended (single-port server): it gave this one up.
    Abandoned,
    /// The buffer given to [`Transfer::poll_transmit`] is smaller than
    /// [`Transfer::max_datagram_len`].
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl TransferError {
    /// True for ends that are part of normal operation and not worth a loud log line
    /// (the UEFI option probe).
    pub fn is_clean(&self) -> bool {
        matches!(self, TransferError::OptionsDeclined)
    }

    /// A short, stable name of the kind of end, for logs and metrics that count ends by
    /// kind: `timeout`, `unanswered`, `peer_error`, `options_declined`, `bad_oack`,
    /// `size_mismatch`, `too_large`, `storage`, `aborted`, `abandoned`,
    /// `buffer_too_small`.
    pub const fn kind(&self) -> &'static str {
        match self {
            TransferError::Timeout { .. } => "timeout",
            TransferError::Unanswered => "unanswered",
            TransferError::Peer { .. } => "peer_error",
            TransferError::OptionsDeclined => "options_declined",
            TransferError::BadOack(_) | TransferError::MalformedOack(_) => "bad_oack",
            TransferError::SizeMismatch { .. } => "size_mismatch",
            TransferError::TooLarge { .. } => "too_large",
            TransferError::Storage(_) => "storage",
            TransferError::Aborted { .. } => "aborted",
            TransferError::Abandoned => "abandoned",
            TransferError::BufferTooSmall { .. } => "buffer_too_small",
        }
    }
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Timeout { retries } => {
                write!(f, "timed out: no answer after {retries} retries")
            }
            TransferError::Unanswered => f.write_str("the client never answered"),
            TransferError::Peer { code, message } if message.is_empty() => {
                write!(
                    f,
                    "peer sent ERROR {}: {}",
                    code.as_u16(),
                    code.description()
                )
            }
            TransferError::Peer { code, message } => {
                write!(f, "peer sent ERROR {}: {message}", code.as_u16())
            }
            TransferError::OptionsDeclined => {
                f.write_str("peer declined the negotiated options (error 8)")
            }
            TransferError::BadOack(why) => write!(f, "refused the server's OACK: {why}"),
            TransferError::MalformedOack(e) => {
                write!(f, "refused the server's OACK: it does not parse: {e}")
            }
            TransferError::SizeMismatch {
                announced,
                received,
            } if received > announced => write!(
                f,
                "the server sent more than the {announced} bytes it announced (tsize)"
            ),
            TransferError::SizeMismatch {
                announced,
                received,
            } => write!(
                f,
                "the transfer ended after {received} of the {announced} bytes the server \
                 announced (tsize)"
            ),
            TransferError::TooLarge {
                limit,
                announced: Some(size),
            } => write!(
                f,
                "the file is {size} bytes, larger than the limit of {limit} bytes"
            ),
            TransferError::TooLarge {
                limit,
                announced: None,
            } => write!(f, "the file is larger than the limit of {limit} bytes"),
            TransferError::Storage(e) => write!(f, "storage failed: {e}"),
            TransferError::Aborted { code, message } => {
                write!(f, "aborted with ERROR {}: {message}", code.as_u16())
            }
            TransferError::Abandoned => f.write_str("abandoned: the client sent a new request"),
            TransferError::BufferTooSmall { needed } => {
                write!(f, "transmit buffer too small: need {needed} bytes")
            }
        }
    }
}

impl core::error::Error for TransferError {}
