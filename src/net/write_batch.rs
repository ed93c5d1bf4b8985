//! Received blocks reach a file in batches: small blocks are gathered and written many at a
//! time, one system call for dozens of them; a block of the batch's size or more goes
//! straight through, since gathering it would only copy it once more.

use std::fs::File;

use crate::tftp::{Storage, StorageError};

/// Bytes gathered before they are written.
const BATCH: usize = 64 * 1024;

/// A file written through a batch; [`Storage::commit`] writes what is left and syncs.
#[derive(Debug)]
pub(crate) struct BatchedFile {
    file: File,
    pending: Vec<u8>,
}

impl BatchedFile {
    pub(crate) fn new(file: File) -> BatchedFile {
        BatchedFile {
            file,
            pending: Vec::new(),
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

    fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = Storage::write(&mut self.file, &self.pending);
        self.pending.clear();
        written
    }
}

impl Storage for BatchedFile {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        if self.pending.len() + data.len() > BATCH {
            self.flush()?;
        }
        if data.len() >= BATCH / 2 {
            return Storage::write(&mut self.file, data);
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(BATCH);
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.flush()?;
        self.file.commit()
    }
}
