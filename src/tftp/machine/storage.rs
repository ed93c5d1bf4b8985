//! Where a transfer's file bytes come from and go to.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

use crate::tftp::wire::ErrorCode;

/// A failure of the application's storage, and what to tell the peer about it.
///
/// The transfer that meets it sends the peer an ERROR with this code and message, and
/// ends with [`TransferError::Storage`](super::TransferError::Storage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError {
    /// The code sent to the peer: [`ErrorCode::DiskFull`] for a full disk or an exceeded
    /// size limit, [`ErrorCode::NotDefined`] for other failures.
    pub code: ErrorCode,
    /// The message sent to the peer.
    pub message: Cow<'static, str>,
}

impl StorageError {
    /// A failure with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        StorageError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl core::error::Error for StorageError {}

/// The file a transfer reads from (when sending DATA) or appends to (when receiving).
///
/// A sending transfer calls only [`read_at`](Storage::read_at), a receiving one only
/// [`write`](Storage::write); the other keeps its default, which fails. The machines call
/// these from [`Transfer::poll_transmit`](super::Transfer::poll_transmit) and
/// [`Transfer::handle_datagram`](super::Transfer::handle_datagram), straight into and out
/// of the packet buffers, so file bytes are never copied through the machine.
pub trait Storage {
    /// Fills `buf` with the bytes at `offset`, returning how many were read. Fewer than
    /// `buf.len()` means the end of the file. A retransmission reads the same offset again.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        let _ = (offset, buf);
        Err(StorageError::new(
            ErrorCode::AccessViolation,
            "storage is not readable",
        ))
    }

    /// Reads the bytes from `offset` on into the runs of `layout` in `buf`, one run after
    /// the other, and returns how many were read; fewer than the runs hold means the end of
    /// the file. A sender fills a whole window's payloads this way, between their headers,
    /// in one call where the storage can (a `preadv`). The default reads run by run.
    fn read_segments_at(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        layout: Segments,
    ) -> Result<usize, StorageError> {
        layout.read_each(self, offset, buf)
    }

    /// Appends `data`, which arrives in order and exactly once.
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let _ = data;
        Err(StorageError::new(
            ErrorCode::AccessViolation,
            "storage is not writable",
        ))
    }

    /// Writes what [`write`](Storage::write) gathered and has not written yet. Drivers call
    /// it through [`Transfer::flush_storage`](super::Transfer::flush_storage) once they have
    /// sent what there was to send and before they wait, so gathered blocks reach the file
    /// while the peer is at work on the next window, not on the way to the next ACK.
    /// [`commit`](Storage::commit) must write what is left in any case. The default does
    /// nothing.
    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Makes a received file durable and visible (an `fsync` and a rename, say). Called once,
    /// after the last block was written; a server sends its final ACK only when this
    /// succeeded, and the peer is sent the error otherwise. The default does nothing.
    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Where a window's payloads go in a buffer: `count` runs of `len` bytes, the first at
/// `start`, each `stride` bytes after the one before (the space between holds headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    /// Offset of the first run.
    pub start: usize,
    /// Bytes per run.
    pub len: usize,
    /// Distance from the start of one run to the next; at least `len`.
    pub stride: usize,
    /// Number of runs.
    pub count: usize,
}

impl Segments {
    /// The runs, as slices of `buf`; those that do not fit in `buf` are left out.
    pub fn runs<'b>(&self, buf: &'b mut [u8]) -> impl Iterator<Item = &'b mut [u8]> + use<'b> {
        let (start, len) = (self.start, self.len);
        buf.chunks_mut(self.stride.max(1))
            .take(self.count)
            .filter_map(move |chunk| chunk.get_mut(start..start + len))
    }

    /// Fills the runs one [`Storage::read_at`] at a time: what
    /// [`Storage::read_segments_at`] does unless a storage does better.
    pub fn read_each<S: Storage + ?Sized>(
        &self,
        storage: &mut S,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let mut total = 0;
        for run in self.runs(buf) {
            let want = run.len();
            let got = storage.read_at(offset + total as u64, run)?;
            total += got;
            if got < want {
                break;
            }
        }
        Ok(total)
    }
}

