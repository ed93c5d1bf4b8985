//! The frame header: a `nom` streaming parser, and the writer the encoder uses.

use nom::bytes::streaming::take;
use nom::error::{Error, ErrorKind};
use nom::number::streaming::{
    be_u8, be_u16, be_u24, be_u32, be_u64, le_u16, le_u24, le_u32, le_u64,
};
use nom::{IResult, Parser};

use super::error::DecodeError;
use super::settings::{Endian, LengthField, MAX_VARINT_LEN, Settings};

/// How many more bytes a decoder needs before it can hand out the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Needed {
    /// The header is still incomplete: at least this many more bytes are needed to finish it
    /// (the frame's length is not known yet).
    AtLeast(usize),
    /// The header is known: exactly this many more bytes complete the frame.
    Exact(usize),
}

impl Needed {
    /// The fewest bytes that must still arrive before a frame can come out.
    pub const fn min(self) -> usize {
        match self {
            Needed::AtLeast(n) | Needed::Exact(n) => n,
        }
    }
}

/// A decoded header: where the frame handed out starts and ends, counted from the header's
/// first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's length: offset bytes plus the length field.
    pub header_len: usize,
    /// Bytes dropped before the frame handed out (`num_skip`, or the header's length).
    pub skip: usize,
    /// The length of the frame handed out (field value plus adjustment); at most the maximum.
    pub frame_len: usize,
}

impl Header {
    /// Bytes on the wire from the header's first byte to the frame's last: `skip + frame_len`.
    pub const fn wire_len(&self) -> usize {
        self.skip + self.frame_len
    }
}

/// Result of [`Settings::parse_header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParsedHeader {
    /// The whole header was there, and its length is valid.
    Complete(Header),
    /// The input ends inside the header.
    Incomplete(Needed),
}

/// `nom` streaming parser for the header's offset bytes and length field: returns the rest of
/// the input and the field's raw value (before any adjustment or check).
///
/// Like every `nom` streaming parser it answers `Err(nom::Err::Incomplete(_))` when the input
/// ends inside the header, and `Err(nom::Err::Failure(_))` for a varint longer than 64 bits.
///
/// ```
/// use wirekit::frame::{length_value, Settings};
///
/// let settings = Settings::default();
/// assert_eq!(length_value(&settings, &[0, 0, 1, 0, 42]), Ok((&[42][..], 256)));
/// assert!(matches!(length_value(&settings, &[0, 0]), Err(nom::Err::Incomplete(_))));
/// ```
#[inline]
pub fn length_value<'a>(settings: &Settings, input: &'a [u8]) -> IResult<&'a [u8], u64> {
    let (input, _) = take(settings.length_field_offset()).parse(input)?;
    match settings.length_field() {
        LengthField::Fixed { bytes, endian } => match (bytes, endian) {
            (1, _) => be_u8.map(u64::from).parse(input),
            (2, Endian::Big) => be_u16.map(u64::from).parse(input),
            (2, Endian::Little) => le_u16.map(u64::from).parse(input),
            (3, Endian::Big) => be_u24.map(u64::from).parse(input),
            (3, Endian::Little) => le_u24.map(u64::from).parse(input),
            (4, Endian::Big) => be_u32.map(u64::from).parse(input),
            (4, Endian::Little) => le_u32.map(u64::from).parse(input),
            (_, Endian::Big) => be_u64(input),
            (_, Endian::Little) => le_u64(input),
        },
        LengthField::Varint => leb128(input),
    }
}

/// `nom` streaming parser for an unsigned LEB128 varint of at most 64 bits (10 bytes).
/// Non-minimal encodings (trailing `0x80` bytes) are accepted.
pub fn leb128(input: &[u8]) -> IResult<&[u8], u64> {
    let mut value = 0u64;
    for (i, &byte) in input.iter().take(MAX_VARINT_LEN).enumerate() {
        if i == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(nom::Err::Failure(Error::new(input, ErrorKind::TooLarge)));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let rest = &input[i + 1..];
            return Ok((rest, value));
        }
    }
    if input.len() >= MAX_VARINT_LEN {
        // Unreachable: the tenth byte either ends the varint or fails above.
        return Err(nom::Err::Failure(Error::new(input, ErrorKind::TooLarge)));
    }
    Err(nom::Err::Incomplete(nom::Needed::new(1)))
}

/// Bytes the unsigned LEB128 encoding of `value` takes.
pub const fn leb128_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    if bits == 0 { 1 } else { bits.div_ceil(7) }
}

