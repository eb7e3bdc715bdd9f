#![no_main]
//! `strait_cache::fuzzing::check_chunked_whole`: see its doc for the input layout and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_cache::fuzzing::check_chunked_whole(data));
