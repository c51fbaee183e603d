//! Any bytes as two `go test -bench` outputs (split at the first NUL): parsing, comparing and
//! rendering them in every format never panics.
#![no_main]

use gocost_compare::{Options, bench, benchfmt, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\0').unwrap_or((&text, &text));
    let (base, _) = benchfmt::parse(a);
    let (head, _) = benchfmt::parse(b);
    let o = Options::default();
    let out = render::Outcome {
        benchmarks: Some(bench::compare(&base, &head, &o)),
        profiles: None,
    };
    let _ = render::text(&out, &o, 20);
    let _ = render::markdown(&out, &o, 20);
    let _ = render::json(&out, &o);
});
