// Shared by the `decode_report` fuzz target and the regression test that replays its
// crashers (`fuzz_regressions.rs`).

/// Decodes `data` and, if it is a profile, runs every report over it.
pub fn run(data: &[u8]) {
    use gocost_report::{Granularity, Kind, Options, Report};
    let dopts = gocost_pprof::DecodeOptions {
        max_size: 16 << 20,
        labels: true,
    };
    let Ok(p) = gocost_pprof::decode_with(data, &dopts) else {
        return;
    };
    if let Ok(m) = gocost_pprof::merge::combine(vec![p.clone(), p.clone()]) {
        let _ = gocost_pprof::encode_uncompressed(&m);
    }
    let grans = [
        Granularity::Functions,
        Granularity::FileFunctions,
        Granularity::Files,
        Granularity::Lines,
        Granularity::Addresses,
    ];
    for (i, g) in grans.into_iter().enumerate() {
        let opts = Options {
            granularity: g,
            nodecount: Some(i),
            cum: i % 2 == 1,
            hide: (i == 2).then(|| "runtime".to_string()),
            focus: (i == 3).then(|| "main".to_string()),
            noinlines: i == 4,
            ..Options::default()
        };
        if let Ok(r) = Report::new(p.clone(), &opts) {
            let _ = r.top_text();
            let _ = gocost_report::flame_stacks(&r);
        }
    }
    // The call graph (-dot, with its tags and redundant-edge removal) and -peek.
    for (kind, nodecount) in [(Kind::Dot, None), (Kind::Dot, Some(3)), (Kind::Peek, None)] {
        let opts = Options {
            kind,
            nodecount,
            ..Options::default()
        };
        if let Ok(r) = Report::new(p.clone(), &opts) {
            if kind == Kind::Peek {
                let _ = r.peek_text(".");
            } else {
                let _ = r.dot_text();
            }
        }
    }
    // pprof's later filters and the -tags report over whatever labels the input has.
    let refine = Options {
        show_from: Some("main".into()),
        tagfocus: Some("1kb:".into()),
        tagignore: Some("worker=x".into()),
        prune_from: Some("runtime".into()),
        ..Options::default()
    };
    if let Ok(r) = Report::new(p.clone(), &refine) {
        let _ = r.top_text();
        let _ = r.tags_text();
    }
    for kind in [Kind::Traces, Kind::Raw] {
        if let Ok(r) = Report::new(
            p.clone(),
            &Options {
                kind,
                ..Options::default()
            },
        ) {
            let _ = if kind == Kind::Raw {
                r.raw_text()
            } else {
                r.traces_text()
            };
        }
    }
}
