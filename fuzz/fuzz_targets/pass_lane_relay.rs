#![no_main]
//! `strait_cache::fuzzing::check_pass_lane_relay`: see its doc for the input layout and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_cache::fuzzing::check_pass_lane_relay(data));
