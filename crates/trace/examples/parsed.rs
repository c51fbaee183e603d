//! Prints a trace as `go tool trace -d=parsed` does: `parsed [-go MINOR] TRACE`; or
//! `parsed -count TRACE` only reads it and prints the number of events.
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, file] = args.as_slice()
        && flag == "-count"
    {
        let bytes = std::fs::read(file).unwrap_or_default();
        let t = std::time::Instant::now();
        match gocost_trace::parse(&bytes) {
            Ok(evs) => println!("{} events in {:?}", evs.len(), t.elapsed()),
            Err(e) => {
                eprintln!("parsed: {file}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let (dialect, file) = match args.as_slice() {
        [flag, minor, file] if flag == "-go" => (
            minor.parse().ok().and_then(gocost_trace::text::Dialect::go),
            file,
        ),
        [file] => (Some(gocost_trace::text::Dialect::LATEST), file),
        _ => (None, &String::new()),
    };
    let Some(dialect) = dialect else {
        eprintln!("usage: parsed [-go MINOR] TRACE");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("parsed: {file}: {e}");
            std::process::exit(1);
        }
    };
    let (text, err) = match gocost_trace::text::parsed(&bytes, dialect) {
        Ok(t) => (t, None),
        Err((t, e)) => (t, Some(e)),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    if let Some(e) = err {
        eprintln!("parsed: {file}: {e}");
        std::process::exit(1);
    }
}
