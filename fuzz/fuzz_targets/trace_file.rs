//! Any bytes as a stored trace file (`docs/format/traces.md`): the header and checksum are
//! checked, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gocost_store::check_trace_file(data);
});
