//! Options asked for outside their RFC range: `blksize 7` and `blksize 65465` (RFC 2348
//! allows 8 to 65464), `timeout 0` and `timeout 256` (RFC 2349 allows 1 to 255).
//!
//! tftp-hpa 5.2 answers the blksize 7 and timeout asks with ERROR 8 and lowers blksize
//! 65465 to 65464; atftpd 0.8 answers all four with ERROR 8. wirekit leaves a too-small
//! or unusable ask out of its answer and lowers a too-large blksize to its maximum, then
//! transfers: RFC 2347 lets a server leave out an option it does not accept, and a client
//! that asks for something sloppy still gets its file (a boot ROM has no second chance).
//! These tests pin the exact answer, on the machine and over a real socket.

mod common;
mod sim;

use std::fs;
use std::net::UdpSocket;
use std::time::Duration;

use common::files::{TempDir, random_bytes as content};
use common::server::{OurServer, config_with};
use sim::{ServerSide, client_addr};
use wirekit::net::DirConfig;
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{Config, Instant};

const FILE_LEN: usize = 1000;

/// A request for `f.bin` in octet mode with `options` (name, value pairs), as a client
/// writes it on the wire.
fn request(opcode: u8, options: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![0, opcode];
    v.extend_from_slice(b"f.bin\0octet\0");
    for (name, value) in options {
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        v.extend_from_slice(value.as_bytes());
        v.push(0);
    }
    v
}

/// DATA 1 of the file at the default 512-byte blksize.
fn data_1_at_512(file: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 3, 0, 1];
    v.extend_from_slice(&file[..512]);
    v
}

/// Admits `datagram` with default limits and returns the server and its first datagram.
fn first_answer(datagram: &[u8], file: &[u8]) -> (ServerSide, Vec<u8>) {
    let mut server = ServerSide::serving(file.to_vec());
    server.request(Instant::ZERO, client_addr(), datagram);
    let sent = server.drain(Instant::ZERO);
    let (to, answer) = sent.into_iter().next().expect("a first answer");
    assert_eq!(to, client_addr());
    (server, answer)
}

#[test]
fn out_of_range_options_are_left_out_or_lowered() {
    let file = content(FILE_LEN, 13);
    let data_1 = data_1_at_512(&file);
    let ack_0 = b"\0\x04\0\0".to_vec();
    let oack_max = b"\0\x06blksize\x0065464\0".to_vec();
    // (option, value, first answer to an RRQ, first answer to a WRQ)
    let cases = [
        ("blksize", "7", &data_1, &ack_0),
        ("blksize", "65465", &oack_max, &oack_max),
        ("timeout", "0", &data_1, &ack_0),
        ("timeout", "256", &data_1, &ack_0),
    ];
    for (name, value, read, write) in cases {
        let (t, answer) = first_answer(&request(1, &[(name, value)]), &file);
        assert_eq!(&answer, read, "RRQ {name} {value}");
        // No timeout was negotiated: the retransmission timer runs at our default.
        assert_eq!(
            t.poll_timeout(),
            Some(Instant::ZERO + Config::default().timeout),
            "RRQ {name} {value}"
        );
        let (_, answer) = first_answer(&request(2, &[(name, value)]), &file);
        assert_eq!(&answer, write, "WRQ {name} {value}");
    }
}

#[test]
fn an_out_of_range_option_leaves_the_others_negotiated() {
    let file = content(FILE_LEN, 13);
    let rrq = request(1, &[("blksize", "7"), ("tsize", "0"), ("timeout", "256")]);
    let (_, answer) = first_answer(&rrq, &file);
    assert_eq!(answer, b"\0\x06tsize\x001000\0");
}

#[test]
fn blksize_7_over_a_socket_is_served_at_512() {
    let root = TempDir::new("option-ranges");
    let file = content(FILE_LEN, 7);
    fs::write(root.join("f.bin"), &file).unwrap();
    let server = OurServer::start(
        config_with(PortMode::PerTransfer, Config::default()),
        DirConfig::new(root.path()),
    );
    let addr = server.addr;

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .send_to(&request(1, &[("blksize", "7")]), addr)
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, tid) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], data_1_at_512(&file), "first answer");
    assert_ne!(tid, addr, "answered from the request port");

    // Finish the transfer, so the server stops with nothing in flight.
    client.send_to(b"\0\x04\0\x01", tid).unwrap();
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(from, tid);
    let mut data_2 = vec![0, 3, 0, 2];
    data_2.extend_from_slice(&file[512..]);
    assert_eq!(&buf[..n], data_2, "last block");
    client.send_to(b"\0\x04\0\x02", tid).unwrap();
    server.stop().unwrap();
    let _ = fs::remove_dir_all(&root);
}
