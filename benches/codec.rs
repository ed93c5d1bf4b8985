//! TFTP codec benchmarks: `cargo bench --bench codec`.
//!
//! Parsing DATA should cost the same at every block size (the payload is borrowed, never
//! touched); encoding DATA is a copy of the payload; `write_data_header` stamps four bytes
//! in front of a payload already in place, so it too is flat across sizes.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wirekit::tftp::{DATA_HEADER_LEN, Packet, write_data_header};

const BLOCK_SIZES: [usize; 4] = [512, 1468, 8192, 65464];

fn data_datagram(blksize: usize) -> Vec<u8> {
    let mut datagram = vec![0, 3, 0x12, 0x34];
    datagram.extend((0..blksize).map(|i| i as u8));
    datagram
}

fn parse_data(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_data");
    for blksize in BLOCK_SIZES {
        let datagram = data_datagram(blksize);
        group.throughput(Throughput::Bytes(datagram.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(blksize), &datagram, |b, d| {
            b.iter(|| Packet::parse(black_box(d)))
        });
    }
    group.finish();
}

fn encode_data(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_data");
    for blksize in BLOCK_SIZES {
        let payload: Vec<u8> = (0..blksize).map(|i| i as u8).collect();
        let mut buf = vec![0u8; DATA_HEADER_LEN + blksize];
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(blksize), |b| {
            b.iter(|| {
                let packet = Packet::Data {
                    block: black_box(0x1234),
                    data: black_box(&payload),
                };
                packet.encode(black_box(&mut buf))
            })
        });
    }
    group.finish();
}

fn data_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_data_header");
    for blksize in BLOCK_SIZES {
        // The payload is already in the buffer, as a sender that reads the file straight
        // into buf[4..] has it.
        let mut buf = data_datagram(blksize);
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(blksize), |b| {
            b.iter(|| write_data_header(black_box(&mut buf), black_box(0x1234)))
        });
    }
    group.finish();
}

fn parse_small(c: &mut Criterion) {
    let rrq: &[u8] =
        b"\0\x01pxelinux.0\0octet\0blksize\x001468\0timeout\x005\0tsize\x000\0windowsize\x0016\0";
    assert!(matches!(Packet::parse(rrq), Ok(Packet::Rrq(_))));
    c.bench_function("parse_rrq_4_options", |b| {
        b.iter(|| Packet::parse(black_box(rrq)))
    });

    let ack: &[u8] = b"\0\x04\x12\x34";
    c.bench_function("parse_ack", |b| b.iter(|| Packet::parse(black_box(ack))));
}

criterion_group!(benches, parse_data, encode_data, data_header, parse_small);
criterion_main!(benches);
