//! Bytes from the wire that are usually, but not always, text.

use core::fmt;

/// A filename, error message, or option name or value, exactly as it was on the wire.
///
/// TFTP says nothing about the encoding of these fields, and real peers send Latin-1, UTF-8
/// and raw bytes alike, so wirekit never assumes UTF-8: a `Text` is the bytes between the
/// field's start and its NUL terminator. [`Text::to_str`] gives a `&str` when the bytes are
/// UTF-8, and [`Display`](fmt::Display) prints them safely for logs, escaping invalid UTF-8
/// and control characters as `\xNN`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Text<'a>(&'a [u8]);

impl<'a> Text<'a> {
    /// Wraps bytes. Nothing is checked here; the encoder refuses a NUL inside.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Text(bytes)
    }

    /// The raw bytes, without the NUL terminator.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The text as `&str`, or `None` if the bytes are not UTF-8.
    pub fn to_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }

    /// Number of bytes, without the NUL terminator.
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a zero-length field.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// ASCII case-insensitive comparison, as TFTP uses for modes and option names.
    pub fn eq_ignore_ascii_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.as_bytes())
    }

    pub(crate) fn contains_nul(&self) -> bool {
        self.0.contains(&0)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(s.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for Text<'a> {
    fn from(b: &'a [u8]) -> Self {
        Text(b)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Text<'a> {
    fn from(b: &'a [u8; N]) -> Self {
        Text(b)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() {
                    for b in c.encode_utf8(&mut [0; 4]).bytes() {
                        write!(f, "\\x{b:02x}")?;
                    }
                } else {
                    fmt::Write::write_char(f, c)?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_escapes_controls_and_invalid_utf8() {
        let t = Text::new(b"a\x1b[2J\xffb\xc3\xa9");
        assert_eq!(t.to_string(), "a\\x1b[2J\\xffb\u{e9}");
        assert_eq!(t.to_str(), None);
        assert_eq!(Text::from("pxelinux.0").to_str(), Some("pxelinux.0"));
    }
}
