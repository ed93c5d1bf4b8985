//! Blocking framed streams over `std::io::Read`/`Write`: the std driver of the sans-IO
//! [`frame::Decoder`](crate::frame::Decoder).

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;

use crate::frame::{DecodeError, Decoder, EncodeError, Settings, Step};

/// Size of the read buffer of [`FramedReader::new`].
const DEFAULT_READ_BUFFER: usize = 16 * 1024;

/// Turns a decoding error into an I/O error: `UnexpectedEof` for a stream cut inside a frame,
/// `InvalidData` for the rest. The [`DecodeError`] is the source.
fn decode_error(e: DecodeError) -> io::Error {
    let kind = match e {
        DecodeError::UnexpectedEnd { .. } => io::ErrorKind::UnexpectedEof,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

fn encode_error(e: EncodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// Reads frames from a byte stream.
///
/// It handles short reads and `ErrorKind::Interrupted`; other read errors (a read timeout,
/// for instance) are returned and the partial frame is kept, so the call can be repeated.
/// A decoding error is returned by every later call: close the stream.
#[derive(Debug)]
pub struct FramedReader<R> {
    inner: R,
    decoder: Decoder,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> FramedReader<R> {
    /// A reader with a 16 KiB read buffer.
    pub fn new(inner: R, settings: Settings) -> Self {
        Self::with_capacity(DEFAULT_READ_BUFFER, inner, settings)
    }

    /// A reader with a read buffer of `capacity` bytes (at least 1). Frames that are whole
    /// inside one read are handed out from this buffer without a copy.
    pub fn with_capacity(capacity: usize, inner: R, settings: Settings) -> Self {
        FramedReader {
            inner,
            decoder: Decoder::new(settings),
            buf: vec![0; capacity.max(1)],
            start: 0,
            end: 0,
        }
    }

    /// The next frame, borrowed from the reader's buffers, or `Ok(None)` at a clean end of
    /// the stream. A stream that ends inside a frame is an `UnexpectedEof` error; a frame that
    /// breaks the settings is `InvalidData`, with the [`DecodeError`] as its source.
    pub fn read_frame(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if self.start < self.end {
                let input = &self.buf[self.start..self.end];
                match self.decoder.step(input).map_err(decode_error)? {
                    Step::Frame {
                        consumed,
                        start,
                        end,
                        in_buffer,
                    } => {
                        let base = self.start;
                        self.start += consumed;
                        let frame = if in_buffer {
                            self.decoder.buffered_frame(start, end)
                        } else {
                            &self.buf[base + start..base + end]
                        };
                        return Ok(Some(frame));
                    }
                    Step::NeedMore(_) => self.start = self.end,
                }
            }
            self.start = 0;
            self.end = 0;
            let n = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.decoder.finish().map_err(decode_error)?;
                return Ok(None);
            }
            self.end = n.min(self.buf.len());
        }
    }

    /// The next frame as an owned `Vec`, or `Ok(None)` at a clean end; see
    /// [`read_frame`](Self::read_frame).
    pub fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.read_frame()?.map(<[u8]>::to_vec))
    }
}

