//! Length-prefixed framing for byte streams such as TCP (the "sticky packet" problem).
//!
//! TCP is a byte stream: one write may arrive as several reads, and several writes as one read.
//! Each message is therefore sent as a frame, `length prefix | payload`, and the reader cuts the
//! stream back into frames.
//!
//! - [`Settings`] holds the knobs of tokio-util's `LengthDelimitedCodec` (length field length,
//!   offset, adjustment, `num_skip`, endianness, maximum frame length), plus a LEB128 varint
//!   length field; build them with [`Settings::builder`].
//! - [`Settings::encode`] and [`Settings::encode_to_vec`] write frames;
//!   [`Settings::parse_header`] (built on the `nom` streaming parser [`length_value`]) reads a
//!   header.
//! - [`Decoder`] is the sans-IO streaming decoder: bytes in, in any split, whole frames out,
//!   borrowed from the input whenever a frame is whole inside it.
//!
//! This module is sans-IO and `no_std`. Its drivers are in [`net`](crate::net): with the
//! `std` feature, [`net::Framed`](crate::net::Framed), [`net::FramedReader`](crate::net::FramedReader)
//! and [`net::FramedWriter`](crate::net::FramedWriter) run it over any `Read`/`Write` (a
//! `TcpStream`, a `UnixStream`); with the `tokio` feature,
//! [`net::FrameCodec`](crate::net::FrameCodec) is a tokio-util `Decoder` and `Encoder` for the
//! same settings.
//!
//! # Example
//!
//! ```
//! use wirekit::frame::{Decoder, Settings};
//!
//! // A 2-byte big-endian length that counts itself (the header is 2 bytes).
//! let settings = Settings::builder()
//!     .length_field_length(2)
//!     .length_adjustment(-2)
//!     .build()?;
//!
//! // Encode two messages onto one buffer, as a sender would write them to a socket.
//! let mut wire = Vec::new();
//! settings.encode_to_vec(b"hello", &mut wire)?;
//! settings.encode_to_vec(b"world!", &mut wire)?;
//! assert_eq!(&wire[..7], b"\x00\x07hello");
//!
//! // The receiver gets the bytes cut anywhere: here 3 bytes at a time.
//! let mut decoder = Decoder::new(settings);
//! let mut messages = Vec::new();
//! for chunk in wire.chunks(3) {
//!     let mut feed = decoder.feed(chunk);
//!     while let Some(frame) = feed.next_frame()? {
//!         messages.push(String::from_utf8_lossy(frame).into_owned());
//!     }
//! }
//! decoder.finish()?; // a clean end: no partial frame left
//! assert_eq!(messages, ["hello", "world!"]);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

mod decoder;
mod encode;
mod error;
mod header;
mod settings;

// The one step of decoding that a driver with its own read buffer needs (`net::FramedReader`).
#[cfg(feature = "std")]
pub(crate) use decoder::Step;
pub use decoder::{Decoded, Decoder, Feed};
pub use error::{DecodeError, EncodeError};
pub use header::{Header, Needed, ParsedHeader, leb128, leb128_len, length_value};
pub use settings::{
    DEFAULT_MAX_FRAME_LENGTH, Endian, LengthField, MAX_VARINT_LEN, Settings, SettingsBuilder,
    SettingsError,
};
