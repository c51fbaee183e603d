//! Any bytes as a block file (blocks may come from an object store gocost does not own):
//! verifying them decodes or errors, never panics or allocates without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gocost_store::verify_block(data);
});
