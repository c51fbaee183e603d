//! Go runtime metrics from `/debug/vars` (expvar's `memstats`), as time-series points.

use serde_json::Value;

/// What one `/debug/vars` scrape yields.
#[derive(Debug, Default, PartialEq)]
pub struct Expvar {
    /// Gauges and counters, named like the Prometheus Go client names them.
    pub values: Vec<(&'static str, f64)>,
    /// Each GC cycle's stop-the-world pause since the previous scrape: (end, seconds).
    pub pauses: Vec<(i64, f64)>,
    pub num_gc: u32,
    /// Cycles whose pauses fell out of the 256-entry ring between two scrapes.
    pub lost_pauses: u64,
}

const FIELDS: &[(&str, &str, f64)] = &[
    ("HeapAlloc", "go_memstats_heap_alloc_bytes", 1.0),
    ("HeapInuse", "go_memstats_heap_inuse_bytes", 1.0),
    ("HeapSys", "go_memstats_heap_sys_bytes", 1.0),
    ("HeapObjects", "go_memstats_heap_objects", 1.0),
    ("Sys", "go_memstats_sys_bytes", 1.0),
    ("NextGC", "go_memstats_next_gc_bytes", 1.0),
    ("StackInuse", "go_memstats_stack_inuse_bytes", 1.0),
    ("TotalAlloc", "go_memstats_alloc_bytes_total", 1.0),
    ("Mallocs", "go_memstats_mallocs_total", 1.0),
    ("Frees", "go_memstats_frees_total", 1.0),
    ("NumGC", "go_gc_cycles_total", 1.0),
    ("PauseTotalNs", "go_gc_pause_seconds_total", 1e-9),
    ("GCCPUFraction", "go_gc_cpu_fraction", 1.0),
];

/// Parses a `/debug/vars` body. `prev_num_gc` is the `NumGC` of the previous scrape of the
/// same process (`None` on the first scrape: every pause still in the ring is reported).
/// GC cycle n (1-based) lives at index (n-1) % 256 of `PauseNs`/`PauseEnd`.
pub fn parse_expvar(body: &[u8], prev_num_gc: Option<u32>) -> Result<Expvar, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("parsing /debug/vars: {e}"))?;
    let ms = v
        .get("memstats")
        .ok_or("/debug/vars has no memstats (is expvar imported?)")?;
    let mut out = Expvar::default();
    for &(field, name, scale) in FIELDS {
        if let Some(x) = ms.get(field).and_then(Value::as_f64) {
            out.values.push((name, x * scale));
        }
    }
    let num_gc = ms.get("NumGC").and_then(Value::as_u64).unwrap_or(0) as u32;
    out.num_gc = num_gc;
    let ring = |k: &str| -> Vec<u64> {
        ms.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0)).collect())
            .unwrap_or_default()
    };
    let (pns, pend) = (ring("PauseNs"), ring("PauseEnd"));
    if pns.len() != 256 || pend.len() != 256 {
        return Ok(out);
    }
    // A smaller NumGC than before means a new process: report its ring from the start.
    let prev = match prev_num_gc {
        Some(p) if p <= num_gc => p,
        _ => 0,
    };
    let first = if num_gc - prev > 256 {
        out.lost_pauses = u64::from(num_gc - prev - 256);
        num_gc - 255
    } else {
        prev + 1
    };
    for n in first..=num_gc {
        if n == 0 {
            continue;
        }
        let i = ((n - 1) % 256) as usize;
        out.pauses.push((pend[i] as i64, pns[i] as f64 / 1e9));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/metrics/vars.json"),
        )
        .unwrap()
    }

    #[test]
    fn memstats_and_the_pause_ring() {
        let e = parse_expvar(&vars(), None).unwrap();
        assert_eq!(e.num_gc, 7);
        assert!(
            e.values
                .contains(&("go_memstats_heap_alloc_bytes", 23506088.0))
        );
        assert!(e.values.contains(&("go_gc_cycles_total", 7.0)));
        assert_eq!(e.pauses.len(), 7);
        assert_eq!(e.pauses[0].1, 1206721.0 / 1e9);
        let total: f64 = e.pauses.iter().map(|p| p.1).sum();
        assert!(
            (total - 38861986.0 / 1e9).abs() < 1e-9,
            "pauses sum to PauseTotalNs"
        );
        assert!(
            e.pauses.windows(2).all(|w| w[0].0 <= w[1].0),
            "in time order"
        );
        // Incremental: only cycles after the previous scrape.
        let inc = parse_expvar(&vars(), Some(5)).unwrap();
        assert_eq!(inc.pauses.len(), 2);
        assert_eq!(inc.pauses[1].1, 7891736.0 / 1e9);
        assert!(parse_expvar(b"{}", None).is_err());
        assert!(parse_expvar(b"nope", None).is_err());
    }
}
