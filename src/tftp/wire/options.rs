//! TFTP options (RFC 2347): typed values with their RFC ranges.
//!
//! The parser keeps every option a request or OACK carried. Known options become typed
//! values; a known option whose number lies outside its RFC range is kept as
//! `Err(OutOfRange)` rather than clamped, so the negotiation layer decides what to do with
//! it. Unknown options are kept in order, name and value, so a proxy can pass them on.

use alloc::vec::Vec;
use core::fmt;

use super::text::Text;

/// The options that wirekit understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum OptionName {
    /// `blksize`, RFC 2348.
    Blksize,
    /// `timeout`, RFC 2349.
    Timeout,
    /// `tsize`, RFC 2349.
    Tsize,
    /// `windowsize`, RFC 7440.
    Windowsize,
}

impl OptionName {
    /// Every known option, in the order the encoder writes them.
    pub const ALL: [OptionName; 4] = [
        OptionName::Blksize,
        OptionName::Timeout,
        OptionName::Tsize,
        OptionName::Windowsize,
    ];

    /// The name as written on the wire (lower case).
    pub const fn as_str(self) -> &'static str {
        match self {
            OptionName::Blksize => "blksize",
            OptionName::Timeout => "timeout",
            OptionName::Tsize => "tsize",
            OptionName::Windowsize => "windowsize",
        }
    }

    /// Looks a name up, ignoring ASCII case.
    pub fn from_wire(name: &[u8]) -> Option<OptionName> {
        OptionName::ALL
            .into_iter()
            .find(|o| name.eq_ignore_ascii_case(o.as_str().as_bytes()))
    }
}

impl fmt::Display for OptionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A known option whose value lies outside the range its RFC allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutOfRange {
    /// Which option.
    pub option: OptionName,
    /// The value the peer sent.
    pub value: u64,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = match self.option {
            OptionName::Blksize => (Blksize::MIN.0 as u64, Blksize::MAX.0 as u64),
            OptionName::Timeout => (Timeout::MIN.0 as u64, Timeout::MAX.0 as u64),
            OptionName::Tsize => (0, u64::MAX),
            OptionName::Windowsize => (Windowsize::MIN.0 as u64, Windowsize::MAX.0 as u64),
        };
        write!(
            f,
            "option {} value {} is outside {min}..={max}",
            self.option, self.value
        )
    }
}

impl core::error::Error for OutOfRange {}

macro_rules! ranged {
    ($(#[$doc:meta])* $name:ident($ty:ty), $option:ident, $min:expr, $max:expr, $default:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($ty);

        impl $name {
            /// The smallest value the RFC allows.
            pub const MIN: $name = $name($min);
            /// The largest value the RFC allows.
            pub const MAX: $name = $name($max);
            /// The value in force when the option is not negotiated.
            pub const DEFAULT: $name = $name($default);

            /// Checks `value` against the RFC range.
            pub const fn new(value: u64) -> Result<$name, OutOfRange> {
                if value >= $min as u64 && value <= $max as u64 {
                    Ok($name(value as $ty))
                } else {
                    Err(OutOfRange { option: OptionName::$option, value })
                }
            }

            /// The value.
            pub const fn get(self) -> $ty {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::DEFAULT
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        #[cfg(feature = "arbitrary")]
        impl<'a> arbitrary::Arbitrary<'a> for $name {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                Ok($name(u.int_in_range($min..=$max)?))
            }
        }
    };
}

ranged!(
    /// Data bytes per DATA packet, 8..=65464 (RFC 2348); 512 when not negotiated.
    Blksize(u16), Blksize, 8, 65464, 512
);
ranged!(
    /// Retransmission timeout in seconds, 1..=255 (RFC 2349).
    Timeout(u8), Timeout, 1, 255, 5
);
ranged!(
    /// Blocks sent before waiting for an ACK, 1..=65535 (RFC 7440); 1 when not negotiated.
    Windowsize(u16), Windowsize, 1, 65535, 1
);

/// An option wirekit does not know, kept as it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct UnknownOption<'a> {
    /// The option name, case as sent.
    pub name: Text<'a>,
    /// The value, uninterpreted.
    pub value: Text<'a>,
}

/// The options of a request or an OACK.
///
/// `None` means the option was absent; `Some(Err(_))` that it was present with a number
/// outside its RFC range. When a known option appears twice, the first one counts and the
/// rest are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Options<'a> {
    /// `blksize`.
    pub blksize: Option<Result<Blksize, OutOfRange>>,
    /// `timeout`.
    pub timeout: Option<Result<Timeout, OutOfRange>>,
    /// `tsize`: any u64 is valid.
    pub tsize: Option<u64>,
    /// `windowsize`.
    pub windowsize: Option<Result<Windowsize, OutOfRange>>,
    /// Options wirekit does not know, in the order they arrived.
    pub unknown: Vec<UnknownOption<'a>>,
}

