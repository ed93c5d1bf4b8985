//! The streaming decoder: chunks in, whole frames out.

use alloc::vec::Vec;

use super::error::DecodeError;
use super::header::{Needed, ParsedHeader};
use super::settings::Settings;

/// What [`Decoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame. It borrows from the input when it was whole inside it, otherwise from
    /// the decoder's buffer. Only the first `consumed` bytes of the input were used: pass the
    /// rest in the next call.
    Frame {
        /// The frame (by default, the payload without its header).
        frame: &'a [u8],
        /// Input bytes used.
        consumed: usize,
    },
    /// No whole frame yet. All the input was used (buffered); call again when more arrives.
    NeedMore(Needed),
}

/// Where the frame of one decoding step lives, as positions: the driver and [`Decoder::decode`]
/// turn it into a slice once no other borrow is held.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    Frame {
        consumed: usize,
        start: usize,
        end: usize,
        in_buffer: bool,
    },
    NeedMore(Needed),
}

/// A streaming frame decoder: feed it bytes as they arrive, in any split, and it hands out whole
/// frames.
///
/// - A partial header or payload is [`Decoded::NeedMore`], never an error.
/// - A frame that is whole inside the input is handed out borrowed from it, without a copy;
///   only a frame split across inputs is gathered in the decoder's buffer, which never holds
///   more than one frame and its header (at most `max_frame_length` plus the longest header),
///   and grows only as the frame's bytes arrive.
/// - A length above the maximum is an error before anything is reserved, and the decoder stays
///   failed: every later call returns the same error.
/// - At the end of the stream, [`finish`](Self::finish) tells a clean end from a cut frame.
#[derive(Clone, Debug)]
pub struct Decoder {
    settings: Settings,
    buf: Vec<u8>,
    /// Length on the wire of the frame being gathered in `buf`, once its header is known.
    wire_len: Option<usize>,
    /// Bytes at the start of `buf` that are not part of the frame handed out.
    skip: usize,
    /// `buf` holds a frame that was handed out: clear it on the next call.
    handed_out: bool,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Settings::default())
    }
}

impl Decoder {
    /// A decoder with these settings. It allocates nothing until a frame is split across inputs.
    pub fn new(settings: Settings) -> Self {
        Decoder {
            settings,
            buf: Vec::new(),
            wire_len: None,
            skip: 0,
            handed_out: false,
            failed: None,
        }
    }

    /// The settings.
    pub const fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Bytes of a partial frame held in the buffer.
    pub fn buffered(&self) -> usize {
        if self.handed_out { 0 } else { self.buf.len() }
    }

    /// Capacity of the internal buffer, for memory accounting: it never exceeds
    /// `max_frame_length` plus the longest header.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The error the decoder failed with, if it did.
    pub const fn error(&self) -> Option<DecodeError> {
        self.failed
    }

