//! Any bytes as a Go execution trace (after a valid header for each supported format):
//! reading every event, resolving its details, printing it in every dialect and computing the
//! analyses (blocking profiles, goroutine summaries, GC cycles, MMU) never panics.
#![no_main]

use gocost_trace::text::{Dialect, write_event};
use gocost_trace::{BlockingKind, blocking_profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&v, body)) = data.split_first() else { return };
    // The first byte picks the header (or, rarely, none: the bytes as they are).
    let mut t = match v % 5 {
        0 => b"go 1.22 trace\0\0\0".to_vec(),
        1 => b"go 1.23 trace\0\0\0".to_vec(),
        2 => b"go 1.25 trace\0\0\0".to_vec(),
        3 => b"go 1.26 trace\0\0\0".to_vec(),
        _ => Vec::new(),
    };
    t.extend_from_slice(body);
    let Ok(reader) = gocost_trace::Reader::new(&t) else { return };
    let mut out = String::new();
    let mut events = Vec::new();
    for ev in reader.take(100_000) {
        let Ok(ev) = ev else { break };
        events.push(ev.clone());
        for minor in [22, 25, 27] {
            out.clear();
            write_event(&mut out, &ev, Dialect::go(minor).unwrap_or(Dialect::LATEST));
        }
        let _ = (ev.transition(), ev.task(), ev.sync(), ev.experimental());
    }
    let _ = gocost_trace::goroutine_summaries(&events);
    let _ = gocost_trace::gc_cycles(&events);
    let flags = gocost_trace::UtilFlags::ALL;
    for f in [flags, gocost_trace::UtilFlags { per_proc: true, ..flags }] {
        let curve = gocost_trace::MmuCurve::new(&gocost_trace::mutator_utilization(&events, f));
        for w in [1, 1000, 1_000_000, 1_000_000_000] {
            let _ = curve.mmu(w);
        }
    }
    for kind in [BlockingKind::Net, BlockingKind::Sync, BlockingKind::Syscall, BlockingKind::Sched] {
        let _ = blocking_profile(&events, kind);
    }
    for minor in [22, 27] {
        let _ = gocost_trace::text::parsed(&t, Dialect::go(minor).unwrap_or(Dialect::LATEST));
    }
});
