//! `blocking [net|sync|syscall|sched] TRACE`: the blocking profile's records as `gocost trace
//! pprof` computes them (read, order, charge), without the pprof encoding: for profiling the
//! parser on a big trace. Prints the number of records and their total delay.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, file] = args.as_slice() else {
        eprintln!("usage: blocking net|sync|syscall|sched TRACE");
        std::process::exit(2);
    };
    let Some(kind) = gocost_trace::BlockingKind::from_name(kind) else {
        eprintln!("blocking: unknown kind {kind}");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("blocking: {file}: {e}");
            std::process::exit(1);
        }
    };
    let run = |mut p: gocost_trace::BlockingProfiler| -> Result<_, gocost_trace::Error> {
        for ev in gocost_trace::Reader::new(&bytes)? {
            p.push(&ev?);
        }
        Ok(p.finish())
    };
    let recs = match run(gocost_trace::BlockingProfiler::new(kind)) {
        Ok(Some(r)) => r,
        Ok(None) => match run(gocost_trace::BlockingProfiler::exact(kind)) {
            Ok(r) => r.unwrap_or_default(),
            Err(e) => {
                eprintln!("blocking: {file}: {e}");
                std::process::exit(1);
            }
        },
        Err(e) => {
            eprintln!("blocking: {file}: {e}");
            std::process::exit(1);
        }
    };
    let delay: i64 = recs.iter().map(|r| r.delay_ns).sum();
    let count: u64 = recs.iter().map(|r| r.count).sum();
    println!("{} records, {count} waits, {delay} ns", recs.len());
}
