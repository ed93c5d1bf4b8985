//! tokio-util `Decoder` and `Encoder` for the frame settings (feature `tokio`): the tokio
//! driver of the sans-IO [`frame`](crate::frame) codec.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::{DecodeError, ParsedHeader, Settings};

/// A tokio-util codec for [`Settings`]: a drop-in for `LengthDelimitedCodec` with
/// `FramedRead`, `FramedWrite` and `Framed`.
///
/// Frames decode to `BytesMut`; `Bytes`, `BytesMut` and `&[u8]` encode. Errors are
/// `io::Error`s with the [`DecodeError`] or [`EncodeError`](crate::frame::EncodeError) as their
/// source: `UnexpectedEof` for a stream cut inside a frame, `InvalidData` for a bad length on
/// input, `InvalidInput` for a frame too large to send. After a decoding error every later call
/// fails the same way.
///
/// Differences from `LengthDelimitedCodec`: the maximum applies to the frame handed out (after
/// the adjustment), the encoder writes the offset bytes (as zeros) so that what it writes
/// decodes with the same settings, and a varint length field is available.
///
/// ```
/// use bytes::BytesMut;
/// use tokio_util::codec::{Decoder, Encoder};
/// use wirekit::frame::Settings;
/// use wirekit::net::FrameCodec;
///
/// let mut codec = FrameCodec::new(Settings::builder().varint().build()?);
/// let mut buf = BytesMut::new();
/// codec.encode(&b"hello"[..], &mut buf)?;
/// assert_eq!(&buf[..], b"\x05hello");
/// assert_eq!(codec.decode(&mut buf)?.as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct FrameCodec {
    settings: Settings,
    failed: Option<DecodeError>,
}

impl FrameCodec {
    /// A codec with these settings.
    pub fn new(settings: Settings) -> Self {
        FrameCodec {
            settings,
            failed: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn fail(&mut self, e: DecodeError) -> io::Error {
        self.failed = Some(e);
        to_io(e)
    }
}

impl From<Settings> for FrameCodec {
    fn from(settings: Settings) -> Self {
        FrameCodec::new(settings)
    }
}

fn to_io(e: DecodeError) -> io::Error {
    let kind = match e {
        DecodeError::UnexpectedEnd { .. } => io::ErrorKind::UnexpectedEof,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        if let Some(e) = self.failed {
            return Err(to_io(e));
        }
        match self.settings.parse_header(src) {
            Err(e) => Err(self.fail(e)),
            Ok(ParsedHeader::Incomplete(_)) => Ok(None),
            Ok(ParsedHeader::Complete(header)) => {
                let wire_len = header.wire_len();
                if src.len() < wire_len {
                    // Bounded: the length was checked against the maximum.
                    src.reserve(wire_len - src.len());
                    return Ok(None);
                }
                src.advance(header.skip);
                Ok(Some(src.split_to(header.frame_len)))
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(self.fail(DecodeError::UnexpectedEnd {
                buffered: src.len(),
            })),
        }
    }
}

impl tokio_util::codec::Encoder<&[u8]> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        let to_io = |e| io::Error::new(io::ErrorKind::InvalidInput, e);
        let len = self.settings.encoded_len(payload.len()).map_err(to_io)?;
        let start = dst.len();
        dst.reserve(len);
        dst.resize(start + len, 0);
        let out = &mut dst[start..];
        if let Err(e) = self.settings.encode(payload, out) {
            dst.truncate(start);
            return Err(to_io(e));
        }
        Ok(())
    }
}

impl tokio_util::codec::Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        tokio_util::codec::Encoder::<&[u8]>::encode(self, &payload, dst)
    }
}

impl tokio_util::codec::Encoder<BytesMut> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, payload: BytesMut, dst: &mut BytesMut) -> io::Result<()> {
        tokio_util::codec::Encoder::<&[u8]>::encode(self, &payload, dst)
    }
}
