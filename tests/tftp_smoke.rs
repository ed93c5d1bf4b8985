//! A lossless client/server exchange through the machines, as a first check.

use std::net::SocketAddr;
use std::time::Duration;

use wirekit::tftp::server::{Admission, Limits, Policy, Refusal, admit};
use wirekit::tftp::{Blksize, ClientRequest, Config, Direction, Event, Text, Transfer, Windowsize};

struct One(Vec<u8>);

impl Policy for One {
    fn read(&mut self, _: SocketAddr, _: Text<'_>) -> Result<Option<u64>, Refusal> {
        Ok(Some(self.0.len() as u64))
    }
    fn write(&mut self, _: SocketAddr, _: Text<'_>, _: Option<u64>) -> Result<(), Refusal> {
        Ok(())
    }
}

fn run(direction: Direction, file: Vec<u8>, blksize: u16, windowsize: u16) -> Vec<u8> {
    let client_addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let server_addr: SocketAddr = "127.0.0.1:69".parse().unwrap();
    let transfer_addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let mut req = ClientRequest::new(direction, "f");
    req.blksize = Some(Blksize::new(blksize.into()).unwrap());
    req.windowsize = Some(Windowsize::new(windowsize.into()).unwrap());
    let now = Duration::ZERO;
    let mut client = Transfer::client(now, server_addr, &req, Config::default()).unwrap();
    let (mut client_store, mut server_store) = match direction {
        Direction::Read => (Vec::new(), file.clone()),
        Direction::Write => (file.clone(), Vec::new()),
    };
    let mut buf = vec![0u8; 70000];
    let t = client
        .poll_transmit(now, &mut client_store, &mut buf)
        .unwrap();
    assert_eq!(t.destination, server_addr);
    let mut policy = One(file.clone());
    let Admission::Accepted { mut transfer, .. } = admit(
        now,
        client_addr,
        &buf[..t.len],
        &Limits::default(),
        &mut policy,
    ) else {
        panic!("refused")
    };
    let mut steps = 0;
    while !(client.is_closed() && transfer.is_closed()) {
        steps += 1;
        assert!(steps < 1_000_000);
        let mut moved = false;
        while let Some(t) = transfer.poll_transmit(now, &mut server_store, &mut buf) {
            assert_eq!(t.destination, client_addr);
            client.handle_datagram(now, transfer_addr, &buf[..t.len], &mut client_store);
            moved = true;
        }
        while let Some(t) = client.poll_transmit(now, &mut client_store, &mut buf) {
            assert_eq!(t.destination, transfer_addr);
            transfer.handle_datagram(now, client_addr, &buf[..t.len], &mut server_store);
            moved = true;
        }
        if !moved {
            // Only dally timers are left.
            let later = now + Duration::from_secs(100);
            client.handle_timeout(later);
            transfer.handle_timeout(later);
        }
    }
    let mut finished = 0;
    while let Some(e) = client.poll_event() {
        if let Event::Finished(r) = e {
            r.unwrap();
            finished += 1;
        }
    }
    while let Some(e) = transfer.poll_event() {
        if let Event::Finished(r) = e {
            r.unwrap();
            finished += 1;
        }
    }
    assert_eq!(finished, 2);
    match direction {
        Direction::Read => client_store,
        Direction::Write => server_store,
    }
}

#[test]
fn lossless_reads_and_writes() {
    for size in [0usize, 1, 511, 512, 513, 5000, 512 * 40] {
        let file: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        for (b, w) in [(512, 1), (512, 16), (1468, 4), (8, 64)] {
            assert_eq!(
                run(Direction::Read, file.clone(), b, w),
                file,
                "read {size} {b} {w}"
            );
            assert_eq!(
                run(Direction::Write, file.clone(), b, w),
                file,
                "write {size} {b} {w}"
            );
        }
    }
}
