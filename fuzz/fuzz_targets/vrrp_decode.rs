#![no_main]
//! `strait_lb::fuzzing::check_vrrp`: see its doc for the input layout and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_lb::fuzzing::check_vrrp(data));
