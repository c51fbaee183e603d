//! Any text as an API selector: parses or errors, never panics; parsed series keys round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(sel) = gocost_store::Selector::parse(text) {
        let key = gocost_store::SeriesKey::new("cpu", [("job".to_string(), text.to_string())]);
        let _ = sel.matches(&key);
    }
    if let Ok(k) = gocost_store::SeriesKey::parse(text) {
        if !k.kind.is_empty() {
            assert_eq!(gocost_store::SeriesKey::parse(&k.to_string()).ok(), Some(k));
        }
    }
});