impl<R> FramedReader<R> {
    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying stream. Reading from it directly corrupts the framing.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The underlying stream; bytes read but not yet decoded are lost.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Writes whole frames (header and payload) with as few writes as possible, handling short
/// writes and `ErrorKind::Interrupted`.
fn write_frame<W: Write>(
    inner: &mut W,
    settings: &Settings,
    header: &mut Vec<u8>,
    payload: &[u8],
) -> io::Result<()> {
    let header_len = settings.max_header_len();
    header.resize(header_len, 0);
    let n = settings
        .write_header(payload.len(), header)
        .map_err(encode_error)?;
    let head = &header[..n];
    let mut slices = [IoSlice::new(head), IoSlice::new(payload)];
    let mut slices: &mut [IoSlice<'_>] = &mut slices;
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match inner.write_vectored(slices) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "stream accepted no more bytes in the middle of a frame",
                ));
            }
            Ok(n) => {
                let left: usize = slices.iter().map(|s| s.len()).sum();
                IoSlice::advance_slices(&mut slices, n.min(left));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes frames to a byte stream.
///
/// A frame the settings refuse (too large) is an `InvalidInput` error with the
/// [`EncodeError`] as its source, and nothing is written. An I/O error in the middle of a
/// frame leaves the stream corrupt: close it.
#[derive(Debug)]
pub struct FramedWriter<W> {
    inner: W,
    settings: Settings,
    header: Vec<u8>,
}

impl<W: Write> FramedWriter<W> {
    /// A writer with these settings.
    pub fn new(inner: W, settings: Settings) -> Self {
        FramedWriter {
            inner,
            settings,
            header: Vec::new(),
        }
    }

    /// Writes one frame, without flushing the stream.
    pub fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        write_frame(&mut self.inner, &self.settings, &mut self.header, payload)
    }

    /// Writes one frame and flushes the stream.
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        self.write_frame(payload)?;
        self.inner.flush()
    }

    /// Flushes the stream.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> FramedWriter<W> {
    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying stream. Writing to it directly corrupts the framing.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The underlying stream.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// A two-way framed stream over one `Read + Write` object: send frames, receive frames.
///
/// For a conversation where reading and writing must not wait for each other, [`split`]
/// a `TcpStream` (or `UnixStream`) into a reader and a writer and give them to two threads.
///
/// [`split`]: Framed::split
///
/// ```no_run
/// use std::net::TcpStream;
/// use wirekit::frame::Settings;
/// use wirekit::net::Framed;
///
/// let mut stream = Framed::new(TcpStream::connect("127.0.0.1:7000")?, Settings::default());
/// stream.send(b"ping")?;
/// match stream.recv()? {
///     Some(frame) => println!("got {} bytes", frame.len()),
///     None => println!("peer closed"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Framed<S> {
    reader: FramedReader<S>,
    header: Vec<u8>,
}

impl<S: Read + Write> Framed<S> {
    /// A framed stream with these settings for both directions.
    pub fn new(inner: S, settings: Settings) -> Self {
        Framed {
            reader: FramedReader::new(inner, settings),
            header: Vec::new(),
        }
    }

    /// Writes one frame and flushes the stream.
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        self.write_frame(payload)?;
        self.reader.inner.flush()
    }

    /// Writes one frame, without flushing the stream.
    pub fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let settings = *self.reader.decoder.settings();
        write_frame(&mut self.reader.inner, &settings, &mut self.header, payload)
    }

    /// The next frame, borrowed, or `Ok(None)` at a clean end; see
    /// [`FramedReader::read_frame`].
    pub fn read_frame(&mut self) -> io::Result<Option<&[u8]>> {
        self.reader.read_frame()
    }

    /// The next frame, owned, or `Ok(None)` at a clean end.
    pub fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.reader.recv()
    }
}

impl<S> Framed<S> {
    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.reader.inner
    }

    /// The underlying stream. Using it directly corrupts the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.reader.inner
    }

    /// Splits into a reader and a writer, given a second handle to the stream for the writer
    /// (bytes already read and buffered stay with the reader).
    pub fn split_with<W: Write>(self, writer: W) -> (FramedReader<S>, FramedWriter<W>) {
        let settings = *self.reader.decoder.settings();
        (self.reader, FramedWriter::new(writer, settings))
    }
}

impl Framed<TcpStream> {
    /// Splits into a reader and a writer over two handles of the same socket
    /// (`TcpStream::try_clone`), for a reader thread and a writer thread.
    pub fn split(self) -> io::Result<(FramedReader<TcpStream>, FramedWriter<TcpStream>)> {
        let writer = self.reader.inner.try_clone()?;
        Ok(self.split_with(writer))
    }
}

#[cfg(unix)]
impl Framed<std::os::unix::net::UnixStream> {
    /// Splits into a reader and a writer over two handles of the same socket
    /// (`UnixStream::try_clone`).
    pub fn split(
        self,
    ) -> io::Result<(
        FramedReader<std::os::unix::net::UnixStream>,
        FramedWriter<std::os::unix::net::UnixStream>,
    )> {
        let writer = self.reader.inner.try_clone()?;
        Ok(self.split_with(writer))
    }
}
