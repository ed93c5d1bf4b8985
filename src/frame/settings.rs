//! Frame settings, with the knobs of tokio-util's `LengthDelimitedCodec`, and their builder.

use core::fmt;

/// The default maximum frame length: 8 MiB, as in tokio-util.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 8 * 1024 * 1024;

/// The longest unsigned LEB128 varint that fits in 64 bits.
pub const MAX_VARINT_LEN: usize = 10;

/// Byte order of a fixed-width length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Most significant byte first (network byte order).
    Big,
    /// Least significant byte first.
    Little,
}

/// How the length is written on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LengthField {
    /// An unsigned integer of 1, 2, 3, 4 or 8 bytes.
    Fixed {
        /// Width in bytes: 1, 2, 3, 4 or 8.
        bytes: u8,
        /// Byte order.
        endian: Endian,
    },
    /// An unsigned LEB128 varint: 7 bits per byte, low bits first, high bit set on every byte
    /// but the last; 1 to 10 bytes.
    Varint,
}

impl LengthField {
    /// Fewest bytes the field takes on the wire.
    pub const fn min_len(self) -> usize {
        match self {
            LengthField::Fixed { bytes, .. } => bytes as usize,
            LengthField::Varint => 1,
        }
    }

    /// Most bytes the field takes on the wire.
    pub const fn max_len(self) -> usize {
        match self {
            LengthField::Fixed { bytes, .. } => bytes as usize,
            LengthField::Varint => MAX_VARINT_LEN,
        }
    }

    /// The largest value the field can carry.
    pub const fn max_value(self) -> u64 {
        match self {
            LengthField::Fixed { bytes: 8, .. } | LengthField::Varint => u64::MAX,
            LengthField::Fixed { bytes, .. } => (1u64 << (8 * bytes as u32)) - 1,
        }
    }
}

/// Why a [`SettingsBuilder`] refused its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SettingsError {
    /// The length field is not 1, 2, 3, 4 or 8 bytes wide.
    InvalidLengthFieldLength(usize),
    /// The header (offset, length field) plus the maximum frame length does not fit in `usize`.
    TooLong,
    /// `num_skip` is past the end of the header.
    SkipPastHeader {
        /// The `num_skip` asked for.
        num_skip: usize,
        /// The header's length in bytes.
        header_len: usize,
    },
    /// `num_skip` was set with a varint length field, whose header has no fixed length; only
    /// the default (skip the whole header) is allowed.
    SkipWithVarint,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SettingsError::InvalidLengthFieldLength(n) => {
                write!(f, "length field of {n} bytes (expected 1, 2, 3, 4 or 8)")
            }
            SettingsError::TooLong => {
                f.write_str("header plus maximum frame length does not fit in memory")
            }
            SettingsError::SkipPastHeader {
                num_skip,
                header_len,
            } => write!(
                f,
                "num_skip {num_skip} is past the end of the {header_len}-byte header"
            ),
            SettingsError::SkipWithVarint => {
                f.write_str("num_skip cannot be set with a varint length field")
            }
        }
    }
}

impl core::error::Error for SettingsError {}

/// Checked frame settings. Build them with [`Settings::builder`]; the default is tokio-util's:
/// a 4-byte big-endian length of the payload, no offset, no adjustment, the header skipped,
/// frames up to 8 MiB.
///
/// The layout of a frame on the wire, from the start of its header:
///
/// ```text
/// | length_field_offset bytes | length field | rest of the frame ... |
/// ```
///
/// The decoder reads the field's value `v`, and the frame it hands out is the
/// `v + length_adjustment` bytes that start `num_skip` bytes after the header's start
/// (`num_skip` defaults to the header's length, so the frame is the payload). The frame handed
/// out must be at most `max_frame_length` bytes, and must reach at least to the end of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    field: LengthField,
    offset: usize,
    adjustment: isize,
    num_skip: Option<usize>,
    max_frame_length: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            field: LengthField::Fixed {
                bytes: 4,
                endian: Endian::Big,
            },
            offset: 0,
            adjustment: 0,
            num_skip: None,
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
        }
    }
}

impl Settings {
    /// A builder that starts from the defaults.
    pub fn builder() -> SettingsBuilder {
        SettingsBuilder::default()
    }

    /// How the length is written.
    pub const fn length_field(&self) -> LengthField {
        self.field
    }

    /// Bytes before the length field.
    pub const fn length_field_offset(&self) -> usize {
        self.offset
    }

    /// Added to the field's value to get the frame's length.
    pub const fn length_adjustment(&self) -> isize {
        self.adjustment
    }

    /// Bytes dropped from the start of each frame, or `None` for the whole header.
    pub const fn num_skip(&self) -> Option<usize> {
        self.num_skip
    }

