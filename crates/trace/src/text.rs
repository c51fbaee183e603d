//! The text `go tool trace -d=parsed` prints (`-d=1` before Go 1.24): one event per line
//! (Go's `Event.String`), in the dialect of each Go release's tool.

use std::fmt::Write as _;

use crate::error::Error;
use crate::event::{Change, Event, Kind, Stack};
use crate::reader::{Options, Reader, SyncPlacement};

/// Which Go release's `go tool trace` to imitate. The text changed over releases:
///
/// | tool | differences |
/// |---|---|
/// | Go 1.22–1.24 | syncs at the end of each generation, printed without details; values as `Uint64(n)`; a transition prints `Resource=… Reason=…` before its states |
/// | Go 1.25 | syncs at the start of each generation with `N=`, and the clock snapshot (`Wall=` to the second); values as `Value{Uint64(n)}` |
/// | Go 1.26, 1.27 | a transition prints its states first, then `Reason=`; a goroutine status event prints its stack as the transition's too; `Wall=` to the nanosecond |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    minor: u32,
}

impl Dialect {
    /// The dialect of Go 1.`minor`'s tool (1.22 through 1.27; later releases are assumed to
    /// print like 1.27).
    pub fn go(minor: u32) -> Option<Dialect> {
        (minor >= 22).then_some(Dialect { minor })
    }

    /// The newest dialect.
    pub const LATEST: Dialect = Dialect { minor: 27 };

    /// Where this tool puts sync events.
    pub fn syncs(self) -> SyncPlacement {
        if self.minor <= 24 {
            SyncPlacement::GenerationEnd
        } else {
            SyncPlacement::GenerationStart
        }
    }

    /// The flag that prints parsed events in this release's `go tool trace`.
    pub fn flag(self) -> &'static str {
        if self.minor <= 23 {
            "-d=1"
        } else {
            "-d=parsed"
        }
    }

    fn wrapped_values(self) -> bool {
        self.minor >= 25
    }
}

