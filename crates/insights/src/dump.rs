//! Go's goroutine dump (`/debug/pprof/goroutine?debug=2`, `runtime.Stack(buf, true)`): one
//! record per goroutine — a header with its wait state, its frames, and who created it.
//!
//! ```text
//! goroutine 19 [chan receive, 42 minutes]:
//! main.watchLoop(0xc000010000)
//!     /src/main.go:14 +0x1c
//! created by main.main in goroutine 1
//!     /src/main.go:17 +0x1e
//! ```

/// One goroutine of a dump.
#[derive(Debug, Clone, PartialEq)]
pub struct Goroutine {
    pub id: u64,
    /// The wait reason or state (`chan receive`, `select`, `running`, ...).
    pub state: String,
    /// Marked `(leaked)` by Go's leak-detecting GC (go1.27's goroutineleak profile).
    pub leaked: bool,
    /// How long it has waited (`, N minutes`), when the runtime stamped it.
    pub wait_minutes: Option<u64>,
    /// Function names, innermost first.
    pub frames: Vec<String>,
    /// The `go` statement's site: (function, file:line).
    pub created_by: Option<(String, String)>,
}

/// A malformed dump: the 1-based line and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpError {
    pub line: usize,
    pub msg: String,
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for DumpError {}

/// Whether bytes look like a goroutine dump (rather than a pprof profile).
pub fn looks_like_dump(data: &[u8]) -> bool {
    data.starts_with(b"goroutine ")
}

/// Parses a whole dump.
pub fn parse(text: &str) -> Result<Vec<Goroutine>, DumpError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let err = |msg: String| DumpError { line: i + 1, msg };
        let mut g = header(line).map_err(err)?;
        // Frames until a blank line; ancestors ("[originating from ...]") are skipped.
        let mut in_ancestor = false;
        while let Some(&(j, l)) = lines.peek() {
            if l.is_empty() {
                break;
            }
            lines.next();
            let err = |msg: String| DumpError { line: j + 1, msg };
            if l.starts_with('\t') {
                continue; // a frame's file:line, read with its function below
            }
            if l.starts_with("[originating from goroutine ") {
                in_ancestor = true;
                continue;
            }
            if in_ancestor || l.starts_with("...") {
                continue;
            }
            if let Some(rest) = l.strip_prefix("created by ") {
                let func = rest
                    .split(" in goroutine ")
                    .next()
                    .unwrap_or(rest)
                    .to_string();
                let site = match lines.peek() {
                    Some(&(_, f)) if f.starts_with('\t') => {
                        lines.next();
                        file_line(f)
                    }
                    _ => String::new(),
                };
                g.created_by = Some((func, site));
                continue;
            }
            let Some(open) = l.rfind('(') else {
                return Err(err(format!("expected a frame `func(args)`, found {l:?}")));
            };
            if !l.ends_with(')') || open == 0 {
                return Err(err(format!("expected a frame `func(args)`, found {l:?}")));
            }
            g.frames.push(l[..open].to_string());
        }
        out.push(g);
    }
    Ok(out)
}

/// `\t/path/file.go:123 +0x1e` → `/path/file.go:123`.
fn file_line(l: &str) -> String {
    let l = l.trim_start_matches('\t');
    l.split(" +0x").next().unwrap_or(l).to_string()
}

fn header(line: &str) -> Result<Goroutine, String> {
    let bad = || format!("expected `goroutine N [state]:`, found {line:?}");
    let rest = line.strip_prefix("goroutine ").ok_or_else(bad)?;
    let (id, rest) = rest.split_once(' ').ok_or_else(bad)?;
    let id: u64 = id.parse().map_err(|_| bad())?;
    let open = rest.find('[').ok_or_else(bad)?;
    let close = rest[open..].find(']').ok_or_else(bad)? + open;
    if !rest.ends_with(':') {
        return Err(bad());
    }
    let status = &rest[open + 1..close];
    let mut parts = status.split(", ");
    let mut state = parts.next().unwrap_or("").to_string();
    let mut leaked = false;
    for suffix in [" (durable)", " (scan)", " (leaked)"] {
        if let Some(s) = state.strip_suffix(suffix) {
            leaked |= suffix == " (leaked)";
            state = s.to_string();
        }
    }
    let mut wait_minutes = None;
    for p in parts {
        if let Some(m) = p.strip_suffix(" minutes") {
            wait_minutes = m.parse().ok();
        }
    }
    Ok(Goroutine {
        id,
        state,
        leaked,
        wait_minutes,
        frames: Vec::new(),
        created_by: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_states_and_creators() {
        let text = "goroutine 1 [running, locked to thread]:\n\
            main.main()\n\t/src/main.go:25 +0xa7\n\n\
            goroutine 19 [chan receive (leaked), 42 minutes]:\n\
            main.watchLoop(0xc000010000)\n\t/src/main.go:14 +0x1c\n\
            created by main.main in goroutine 1\n\t/src/main.go:17 +0x1e\n\n\
            goroutine 20 [sync.Mutex.Lock]:\n\
            sync.(*Mutex).Lock(...)\n\t/go/src/sync/mutex.go:46\n\
            pkg.F[...](0x1, {0x2, 0x3})\n\t/src/f.go:9 +0x34\n\
            ...2 frames elided...\n\
            created by main.main\n\t/src/main.go:19 +0x51\n";
        let gs = parse(text).unwrap();
        assert_eq!(gs.len(), 3);
        assert_eq!(gs[0].state, "running");
        assert_eq!(gs[1].state, "chan receive");
        assert!(gs[1].leaked);
        assert_eq!(gs[1].wait_minutes, Some(42));
        assert_eq!(gs[1].frames, ["main.watchLoop"]);
        assert_eq!(
            gs[1].created_by,
            Some(("main.main".to_string(), "/src/main.go:17".to_string()))
        );
        assert_eq!(gs[2].frames, ["sync.(*Mutex).Lock", "pkg.F[...]"]);
        let e = parse("goroutine x [running]:\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("goroutine 1 [running]:\nnot a frame\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
