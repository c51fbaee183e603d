//! Text bodies: `folded` (`root;caller;leaf 100` per line, the value after the last space)
//! and `lines` (`root;caller;leaf` per line, each counting 1), and the profile built from
//! their stacks.

use std::collections::HashMap;

use gocost_pprof::{Function, Line, Location, Profile, Sample, ValueType};

use crate::{Error, IngestQuery, Limits, err, truncate};

/// A stack, root first, and its value.
pub type Stack<'a> = (Vec<&'a str>, i64);

fn frames(stack: &str) -> Vec<&str> {
    stack
        .split(';')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect()
}

/// Refuses a stack deeper than the limit before splitting it (a hostile line may hold a
/// million frames).
fn check_depth(line: usize, stack: &str, limits: &Limits) -> Result<(), Error> {
    let n = stack
        .split(';')
        .filter(|f| !f.trim().is_empty())
        .take(limits.max_depth + 1)
        .count();
    if n > limits.max_depth {
        return err(format!(
            "line {line}: a stack of more than {} frames; at most {} are accepted (Go records at most 1024)",
            limits.max_depth, limits.max_depth
        ));
    }
    Ok(())
}

fn check_lines(n: usize, limits: &Limits) -> Result<(), Error> {
    if n > limits.max_lines {
        return err(format!("body: more than {} lines", limits.max_lines));
    }
    Ok(())
}

/// Parses a folded body. Blank lines are skipped; a line without a value, or with a
/// negative or non-integer one, is an error naming the line (1-based).
pub fn parse_folded<'a>(text: &'a str, limits: &Limits) -> Result<Vec<Stack<'a>>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() {
            continue;
        }
        check_lines(out.len() + 1, limits)?;
        let Some((stack, value)) = line.rsplit_once(' ') else {
            return err(format!(
                "line {}: want \"frame;frame value\", got {:?}",
                i + 1,
                truncate(line, 80)
            ));
        };
        let value: i64 = match value.parse() {
            Ok(v) if v >= 0 => v,
            _ => {
                return err(format!(
                    "line {}: value {:?} is not a non-negative integer",
                    i + 1,
                    truncate(value, 40)
                ));
            }
        };
        check_depth(i + 1, stack, limits)?;
        let f = frames(stack);
        if f.is_empty() {
            return err(format!("line {}: empty stack", i + 1));
        }
        out.push((f, value));
    }
    Ok(out)
}

/// Parses a `lines` body: one stack per line, each counting 1.
pub fn parse_lines<'a>(text: &'a str, limits: &Limits) -> Result<Vec<Stack<'a>>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        check_depth(i + 1, line, limits)?;
        let f = frames(line.trim_end_matches('\r'));
        if f.is_empty() {
            continue;
        }
        check_lines(out.len() + 1, limits)?;
        out.push((f, 1));
    }
    Ok(out)
}

/// The profile of text stacks. CPU (the default) and wall time get `samples/count` and
/// `cpu|wall/nanoseconds` (each sample worth 1 s / `sampleRate`); other kinds one column
/// named by the app name's suffix (`alloc_objects`) in `bytes` (`*_space`, `units=bytes`)
/// or `count`. Identical stacks are summed.
pub(crate) fn profile_from_stacks(stacks: &[Stack<'_>], q: &IngestQuery) -> Profile {
    let kind = q.kind.as_deref().unwrap_or("cpu");
    let period = 1_000_000_000 / i64::from(q.sample_rate.max(1));
    let mut p = Profile::default();
    let timed = matches!(kind, "cpu" | "wall");
    if timed {
        let t = if kind == "wall" { "wall" } else { "cpu" };
        p.sample_type = vec![
            ValueType::new("samples", "count"),
            ValueType::new(t, "nanoseconds"),
        ];
        p.period_type = ValueType::new(t, "nanoseconds");
        p.period = period;
        p.default_sample_type = t.into();
    } else {
        let t = q.sample_type.clone().unwrap_or_else(|| kind.to_string());
        let unit = if t.ends_with("_space") || q.units == "bytes" {
            "bytes"
        } else {
            "count"
        };
        p.sample_type = vec![ValueType::new(t.clone(), unit)];
        p.period_type = ValueType::new(t, unit);
        p.period = 1;
    }
    let mut funcs: HashMap<&str, u32> = HashMap::new();
    let mut samples: HashMap<Vec<u32>, usize> = HashMap::new();
    for (stack, value) in stacks {
        let mut locs = Vec::with_capacity(stack.len());
        for name in stack.iter().rev() {
            let idx = *funcs.entry(name).or_insert_with(|| {
                let i = p.function.len() as u32;
                p.function.push(Function {
                    id: u64::from(i) + 1,
                    name: (*name).into(),
                    system_name: (*name).into(),
                    ..Default::default()
                });
                p.location.push(Location {
                    id: u64::from(i) + 1,
                    line: vec![Line {
                        function: i,
                        line: 0,
                        column: 0,
                    }],
                    ..Default::default()
                });
                i
            });
            locs.push(idx);
        }
        let vals = if timed {
            vec![*value, value.saturating_mul(period)]
        } else {
            vec![*value]
        };
        match samples.get(&locs) {
            Some(&i) => {
                for (a, b) in p.sample[i].value.iter_mut().zip(&vals) {
                    *a = a.saturating_add(*b);
                }
            }
            None => {
                samples.insert(locs.clone(), p.sample.len());
                p.sample.push(Sample {
                    location: locs,
                    value: vals,
                    label: Vec::new(),
                });
            }
        }
    }
    p.sample.retain(|s| s.value.iter().any(|&v| v != 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded() {
        let l = Limits::default();
        let s = parse_folded("main;work (a.py:3) 10\n\nmain;idle 2\r\n", &l).unwrap();
        assert_eq!(
            s,
            vec![
                (vec!["main", "work (a.py:3)"], 10),
                (vec!["main", "idle"], 2)
            ]
        );
        for (bad, want) in [
            ("a;b 1\nfoo\n", "line 2"),
            ("a;b x", "line 1: value \"x\""),
            ("a;b -3", "line 1: value"),
            (" ; 3", "line 1"),
        ] {
            let e = parse_folded(bad, &l).unwrap_err();
            assert!(e.message().starts_with(want), "{bad:?}: {e}");
        }
        let small = Limits {
            max_lines: 1,
            ..Limits::default()
        };
        assert!(parse_folded("a 1\nb 1\n", &small).is_err());
    }

    #[test]
    fn lines() {
        let s = parse_lines("a;b\n\na;b\nc\n", &Limits::default()).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.iter().all(|(_, v)| *v == 1));
    }
}
