//! The client writes a download's gathered blocks after it acknowledged them, while the
//! server sends on, and a write that fails then still ends the download with an ERROR.
//! The server is played by hand on a loopback socket.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::Duration;

use common::packets::{ack, data};
use wirekit::net::{ClientError, ClientOptions, get_into};
use wirekit::tftp::{ErrorCode, Packet, Storage, StorageError};

/// How long a step may take before the test calls it lost.
const STEP: Duration = Duration::from_secs(5);

/// Gathers blocks; its flush tells the test, then waits for the test's word, which says
/// whether to fail.
struct Held {
    gathered: Vec<u8>,
    written: Vec<u8>,
    flushing: Sender<usize>,
    go_on: Receiver<bool>,
}

impl Storage for Held {
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, StorageError> {
        Err(StorageError::write_only())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.gathered.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        if self.gathered.is_empty() {
            return Ok(());
        }
        let _ = self.flushing.send(self.gathered.len());
        match self.go_on.recv_timeout(STEP) {
            Ok(true) => {
                self.written.append(&mut self.gathered);
                Ok(())
            }
            _ => Err(StorageError::new(ErrorCode::DiskFull, "disk full")),
        }
    }
}

/// The socket of a server played by hand.
fn serve_by_hand() -> UdpSocket {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(STEP)).unwrap();
    server
}

fn recv(server: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 1024];
    let (n, from) = server
        .recv_from(&mut buf)
        .expect("the client answers in time");
    (buf[..n].to_vec(), from)
}

/// A download's outcome: its bytes or its error, and what reached the file.
type Outcome = thread::JoinHandle<(Result<u64, ClientError>, Vec<u8>)>;

/// Starts a plain download of "f" from `server` into a [`Held`] storage; returns the
/// channels that see and steer its flushes, and the download's outcome.
fn download(server: SocketAddr) -> (Receiver<usize>, Sender<bool>, Outcome) {
    let (flushing, flushes) = channel();
    let (go_on, steer) = channel();
    let client = thread::spawn(move || {
        let mut held = Held {
            gathered: Vec::new(),
            written: Vec::new(),
            flushing,
            go_on: steer,
        };
        let r = get_into(
            server,
            "f",
            &mut held,
            &ClientOptions::plain(),
            &mut |_, _| {},
        );
        held.written.append(&mut held.gathered);
        (r.map(|s| s.bytes), held.written)
    });
    (flushes, go_on, client)
}

#[test]
fn a_block_is_acknowledged_before_it_is_written() {
    let server = serve_by_hand();
    let (flushes, go_on, client) = download(server.local_addr().unwrap());
    let (_rrq, peer) = recv(&server);
    server.send_to(&data(1, &[1; 512]), peer).unwrap();
    // The ACK comes while the client still holds block 1 unwritten: its write waits for
    // this test, and would keep the ACK back if it came first.
    assert_eq!(recv(&server), (ack(1), peer));
    assert_eq!(
        flushes.recv_timeout(STEP),
        Ok(512),
        "block 1 is written next"
    );
    go_on.send(true).unwrap();
    server.send_to(&data(2, &[2; 10]), peer).unwrap();
    assert_eq!(recv(&server), (ack(2), peer));
    let (result, written) = client.join().unwrap();
    assert_eq!(result.unwrap(), 522);
    assert_eq!(written, [vec![1; 512], vec![2; 10]].concat());
}

#[test]
fn a_write_that_fails_after_the_ack_ends_the_download_with_an_error() {
    let server = serve_by_hand();
    let (flushes, go_on, client) = download(server.local_addr().unwrap());
    let (_rrq, peer) = recv(&server);
    server.send_to(&data(1, &[1; 512]), peer).unwrap();
    assert_eq!(recv(&server), (ack(1), peer));
    assert_eq!(flushes.recv_timeout(STEP), Ok(512));
    go_on.send(false).unwrap();
    let (error, from) = recv(&server);
    assert_eq!(from, peer);
    assert!(
        matches!(
            Packet::parse(&error),
            Ok(Packet::Error {
                code: ErrorCode::DiskFull,
                ..
            })
        ),
        "{error:?}"
    );
    let (result, _) = client.join().unwrap();
    let e = result.unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
}
