//! The side that sends DATA: a server answering RRQ, or a client doing WRQ.

use core::time::Duration;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::storage::{Segments, Storage, StorageError};
use crate::tftp::wire::Mode;
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

/// Blocks ready in the caller's buffer, back to back in slots of `DATA_HEADER_LEN +
/// blksize` bytes (the last may be shorter).
pub(crate) struct Blocks {
    pub count: usize,
    /// Bytes from the start of the buffer to the end of the last block.
    pub len: usize,
    /// Blocks among them sent before.
    pub retransmissions: u64,
    /// File bytes of the blocks sent for the first time.
    pub new_bytes: u64,
    /// The first of them opens a window.
    pub first_in_window: bool,
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
    pace: Pace,
}

/// How much of a window goes out back to back, and how long the sender pauses between
/// bursts (RFC 7440 section 6 asks a sender to react to loss). A window larger than the
/// receiver's socket buffer loses its tail every time; sending it in bursts with a pause
/// between lets the receiver drain. The receiver still ACKs only whole windows, so the
/// window itself never shrinks, only the bursts.
///
/// Two limits of the receiver show as loss and are told apart by the burst: its buffer
/// (a burst too large for it) and its pace (pauses too short for it to drain a burst).
/// A loss halves the burst, or doubles the pause once the burst is a single block; whole
/// windows shorten the pause, and slowly grow the burst, until a loss says where the
/// receiver's limits are.
#[derive(Debug)]
struct Pace {
    /// Blocks sent back to back before a pause; the whole window while nothing is lost.
    burst: u64,
    /// The burst after the last loss: growth above it is cautious.
    ceiling: u64,
    /// Windows acknowledged whole since the burst last grew.
    clean: u32,
    /// Blocks of the current burst sent.
    sent: u64,
    /// A window lost its tail or had a gap before.
    lost_before: bool,
    /// The pause after each burst.
    gap: Duration,
}

/// Windows acknowledged whole, at the burst that once lost, before it grows by one block.
const CLEAN_WINDOWS_TO_GROW: u32 = 8;

/// The first burst fits a receive buffer of Linux's default size (208 KiB, of which a
/// little goes to bookkeeping), so that a receiver that never asked for more does not lose
/// the first window's tail before a round trip is known. Windows of small blocks fit whole.
const FIRST_BURST_BYTES: u64 = 192 * 1024;

/// The first pause: a receiver that drains about 400 MB/s empties a first burst in it.
/// On a link slower than that, the link spaces the bursts and the pause costs nothing.
const FIRST_GAP: Duration = Duration::from_micros(500);
/// Bounds of the pause: the shortest a poller's timer keeps to, and the longest a
/// receiver needs for one block (a tenth of the shortest timeout an RTT gives).
const MIN_GAP: Duration = Duration::from_micros(50);
const MAX_GAP: Duration = Duration::from_millis(2);

impl Pace {
    fn new(windowsize: u64, blksize: u64) -> Pace {
        Pace {
            burst: windowsize.min((FIRST_BURST_BYTES / blksize.max(1)).max(1)),
            ceiling: windowsize,
            clean: 0,
            sent: 0,
            lost_before: false,
            gap: FIRST_GAP,
        }
    }

    /// A timeout or a gap: halve the burst, or, at a single block, double the pause.
    fn lost(&mut self) {
        self.lost_before = true;
        if self.burst == 1 {
            self.gap = (self.gap * 2).min(MAX_GAP);
        }
        self.burst = (self.burst / 2).max(1);
        self.ceiling = self.burst;
        self.clean = 0;
    }

    /// A window acknowledged whole: before any loss, the whole window goes out at once from
    /// now on; after one, grow back fast up to the burst that last held, then shorten the
    /// pause by a quarter a window, and grow the burst by a block every few windows.
    fn delivered(&mut self, windowsize: u64) {
        if !self.lost_before {
            self.burst = windowsize;
            return;
        }
        if self.burst < self.ceiling {
            self.burst = (self.burst * 2).min(self.ceiling);
            return;
        }
        self.gap = (self.gap * 3 / 4).max(MIN_GAP);
        self.clean += 1;
        if self.clean >= CLEAN_WINDOWS_TO_GROW && self.burst < windowsize {
            self.burst += 1;
            self.ceiling = self.burst;
            self.clean = 0;
        }
    }
}