    /// The longest frame the decoder hands out and the encoder writes.
    pub const fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }

    /// The header's length (offset and length field), when it does not depend on the value.
    pub const fn header_len(&self) -> Option<usize> {
        match self.field {
            LengthField::Fixed { bytes, .. } => Some(self.offset + bytes as usize),
            LengthField::Varint => None,
        }
    }

    /// The longest header these settings can produce.
    pub const fn max_header_len(&self) -> usize {
        self.offset + self.field.max_len()
    }

    /// The shortest header these settings can produce.
    pub const fn min_header_len(&self) -> usize {
        self.offset + self.field.min_len()
    }
}

/// Builds [`Settings`]; the method names are those of tokio-util's
/// `length_delimited::Builder`. Invalid combinations are reported by [`build`](Self::build).
///
/// ```
/// use wirekit::frame::Settings;
///
/// // A 2-byte little-endian length that counts itself, frames of at most 1 KiB.
/// let settings = Settings::builder()
///     .length_field_length(2)
///     .little_endian()
///     .length_adjustment(-2)
///     .max_frame_length(1024)
///     .build()?;
/// assert_eq!(settings.header_len(), Some(2));
/// # Ok::<(), wirekit::frame::SettingsError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SettingsBuilder {
    field_len: usize,
    endian: Endian,
    varint: bool,
    offset: usize,
    adjustment: isize,
    num_skip: Option<usize>,
    max_frame_length: usize,
}

impl Default for SettingsBuilder {
    fn default() -> Self {
        SettingsBuilder {
            field_len: 4,
            endian: Endian::Big,
            varint: false,
            offset: 0,
            adjustment: 0,
            num_skip: None,
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
        }
    }
}

impl SettingsBuilder {
    /// A fixed-width length field of `n` bytes: 1, 2, 3, 4 (the default) or 8. Undoes
    /// [`varint`](Self::varint).
    pub fn length_field_length(mut self, n: usize) -> Self {
        self.field_len = n;
        self.varint = false;
        self
    }

    /// An unsigned LEB128 varint length field (1 to 10 bytes), which tokio-util lacks.
    pub fn varint(mut self) -> Self {
        self.varint = true;
        self
    }

    /// Bytes before the length field (default 0). The encoder writes them as zeros.
    pub fn length_field_offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// Added to the field's value to get the frame's length (default 0); for instance minus the
    /// header's length when the length counts the header.
    pub fn length_adjustment(mut self, n: isize) -> Self {
        self.adjustment = n;
        self
    }

    /// Bytes dropped from the start of each frame (default: the whole header); 0 keeps the
    /// header in the frame.
    pub fn num_skip(mut self, n: usize) -> Self {
        self.num_skip = Some(n);
        self
    }

    /// A big-endian fixed-width field (the default).
    pub fn big_endian(mut self) -> Self {
        self.endian = Endian::Big;
        self
    }

    /// A little-endian fixed-width field.
    pub fn little_endian(mut self) -> Self {
        self.endian = Endian::Little;
        self
    }

    /// A fixed-width field in the byte order of this machine.
    pub fn native_endian(mut self) -> Self {
        self.endian = if cfg!(target_endian = "big") {
            Endian::Big
        } else {
            Endian::Little
        };
        self
    }

    /// The longest frame handed out or written (default 8 MiB).
    pub fn max_frame_length(mut self, n: usize) -> Self {
        self.max_frame_length = n;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Settings, SettingsError> {
        let field = if self.varint {
            LengthField::Varint
        } else {
            match self.field_len {
                1 | 2 | 3 | 4 | 8 => LengthField::Fixed {
                    // The match arm keeps the value in 1..=8.
                    bytes: self.field_len as u8,
                    endian: self.endian,
                },
                n => return Err(SettingsError::InvalidLengthFieldLength(n)),
            }
        };
        let max_header_len = self
            .offset
            .checked_add(field.max_len())
            .ok_or(SettingsError::TooLong)?;
        max_header_len
            .checked_add(self.max_frame_length)
            .ok_or(SettingsError::TooLong)?;
        match (field, self.num_skip) {
            (_, None) => {}
            (LengthField::Varint, Some(_)) => return Err(SettingsError::SkipWithVarint),
            (LengthField::Fixed { .. }, Some(num_skip)) if num_skip > max_header_len => {
                return Err(SettingsError::SkipPastHeader {
                    num_skip,
                    header_len: max_header_len,
                });
            }
            (LengthField::Fixed { .. }, Some(_)) => {}
        }
        Ok(Settings {
            field,
            offset: self.offset,
            adjustment: self.adjustment,
            num_skip: self.num_skip,
            max_frame_length: self.max_frame_length,
        })
    }
}
