//! Streaming netascii (RFC 764, as RFC 1350 uses it).
//!
//! On the wire a line ends in CR LF and a bare CR is CR NUL. Locally a line ends in LF.
//! Both directions keep state across calls, because a block may end between the two
//! bytes of a pair.

/// Turns local text into netascii, a chunk at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetasciiEncoder {
    /// The second byte of a pair whose CR was written at the end of the last output.
    pending: Option<u8>,
}

impl NetasciiEncoder {
    /// A fresh encoder.
    pub const fn new() -> Self {
        NetasciiEncoder { pending: None }
    }

    /// The byte owed from a pair split by the last call, if any.
    pub const fn pending(&self) -> Option<u8> {
        self.pending
    }

    /// An encoder resumed at a state saved with [`pending`](Self::pending).
    pub const fn resume(pending: Option<u8>) -> Self {
        NetasciiEncoder { pending }
    }

    /// Encodes as much of `input` as fits in `out`; returns `(consumed, written)`.
    ///
    /// `written < out.len()` only when all of `input` was consumed.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let mut written = 0;
        let mut consumed = 0;
        let mut slots = out.iter_mut();
        if let Some(p) = self.pending {
            match slots.next() {
                Some(slot) => {
                    *slot = p;
                    written += 1;
                    self.pending = None;
                }
                None => return (0, 0),
            }
        }
        for &b in input {
            let Some(slot) = slots.next() else { break };
            consumed += 1;
            written += 1;
            match b {
                b'\n' | b'\r' => {
                    *slot = b'\r';
                    let second = if b == b'\n' { b'\n' } else { 0 };
                    match slots.next() {
                        Some(slot) => {
                            *slot = second;
                            written += 1;
                        }
                        None => {
                            self.pending = Some(second);
                            break;
                        }
                    }
                }
                _ => *slot = b,
            }
        }
        (consumed, written)
    }
}

/// Turns netascii back into local text, a chunk at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetasciiDecoder {
    /// The last chunk ended in CR, whose meaning depends on the next byte.
    cr: bool,
}

impl NetasciiDecoder {
    /// A fresh decoder.
    pub const fn new() -> Self {
        NetasciiDecoder { cr: false }
    }

    /// Decodes `input`, handing the output to `out` in runs borrowed from `input` where
    /// possible. CR LF becomes LF, CR NUL becomes CR; a CR followed by anything else is
    /// kept as it is (peers do send that).
    pub fn decode<E>(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = input;
        if self.cr {
            let Some((&first, tail)) = rest.split_first() else {
                return Ok(());
            };
            self.cr = false;
            match first {
                b'\n' => out(b"\n")?,
                0 => out(b"\r")?,
                _ => {
                    out(b"\r")?;
                    // Not a pair: `first` is ordinary data, handled below.
                    return self.decode(rest, out);
                }
            }
            rest = tail;
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\r') {
            let (run, tail) = rest.split_at(i);
            if !run.is_empty() {
                out(run)?;
            }
            match tail.get(1) {
                None => {
                    self.cr = true;
                    return Ok(());
                }
                Some(b'\n') => out(b"\n")?,
                Some(0) => out(b"\r")?,
                // `tail` starts at the CR, and here holds the byte after it too.
                Some(_) => {
                    out(b"\r")?;
                    rest = &tail[1..];
                    continue;
                }
            }
            rest = &tail[2..];
        }
        if !rest.is_empty() {
            out(rest)?;
        }
        Ok(())
    }

    /// Ends the stream: a CR left over from the last chunk is written as it is.
    pub fn finish<E>(&mut self, mut out: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if core::mem::take(&mut self.cr) {
            out(b"\r")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn encode_in(input: &[u8], block: usize) -> Vec<u8> {
        let mut enc = NetasciiEncoder::new();
        let mut wire = Vec::new();
        let mut rest = input;
        loop {
            let mut out = alloc::vec![0; block];
            let (c, w) = enc.encode(rest, &mut out);
            wire.extend_from_slice(&out[..w]);
            rest = &rest[c..];
            if w < block {
                return wire;
            }
        }
    }

    fn decode_in(wire: &[u8], chunk: usize) -> Vec<u8> {
        let mut dec = NetasciiDecoder::new();
        let mut text = Vec::new();
        for c in wire.chunks(chunk.max(1)) {
            dec.decode(c, |b| {
                text.extend_from_slice(b);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        dec.finish(|b| {
            text.extend_from_slice(b);
            Ok::<(), ()>(())
        })
        .unwrap();
        text
    }

    #[test]
    fn line_ends_and_bare_cr() {
        assert_eq!(encode_in(b"a\nb\rc", 64), b"a\r\nb\r\0c");
        assert_eq!(decode_in(b"a\r\nb\r\0c", 64), b"a\nb\rc");
    }

    #[test]
    fn pair_split_across_blocks() {
        // Block size 2: "a\r" | "\nb" — the LF is carried into the next block.
        assert_eq!(encode_in(b"a\nb", 2), b"a\r\nb");
        for chunk in 1..6 {
            assert_eq!(decode_in(b"a\r\nb\r\0", chunk), b"a\nb\r");
        }
    }

    #[test]
    fn stray_cr_is_kept() {
        assert_eq!(decode_in(b"x\ry", 1), b"x\ry");
        assert_eq!(decode_in(b"x\r", 8), b"x\r");
    }

    #[test]
    fn round_trip_every_split() {
        let text = b"line one\nline two\r\n\r\rend\n\n";
        for block in 1..12 {
            let wire = encode_in(text, block);
            for chunk in 1..12 {
                assert_eq!(decode_in(&wire, chunk), text, "block {block} chunk {chunk}");
            }
        }
    }
}
