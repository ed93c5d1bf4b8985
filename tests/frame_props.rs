//! Properties of the frame codec: any frames, any settings, any split of the stream.

use proptest::prelude::*;
use wirekit::frame::{
    DEFAULT_MAX_FRAME_LENGTH, DecodeError, Decoded, Decoder, Endian, LengthField, Settings,
};

/// Any valid settings: every field width and varint, both byte orders, offsets, adjustments
/// (which may make some payloads unrepresentable: those are left out of the frame lists),
/// `num_skip` anywhere in the header, small and default maxima.
fn settings() -> impl Strategy<Value = Settings> {
    (
        0usize..6,
        any::<bool>(),
        0usize..4,
        -12isize..12,
        proptest::option::of(0usize..13),
        prop_oneof![Just(DEFAULT_MAX_FRAME_LENGTH), 0usize..700],
    )
        .prop_map(|(field, little, offset, adjustment, skip, max)| {
            let mut b = Settings::builder()
                .length_field_offset(offset)
                .length_adjustment(adjustment)
                .max_frame_length(max);
            b = match field {
                5 => b.varint(),
                n => b.length_field_length([1, 2, 3, 4, 8][n]),
            };
            b = if little {
                b.little_endian()
            } else {
                b.big_endian()
            };
            if field != 5
                && let Some(skip) = skip
            {
                let header_len = offset + [1, 2, 3, 4, 8][field];
                b = b.num_skip(skip % (header_len + 1));
            }
            b.build().unwrap()
        })
}

/// The frame a decoder must hand out for `payload`: the encoded bytes after `num_skip`.
fn expected(settings: &Settings, payload: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut wire = Vec::new();
    settings.encode_to_vec(payload, &mut wire).ok()?;
    let header_len = wire.len() - payload.len();
    let skip = settings.num_skip().unwrap_or(header_len);
    let frame = wire[skip..].to_vec();
    Some((wire, frame))
}

/// Decodes `wire` fed in chunks of the given sizes (cycled), checking the memory bound.
fn decode_chunked(
    settings: Settings,
    wire: &[u8],
    sizes: &[usize],
) -> Result<Vec<Vec<u8>>, DecodeError> {
    let bound = settings.max_frame_length() + settings.max_header_len();
    let mut decoder = Decoder::new(settings);
    let mut frames = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut feed = decoder.feed(chunk);
        while let Some(frame) = feed.next_frame()? {
            frames.push(frame.to_vec());
        }
        assert!(decoder.buffer_capacity() <= bound);
    }
    decoder.finish()?;
    Ok(frames)
}

/// Writes a header announcing `value` by hand (not with the crate's encoder).
fn raw_header(settings: &Settings, value: u64) -> Vec<u8> {
    let mut out = vec![0xEE; settings.length_field_offset()];
    match settings.length_field() {
        LengthField::Fixed { bytes, endian } => {
            let n = usize::from(bytes);
            match endian {
                Endian::Big => out.extend_from_slice(&value.to_be_bytes()[8 - n..]),
                Endian::Little => out.extend_from_slice(&value.to_le_bytes()[..n]),
            }
        }
        LengthField::Varint => {
            let mut v = value;
            loop {
                let low = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(low);
                    break;
                }
                out.push(low | 0x80);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Any list of frames, any split: the decoder yields exactly that list.
    #[test]
    fn any_frames_any_split(
        settings in settings(),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
        sizes in proptest::collection::vec(1usize..80, 1..8),
    ) {
        let mut wire = Vec::new();
        let mut frames = Vec::new();
        for payload in &payloads {
            if let Some((w, frame)) = expected(&settings, payload) {
                wire.extend_from_slice(&w);
                frames.push(frame);
            }
        }
        prop_assert_eq!(decode_chunked(settings, &wire, &sizes)?, frames.clone());
        // The whole stream in one chunk: every frame is borrowed from it.
        prop_assert_eq!(decode_chunked(settings, &wire, &[usize::MAX])?, frames);
    }

    /// Encoding into a slice writes the same bytes as appending to a Vec, and a slice one byte
    /// too short is refused without a byte written.
    #[test]
    fn encode_slice_matches_vec(settings in settings(), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut wire = Vec::new();
        if settings.encode_to_vec(&payload, &mut wire).is_ok() {
            prop_assert_eq!(settings.encoded_len(payload.len()), Ok(wire.len()));
            let mut buf = vec![0xAA; wire.len() + 3];
            prop_assert_eq!(settings.encode(&payload, &mut buf), Ok(wire.len()));
            prop_assert_eq!(&buf[..wire.len()], &wire[..]);
            let mut short = vec![0xAA; wire.len() - 1];
            prop_assert!(settings.encode(&payload, &mut short).is_err());
            prop_assert!(short.iter().all(|&b| b == 0xAA));
        }
    }

    /// A length above the maximum fails at once, with nothing reserved for the frame, and the
    /// decoder stays failed.
    #[test]
    fn oversize_fails_without_allocation(settings in settings(), extra in 1u64..1_000_000, split in 0usize..12) {
        let max = settings.max_frame_length() as i128;
        let value = max + i128::from(extra) - settings.length_adjustment() as i128;
        let value = u64::try_from(value).unwrap();
        prop_assume!(value <= settings.length_field().max_value());
        let mut wire = raw_header(&settings, value);
        wire.extend_from_slice(&[7; 64]);
        let (a, b) = wire.split_at(split.min(wire.len()));
        let mut decoder = Decoder::new(settings);
        let first = decoder.decode(a).map(|d| matches!(d, Decoded::NeedMore(_)));
        let err = match first {
            Ok(true) => decoder.decode(b).unwrap_err(),
            Ok(false) => unreachable!("no frame can come out of a partial header"),
            Err(e) => e,
        };
        prop_assert!(matches!(err, DecodeError::FrameTooLarge { .. }), "{err:?}");
        prop_assert!(decoder.buffer_capacity() <= settings.max_header_len());
        prop_assert_eq!(decoder.decode(&[0; 8]).unwrap_err(), err);
        prop_assert_eq!(decoder.finish().unwrap_err(), err);
    }

    /// A stream cut anywhere inside its last frame ends with UnexpectedEnd.
    #[test]
    fn cut_stream_is_unexpected_end(
        settings in settings(),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..5),
        cut in 1usize..400,
    ) {
        let mut wire = Vec::new();
        let mut last = 0;
        for payload in &payloads {
            if let Some((w, _)) = expected(&settings, payload) {
                last = w.len();
                wire.extend_from_slice(&w);
            }
        }
        prop_assume!(last > 1);
        let cut = cut % (last - 1) + 1; // 1..last bytes removed: the last frame is cut, not gone
        let wire = &wire[..wire.len() - cut];
        let result = decode_chunked(settings, wire, &[7]);
        prop_assert!(matches!(result, Err(DecodeError::UnexpectedEnd { buffered }) if buffered == last - cut), "{result:?}");
    }

    /// Arbitrary bytes never panic, and splitting them differently changes nothing.
    #[test]
    fn arbitrary_bytes_same_result_any_split(
        settings in settings(),
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        sizes in proptest::collection::vec(1usize..50, 1..6),
    ) {
        let whole = decode_chunked(settings, &bytes, &[usize::MAX]);
        let split = decode_chunked(settings, &bytes, &sizes);
        prop_assert_eq!(whole, split);
    }
}
