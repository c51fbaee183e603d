//! Any bytes: decoding must return a profile or an error, never panic, and a decoded profile
//! must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = gocost_pprof::DecodeOptions { max_size: 16 << 20, labels: true };
    if let Ok(p) = gocost_pprof::decode_with(data, &opts) {
        let again = gocost_pprof::decode(&gocost_pprof::encode_uncompressed(&p))
            .expect("re-decoding our own encoding");
        assert_eq!(p, again);
    }
});
