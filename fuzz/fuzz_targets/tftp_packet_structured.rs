#![no_main]
//! An arbitrary `Packet`: if it encodes, parsing the bytes gives the same packet back, and
//! if it does not, the buffer is left untouched.

use libfuzzer_sys::fuzz_target;
use wirekit::tftp::Packet;

fuzz_target!(|packet: Packet<'_>| {
    let len = packet.encoded_len();
    let mut buf = vec![0xAA; len];
    match packet.encode(&mut buf) {
        Ok(n) => {
            assert_eq!(n, len);
            let parsed = Packet::parse(&buf).expect("encoded packet must parse");
            assert_eq!(parsed, packet);
        }
        Err(_) => assert!(buf.iter().all(|&b| b == 0xAA), "failed encode wrote bytes"),
    }
    // A buffer one byte short is refused without a write.
    if let Some(short) = len.checked_sub(1) {
        let mut buf = vec![0xAA; short];
        assert!(packet.encode(&mut buf).is_err());
        assert!(buf.iter().all(|&b| b == 0xAA));
    }
});