/// Appends `s` quoted as Go's `%q` does: printable characters as they are, `\a \b \f \n \r
/// \t \v \\ \"` escaped, other control characters as `\xNN` / `\uNNNN`.
pub fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\u{fffd}' => out.push('\u{fffd}'),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control()
                || c == '\u{ad}'
                || (c as u32 >= 0xfff9 && c as u32 <= 0xfffb)
                || c == '\u{feff}' =>
            {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn value(out: &mut String, d: Dialect, v: u64) {
    if d.wrapped_values() {
        let _ = write!(out, "Value{{Uint64({v})}}");
    } else {
        let _ = write!(out, "Uint64({v})");
    }
}

fn stack(out: &mut String, s: Stack<'_>) {
    for f in s.frames() {
        let _ = writeln!(out, "\t{} @ {:#x}", f.func, f.pc);
        let _ = writeln!(out, "\t\t{}:{}", f.file, f.line);
    }
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `time.Unix(sec, nsec).UTC().Format(RFC3339 or RFC3339Nano)`.
fn rfc3339(out: &mut String, sec: i64, nsec: i64, nano: bool) {
    let sec = sec.saturating_add(nsec.div_euclid(1_000_000_000));
    let nsec = nsec.rem_euclid(1_000_000_000);
    let (days, secs) = (sec.div_euclid(86_400), sec.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if nano && nsec != 0 {
        let frac = format!("{nsec:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
}

/// Appends the event as the dialect's `go tool trace` prints it (`Event.String()`), without
/// the final newline.
pub fn write_event(out: &mut String, ev: &Event, d: Dialect) {
    let kind = ev.kind();
    let _ = write!(
        out,
        "M={} P={} G={} {} Time={}",
        ev.thread(),
        ev.proc(),
        ev.goroutine(),
        kind.as_str(),
        ev.time()
    );
    match kind {
        Kind::Metric => {
            if let Some(m) = ev.metric() {
                out.push_str(" Name=");
                quote(out, m.name);
                out.push_str(" Value=");
                value(out, d, m.value);
            }
        }
        Kind::Label => {
            out.push_str(" Label=");
            quote(out, ev.label().unwrap_or(""));
            let _ = write!(out, " Resource=Goroutine({})", ev.goroutine());
        }
        Kind::RangeBegin | Kind::RangeActive | Kind::RangeEnd => {
            if let Some(r) = ev.range() {
                out.push_str(" Name=");
                quote(out, &r.name());
                let _ = write!(out, " Scope={}", r.scope);
            }
            if kind == Kind::RangeEnd {
                out.push_str(" Attributes=[");
                if let Some(s) = ev.sweep_result() {
                    out.push_str("\"bytes swept\"=");
                    value(out, d, s.swept);
                    out.push_str(" \"bytes reclaimed\"=");
                    value(out, d, s.reclaimed);
                }
                out.push(']');
            }
        }
        Kind::TaskBegin | Kind::TaskEnd => {
            if let Some(t) = ev.task() {
                let _ = write!(out, " ID={} Parent={} Type=", t.id, t.parent);
                quote(out, t.name);
            }
        }
        Kind::RegionBegin | Kind::RegionEnd => {
            if let Some(r) = ev.region() {
                let _ = write!(out, " Task={} Type=", r.task);
                quote(out, r.name);
            }
        }
        Kind::Log => {
            if let Some(l) = ev.log() {
                let _ = write!(out, " Task={} Category=", l.task);
                quote(out, l.category);
                out.push_str(" Message=");
                quote(out, l.message);
            }
        }
        Kind::StateTransition => {
            if let Some(t) = ev.transition() {
                let states = match t.change {
                    Change::Goroutine(id, a, b) => {
                        format!(" GoID={id} {}->{}", a.as_str(), b.as_str())
                    }
                    Change::Proc(id, a, b) => {
                        format!(" ProcID={id} {}->{}", a.as_str(), b.as_str())
                    }
                };
                if d.minor >= 26 {
                    out.push_str(&states);
                    out.push_str(" Reason=");
                    quote(out, t.reason);
                } else {
                    let _ = write!(out, " Resource={} Reason=", t.resource());
                    quote(out, t.reason);
                    out.push_str(&states);
                }
                // Before Go 1.26 a status event's transition carried no stack.
                let status = matches!(ev.wire_name(), "GoStatus" | "GoStatusStack");
                if let Some(s) = t.stack.filter(|_| d.minor >= 26 || !status) {
                    out.push_str("\nTransitionStack=\n");
                    stack(out, s);
                }
            }
        }
        Kind::Experimental => {
            if let Some(x) = ev.experimental() {
                if d.minor >= 25 {
                    let _ = write!(out, " Name={} Args=[", x.name);
                    for (i, (n, v)) in x.args.iter().enumerate() {
                        if i != 0 {
                            out.push_str(", ");
                        }
                        let _ = write!(out, "{n}=");
                        value(out, d, *v);
                    }
                    out.push(']');
                } else {
                    let names: Vec<_> = x.args.iter().map(|a| a.0).collect();
                    let vals: Vec<_> = x.args.iter().map(|a| a.1.to_string()).collect();
                    let _ = write!(
                        out,
                        " Name={} ArgNames=[{}] Args=[{}]",
                        x.name,
                        names.join(" "),
                        vals.join(" ")
                    );
                }
            }
        }
        Kind::Sync => {
            if d.minor >= 25
                && let Some(s) = ev.sync()
            {
                let _ = write!(out, " N={}", s.n);
                if let Some(c) = s.clock {
                    let _ = write!(out, " Trace={} Mono={} Wall=", c.trace, c.mono);
                    rfc3339(out, c.wall_sec, c.wall_nsec, d.minor >= 26);
                }
            }
        }
        Kind::StackSample => {}
    }
    if let Some(s) = ev.stack() {
        out.push_str("\nStack=\n");
        stack(out, s);
    }
}

/// The whole `go tool trace -d=parsed` output for a trace, in the dialect's text: each event
/// followed by a newline. On an error, the text up to it and the error (the tool prints the
/// same text, then the error on stderr).
pub fn parsed(trace: &[u8], d: Dialect) -> Result<String, (String, Error)> {
    let opts = Options {
        syncs: d.syncs(),
        ..Options::default()
    };
    let reader = match Reader::with_options(trace, opts) {
        Ok(r) => r,
        Err(e) => return Err((String::new(), e)),
    };
    let mut out = String::with_capacity(trace.len() * 16);
    for ev in reader {
        match ev {
            Ok(ev) => {
                write_event(&mut out, &ev, d);
                out.push('\n');
            }
            Err(e) => return Err((out, e)),
        }
    }
    Ok(out)
}
