//! A file being sent, read ahead of the window: one `pread` fills a small buffer that the
//! next blocks are copied from, so a lock-step transfer of small blocks does not cost a
//! system call per block. A window as large as the buffer is read straight into its
//! datagrams instead (one `preadv`), with no copy.

use std::fs::File;

use crate::tftp::{Segments, Storage, StorageError};

/// Bytes read ahead: a few of the common block sizes (1468 and under), small enough that a
/// thousand transfers hold little memory.
const AHEAD: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct ReadAhead {
    file: File,
    /// Allocated on the first small read.
    buf: Vec<u8>,
    /// File offset of `buf[0]`, and how many bytes of `buf` are valid.
    start: u64,
    filled: usize,
}

impl ReadAhead {
    pub(crate) fn new(file: File) -> ReadAhead {
        ReadAhead {
            file,
            buf: Vec::new(),
            start: 0,
            filled: 0,
        }
    }

    /// The buffered bytes from `offset` on, if the buffer holds `offset`.
    fn buffered(&self, offset: u64) -> Option<&[u8]> {
        let at = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        (at < self.filled).then(|| &self.buf[at..self.filled])
    }

    fn refill(&mut self, offset: u64) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            self.buf = vec![0; AHEAD];
        }
        self.filled = 0;
        self.filled = self.file.read_at(offset, &mut self.buf)?;
        self.start = offset;
        Ok(())
    }
}

impl Storage for ReadAhead {
    fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize, StorageError> {
        if out.len() >= AHEAD {
            return self.file.read_at(offset, out);
        }
        let whole = self.buffered(offset).is_some_and(|b| b.len() >= out.len());
        // Short of the end of the buffer: refill from here (at the end of the file the
        // refill is short too, and what it has is all there is).
        if !whole {
            self.refill(offset)?;
        }
        let have = self.buffered(offset).unwrap_or_default();
        let n = have.len().min(out.len());
        out[..n].copy_from_slice(&have[..n]);
        Ok(n)
    }

    fn read_segments_at(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        layout: Segments,
    ) -> Result<usize, StorageError> {
        if layout.len * layout.count >= AHEAD {
            return self.file.read_segments_at(offset, buf, layout);
        }
        layout.read_each(self, offset, buf)
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::read_only())
    }
}
