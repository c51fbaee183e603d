//! Any text as a `gocost load --requests` file: parses or errors (naming a line), never
//! panics; every parsed request has a path that is a valid request URI.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(target) = gocost_load::Target::parse("http://127.0.0.1:8080/") else { return };
    match gocost_load::requests::parse(text, &target) {
        Ok(reqs) => {
            assert!(!reqs.is_empty());
            for r in reqs {
                assert!(r.path.starts_with('/'));
                assert!(r.path.parse::<hyper::Uri>().is_ok());
            }
        }
        Err(e) => assert!(e.starts_with("line ") || e.starts_with("no requests"), "{e}"),
    }
});
