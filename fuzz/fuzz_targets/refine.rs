//! pprof's refine options as the API takes them from a query string (focus … prune_from,
//! tagfocus/tagignore with regexps or numeric ranges): any text, over a real profile, is an
//! answer or an error, never a panic. The first byte picks the option.
#![no_main]

use libfuzzer_sys::fuzz_target;

static PROFILE: &[u8] = include_bytes!("../../testdata/profiles/heap.pb.gz");

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let v = Some(text.to_string());
    let mut o = gocost_report::Options::default();
    match which % 8 {
        0 => o.focus = v,
        1 => o.ignore = v,
        2 => o.hide = v,
        3 => o.show = v,
        4 => o.show_from = v,
        5 => o.prune_from = v,
        6 => o.tagfocus = v,
        _ => o.tagignore = v,
    }
    let Ok(p) = gocost_pprof::decode(PROFILE) else {
        return;
    };
    if let Ok(r) = gocost_report::Report::new(p, &o) {
        let _ = r.top_text();
        let _ = r.tags_text();
    }
});
