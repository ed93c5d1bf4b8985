//! The std client (`net::get_into`, `net::put_from`) on loopback sockets: what it asks for
//! by default (of our server), how it follows a server that ignores options, and how a
//! download asked to dally keeps answering after it reported its end (servers played by
//! hand).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::cli::{BIN, KillOnDrop};
use common::files::{TempDir, random_bytes};
use common::packets::{ack, data};
use common::server::OurServer;
use common::wait::wait_for;
use wirekit::net::{ClientOptions, get_into, put_from};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{Direction, Options, Packet};

/// How long a step may take before the test calls it lost.
const STEP: Duration = Duration::from_secs(5);

/// What a client asked for, as numbers: blksize, windowsize, tsize.
fn asked(o: &Options<'_>) -> (Option<u16>, Option<u16>, Option<u64>) {
    (
        o.blksize.map(|b| b.unwrap().get()),
        o.windowsize.map(|w| w.unwrap().get()),
        o.tsize,
    )
}

#[test]
fn by_default_a_client_asks_for_1468_byte_blocks_windows_of_16_and_the_size() {
    let root = TempDir::new("client-defaults");
    let file = random_bytes(50_000, 7);
    std::fs::write(root.join("f"), &file).unwrap();
    let server = OurServer::open(
        root.path(),
        "127.0.0.1:0".parse().unwrap(),
        PortMode::PerTransfer,
    );
    let addr = server.addrs()[0];
    let defaults = ClientOptions::default();

    let mut got = Vec::new();
    get_into(addr, "f", &mut got, &defaults, &mut |_, _| {}).unwrap();
    assert_eq!(got, file);
    let mut up = file.clone();
    put_from(addr, "up", &mut up, Some(50_000), &defaults, &mut |_, _| {}).unwrap();
    let mut plain = Vec::new();
    get_into(
        addr,
        "f",
        &mut plain,
        &ClientOptions::plain(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(plain, file);

    let reports = server.wait_for_reports(3, STEP);
    let asks: Vec<_> = reports
        .iter()
        .map(|r| (r.info.direction, asked(&r.info.requested)))
        .collect();
    for want in [
        // A read asks for the size with 0; a put announces its file's.
        (Direction::Read, (Some(1468), Some(16), Some(0))),
        (Direction::Write, (Some(1468), Some(16), Some(50_000))),
        (Direction::Read, (None, None, None)),
    ] {
        assert!(asks.contains(&want), "{want:?} not in {asks:?}");
    }
}

/// A server played by hand: its request socket, and the transfer socket it answers from.
struct ByHand {
    listen: UdpSocket,
    tid: UdpSocket,
}

impl ByHand {
    fn new() -> ByHand {
        let bind = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            s
        };
        ByHand {
            listen: bind(),
            tid: bind(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listen.local_addr().unwrap()
    }

    /// The client's request, and where it came from.
    fn request(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 1024];
        let (n, from) = self.listen.recv_from(&mut buf).expect("no request came");
        (buf[..n].to_vec(), from)
    }

    /// The next datagram to the transfer socket.
    fn recv(&self) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let (n, _) = self
            .tid
            .recv_from(&mut buf)
            .expect("the client answers in time");
        buf[..n].to_vec()
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.tid.send_to(bytes, to).unwrap();
    }
}

#[test]
fn a_server_that_ignores_the_options_is_followed_in_512_byte_lock_step() {
    // Download: the server answers the options with plain DATA 1.
    let server = ByHand::new();
    let addr = server.addr();
    let client = thread::spawn(move || {
        let mut got = Vec::new();
        let stats = get_into(
            addr,
            "f",
            &mut got,
            &ClientOptions::default(),
            &mut |_, _| {},
        );
        (stats.map(|s| s.bytes), got)
    });
    let (rrq, peer) = server.request();
    let Ok(Packet::Rrq(r)) = Packet::parse(&rrq) else {
        panic!("not an RRQ: {rrq:?}")
    };
    assert_eq!(asked(&r.options), (Some(1468), Some(16), Some(0)));
    server.send(&data(1, &[1; 512]), peer);
    assert_eq!(server.recv(), ack(1));
    server.send(&data(2, &[2; 10]), peer);
    assert_eq!(server.recv(), ack(2));
    let (bytes, got) = client.join().unwrap();
    assert_eq!(bytes.unwrap(), 522);
    assert_eq!(got, [vec![1; 512], vec![2; 10]].concat());

    // Upload: the server answers with a plain ACK 0; the client sends 512-byte blocks,
    // one at a time.
    let server = ByHand::new();
    let addr = server.addr();
    let file = random_bytes(600, 3);
    let mut source = file.clone();
    let client = thread::spawn(move || {
        let opts = ClientOptions::default();
        put_from(addr, "f", &mut source, Some(600), &opts, &mut |_, _| {}).map(|s| s.bytes)
    });
    let (_wrq, peer) = server.request();
    server.send(&ack(0), peer);
    assert_eq!(server.recv(), data(1, &file[..512]));
    server.send(&ack(1), peer);
    assert_eq!(server.recv(), data(2, &file[512..]));
    server.send(&ack(2), peer);
    assert_eq!(client.join().unwrap().unwrap(), 600);
}

#[test]
fn a_download_asked_to_dally_reports_its_end_then_re_acks_a_repeated_final_data() {
    let server = ByHand::new();
    let addr = server.addr();
    let reported = Arc::new(AtomicU64::new(0));
    let progress = Arc::clone(&reported);
    let client = thread::spawn(move || {
        // Dallies twice the default 1 s timeout: room for a loaded machine to send the
        // repeat in time, and the test's end waits for it once.
        let mut opts = ClientOptions::plain();
        opts.dally = true;
        let mut got = Vec::new();
        let r = get_into(addr, "f", &mut got, &opts, &mut |bytes, _| {
            progress.store(bytes, Ordering::SeqCst)
        });
        (r.map(|s| s.bytes), got)
    });
    let (_rrq, peer) = server.request();
    server.send(&data(1, b"hello"), peer);
    assert_eq!(server.recv(), ack(1));
    // The caller hears of the whole file as soon as the final ACK is out, dally or not.
    wait_for(
        STEP,
        || reported.load(Ordering::SeqCst) == 5,
        || format!("progress at {}", reported.load(Ordering::SeqCst)),
    );
    // That ACK was lost, say: the server repeats its final DATA, and is answered by a
    // client that has already reported its end.
    server.send(&data(1, b"hello"), peer);
    assert_eq!(server.recv(), ack(1));
    let (bytes, got) = client.join().unwrap();
    assert_eq!(bytes.unwrap(), 5);
    assert_eq!(got, b"hello", "the repeat is not stored twice");
}

#[test]
fn wirekit_get_dally_answers_a_repeated_final_data_and_without_it_the_client_is_gone() {
    let dir = TempDir::new("get-dally");
    for dally in [true, false] {
        let server = ByHand::new();
        let local = dir.join(if dally { "dallied" } else { "plain" });
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["get", "--no-options", &server.addr().to_string(), "f"])
            .arg(&local)
            .args(dally.then_some("--dally"));
        let mut client = KillOnDrop::spawn_piped(cmd);
        let (_rrq, peer) = server.request();
        server.send(&data(1, b"hello"), peer);
        assert_eq!(server.recv(), ack(1));
        // The final ACK was lost, say: the server repeats its last block.
        server.send(&data(1, b"hello"), peer);
        if dally {
            assert_eq!(
                server.recv(),
                ack(1),
                "a dallying client answers the repeat"
            );
        }
        let status = client.0.wait().unwrap();
        assert!(status.success(), "dally {dally}: {status}");
        assert_eq!(std::fs::read(&local).unwrap(), b"hello");
        if !dally {
            // Nobody answers from the client's port any more.
            server
                .tid
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut buf = [0u8; 16];
            assert!(
                server.tid.recv_from(&mut buf).is_err(),
                "no dally, no answer"
            );
        }
    }
}
