//! What can go wrong reading or writing frames.

use core::fmt;

/// Why a stream of frames cannot be decoded. The stream is corrupt from there on: a decoder
/// that returned one of these returns it again on every later call (there is no resync), and
/// the connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The header announces a frame longer than the maximum. Nothing was reserved for it.
    FrameTooLarge {
        /// The frame's length after adjustment (saturated at `u64::MAX`).
        length: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The field's value plus the (negative) length adjustment is below zero.
    NegativeLength {
        /// The value of the length field.
        value: u64,
        /// The configured adjustment.
        adjustment: isize,
    },
    /// The frame would end inside its own header (a length too small for settings that keep
    /// part of the header in the frame).
    EndsInsideHeader {
        /// The frame's length after adjustment.
        length: usize,
        /// Bytes of the header that the frame must hold.
        kept_header: usize,
    },
    /// A varint length longer than 10 bytes or above `u64::MAX`.
    VarintOverflow,
    /// The stream ended inside a frame.
    UnexpectedEnd {
        /// Bytes of the partial frame that had arrived.
        buffered: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::FrameTooLarge { length, max } => write!(
                f,
                "frame of {length} bytes is longer than the maximum of {max}"
            ),
            DecodeError::NegativeLength { value, adjustment } => {
                write!(f, "length {value} with adjustment {adjustment} is negative")
            }
            DecodeError::EndsInsideHeader {
                length,
                kept_header,
            } => write!(
                f,
                "frame of {length} bytes ends inside the {kept_header} header bytes it keeps"
            ),
            DecodeError::VarintOverflow => f.write_str("varint length does not fit in 64 bits"),
            DecodeError::UnexpectedEnd { buffered } => write!(
                f,
                "stream ended inside a frame ({buffered} bytes of it had arrived)"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a frame could not be encoded. Nothing is written when encoding fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The frame is longer than the configured maximum.
    FrameTooLarge {
        /// The frame's length (payload, plus any header bytes the settings keep).
        length: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The length to write, after the adjustment, is negative or too large for the field.
    LengthNotRepresentable {
        /// The frame's length (payload, plus any header bytes the settings keep).
        length: usize,
    },
    /// The caller's buffer is shorter than header plus payload.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::FrameTooLarge { length, max } => write!(
                f,
                "frame of {length} bytes is longer than the maximum of {max}"
            ),
            EncodeError::LengthNotRepresentable { length } => write!(
                f,
                "the length of a {length}-byte frame cannot be written in the length field"
            ),
            EncodeError::BufferTooSmall { needed, available } => write!(
                f,
                "buffer too small: frame needs {needed} bytes, buffer has {available}"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}
