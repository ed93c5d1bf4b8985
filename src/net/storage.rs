//! [`Storage`] for the std types a transfer reads from and writes to, and the mapping of
//! their I/O errors to what the peer is told. They live with the drivers so that the
//! machines' core stays `no_std` whatever the features.

use std::io::{self, Write};

use crate::tftp::{ErrorCode, Segments, Storage, StorageError};

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
        StorageError::new(code, e.to_string())
    }
}

/// A file on disk: read at offsets when sending, appended to when receiving.
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl Storage for std::fs::File {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        if beyond_any_file(offset) {
            return Ok(0);
        }
        let mut filled = 0;
        while filled < buf.len() {
            match positioned_read(self, offset + filled as u64, &mut buf[filled..]) {
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
        if beyond_any_file(offset) {
            return Ok(0);
        }
        let mut runs: Vec<io::IoSliceMut<'_>> = layout.runs(buf).map(io::IoSliceMut::new).collect();
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

/// A file or stream behind a buffer, to receive into: blocks reach it in batches, one write
/// for many small blocks (a block as large as the buffer goes straight through). `flush`
/// and `commit` flush it. A `BufWriter` cannot be read back, so it is write-only.
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl<W: io::Write> Storage for io::BufWriter<W> {
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, StorageError> {
        Err(StorageError::write_only())
    }

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

/// An in-memory file shared by every transfer that sends it, as tokio applications hold
/// one: each transfer gets a clone (a reference count, not a copy of the file); read-only.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl Storage for bytes::Bytes {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        // The `&[u8]` impl: a read that copies only what it hands out.
        Storage::read_at(&mut &self[..], offset, buf)
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::read_only())
    }
}

/// An offset no file reaches: the kernel takes offsets as signed (`off_t`) and refuses
/// larger ones (EINVAL), where a storage reads the end of the file, as the in-memory ones do.
fn beyond_any_file(offset: u64) -> bool {
    i64::try_from(offset).is_err()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::storage_tests::{file as contents, reads_like_the_file};

    /// A file of `contents()` that removes itself when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path = std::env::temp_dir().join(format!(
                "wirekit-storage-unit-{name}-{}",
                std::process::id()
            ));
            std::fs::write(&path, contents()).unwrap();
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_file_reads_at_offsets_and_whole_windows() {
        let scratch = Scratch::new("read");
        let mut file = std::fs::File::open(&scratch.0).unwrap();
        reads_like_the_file(&mut file);

        // One window cut by the end (the preadv comes back short), then one past it.
        let file_bytes = contents();
        let layout = Segments {
            start: 4,
            len: 300,
            stride: 304,
            count: 4,
        };
        let mut window = [0xAAu8; 4 * 304];
        assert_eq!(file.read_segments_at(200, &mut window, layout), Ok(800));
        for (i, run) in layout.runs(&mut window).enumerate() {
            // The last run starts past the end, and the one before is cut by it.
            let from = (200 + i * 300).min(1000);
            let to = (from + 300).min(1000);
            assert_eq!(run[..to - from], file_bytes[from..to], "run {i}");
        }
        assert_eq!(window[..4], [0xAA; 4], "a header was overwritten");
        assert_eq!(file.read_segments_at(1000, &mut window, layout), Ok(0));
    }

    #[test]
    fn a_file_appends_and_a_read_only_one_says_why() {
        let scratch = Scratch::new("write");
        let mut file = std::fs::File::create(&scratch.0).unwrap();
        Storage::write(&mut file, b"abc").unwrap();
        Storage::write(&mut file, b"def").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read(&scratch.0).unwrap(), b"abcdef");

        let mut read_only = std::fs::File::open(&scratch.0).unwrap();
        let e = Storage::write(&mut read_only, b"x").unwrap_err();
        assert_ne!(e.message, "", "the I/O error's text is what the peer reads");
    }

    #[test]
    fn a_buffered_writer_is_write_only_and_flushes_on_commit() {
        let mut sink = io::BufWriter::with_capacity(16, Vec::new());
        assert_eq!(
            sink.read_at(0, &mut [0; 4]),
            Err(StorageError::write_only())
        );
        Storage::write(&mut sink, b"gathered").unwrap();
        assert!(sink.get_ref().is_empty(), "a small block is gathered");
        sink.commit().unwrap();
        assert_eq!(sink.get_ref(), b"gathered");
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn shared_bytes_read_at_offsets_and_refuse_writes() {
        let shared = bytes::Bytes::from(contents());
        let mut one = shared.clone();
        reads_like_the_file(&mut one);
        assert_eq!(one.write(b"x"), Err(StorageError::read_only()));
        // A clone shares the bytes: each transfer's storage is the same buffer.
        assert_eq!(one.as_ptr(), shared.as_ptr());
    }

    #[test]
    fn io_errors_become_the_codes_a_peer_understands() {
        let code = |kind| StorageError::from(io::Error::from(kind)).code;
        assert_eq!(code(io::ErrorKind::StorageFull), ErrorCode::DiskFull);
        assert_eq!(code(io::ErrorKind::QuotaExceeded), ErrorCode::DiskFull);
        assert_eq!(
            code(io::ErrorKind::PermissionDenied),
            ErrorCode::AccessViolation
        );
        assert_eq!(code(io::ErrorKind::NotFound), ErrorCode::FileNotFound);
        assert_eq!(code(io::ErrorKind::AlreadyExists), ErrorCode::FileExists);
        assert_eq!(code(io::ErrorKind::BrokenPipe), ErrorCode::NotDefined);
    }
}
