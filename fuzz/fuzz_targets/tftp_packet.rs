#![no_main]
//! Raw bytes into `Packet::parse`: it must never panic, and whatever it accepts must
//! re-encode to bytes that parse to the same packet.

use libfuzzer_sys::fuzz_target;
use wirekit::tftp::{EncodeError, MAX_REQUEST_LEN, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    match packet.to_vec() {
        Ok(bytes) => {
            assert_eq!(bytes.len(), packet.encoded_len());
            let again = Packet::parse(&bytes).expect("re-encoded packet must parse");
            assert_eq!(again, packet);
        }
        // A request the parser tolerated but that is too long to send again.
        Err(EncodeError::RequestTooLarge { len }) => {
            assert!(matches!(packet, Packet::Rrq(_) | Packet::Wrq(_)));
            assert!(len > MAX_REQUEST_LEN);
            assert_eq!(len, packet.encoded_len());
        }
        Err(e) => panic!("parsed packet {packet:?} does not re-encode: {e}"),
    }
});
