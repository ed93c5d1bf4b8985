//! The server's default policy: serve a directory, read-only unless told otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use super::fs::{Root, Upload};
use crate::tftp::server::{Policy, Refusal};
use crate::tftp::{ErrorCode, Storage, StorageError, Text};

/// What uploads a [`DirPolicy`] accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadRules {
    /// Accept uploads of new files.
    pub allow_create: bool,
    /// Let uploads replace existing files (otherwise ERROR 6).
    pub allow_overwrite: bool,
    /// Refuse uploads larger than this (ERROR 3), by their tsize up front and by their
    /// bytes as they arrive.
    pub max_size: Option<u64>,
}

/// Serves the files under a [`Root`]: opening the file is the check.
#[derive(Clone, Debug)]
pub struct DirPolicy {
    root: Arc<Root>,
    uploads: UploadRules,
}

impl DirPolicy {
    /// Serves `root` with these upload rules.
    pub fn new(root: Root, uploads: UploadRules) -> DirPolicy {
        DirPolicy {
            root: Arc::new(root),
            uploads,
        }
    }

    /// The served root.
    pub fn root(&self) -> &Root {
        &self.root
    }
}

/// A file a [`DirPolicy`] opened: one to send, or an upload on its way in.
#[derive(Debug)]
pub enum DirFile {
    /// A file being read.
    Read(std::fs::File),
    /// A file being received; it appears under its name only when committed.
    Write(Upload),
}

impl Policy for DirPolicy {
    type Storage = DirFile;

    fn read(
        &mut self,
        _: SocketAddr,
        filename: Text<'_>,
    ) -> Result<(DirFile, Option<u64>), Refusal> {
        let (file, size) = self.root.open_read(filename)?;
        Ok((DirFile::Read(file), Some(size)))
    }

    fn write(
        &mut self,
        _: SocketAddr,
        filename: Text<'_>,
        tsize: Option<u64>,
    ) -> Result<DirFile, Refusal> {
        let rules = self.uploads;
        if !rules.allow_create && !rules.allow_overwrite {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "uploads are disabled",
            ));
        }
        if let (Some(max), Some(size)) = (rules.max_size, tsize)
            && size > max
        {
            return Err(Refusal::new(
                ErrorCode::DiskFull,
                format!("upload of {size} bytes exceeds the {max}-byte limit"),
            ));
        }
        let upload =
            self.root
                .create_upload(filename, rules.allow_overwrite, rules.max_size, tsize)?;
        if !rules.allow_create && !upload.replaces_existing() {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "creating new files is disabled",
            ));
        }
        Ok(DirFile::Write(upload))
    }
}

impl Storage for DirFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        match self {
            DirFile::Read(f) => f.read_at(offset, buf),
            DirFile::Write(u) => u.read_at(offset, buf),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        match self {
            DirFile::Read(f) => Storage::write(f, data),
            DirFile::Write(u) => u.write(data),
        }
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        match self {
            DirFile::Read(_) => Ok(()),
            DirFile::Write(u) => u.commit().map_err(StorageError::from),
        }
    }
}
