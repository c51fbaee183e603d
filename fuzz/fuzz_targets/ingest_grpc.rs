//! Any bytes as a gRPC unary request body: unframes or errors, never panics; a message it
//! yields lies inside the body and frames back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((compressed, msg)) = gocost_ingest::grpc::unframe(data) {
        assert_eq!(msg.len() + gocost_ingest::grpc::PREFIX, data.len());
        if !compressed {
            assert_eq!(gocost_ingest::grpc::frame(msg), data);
        }
    }
});
