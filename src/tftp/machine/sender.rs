//! The side that sends DATA: a server answering RRQ, or a client doing WRQ.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::storage::{Storage, StorageError};
use crate::tftp::wire::netascii::NetasciiEncoder;
use crate::tftp::wire::{DATA_HEADER_LEN, write_data_header};

/// Where a block's bytes start in the file, and the encoder state there (netascii only:
/// one file byte may become two wire bytes, so offsets cannot be computed).
#[derive(Clone, Copy, Debug)]
struct Checkpoint {
    block: u64,
    offset: u64,
    pending: Option<u8>,
}

#[derive(Debug)]
enum Encoding {
    Octet,
    Netascii {
        /// Raw file bytes for one block, read before they are expanded.
        scratch: Vec<u8>,
        /// Start of each block from the first unacknowledged one on, so that a
        /// retransmission re-encodes exactly the same bytes.
        checkpoints: VecDeque<Checkpoint>,
    },
}

/// What an ACK did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Duplicate, stale or out of range: nothing to do (RFC 1123: never resend on it).
    Ignored,
    /// New blocks acknowledged; the next window is due.
    Progress,
    /// The final block is acknowledged.
    Done,
}

/// A block ready in the caller's buffer.
pub(crate) struct Block {
    pub len: usize,
    pub retransmission: bool,
    /// File bytes this block carries, when it is sent for the first time.
    pub new_bytes: u64,
}

/// Blocks are counted from 1 as u64 here; only the wire number wraps at 65535.
#[derive(Debug)]
pub(crate) struct Sender {
    blksize: usize,
    windowsize: u64,
    encoding: Encoding,
    /// Highest block acknowledged.
    acked: u64,
    /// Highest block ever sent.
    sent_high: u64,
    /// Next block to put on the wire in the current window.
    next: u64,
    /// Final block of the file, once a short read has shown it.
    last: Option<u64>,
}

impl Sender {
    pub(crate) fn new(blksize: u16, windowsize: u16, netascii: bool) -> Sender {
        let encoding = if netascii {
            Encoding::Netascii {
                scratch: alloc::vec![0; usize::from(blksize)],
                checkpoints: VecDeque::from([Checkpoint {
                    block: 1,
                    offset: 0,
                    pending: None,
                }]),
            }
        } else {
            Encoding::Octet
        };
        Sender {
            blksize: usize::from(blksize),
            windowsize: u64::from(windowsize),
            encoding,
            acked: 0,
            sent_high: 0,
            next: 1,
            last: None,
        }
    }

    pub(crate) fn blksize(&self) -> usize {
        self.blksize
    }

    /// Blocks acknowledged so far.
    pub(crate) fn acked(&self) -> u64 {
        self.acked
    }

    fn window_end(&self) -> u64 {
        let end = self.acked + self.windowsize;
        self.last.map_or(end, |l| end.min(l))
    }

    /// True while blocks of the current window are still to be sent.
    pub(crate) fn wants_to_send(&self) -> bool {
        self.next <= self.window_end()
    }

    /// After a timeout: send the window again from the first unacknowledged block.
    pub(crate) fn rewind(&mut self) {
        self.next = self.acked + 1;
    }

    pub(crate) fn on_ack(&mut self, block: u16) -> AckOutcome {
        // The ACK names a block in acked..=sent_high; a window is at most 65535 blocks,
        // so the wire number identifies it uniquely.
        let abs = self.acked + u64::from(block.wrapping_sub(self.acked as u16));
        if abs <= self.acked || abs > self.sent_high {
            return AckOutcome::Ignored;
        }
        self.acked = abs;
        if let Encoding::Netascii { checkpoints, .. } = &mut self.encoding {
            while checkpoints.front().is_some_and(|c| c.block <= abs) {
                checkpoints.pop_front();
            }
        }
        if self.last == Some(abs) {
            return AckOutcome::Done;
        }
        // A partial ACK (RFC 7440: the receiver saw a gap) resends from the block after it.
        self.next = abs + 1;
        AckOutcome::Progress
    }

    /// Puts the next block of the window into `buf` (header included).
    pub(crate) fn next_block<S: Storage + ?Sized>(
        &mut self,
        storage: &mut S,
        buf: &mut [u8],
    ) -> Result<Block, StorageError> {
        let n = self.next;
        let payload = buf
            .get_mut(DATA_HEADER_LEN..DATA_HEADER_LEN + self.blksize)
            .ok_or_else(|| internal("transmit buffer smaller than blksize + 4"))?;
        let (len, consumed) = match &mut self.encoding {
            Encoding::Octet => {
                let len = storage.read_at((n - 1) * self.blksize as u64, payload)?;
                (len, len as u64)
            }
            Encoding::Netascii {
                scratch,
                checkpoints,
            } => {
                let Some(start) = checkpoints
                    .get(usize::try_from(n - self.acked - 1).unwrap_or(usize::MAX))
                    .copied()
                else {
                    return Err(internal("netascii checkpoint missing"));
                };
                let raw = storage.read_at(start.offset, scratch)?;
                let mut enc = NetasciiEncoder::resume(start.pending);
                let (consumed, written) =
                    enc.encode(scratch.get(..raw).unwrap_or_default(), payload);
                if n > self.sent_high && written == self.blksize {
                    checkpoints.push_back(Checkpoint {
                        block: n + 1,
                        offset: start.offset + consumed as u64,
                        pending: enc.pending(),
                    });
                }
                (written, consumed as u64)
            }
        };
        write_data_header(buf, n as u16).map_err(|_| internal("transmit buffer too small"))?;
        if len < self.blksize {
            self.last = Some(n);
        }
        let retransmission = n <= self.sent_high;
        self.sent_high = self.sent_high.max(n);
        self.next = n + 1;
        Ok(Block {
            len: DATA_HEADER_LEN + len,
            retransmission,
            new_bytes: if retransmission { 0 } else { consumed },
        })
    }
}

fn internal(message: &'static str) -> StorageError {
    StorageError::new(crate::tftp::wire::ErrorCode::NotDefined, message)
}
