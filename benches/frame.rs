//! Decoding length-prefixed frames from a stream fed in 4 KiB chunks: wirekit's decoder next to
//! tokio-util's `LengthDelimitedCodec`, on the same bytes, for 16-byte and 64 KiB frames.
//!
//! Each benchmark reports frames/s and bytes/s of payload (`Throughput::ElementsAndBytes`).
//!
//! - `wirekit/borrowed`: `Decoder::feed` + `Feed::next_frame`, frames borrowed (from the chunk
//!   when whole inside it, else from the decoder's buffer);
//! - `wirekit/owned`: the same, with each frame copied into its own `Vec` (what a caller that
//!   keeps frames pays, and what `FramedReader::recv` does);
//! - `tokio-util`: the chunk appended to a `BytesMut`, then `decode` until `None`, each frame a
//!   `BytesMut` split off the buffer.
//!
//! Recorded on the 2-core shared development machine (second of two runs, median, payload
//! bytes; 1 MiB of payload per stream):
//!
//! | frames | wirekit borrowed | wirekit owned (`Vec`) | tokio-util 0.7.20 |
//! |--------|------------------|-----------------------|-------------------|
//! | 16 B   | 51.4 M/s, 785 MiB/s | 27.1 M/s, 413 MiB/s | 21.6 M/s, 330 MiB/s |
//! | 64 KiB | 396 k/s, 24.2 GiB/s | 232 k/s, 14.2 GiB/s | 123 k/s, 7.5 GiB/s |

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::{Decoder as _, LengthDelimitedCodec};
use wirekit::frame::{Decoder, Settings};

const CHUNK: usize = 4096;
/// About this many payload bytes per stream.
const STREAM_BYTES: usize = 1 << 20;

fn stream(payload_len: usize) -> (Vec<u8>, usize) {
    let settings = Settings::default();
    let frames = (STREAM_BYTES / payload_len).max(1);
    let mut wire = Vec::new();
    for i in 0..frames {
        let payload = vec![i as u8; payload_len];
        settings
            .encode_to_vec(&payload, &mut wire)
            .expect("payload fits the default settings");
    }
    (wire, frames)
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode_4KiB_chunks");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    for (name, payload_len) in [("16B", 16usize), ("64KiB", 64 * 1024)] {
        let (wire, frames) = stream(payload_len);
        group.throughput(Throughput::ElementsAndBytes {
            elements: frames as u64,
            bytes: (frames * payload_len) as u64,
        });

        group.bench_with_input(
            BenchmarkId::new("wirekit/borrowed", name),
            &wire,
            |b, wire| {
                b.iter(|| {
                    let mut decoder = Decoder::new(Settings::default());
                    let mut n = 0usize;
                    for chunk in wire.chunks(CHUNK) {
                        let mut feed = decoder.feed(chunk);
                        while let Some(frame) = feed.next_frame().expect("valid stream") {
                            black_box(frame);
                            n += 1;
                        }
                    }
                    assert_eq!(n, frames);
                })
            },
        );

        group.bench_with_input(BenchmarkId::new("wirekit/owned", name), &wire, |b, wire| {
            b.iter(|| {
                let mut decoder = Decoder::new(Settings::default());
                let mut n = 0usize;
                for chunk in wire.chunks(CHUNK) {
                    let mut feed = decoder.feed(chunk);
                    while let Some(frame) = feed.next_frame().expect("valid stream") {
                        black_box(frame.to_vec());
                        n += 1;
                    }
                }
                assert_eq!(n, frames);
            })
        });

        group.bench_with_input(BenchmarkId::new("tokio-util", name), &wire, |b, wire| {
            b.iter(|| {
                let mut codec = LengthDelimitedCodec::new();
                let mut buf = BytesMut::with_capacity(CHUNK);
                let mut n = 0usize;
                for chunk in wire.chunks(CHUNK) {
                    buf.extend_from_slice(chunk);
                    while let Some(frame) = codec.decode(&mut buf).expect("valid stream") {
                        black_box(frame);
                        n += 1;
                    }
                }
                assert_eq!(n, frames);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
