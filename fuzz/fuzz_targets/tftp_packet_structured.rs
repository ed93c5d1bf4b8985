#![no_main]

use libfuzzer_sys::fuzz_target;

// Placeholder until the target is written.
fuzz_target!(|_data: &[u8]| {});
