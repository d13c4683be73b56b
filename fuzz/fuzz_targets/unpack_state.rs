//! See `charon_fuzz::checks::unpack_state` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| charon_fuzz::checks::unpack_state(data));
