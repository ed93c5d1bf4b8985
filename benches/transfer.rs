//! A 64 MiB read through a client machine and a server machine, with no sockets: the
//! server sends from memory, the client receives into a reused `Vec`. Measures the
//! machines' own cost per byte (parse, ACK bookkeeping, storage copy).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wirekit::tftp::server::{Admission, Limits, Policy, Refusal, admit};
use wirekit::tftp::{Blksize, ClientRequest, Config, Direction, Text, Transfer, Windowsize};

const SIZE: usize = 64 << 20;

struct Allow(u64);

impl Policy for Allow {
    fn read(&mut self, _: SocketAddr, _: Text<'_>) -> Result<Option<u64>, Refusal> {
        Ok(Some(self.0))
    }
    fn write(&mut self, _: SocketAddr, _: Text<'_>, _: Option<u64>) -> Result<(), Refusal> {
        Ok(())
    }
}

/// One whole transfer; returns the bytes received.
fn transfer(file: &[u8], sink: &mut Vec<u8>, blksize: u16, windowsize: u16) -> usize {
    let client_addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let server_addr: SocketAddr = "127.0.0.1:69".parse().unwrap();
    let transfer_addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let now = Duration::ZERO;
    sink.clear();
    let mut req = ClientRequest::new(Direction::Read, "bench");
    req.blksize = Some(Blksize::new(blksize.into()).unwrap());
    req.windowsize = Some(Windowsize::new(windowsize.into()).unwrap());
    let mut client = Transfer::client(now, server_addr, &req, Config::default()).unwrap();
    let mut src: &[u8] = file;
    let mut buf = vec![0u8; 65536];
    let t = client.poll_transmit(now, sink, &mut buf).unwrap();
    let request = buf[..t.len].to_vec();
    let limits = Limits {
        max_windowsize: Windowsize::MAX,
        ..Limits::default()
    };
    let Admission::Accepted {
        transfer: mut server,
        ..
    } = admit(
        now,
        client_addr,
        &request,
        &limits,
        &mut Allow(file.len() as u64),
    )
    else {
        panic!("refused")
    };
    while !server.is_closed() {
        while let Some(t) = server.poll_transmit(now, &mut src, &mut buf) {
            client.handle_datagram(now, transfer_addr, &buf[..t.len], sink);
        }
        while let Some(t) = client.poll_transmit(now, sink, &mut buf) {
            server.handle_datagram(now, client_addr, &buf[..t.len], &mut src);
        }
    }
    sink.len()
}

fn bench(c: &mut Criterion) {
    let file: Vec<u8> = (0..SIZE).map(|i| (i * 7 + i / 4096) as u8).collect();
    let mut sink = Vec::with_capacity(SIZE);
    let mut g = c.benchmark_group("tftp_read_64MiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SIZE as u64));
    for blksize in [512u16, 1468, 8192, 65464] {
        for windowsize in [1u16, 16, 64] {
            assert_eq!(transfer(&file, &mut sink, blksize, windowsize), SIZE);
            assert!(sink == file);
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
