//! Any bytes: decoding must return a profile or an error, never panic, and a decoded profile
//! must survive encode → decode unchanged. The flat decode (what merges and the store's
//! appends use) must agree with it: the same error or the same samples, and a merge of the
//! flat samples must equal the model's.
#![no_main]

use gocost_pprof::Samples;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = gocost_pprof::DecodeOptions { max_size: 16 << 20, labels: true };
    let model = gocost_pprof::decode_with(data, &opts);
    let flat = gocost_pprof::decode_flat_with(data, &opts);
    assert_eq!(model.is_ok(), flat.is_ok(), "the flat decode disagrees");
    if let (Ok(p), Ok((q, samples))) = (model, flat) {
        let again = gocost_pprof::decode(&gocost_pprof::encode_uncompressed(&p))
            .expect("re-decoding our own encoding");
        assert_eq!(p, again);
        assert_eq!(samples.to_samples(), p.sample);
        let mut a = gocost_pprof::Merger::new(&p);
        let mut b = gocost_pprof::Merger::new(&p);
        if a.add(&p).is_ok() {
            b.add_flat(&q, &samples).expect("the same profile merges flat");
            assert_eq!(a.finish(), b.finish());
        }
    }
});