impl Settings {
    /// Parses the header at the start of `input` and checks the length it announces, before
    /// anything is reserved for the frame.
    ///
    /// ```
    /// use wirekit::frame::{DecodeError, Header, Needed, ParsedHeader, Settings};
    ///
    /// let settings = Settings::builder().length_field_length(2).max_frame_length(100).build()?;
    /// assert_eq!(settings.parse_header(&[0]), Ok(ParsedHeader::Incomplete(Needed::AtLeast(1))));
    /// assert_eq!(
    ///     settings.parse_header(&[0, 5, b'h']),
    ///     Ok(ParsedHeader::Complete(Header { header_len: 2, skip: 2, frame_len: 5 }))
    /// );
    /// assert_eq!(
    ///     settings.parse_header(&[1, 0]),
    ///     Err(DecodeError::FrameTooLarge { length: 256, max: 100 })
    /// );
    /// # Ok::<(), wirekit::frame::SettingsError>(())
    /// ```
    #[inline]
    pub fn parse_header(&self, input: &[u8]) -> Result<ParsedHeader, DecodeError> {
        let value = match length_value(self, input) {
            Ok((rest, value)) => {
                let header_len = input.len() - rest.len();
                return self
                    .check_length(value, header_len)
                    .map(ParsedHeader::Complete);
            }
            Err(nom::Err::Incomplete(_)) => {
                // At least the rest of the shortest header; exact for a fixed-width field.
                let n = self.min_header_len().saturating_sub(input.len()).max(1);
                return Ok(ParsedHeader::Incomplete(Needed::AtLeast(n)));
            }
            Err(_) => DecodeError::VarintOverflow,
        };
        Err(value)
    }

    fn check_length(&self, value: u64, header_len: usize) -> Result<Header, DecodeError> {
        let adjusted = i128::from(value) + self.length_adjustment() as i128;
        if adjusted < 0 {
            return Err(DecodeError::NegativeLength {
                value,
                adjustment: self.length_adjustment(),
            });
        }
        let max = self.max_frame_length();
        let frame_len = match usize::try_from(adjusted) {
            Ok(n) if n <= max => n,
            _ => {
                return Err(DecodeError::FrameTooLarge {
                    length: u64::try_from(adjusted).unwrap_or(u64::MAX),
                    max,
                });
            }
        };
        let skip = self.num_skip().unwrap_or(header_len);
        let kept_header = header_len.saturating_sub(skip);
        if frame_len < kept_header {
            return Err(DecodeError::EndsInsideHeader {
                length: frame_len,
                kept_header,
            });
        }
        Ok(Header {
            header_len,
            skip,
            frame_len,
        })
    }

    /// Works out the header for a payload: its length on the wire and the value of its
    /// length field.
    pub(crate) fn header_for(
        &self,
        payload_len: usize,
    ) -> Result<(usize, u64), super::EncodeError> {
        use super::EncodeError;
        let kept_header = match (self.num_skip(), self.header_len()) {
            (Some(skip), Some(header_len)) => header_len - skip.min(header_len),
            _ => 0,
        };
        let length =
            payload_len
                .checked_add(kept_header)
                .ok_or(EncodeError::LengthNotRepresentable {
                    length: payload_len,
                })?;
        if length > self.max_frame_length() {
            return Err(EncodeError::FrameTooLarge {
                length,
                max: self.max_frame_length(),
            });
        }
        let value = length as i128 - self.length_adjustment() as i128;
        let value = match u64::try_from(value) {
            Ok(v) if v <= self.length_field().max_value() => v,
            _ => return Err(EncodeError::LengthNotRepresentable { length }),
        };
        let header_len = match self.length_field() {
            LengthField::Fixed { bytes, .. } => usize::from(bytes),
            LengthField::Varint => leb128_len(value),
        } + self.length_field_offset();
        Ok((header_len, value))
    }
}

/// Writes the header (zeroed offset bytes, then the length field) into `out`, which must be
/// exactly `header_len` bytes long.
pub(crate) fn write_header(settings: &Settings, value: u64, out: &mut [u8]) {
    let offset = settings.length_field_offset().min(out.len());
    let (zeros, field) = out.split_at_mut(offset);
    zeros.fill(0);
    match settings.length_field() {
        LengthField::Fixed { bytes, endian } => {
            let width = usize::from(bytes);
            let be = value.to_be_bytes();
            let le = value.to_le_bytes();
            let src = match endian {
                Endian::Big => be.get(8 - width..),
                Endian::Little => le.get(..width),
            };
            if let Some(src) = src {
                for (dst, src) in field.iter_mut().zip(src) {
                    *dst = *src;
                }
            }
        }
        LengthField::Varint => {
            let mut v = value;
            for dst in field.iter_mut() {
                let low = (v & 0x7f) as u8;
                v >>= 7;
                *dst = if v == 0 { low } else { low | 0x80 };
            }
        }
    }
}
