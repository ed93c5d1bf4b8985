#![no_main]
//! Arbitrary frame settings and arbitrary bytes fed in arbitrary chunks: the decoder never
//! panics, stays within its memory bound, gives the same result however the bytes are split,
//! and every frame it hands out survives encode-then-decode.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wirekit::frame::{DecodeError, Decoder, Settings};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// 0..=4: fixed width 1, 2, 3, 4, 8; 5: varint; others: an invalid width.
    field: u8,
    little: bool,
    offset: u8,
    adjustment: i16,
    num_skip: Option<u8>,
    max: u32,
    chunks: Vec<u8>,
    data: &'a [u8],
}

fn settings(input: &Input<'_>) -> Option<Settings> {
    let mut b = Settings::builder()
        .length_field_offset(usize::from(input.offset % 16))
        .length_adjustment(isize::from(input.adjustment))
        .max_frame_length(input.max as usize % (1 << 20));
    b = match input.field % 8 {
        5 => b.varint(),
        n => b.length_field_length(match n {
            0 => 1,
            1 => 2,
            2 => 3,
            3 => 4,
            4 => 8,
            n => usize::from(n),
        }),
    };
    b = if input.little { b.little_endian() } else { b.big_endian() };
    if let Some(skip) = input.num_skip {
        b = b.num_skip(usize::from(skip % 32));
    }
    b.build().ok()
}

/// Decodes `data` in chunks of the given sizes (cycled; empty means all at once).
fn decode(settings: Settings, data: &[u8], sizes: &[u8]) -> (Vec<Vec<u8>>, Result<(), DecodeError>) {
    let bound = settings.max_frame_length() + settings.max_header_len();
    let mut decoder = Decoder::new(settings);
    let mut frames = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = match sizes.get(i % sizes.len().max(1)) {
            Some(&n) => usize::from(n).max(1).min(rest.len()),
            None => rest.len(),
        };
        i += 1;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut feed = decoder.feed(chunk);
        loop {
            match feed.next_frame() {
                Ok(Some(frame)) => frames.push(frame.to_vec()),
                Ok(None) => break,
                Err(e) => return (frames, Err(e)),
            }
        }
        assert!(decoder.buffer_capacity() <= bound);
    }
    let end = decoder.finish();
    (frames, end)
}

fuzz_target!(|input: Input<'_>| {
    let Some(settings) = settings(&input) else { return };
    let whole = decode(settings, input.data, &[]);
    let split = decode(settings, input.data, &input.chunks);
    assert_eq!(whole, split, "the split changed the result");

    // Round trip: re-encode what decoded, decode again.
    let kept = match (settings.num_skip(), settings.header_len()) {
        (Some(skip), Some(header_len)) => header_len - skip,
        _ => 0,
    };
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for frame in &whole.0 {
        let payload = &frame[kept..];
        let start = wire.len();
        settings
            .encode_to_vec(payload, &mut wire)
            .expect("a frame that decoded can be encoded");
        let header_len = wire.len() - start - payload.len();
        let skip = settings.num_skip().unwrap_or(header_len);
        let again = wire[start + skip..].to_vec();
        assert_eq!(again.len(), frame.len());
        assert_eq!(&again[kept..], payload);
        expected.push(again);
    }
    assert_eq!(decode(settings, &wire, &input.chunks), (expected, Ok(())));
});
