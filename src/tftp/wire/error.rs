//! What can go wrong reading or writing a TFTP packet.

use core::fmt;

use super::options::OptionName;

/// A field of a TFTP packet, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The 2-byte opcode.
    Opcode,
    /// The 2-byte block number of DATA or ACK.
    BlockNumber,
    /// The 2-byte error code of ERROR.
    ErrorCode,
    /// The filename of RRQ or WRQ.
    Filename,
    /// The transfer mode of RRQ or WRQ.
    Mode,
    /// An option name.
    OptionName,
    /// An option value.
    OptionValue,
    /// The message of ERROR.
    ErrorMessage,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Opcode => "opcode",
            Field::BlockNumber => "block number",
            Field::ErrorCode => "error code",
            Field::Filename => "filename",
            Field::Mode => "mode",
            Field::OptionName => "option name",
            Field::OptionValue => "option value",
            Field::ErrorMessage => "error message",
        })
    }
}

/// Why a datagram is not a TFTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The datagram ends inside a fixed-size field.
    Truncated(Field),
    /// The opcode is not 1 to 6.
    UnknownOpcode(u16),
    /// A string field runs to the end of the datagram without its NUL terminator.
    MissingNul(Field),
    /// The mode is not `netascii`, `octet` or `mail` (in any case).
    UnknownMode,
    /// An option name with no value after it.
    OptionWithoutValue,
    /// An option pair whose name is empty.
    EmptyOptionName,
    /// A known option in an OACK whose value is not a decimal number (in a request, such
    /// an option is kept as unknown and so ignored).
    NotANumber(OptionName),
    /// A known option whose value does not fit in 64 bits.
    NumberTooLarge(OptionName),
}

/// A datagram that is not a TFTP packet: what was wrong, and at which byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
}

impl ParseError {
    pub(crate) const fn new(kind: ParseErrorKind, offset: usize) -> Self {
        ParseError { kind, offset }
    }

    /// What was wrong.
    pub const fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// Byte offset in the datagram where the faulty field starts.
    pub const fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ParseErrorKind::Truncated(field) => write!(f, "packet ends inside its {field}"),
            ParseErrorKind::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ParseErrorKind::MissingNul(field) => write!(f, "{field} without its NUL terminator"),
            ParseErrorKind::UnknownMode => {
                f.write_str("unknown mode (expected netascii, octet or mail)")
            }
            ParseErrorKind::OptionWithoutValue => f.write_str("option name without a value"),
            ParseErrorKind::EmptyOptionName => f.write_str("empty option name"),
            ParseErrorKind::NotANumber(o) => write!(f, "value of option {o} is not a number"),
            ParseErrorKind::NumberTooLarge(o) => {
                write!(f, "value of option {o} does not fit in 64 bits")
            }
        }?;
        write!(f, " (at byte {})", self.offset)
    }
}

impl core::error::Error for ParseError {}

/// Why a packet could not be encoded. Nothing is written when encoding fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's buffer is shorter than the packet.
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A string field contains a NUL byte, which would end it early on the wire.
    ContainsNul(Field),
    /// An unknown option with an empty name.
    EmptyOptionName,
    /// An unknown option named like a known one: set the typed field instead.
    ShadowsKnownOption(OptionName),
    /// A request longer than the 512 bytes RFC 2347 allows.
    RequestTooLarge {
        /// The request's length in bytes.
        len: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "buffer too small: packet needs {needed} bytes, buffer has {available}"
                )
            }
            EncodeError::ContainsNul(field) => write!(f, "{field} contains a NUL byte"),
            EncodeError::EmptyOptionName => f.write_str("option with an empty name"),
            EncodeError::ShadowsKnownOption(o) => {
                write!(f, "unknown option named like the known option {o}")
            }
            EncodeError::RequestTooLarge { len } => {
                write!(
                    f,
                    "request is {len} bytes, more than the 512 RFC 2347 allows"
                )
            }
        }
    }
}

impl core::error::Error for EncodeError {}
