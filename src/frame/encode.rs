//! The encoder: header and payload into a caller's buffer or onto a `Vec`.

use alloc::vec::Vec;

use super::error::EncodeError;
use super::header::write_header;
use super::settings::Settings;

impl Settings {
    /// Bytes that [`encode`](Self::encode) writes for a payload of `payload_len` bytes:
    /// header plus payload.
    pub fn encoded_len(&self, payload_len: usize) -> Result<usize, EncodeError> {
        let (header_len, _) = self.header_for(payload_len)?;
        header_len
            .checked_add(payload_len)
            .ok_or(EncodeError::LengthNotRepresentable {
                length: payload_len,
            })
    }

    /// Writes only the header for a payload of `payload_len` bytes (for vectored writes:
    /// send the header, then the payload). Returns the header's length.
    ///
    /// The offset bytes before the length field are written as zeros. Nothing is written on
    /// error.
    pub fn write_header(&self, payload_len: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
        let (header_len, value) = self.header_for(payload_len)?;
        let available = out.len();
        let out = out
            .get_mut(..header_len)
            .ok_or(EncodeError::BufferTooSmall {
                needed: header_len,
                available,
            })?;
        write_header(self, value, out);
        Ok(header_len)
    }

    /// Writes header and payload into `out` and returns the bytes written. Nothing is written
    /// on error: not when the payload is too large for the settings, and not when `out` is too
    /// small.
    ///
    /// The frame a decoder with the same settings hands out is the encoded bytes after the
    /// first `num_skip` (by default, the payload).
    pub fn encode(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
        let (header_len, value) = self.header_for(payload.len())?;
        let needed =
            header_len
                .checked_add(payload.len())
                .ok_or(EncodeError::LengthNotRepresentable {
                    length: payload.len(),
                })?;
        let available = out.len();
        let out = out
            .get_mut(..needed)
            .ok_or(EncodeError::BufferTooSmall { needed, available })?;
        let (head, body) = out.split_at_mut(header_len);
        write_header(self, value, head);
        body.copy_from_slice(payload);
        Ok(needed)
    }

    /// Appends header and payload to `out` and returns the bytes appended. Nothing is appended
    /// on error.
    pub fn encode_to_vec(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let (header_len, value) = self.header_for(payload.len())?;
        let start = out.len();
        out.reserve(header_len.saturating_add(payload.len()));
        out.resize(start + header_len, 0);
        if let Some(head) = out.get_mut(start..) {
            write_header(self, value, head);
        }
        out.extend_from_slice(payload);
        Ok(out.len() - start)
    }
}
