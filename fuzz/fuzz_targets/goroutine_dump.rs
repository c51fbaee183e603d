//! Any bytes as a goroutine `debug=2` dump: parses or errors (with a line), and whatever
//! parses feeds the leak analysis without panicking.
#![no_main]

use gocost_insights::{dump, leaks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(gs) = dump::parse(text) {
        let mut snaps: Vec<leaks::Snapshot> = (0..6)
            .map(|i| leaks::snapshot_from_dump(&gs[..gs.len() * i / 5], i as i64 * 10_000))
            .collect();
        let _ = leaks::find(&mut snaps, &leaks::defaults());
    }
});
