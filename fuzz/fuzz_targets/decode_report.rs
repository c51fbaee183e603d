//! Any bytes that decode: every report (top with filters and granularities, traces, raw),
//! a self-merge and flame stacks must complete without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gocost_fuzz_support::run(data);
});

mod gocost_fuzz_support {
    include!("../../crates/report/tests/fuzz_support.rs");
}
