//! Any bytes as a `gocost load --json` run given to `gocost compare`: samples or an error
//! that names the field, never a panic; every sample has one value and a known unit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    match gocost_compare::benchfmt::load_run(&v) {
        Ok(rs) => {
            assert!(!rs.is_empty());
            for r in rs {
                assert_eq!(r.values.len(), 1);
                assert!(["sec/req", "req/s", "cpu-sec/req"].contains(&r.values[0].1.as_str()));
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