impl<S: Storage + ?Sized> Storage for &mut S {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        (**self).read_at(offset, buf)
    }

    fn read_segments_at(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        layout: Segments,
    ) -> Result<usize, StorageError> {
        (**self).read_segments_at(offset, buf, layout)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        (**self).write(data)
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        (**self).flush()
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        (**self).commit()
    }
}

fn read_slice(src: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let start = usize::try_from(offset).map_or(src.len(), |o| o.min(src.len()));
    let src = src.get(start..).unwrap_or_default();
    let n = src.len().min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
        dst.copy_from_slice(src);
    }
    n
}

/// An in-memory file to send.
impl Storage for [u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        Ok(read_slice(self, offset, buf))
    }
}

/// An in-memory file to send.
impl Storage for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        Ok(read_slice(self, offset, buf))
    }
}

/// An in-memory file: sent from its contents, or received by appending.
impl Storage for Vec<u8> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        Ok(read_slice(self, offset, buf))
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.try_reserve(data.len())
            .map_err(|_| StorageError::new(ErrorCode::DiskFull, "out of memory"))?;
        self.extend_from_slice(data);
        Ok(())
    }
}

#[cfg(feature = "std")]
mod std_impls {
    use super::{ErrorCode, Segments, Storage, StorageError};
    use std::io::{self, Write};

    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    impl From<io::Error> for StorageError {
        fn from(e: io::Error) -> Self {
            let code = match e.kind() {
                io::ErrorKind::StorageFull
                | io::ErrorKind::QuotaExceeded
                | io::ErrorKind::FileTooLarge => ErrorCode::DiskFull,
                io::ErrorKind::PermissionDenied => ErrorCode::AccessViolation,
                io::ErrorKind::NotFound => ErrorCode::FileNotFound,
                io::ErrorKind::AlreadyExists => ErrorCode::FileExists,
                _ => ErrorCode::NotDefined,
            };
            StorageError::new(code, std::string::ToString::to_string(&e))
        }
    }

    /// A file on disk: read at offsets when sending, appended to when receiving.
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    impl Storage for std::fs::File {
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
            let mut filled = 0;
            while filled < buf.len() {
                let rest = buf.get_mut(filled..).unwrap_or_default();
                match positioned_read(self, offset + filled as u64, rest) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(filled)
        }

        /// One `preadv` for the whole window; run by run after a short read, which only the
        /// end of the file (or a signal) causes.
        #[cfg(unix)]
        fn read_segments_at(
            &mut self,
            offset: u64,
            buf: &mut [u8],
            layout: Segments,
        ) -> Result<usize, StorageError> {
            let mut runs: alloc::vec::Vec<io::IoSliceMut<'_>> =
                layout.runs(buf).map(io::IoSliceMut::new).collect();
            let wanted: usize = runs.iter().map(|r| r.len()).sum();
            let got = loop {
                match rustix::io::preadv(&*self, &mut runs, offset) {
                    Ok(n) => break n,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(io::Error::from(e).into()),
                }
            };
            drop(runs);
            if got == wanted || got == 0 {
                return Ok(got);
            }
            layout.read_each(self, offset, buf)
        }

        fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
            self.write_all(data).map_err(Into::into)
        }

        fn commit(&mut self) -> Result<(), StorageError> {
            self.sync_all().map_err(Into::into)
        }
    }

    /// A file or stream behind a buffer: received blocks reach it in batches, one write
    /// for many small blocks (a block as large as the buffer goes straight through).
    /// `flush` and `commit` flush it.
    impl<W: io::Write> Storage for io::BufWriter<W> {
        fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
            io::Write::write_all(self, data).map_err(Into::into)
        }

        fn flush(&mut self) -> Result<(), StorageError> {
            io::Write::flush(self).map_err(Into::into)
        }

        fn commit(&mut self) -> Result<(), StorageError> {
            Storage::flush(self)
        }
    }

    #[cfg(unix)]
    fn positioned_read(f: &std::fs::File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(f, buf, offset)
    }

    #[cfg(windows)]
    fn positioned_read(f: &std::fs::File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(f, buf, offset)
    }

    #[cfg(not(any(unix, windows)))]
    fn positioned_read(mut f: &std::fs::File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        f.seek(SeekFrom::Start(offset))?;
        f.read(buf)
    }
}
