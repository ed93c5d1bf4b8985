//! Where a transfer's file bytes come from and go to.

use alloc::borrow::Cow;
#[cfg(target_has_atomic = "ptr")]
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::tftp::wire::ErrorCode;

/// A failure of the application's storage, and what to tell the peer about it.
///
/// The transfer that meets it sends the peer an ERROR with this code and message, and
/// ends with [`TransferError::Storage`](super::TransferError::Storage).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

    /// What a storage that only sends answers [`Storage::write`] with: an
    /// [`ErrorCode::AccessViolation`], "file is read-only".
    pub fn read_only() -> Self {
        StorageError::new(ErrorCode::AccessViolation, "file is read-only")
    }

    /// What a storage that only receives answers [`Storage::read_at`] with: an
    /// [`ErrorCode::AccessViolation`], "file is write-only".
    pub fn write_only() -> Self {
        StorageError::new(ErrorCode::AccessViolation, "file is write-only")
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
/// [`write`](Storage::write). Both are required all the same, so that every storage says
/// what it does with the direction it does not serve (a file to send answers `write` with
/// [`StorageError::read_only`]) and a storage that forgot one does not compile. The machines
/// call these from [`Transfer::poll_transmit`](super::Transfer::poll_transmit) and
/// [`Transfer::handle_datagram`](super::Transfer::handle_datagram), straight into and out
/// of the packet buffers, so file bytes are never copied through the machine.
///
/// In-memory files are storages already: `Vec<u8>` both ways, and, to send, `&[u8]` and
/// `Arc<[u8]>` (and `bytes::Bytes` with the `tokio` feature), which every transfer of one
/// file can share without a copy.
pub trait Storage {
    /// Fills `buf` with the bytes at `offset`, returning how many were read. Fewer than
    /// `buf.len()` means the end of the file. A retransmission reads the same offset again.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError>;

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
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;

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

/// Copies the bytes of `src` at `offset` into `buf`: a read of an in-memory file, which costs
/// what it hands out and nothing more (an offset past the end reads nothing).
fn read_slice(src: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let start = usize::try_from(offset).map_or(src.len(), |o| o.min(src.len()));
    let src = &src[start..];
    let n = src.len().min(buf.len());
    buf[..n].copy_from_slice(&src[..n]);
    n
}

/// An in-memory file to send; read-only.
impl Storage for [u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        Ok(read_slice(self, offset, buf))
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::read_only())
    }
}

/// An in-memory file to send, borrowed (a `&'static [u8]` from `include_bytes!`, say);
/// read-only.
impl Storage for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        Ok(read_slice(self, offset, buf))
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::read_only())
    }
}

/// An in-memory file shared by every transfer that sends it: a server hands each transfer
/// a clone of the `Arc` (a reference count, not a copy of the file); read-only.
#[cfg(target_has_atomic = "ptr")]
impl Storage for Arc<[u8]> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        Ok(read_slice(self, offset, buf))
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::read_only())
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

/// What every storage is held to, by its own tests here and by the std storages' in `net`.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// 1000 bytes, none equal to its neighbour, so a read from the wrong offset shows.
    pub(crate) fn file() -> Vec<u8> {
        (0..1000u32).map(|i| (i % 251) as u8).collect()
    }

    /// Reads `storage` (holding `file()`) the ways a sender does: whole blocks, the short
    /// last block, the offset at the end (an empty last DATA), past the end, the largest
    /// offset; then a window through `read_segments_at`.
    pub(crate) fn reads_like_the_file<S: Storage + ?Sized>(storage: &mut S) {
        let file = file();
        let mut block = [0u8; 512];
        assert_eq!(storage.read_at(0, &mut block), Ok(512));
        assert_eq!(block[..], file[..512]);
        assert_eq!(storage.read_at(512, &mut block), Ok(488));
        assert_eq!(block[..488], file[512..]);
        assert_eq!(storage.read_at(7, &mut block[..3]), Ok(3));
        assert_eq!(block[..3], file[7..10]);
        assert_eq!(storage.read_at(1000, &mut block), Ok(0));
        assert_eq!(storage.read_at(1001, &mut block), Ok(0));
        assert_eq!(storage.read_at(u64::MAX, &mut block), Ok(0));
        assert_eq!(storage.read_at(0, &mut []), Ok(0));

        // Three runs of 400 bytes behind 4-byte headers: the third is cut by the end.
        let layout = Segments {
            start: 4,
            len: 400,
            stride: 404,
            count: 3,
        };
        let mut window = [0xAAu8; 3 * 404];
        assert_eq!(storage.read_segments_at(0, &mut window, layout), Ok(1000));
        assert_eq!(window[4..404], file[..400]);
        assert_eq!(window[408..808], file[400..800]);
        assert_eq!(window[812..1012], file[800..]);
        assert_eq!(window[..4], [0xAA; 4], "a header was overwritten");
        assert_eq!(window[404..408], [0xAA; 4], "a header was overwritten");
    }

    fn refuses_writes<S: Storage + ?Sized>(storage: &mut S) {
        let e = storage.write(b"more").unwrap_err();
        assert_eq!(e, StorageError::read_only());
        assert_eq!(e.code, ErrorCode::AccessViolation);
    }

    #[test]
    fn a_slice_reads_at_offsets_and_refuses_writes() {
        let mut file = file();
        reads_like_the_file::<[u8]>(&mut file[..]);
        refuses_writes::<[u8]>(&mut file[..]);
        assert_eq!(file, self::file(), "a refused write changed the file");
    }

    #[test]
    fn a_borrowed_slice_reads_at_offsets_and_refuses_writes() {
        let file = file();
        let mut borrowed: &[u8] = &file;
        reads_like_the_file(&mut borrowed);
        refuses_writes(&mut borrowed);
        // Reading is positioned: the slice is not advanced like a cursor.
        assert_eq!(borrowed.len(), 1000);
        static IMAGE: &[u8] = b"firmware";
        let mut image = IMAGE;
        let mut buf = [0u8; 4];
        assert_eq!(image.read_at(4, &mut buf), Ok(4));
        assert_eq!(&buf, b"ware");
    }

    #[cfg(target_has_atomic = "ptr")]
    #[test]
    fn a_shared_file_reads_at_offsets_and_refuses_writes() {
        let shared: Arc<[u8]> = Arc::from(file());
        let mut one = Arc::clone(&shared);
        let mut two = Arc::clone(&shared);
        reads_like_the_file(&mut one);
        reads_like_the_file(&mut two);
        refuses_writes(&mut one);
        // Every transfer's storage is the one allocation.
        assert!(Arc::ptr_eq(&one, &shared) && Arc::ptr_eq(&two, &shared));
    }

    #[test]
    fn a_vec_reads_at_offsets_and_appends() {
        let mut vec = file();
        reads_like_the_file(&mut vec);
        let mut upload = Vec::new();
        upload.write(&file()[..600]).unwrap();
        upload.write(&file()[600..]).unwrap();
        reads_like_the_file(&mut upload);
    }

    #[test]
    fn a_mutable_reference_forwards_every_call() {
        let mut vec = file();
        reads_like_the_file(&mut &mut vec);
        let mut sink = Vec::new();
        Storage::write(&mut &mut sink, b"abc").unwrap();
        assert_eq!(sink, b"abc");
    }
}
