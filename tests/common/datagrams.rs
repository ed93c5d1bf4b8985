//! TFTP datagrams built byte by byte, for tests that speak to the server or to a
//! state machine directly. One definition for both module trees of the tests:
//! `common` has it as `common::datagrams` (and `common::packets` re-exports it), and the
//! machine-level kit `sim` (also built into the transfer bench and the fuzz target)
//! includes this same file by path.

use wirekit::tftp::Packet;

/// A request datagram: opcode, the name's bytes, NUL, `mode`, NUL, then `opts` as option
/// pairs, byte for byte.
pub fn request(opcode: u8, name: &[u8], mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![0, opcode];
    v.extend_from_slice(name);
    v.push(0);
    v.extend_from_slice(mode.as_bytes());
    v.push(0);
    for (k, val) in opts {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

/// An octet RRQ with `opts` as option pairs.
pub fn rrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    request(1, name.as_bytes(), "octet", opts)
}

/// An octet WRQ with `opts` as option pairs.
pub fn wrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    request(2, name.as_bytes(), "octet", opts)
}

/// An ACK.
pub fn ack(block: u16) -> Vec<u8> {
    Packet::Ack { block }.to_vec().unwrap()
}

/// A DATA packet.
pub fn data(block: u16, data: &[u8]) -> Vec<u8> {
    Packet::Data { block, data }.to_vec().unwrap()
}

/// An ERROR 0 with a message: how a client ends a transfer it no longer wants.
pub fn error(message: &str) -> Vec<u8> {
    let mut v = vec![0, 5, 0, 0];
    v.extend_from_slice(message.as_bytes());
    v.push(0);
    v
}
