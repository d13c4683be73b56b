//! See `charon_fuzz::checks::core` for what is checked and the input format.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| charon_fuzz::checks::core(data));