    /// Decodes from `input`: either a whole frame and the bytes it used, or
    /// [`Decoded::NeedMore`] after buffering all of `input`.
    ///
    /// Call it again with the unused rest of the input after each frame. An empty input is
    /// always `NeedMore`.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        match self.step(input)? {
            Step::NeedMore(needed) => Ok(Decoded::NeedMore(needed)),
            Step::Frame {
                consumed,
                start,
                end,
                in_buffer,
            } => {
                let frame = if in_buffer {
                    self.buffered_frame(start, end)
                } else {
                    &input[start..end]
                };
                Ok(Decoded::Frame { frame, consumed })
            }
        }
    }

    /// Starts decoding one chunk: call [`Feed::next_frame`] until it returns `Ok(None)`.
    ///
    /// ```
    /// use wirekit::frame::{Decoder, Settings};
    ///
    /// let mut decoder = Decoder::new(Settings::default());
    /// let mut frames = Vec::new();
    /// for chunk in [&[0, 0, 0, 2, b'h'][..], &[b'i', 0, 0], &[0, 0]] {
    ///     let mut feed = decoder.feed(chunk);
    ///     while let Some(frame) = feed.next_frame()? {
    ///         frames.push(frame.to_vec());
    ///     }
    /// }
    /// assert_eq!(frames, [b"hi".to_vec(), Vec::new()]);
    /// decoder.finish()?;
    /// # Ok::<(), wirekit::frame::DecodeError>(())
    /// ```
    pub fn feed<'d, 'c>(&'d mut self, chunk: &'c [u8]) -> Feed<'d, 'c> {
        Feed {
            decoder: self,
            rest: chunk,
        }
    }

    /// Ends the stream: `Ok(())` if no partial frame is buffered, otherwise
    /// [`DecodeError::UnexpectedEnd`] (and the decoder stays failed). A failed decoder returns
    /// its error.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.buffered() {
            0 => Ok(()),
            buffered => {
                let e = DecodeError::UnexpectedEnd { buffered };
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    pub(crate) fn buffered_frame(&self, start: usize, end: usize) -> &[u8] {
        &self.buf[start..end]
    }

    /// One decoding step, answered with positions rather than borrows.
    pub(crate) fn step(&mut self, input: &[u8]) -> Result<Step, DecodeError> {
        if self.handed_out {
            self.buf.clear();
            self.handed_out = false;
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        let step = self.step_inner(input);
        if let Err(e) = step {
            self.failed = Some(e);
        }
        step
    }

    #[inline]
    fn step_inner(&mut self, input: &[u8]) -> Result<Step, DecodeError> {
        if self.buf.is_empty() {
            // Fast path: the frame starts at the start of the input.
            return match self.settings.parse_header(input)? {
                ParsedHeader::Complete(header) => {
                    let wire_len = header.wire_len();
                    if input.len() >= wire_len {
                        return Ok(Step::Frame {
                            consumed: wire_len,
                            start: header.skip,
                            end: wire_len,
                            in_buffer: false,
                        });
                    }
                    self.wire_len = Some(wire_len);
                    self.skip = header.skip;
                    self.append(input, wire_len);
                    Ok(Step::NeedMore(Needed::Exact(wire_len - input.len())))
                }
                ParsedHeader::Incomplete(needed) => {
                    // Shorter than the longest header, or the parser would have answered.
                    self.append(input, self.settings.max_header_len());
                    Ok(Step::NeedMore(needed))
                }
            };
        }
        let mut consumed = 0;
        let wire_len = match self.wire_len {
            Some(wire_len) => wire_len,
            None => {
                // A partial header is buffered: add at most what the longest header lacks.
                let room = self
                    .settings
                    .max_header_len()
                    .saturating_sub(self.buf.len());
                let take = room.min(input.len());
                let before = self.buf.len();
                self.append(&input[..take], self.settings.max_header_len());
                match self.settings.parse_header(&self.buf)? {
                    ParsedHeader::Incomplete(needed) => return Ok(Step::NeedMore(needed)),
                    ParsedHeader::Complete(header) => {
                        let wire_len = header.wire_len();
                        self.skip = header.skip;
                        if self.buf.len() >= wire_len {
                            // A short frame, whole already: give back the bytes past it.
                            self.buf.truncate(wire_len);
                            self.handed_out = true;
                            return Ok(Step::Frame {
                                consumed: wire_len - before,
                                start: header.skip,
                                end: wire_len,
                                in_buffer: true,
                            });
                        }
                        self.wire_len = Some(wire_len);
                        consumed = take;
                        wire_len
                    }
                }
            }
        };
        let rest = &input[consumed..];
        let take = (wire_len - self.buf.len()).min(rest.len());
        self.append(&rest[..take], wire_len);
        consumed += take;
        if self.buf.len() < wire_len {
            return Ok(Step::NeedMore(Needed::Exact(wire_len - self.buf.len())));
        }
        self.wire_len = None;
        self.handed_out = true;
        Ok(Step::Frame {
            consumed,
            start: self.skip,
            end: wire_len,
            in_buffer: true,
        })
    }

    /// Appends to the buffer, growing it geometrically but never past `limit` (the frame's
    /// length on the wire, or the longest header), so that a peer announcing a large frame and
    /// sending little makes the buffer no larger than what arrived, doubled.
    #[inline]
    fn append(&mut self, bytes: &[u8], limit: usize) {
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            let target = self.buf.capacity().saturating_mul(2).max(64).min(limit);
            let target = target.max(needed);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }
}

/// One chunk being decoded: a lending iterator over the frames it completes. Made by
/// [`Decoder::feed`].
///
/// Call [`next_frame`](Self::next_frame) until it returns `Ok(None)`: by then every byte of the
/// chunk has been used or buffered. Bytes not yet used when the `Feed` is dropped early are
/// not buffered; [`remaining`](Self::remaining) returns them.
#[derive(Debug)]
pub struct Feed<'d, 'c> {
    decoder: &'d mut Decoder,
    rest: &'c [u8],
}

impl<'c> Feed<'_, 'c> {
    /// The next whole frame, borrowed from the chunk or from the decoder's buffer; `Ok(None)`
    /// once the chunk is used up (a partial frame at its end is buffered).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        let rest = self.rest;
        match self.decoder.decode(rest) {
            Ok(Decoded::Frame { frame, consumed }) => {
                self.rest = rest.get(consumed..).unwrap_or_default();
                Ok(Some(frame))
            }
            Ok(Decoded::NeedMore(_)) => {
                self.rest = &[];
                Ok(None)
            }
            Err(e) => {
                self.rest = &[];
                Err(e)
            }
        }
    }

    /// The bytes of the chunk not used yet.
    pub fn remaining(&self) -> &'c [u8] {
        self.rest
    }
}