impl Sender {
    pub(crate) fn new(blksize: u16, windowsize: u16, mode: Mode) -> Sender {
        let encoding = if mode == Mode::Netascii {
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
            pace: Pace::new(u64::from(windowsize), u64::from(blksize)),
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

    /// After a timeout: send the window again from the first unacknowledged block, in
    /// smaller bursts.
    pub(crate) fn rewind(&mut self) {
        self.next = self.acked + 1;
        self.pace.lost();
        self.pace.sent = 0;
    }

    /// True when the current burst is spent but the window is not: the sender pauses.
    pub(crate) fn burst_spent(&self) -> bool {
        self.pace.sent >= self.pace.burst && self.wants_to_send()
    }

    /// How long to pause once [`burst_spent`](Self::burst_spent).
    pub(crate) fn gap(&self) -> Duration {
        self.pace.gap
    }

    /// The pause after a burst is over.
    pub(crate) fn next_burst(&mut self) {
        self.pace.sent = 0;
    }

    pub(crate) fn on_ack(&mut self, block: u16) -> AckOutcome {
        // The ACK names a block in acked..=sent_high; a window is at most 65535 blocks,
        // so the wire number identifies it uniquely.
        let abs = self.acked + u64::from(block.wrapping_sub(self.acked as u16));
        if abs <= self.acked || abs > self.sent_high {
            return AckOutcome::Ignored;
        }
        if abs >= self.window_end() {
            self.pace.delivered(self.windowsize);
        } else {
            self.pace.lost();
        }
        self.pace.sent = 0;
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

    /// Puts up to `max` blocks of the window into `buf`, one slot of `DATA_HEADER_LEN +
    /// blksize` bytes each, headers included. Octet payloads are read with one call to the
    /// storage, straight into their slots.
    pub(crate) fn next_blocks<S: Storage + ?Sized>(
        &mut self,
        storage: &mut S,
        buf: &mut [u8],
        max: usize,
    ) -> Result<Blocks, SendError> {
        let first = self.next;
        let (len, count, consumed) = match &mut self.encoding {
            Encoding::Octet => {
                let seg = DATA_HEADER_LEN + self.blksize;
                let in_window = usize::try_from(self.window_end() + 1 - first).unwrap_or(1);
                let in_burst =
                    usize::try_from(self.pace.burst.saturating_sub(self.pace.sent)).unwrap_or(1);
                let count = max.min(in_window).min(in_burst).min(buf.len() / seg).max(1);
                let layout = Segments {
                    start: DATA_HEADER_LEN,
                    len: self.blksize,
                    stride: seg,
                    count,
                };
                let read =
                    storage.read_segments_at((first - 1) * self.blksize as u64, buf, layout)?;
                if read > count * self.blksize {
                    return Err(SendError::Storage(StorageError::new(
                        crate::tftp::wire::ErrorCode::NotDefined,
                        "storage read more bytes than asked for",
                    )));
                }
                let full = read / self.blksize;
                // A short block, empty if need be, ends the file.
                let count = if full < count { full + 1 } else { count };
                for i in 0..count {
                    let slot = buf.get_mut(i * seg..).ok_or(SendError::Internal(
                        "a window's blocks outgrew the buffer they were read into",
                    ))?;
                    write_data_header(slot, (first + i as u64) as u16)
                        .map_err(|_| SendError::Internal("no room for a DATA header"))?;
                }
                let last_len = read - (count - 1) * self.blksize;
                (
                    (count - 1) * seg + DATA_HEADER_LEN + last_len,
                    count,
                    read as u64,
                )
            }
            Encoding::Netascii {
                scratch,
                checkpoints,
            } => {
                let Some(start) = checkpoints
                    .get(usize::try_from(first - self.acked - 1).unwrap_or(usize::MAX))
                    .copied()
                else {
                    return Err(SendError::Internal(
                        "no netascii checkpoint for the block to send",
                    ));
                };
                let payload = buf
                    .get_mut(DATA_HEADER_LEN..DATA_HEADER_LEN + self.blksize)
                    .ok_or(SendError::Internal("a buffer below blksize + 4 bytes"))?;
                let raw = storage.read_at(start.offset, scratch)?;
                // A storage that claims more than it was given is not trusted with the rest.
                let read = scratch.get(..raw).ok_or_else(|| {
                    SendError::Storage(StorageError::new(
                        crate::tftp::wire::ErrorCode::NotDefined,
                        "storage read more bytes than asked for",
                    ))
                })?;
                let mut enc = NetasciiEncoder::resume(start.pending);
                let (consumed, written) = enc.encode(read, payload);
                if first > self.sent_high && written == self.blksize {
                    checkpoints.push_back(Checkpoint {
                        block: first + 1,
                        offset: start.offset + consumed as u64,
                        pending: enc.pending(),
                    });
                }
                write_data_header(buf, first as u16)
                    .map_err(|_| SendError::Internal("no room for a DATA header"))?;
                (DATA_HEADER_LEN + written, 1, consumed as u64)
            }
        };
        let end = first + count as u64;
        if len < (count - 1) * (DATA_HEADER_LEN + self.blksize) + DATA_HEADER_LEN + self.blksize {
            self.last = Some(end - 1);
        }
        // Blocks up to `sent_high` went out before; the file bytes counted are the new ones'.
        let resent = self.sent_high.clamp(first - 1, end - 1) + 1 - first;
        let new_bytes = match &self.encoding {
            Encoding::Octet => consumed.saturating_sub(resent * self.blksize as u64),
            Encoding::Netascii { .. } if resent == 0 => consumed,
            Encoding::Netascii { .. } => 0,
        };
        self.sent_high = self.sent_high.max(end - 1);
        self.next = end;
        self.pace.sent += count as u64;
        Ok(Blocks {
            count,
            len,
            retransmissions: resent,
            new_bytes,
            first_in_window: first == self.acked + 1,
        })
    }
}

/// Why the next blocks could not be sent.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The storage failed to read.
    Storage(StorageError),
    /// A rule of the sender's own broke: a bug.
    Internal(&'static str),
}

impl From<StorageError> for SendError {
    fn from(e: StorageError) -> SendError {
        SendError::Storage(e)
    }
}