impl<'a> Options<'a> {
    /// These options with `blksize` asked for (or answered).
    ///
    /// ```
    /// use wirekit::tftp::{Blksize, Options, Windowsize};
    ///
    /// let options = Options::default()
    ///     .with_blksize(Blksize::new(1468)?)
    ///     .with_windowsize(Windowsize::new(16)?)
    ///     .with_tsize(0);
    /// assert_eq!(options.tsize, Some(0));
    /// # Ok::<(), wirekit::tftp::OutOfRange>(())
    /// ```
    #[must_use]
    pub fn with_blksize(mut self, blksize: Blksize) -> Self {
        self.blksize = Some(Ok(blksize));
        self
    }

    /// These options with `timeout` (seconds).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Timeout) -> Self {
        self.timeout = Some(Ok(timeout));
        self
    }

    /// These options with `tsize`: 0 in a read request, the size elsewhere.
    #[must_use]
    pub fn with_tsize(mut self, tsize: u64) -> Self {
        self.tsize = Some(tsize);
        self
    }

    /// These options with `windowsize`.
    #[must_use]
    pub fn with_windowsize(mut self, windowsize: Windowsize) -> Self {
        self.windowsize = Some(Ok(windowsize));
        self
    }

    /// True when no option at all is present.
    pub fn is_empty(&self) -> bool {
        self.blksize.is_none()
            && self.timeout.is_none()
            && self.tsize.is_none()
            && self.windowsize.is_none()
            && self.unknown.is_empty()
    }

    /// The value of a known option as a plain number, whether in range or not.
    pub fn raw(&self, option: OptionName) -> Option<u64> {
        fn num<T>(v: Option<Result<T, OutOfRange>>, f: impl Fn(T) -> u64) -> Option<u64> {
            v.map(|r| r.map_or_else(|e| e.value, f))
        }
        match option {
            OptionName::Blksize => num(self.blksize, |v| v.get().into()),
            OptionName::Timeout => num(self.timeout, |v| v.get().into()),
            OptionName::Tsize => self.tsize,
            OptionName::Windowsize => num(self.windowsize, |v| v.get().into()),
        }
    }

    /// Records a known option from its number, unless it is already set.
    pub(crate) fn set_first(&mut self, option: OptionName, value: u64) {
        match option {
            OptionName::Blksize => {
                self.blksize.get_or_insert(Blksize::new(value));
            }
            OptionName::Timeout => {
                self.timeout.get_or_insert(Timeout::new(value));
            }
            OptionName::Tsize => {
                self.tsize.get_or_insert(value);
            }
            OptionName::Windowsize => {
                self.windowsize.get_or_insert(Windowsize::new(value));
            }
        }
    }
}

/// The options as a log shows them: `blksize=1468 tsize=0`, in the order the encoder writes
/// them, unknown ones after; a value outside its range as the number sent.
impl fmt::Display for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for option in OptionName::ALL {
            if let Some(value) = self.raw(option) {
                write!(f, "{sep}{option}={value}")?;
                sep = " ";
            }
        }
        for u in &self.unknown {
            write!(f, "{sep}{}={}", u.name, u.value)?;
            sep = " ";
        }
        Ok(())
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Options<'a> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut o = Options::default();
        for name in OptionName::ALL {
            if u.arbitrary()? {
                let value: u64 = u.arbitrary()?;
                // Mostly small numbers, so that most values land inside their range.
                let value = if u.ratio(7, 8)? {
                    value % 70_000
                } else {
                    value
                };
                o.set_first(name, value);
            }
        }
        o.unknown = u.arbitrary()?;
        Ok(o)
    }
}
