//! Any bytes as a Go binary for `gocost size` and `gocost compare`: the ELF/Mach-O/PE
//! container, the symbol table, the pclntab and the build info give a report or an error that
//! says where, never a panic; a report's rows add up (sections and the bytes outside them make
//! the file; no section has more bytes covered by symbols than it holds), and comparing it with
//! itself finds no change and renders in every format. Seed the corpus with real Go binaries
//! (a `go build` output, one with -ldflags=-s, one cross-built for darwin and windows).
#![no_main]

use gocost_buildcost::{diff, size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = match size::analyze(data) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.msg.is_empty());
            return;
        }
    };
    let in_sections: u64 = r.sections.iter().map(|s| s.file_size).sum();
    assert!(r.outside_sections <= r.file_size);
    assert!(in_sections + r.outside_sections >= r.file_size);
    for s in &r.sections {
        assert!(s.attributed <= s.mem_size.max(s.file_size), "{s:?}");
    }
    for p in &r.packages {
        assert!(!p.package.is_empty() && !p.module.is_empty());
    }
    for by in [size::By::Package, size::By::Module, size::By::Section] {
        let _ = r.to_text(by, 10);
    }
    let _ = serde_json::to_string(&r).unwrap();
    let d = diff::compare(
        "a",
        &r,
        "b",
        &r,
        &diff::Gates {
            max_growth_bytes: Some(0),
            max_growth_frac: Some(0.0),
            deny_new_modules: true,
            ..diff::Gates::default()
        },
    );
    assert!(!d.failed(), "{:?}", d.failures);
    assert!(d.packages.is_empty() && d.new_modules.is_empty());
    let _ = d.to_text(10);
    let _ = d.to_markdown(10);
    let _ = d.to_json();
});
