//! Received blocks reach a file in batches: blocks are gathered and written many at a
//! time, one system call for dozens of them, and a driver that flushes before it waits
//! (`Storage::flush`) has them written after the ACK went out, while the peer sends on. A
//! block of half the batch or more goes straight through, since gathering it would only
//! copy it once more.

use std::fs::File;

use crate::tftp::{Storage, StorageError};

/// A file written through a batch; [`Storage::commit`] writes what is left and syncs.
#[derive(Debug)]
pub(crate) struct BatchedFile {
    file: File,
    pending: Vec<u8>,
    /// Bytes gathered at most before they are written.
    batch: usize,
}

impl BatchedFile {
    /// A batch of a client's download: a window of 64 blocks of 1468 bytes, or of 4
    /// blocks of 64 KiB, is written in one call after its ACK.
    pub(crate) const DOWNLOAD: usize = 256 * 1024;
    /// A batch of one of a server's many uploads, which each hold one.
    pub(crate) const UPLOAD: usize = 64 * 1024;

    /// Writes `file` in batches of `batch` bytes, allocated on the first block.
    pub(crate) fn new(file: File, batch: usize) -> BatchedFile {
        BatchedFile {
            file,
            pending: Vec::new(),
            batch,
        }
    }

    /// The file, for what is not writing (its metadata, owner, name): nothing gathered
    /// is written by this.
    pub(crate) fn get_ref(&self) -> &File {
        &self.file
    }

    /// The file, with everything gathered written to it.
    pub(crate) fn flushed(&mut self) -> Result<&File, StorageError> {
        self.flush()?;
        Ok(&self.file)
    }
}

/// Write-only: what is gathered is not in the file yet, so a read would miss it.
impl Storage for BatchedFile {
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, StorageError> {
        Err(StorageError::write_only())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        if self.pending.len() + data.len() > self.batch {
            self.flush()?;
        }
        if data.len() >= self.batch / 2 {
            return Storage::write(&mut self.file, data);
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(self.batch);
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = Storage::write(&mut self.file, &self.pending);
        self.pending.clear();
        written
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.flush()?;
        self.file.commit()
    }
}
