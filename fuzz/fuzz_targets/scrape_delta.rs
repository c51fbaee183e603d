//! Two scrapes of a cumulative kind as any bytes (split at the first byte's position): each
//! that decodes goes through the scraper's baselines as allocs/mutex/block and as heap —
//! never a panic, and a delta never has more samples than the scrape it was made from.
#![no_main]

use gocost_scrape::delta::{Delta, delta, heap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = (cut as usize * rest.len() / 255).min(rest.len());
    let (a, b) = rest.split_at(at);
    let opts = gocost_pprof::DecodeOptions { max_size: 16 << 20, labels: true };
    let (Ok(pa), Ok(pb)) = (
        gocost_pprof::decode_with(a, &opts),
        gocost_pprof::decode_with(b, &opts),
    ) else {
        return;
    };
    let n = pb.sample.len();
    let (_, base) = delta(None, pa.clone());
    if let (Delta::Diff(d) | Delta::Restarted(d), _) = delta(Some(&base), pb.clone()) {
        assert!(d.sample.len() <= n);
    }
    let (_, base) = heap(None, pa);
    let (d, _) = heap(Some(&base), pb);
    assert!(d.sample.len() <= n);
});
