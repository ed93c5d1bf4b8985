//! A 64 MiB read through a client machine and the server's endpoint, with no sockets: the
//! server sends from memory, the client receives into a reused `Vec`. Measures the
//! machines' own cost per byte (parse, ACK bookkeeping, endpoint routing, storage copy).

// The machine tests' server adapter, so the bench drives the endpoint the way they do.
#[path = "../tests/sim/mod.rs"]
mod sim;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sim::{AllowAll, ServerSide, SimFile, client_addr, server_addr};
use wirekit::tftp::server::{Limits, PortMode};
use wirekit::tftp::{Blksize, ClientRequest, Config, Direction, Instant, Transfer, Windowsize};

const SIZE: usize = 64 << 20;

/// One whole transfer; returns the bytes received.
fn transfer(file: &SimFile, sink: &mut Vec<u8>, blksize: u16, windowsize: u16) -> usize {
    let mut now = Instant::ZERO;
    sink.clear();
    let mut req = ClientRequest::new(Direction::Read, "bench");
    req.blksize = Some(Blksize::new(blksize.into()).unwrap());
    req.windowsize = Some(Windowsize::new(windowsize.into()).unwrap());
    let mut client = Transfer::client(now, server_addr(), &req, Config::default()).unwrap();
    let mut buf = vec![0u8; 65536];
    let t = client.poll_transmit(now, sink, &mut buf).unwrap();
    let mut limits = Limits::default();
    limits.max_windowsize = Windowsize::MAX;
    let policy = AllowAll {
        default: Some(file.clone()),
        ..AllowAll::default()
    };
    let mut server = ServerSide::new(policy, limits, PortMode::PerTransfer);
    server.request(now, client_addr(), &buf[..t.len]);
    assert_eq!(server.len(), 1, "refused: {:?}", server.refused);
    while !server.is_empty() {
        let mut moved = false;
        while let Some(s) = server.poll_transmit(now) {
            client.handle_datagram(now, s.from, s.bytes, sink);
            moved = true;
        }
        while let Some(t) = client.poll_transmit(now, sink, &mut buf) {
            server.handle(now, client_addr(), t.destination, &buf[..t.len]);
            moved = true;
        }
        // A window larger than a burst pauses between bursts: the clock moves on to the
        // server's deadline, as a driver's would, and nothing is lost, so no timeout fires.
        if !moved && let Some(deadline) = server.poll_timeout() {
            now = deadline;
            server.handle_timeout(now);
        }
    }
    sink.len()
}

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 + i / 4096) as u8).collect();
    let file = SimFile::new(data.clone());
    let mut sink = Vec::with_capacity(SIZE);
    let mut g = c.benchmark_group("tftp_read_64MiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SIZE as u64));
    for blksize in [512u16, 1468, 8192, 65464] {
        for windowsize in [1u16, 16, 64] {
            assert_eq!(transfer(&file, &mut sink, blksize, windowsize), SIZE);
            assert!(sink == data);
            let id = BenchmarkId::new(format!("blksize{blksize}"), format!("window{windowsize}"));
            g.bench_function(id, |b| {
                b.iter(|| transfer(black_box(&file), &mut sink, blksize, windowsize))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
