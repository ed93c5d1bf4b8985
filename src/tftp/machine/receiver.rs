//! The side that receives DATA: a server answering WRQ, or a client doing RRQ.

use super::storage::{Storage, StorageError};
use crate::tftp::wire::Mode;
use crate::tftp::wire::netascii::NetasciiDecoder;

/// What a DATA packet calls for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DataOutcome {
    /// Nothing to send now.
    Wait,
    /// A new block in order, inside a window: nothing to send, but progress was made.
    InOrder,
    /// Send ACK for this block.
    Ack(u16),
    /// The final block arrived and was stored: send its ACK, then dally.
    Final(u16),
}

/// Blocks are counted from 1 as u64 here; only the wire number wraps at 65535.
#[derive(Debug)]
pub(crate) struct Receiver {
    blksize: usize,
    windowsize: u64,
    netascii: Option<NetasciiDecoder>,
    /// Next block wanted.
    expected: u64,
    /// In-order blocks since the last ACK.
    since_ack: u64,
    /// `expected` when a gap was last reported, so a gap is reported once.
    gap_reported: Option<u64>,
}

impl Receiver {
    pub(crate) fn new(blksize: u16, windowsize: u16, mode: Mode) -> Receiver {
        Receiver {
            blksize: usize::from(blksize),
            windowsize: u64::from(windowsize),
            netascii: (mode == Mode::Netascii).then(NetasciiDecoder::new),
            expected: 1,
            since_ack: 0,
            gap_reported: None,
        }
    }

    pub(crate) fn blksize(&self) -> usize {
        self.blksize
    }

    /// True when `block` is the next one wanted, the one [`on_data`](Self::on_data) would
    /// store.
    pub(crate) fn is_next(&self, block: u16) -> bool {
        block == self.expected as u16
    }

    /// Blocks received in order so far.
    pub(crate) fn received(&self) -> u64 {
        self.expected - 1
    }

    /// The ACK that tells the sender where we are.
    pub(crate) fn last_in_order(&self) -> u16 {
        (self.expected - 1) as u16
    }

    /// An ACK of [`last_in_order`](Self::last_in_order) goes out on a timeout: the
    /// sender starts its next window after it, so the window count starts afresh.
    pub(crate) fn ack_sent(&mut self) -> u16 {
        self.since_ack = 0;
        self.last_in_order()
    }

    /// Handles DATA; `Ok(n)` file bytes stored and what to answer.
    pub(crate) fn on_data<S: Storage + ?Sized>(
        &mut self,
        block: u16,
        data: &[u8],
        storage: &mut S,
    ) -> Result<(u64, DataOutcome), StorageError> {
        if data.len() > self.blksize {
            return Ok((0, DataOutcome::Wait));
        }
        let ahead = u64::from(block.wrapping_sub(self.expected as u16));
        if ahead == 0 {
            let stored = self.store(data, storage)?;
            self.expected += 1;
            self.since_ack += 1;
            if data.len() < self.blksize {
                let mut flushed = 0;
                if let Some(dec) = &mut self.netascii {
                    dec.finish(|b| {
                        flushed += b.len() as u64;
                        storage.write(b)
                    })?;
                }
                return Ok((stored + flushed, DataOutcome::Final(block)));
            }
            if self.since_ack >= self.windowsize {
                self.since_ack = 0;
                return Ok((stored, DataOutcome::Ack(block)));
            }
            return Ok((stored, DataOutcome::InOrder));
        }
        if ahead < self.windowsize {
            // A gap (RFC 7440): say once what we have, the sender resends from there.
            if self.gap_reported == Some(self.expected) {
                return Ok((0, DataOutcome::Wait));
            }
            self.gap_reported = Some(self.expected);
            self.since_ack = 0;
            return Ok((0, DataOutcome::Ack(self.last_in_order())));
        }
        // Behind: a resent block we have. Re-ACK only the newest one we hold, which answers
        // both a lost ACK in lockstep and a window resent after a lost ACK, without one ACK
        // per duplicate.
        if block == self.last_in_order() && self.expected > 1 {
            self.since_ack = 0;
            return Ok((0, DataOutcome::Ack(block)));
        }
        Ok((0, DataOutcome::Wait))
    }

    fn store<S: Storage + ?Sized>(
        &mut self,
        data: &[u8],
        storage: &mut S,
    ) -> Result<u64, StorageError> {
        match &mut self.netascii {
            Some(dec) => {
                let mut n = 0;
                dec.decode(data, |b| {
                    n += b.len() as u64;
                    storage.write(b)
                })?;
                Ok(n)
            }
            None => {
                storage.write(data)?;
                Ok(data.len() as u64)
            }
        }
    }
}
