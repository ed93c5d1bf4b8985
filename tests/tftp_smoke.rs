//! A lossless client/server exchange through the machines, as a first check: a client
//! `Transfer` against the server's `Endpoint`, datagrams handed over at once.

mod sim;

use std::time::Duration;

use sim::{ServerSide, client_addr, server_addr, transfer_addr};
use wirekit::tftp::{
    Blksize, ClientRequest, Config, Direction, Instant, Transfer, TransferEvent, Windowsize,
};

fn run(direction: Direction, file: Vec<u8>, blksize: u16, windowsize: u16) -> Vec<u8> {
    let mut req = ClientRequest::new(direction, "f");
    req.blksize = Some(Blksize::new(blksize.into()).unwrap());
    req.windowsize = Some(Windowsize::new(windowsize.into()).unwrap());
    let mut now = Instant::ZERO;
    let mut client = Transfer::client(now, server_addr(), &req, Config::default()).unwrap();
    let mut client_store = match direction {
        Direction::Read => Vec::new(),
        Direction::Write => file.clone(),
    };
    let mut server = ServerSide::serving(file.clone());
    let mut buf = vec![0u8; 70000];
    let t = client
        .poll_transmit(now, &mut client_store, &mut buf)
        .unwrap();
    assert_eq!(t.destination, server_addr());
    server.request(now, client_addr(), &buf[..t.len]);
    assert_eq!(server.len(), 1, "refused: {:?}", server.refused);
    let mut steps = 0;
    while !(client.is_closed() && server.is_empty()) {
        steps += 1;
        assert!(steps < 1_000_000);
        let mut moved = false;
        while let Some(s) = server.poll_transmit(now) {
            assert_eq!((s.from, s.to), (transfer_addr(), client_addr()));
            client.handle_datagram(now, s.from, s.bytes, &mut client_store);
            moved = true;
        }
        while let Some(t) = client.poll_transmit(now, &mut client_store, &mut buf) {
            assert_eq!(t.destination, transfer_addr());
            server.handle(now, client_addr(), t.destination, &buf[..t.len]);
            moved = true;
        }
        if !moved {
            // Only dally timers are left.
            now += Duration::from_secs(100);
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
    }
    let mut finished = 0;
    while let Some(e) = client.poll_event() {
        if let TransferEvent::Finished { result, .. } = e {
            result.unwrap();
            finished += 1;
        }
    }
    for (_, report) in server.take_ended() {
        report.result.unwrap();
        finished += 1;
    }
    assert_eq!(finished, 2);
    match direction {
        Direction::Read => client_store,
        Direction::Write => {
            let uploads = &server.policy().uploads;
            assert_eq!(uploads.len(), 1);
            assert_eq!(uploads[0].file.commits(), 1, "committed once");
            uploads[0].file.data()
        }
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
