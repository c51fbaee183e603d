//! The Go benchmark format (golang.org/design/14313-benchmark-format): what `go test -bench`
//! prints. Configuration lines (`key: value`) apply to the results after them; result lines
//! are `BenchmarkName-P  iterations  value unit [value unit]...`; everything else (PASS,
//! `ok pkg 1.2s`, test logs) is ignored.

use std::sync::Arc;

/// One benchmark result line.
#[derive(Debug, Clone, PartialEq)]
pub struct Result {
    /// The name without the `Benchmark` prefix, with its `-GOMAXPROCS` suffix
    /// (`Encode/format=json-8`), as benchstat shows it.
    pub name: String,
    /// 1-based line number in its file.
    pub line: usize,
    pub iterations: u64,
    /// (value, unit) as printed: `ns/op`, `B/op`, `allocs/op`, `MB/s` or custom units.
    pub values: Vec<(f64, String)>,
    /// The file configuration in effect for this result (`goos`, `goarch`, `pkg`, `cpu`, ...),
    /// shared by every result until a configuration line changes it.
    pub config: Arc<Vec<(String, String)>>,
}

impl Result {
    pub fn config(&self, key: &str) -> &str {
        self.config
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v)
    }
}

/// A line that starts like a result but is not one: reported, not fatal (benchstat warns too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub msg: String,
}

/// Parses benchmark output. Returns the results and the malformed result lines.
pub fn parse(text: &str) -> (Vec<Result>, Vec<SyntaxError>) {
    let mut config: Arc<Vec<(String, String)>> = Arc::default();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some((k, v)) = config_line(line) {
            let config = Arc::make_mut(&mut config);
            match config.iter_mut().find(|(ck, _)| ck == k) {
                Some(e) => e.1 = v.to_string(),
                None => config.push((k.to_string(), v.to_string())),
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("Benchmark") else {
            continue;
        };
        // "BenchmarkFoo" must continue with a non-lowercase character (BenchmarkFoo, not
        // Benchmarking).
        if rest.chars().next().is_some_and(|c| c.is_lowercase()) {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let Some(full) = fields.next() else { continue };
        let Some(iters) = fields.next() else {
            // `go test -v` prints the bare name before a benchmark's own output.
            continue;
        };
        let iterations = match iters.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                errors.push(SyntaxError {
                    line: line_no,
                    msg: format!("{full}: iteration count {iters:?} is not a whole number"),
                });
                continue;
            }
        };
        let mut values = Vec::new();
        let mut bad = None;
        while let Some(v) = fields.next() {
            let Some(unit) = fields.next() else {
                bad = Some(format!("{full}: value {v:?} has no unit"));
                break;
            };
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => values.push((x, unit.to_string())),
                _ => {
                    bad = Some(format!("{full}: {v:?} ({unit}) is not a number"));
                    break;
                }
            }
        }
        if let Some(msg) = bad {
            errors.push(SyntaxError { line: line_no, msg });
            continue;
        }
        if values.is_empty() {
            errors.push(SyntaxError {
                line: line_no,
                msg: format!("{full}: no measurements after the iteration count"),
            });
            continue;
        }
        results.push(Result {
            name: full["Benchmark".len()..].to_string(),
            line: line_no,
            iterations,
            values,
            config: Arc::clone(&config),
        });
    }
    (results, errors)
}

/// `key: value` with a key that starts with a lowercase letter and has no spaces or
/// uppercase letters.
fn config_line(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    let first = key.chars().next()?;
    if !first.is_lowercase() || key.chars().any(|c| c.is_whitespace() || c.is_uppercase()) {
        return None;
    }
    if !value.starts_with([' ', '\t']) {
        return None;
    }
    Some((key, value.trim()))
}

/// benchstat's unit normalisation: `ns/op` → `sec/op` (×1e-9), `MB/s` → `B/s` (×1e6), other
/// `ns/…` units → `sec/…`.
pub fn tidy_unit(unit: &str) -> (String, f64) {
    match unit {
        "ns/op" => ("sec/op".into(), 1e-9),
        "MB/s" => ("B/s".into(), 1e6),
        _ => match unit.strip_prefix("ns/") {
            Some(rest) => (format!("sec/{rest}"), 1e-9),
            None => (unit.to_string(), 1.0),
        },
    }
}

/// Whether a unit is binary-scaled when printed (bytes: Ki, Mi, ...), as benchstat does.
pub fn is_binary_unit(unit: &str) -> bool {
    let num = unit.split('/').next().unwrap_or("");
    num.split(['*', '-', '·'])
        .any(|t| t == "B" || t == "MB" || t == "bytes")
}

/// A `gocost load --json` run as benchmark results, one sample per measured second (the
/// seconds with answers): latency quantiles (`sec/req`), answered requests (`req/s`) and,
/// when the run read the service (`--profile`), CPU per request (`cpu-sec/req`).
pub fn load_run(v: &serde_json::Value) -> std::result::Result<Vec<Result>, String> {
    let seconds = v["seconds"]
        .as_array()
        .ok_or("a gocost load report without \"seconds\"")?;
    let cpu = v["service"]["seconds"].as_array();
    let config = std::sync::Arc::new(vec![("pkg".to_string(), "gocost load".to_string())]);
    let mut out = Vec::new();
    let mut push = |name: &str, value: f64, unit: &str, line: usize| {
        out.push(Result {
            name: name.to_string(),
            line,
            iterations: 1,
            values: vec![(value, unit.to_string())],
            config: config.clone(),
        });
    };
    for (i, s) in seconds.iter().enumerate() {
        let num = |k: &str| s[k].as_f64();
        let (Some(requests), Some(errors)) = (num("requests"), num("errors")) else {
            return Err(format!(
                "seconds[{i}]: want \"requests\" and \"errors\" numbers"
            ));
        };
        let answered = requests - errors;
        if answered <= 0.0 {
            continue;
        }
        for (name, key) in [
            ("latency-p50", "p50"),
            ("latency-p90", "p90"),
            ("latency-p99", "p99"),
        ] {
            let q = s["latency"][key]
                .as_f64()
                .ok_or_else(|| format!("seconds[{i}].latency.{key}: not a number"))?;
            push(name, q, "sec/req", i + 1);
        }
        push("answered", answered, "req/s", i + 1);
        if let Some(c) = cpu
            .and_then(|c| c.get(i))
            .and_then(|c| c["cpu_seconds"].as_f64())
        {
            push("cpu", c / answered, "cpu-sec/req", i + 1);
        }
    }
    if out.is_empty() {
        return Err("a gocost load report with no answered requests".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_test_output() {
        let text = "goos: linux\ngoarch: amd64\npkg: example.com/h\ncpu: Some CPU @ 2GHz\n\
            BenchmarkSum/n=10-2   \t 1000000\t      1052 ns/op\t      16 B/op\t       1 allocs/op\n\
            BenchmarkSum/n=10-2\n\
            --- BENCH: BenchmarkX\n\
            Benchmarking is fun\n\
            BenchmarkBad-2 12 abc ns/op\n\
            BenchmarkRate-2 10 5.5 MB/s 3 widgets/op\n\
            PASS\nok  \texample.com/h\t1.2s\n";
        let (rs, errs) = parse(text);
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].name, "Sum/n=10-2");
        assert_eq!(rs[0].iterations, 1_000_000);
        assert_eq!(rs[0].values[2], (1.0, "allocs/op".to_string()));
        assert_eq!(rs[0].config("pkg"), "example.com/h");
        assert_eq!(rs[0].config("cpu"), "Some CPU @ 2GHz");
        assert_eq!(rs[1].values[1], (3.0, "widgets/op".to_string()));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 9);
    }

    #[test]
    fn tidies_units_like_benchstat() {
        assert_eq!(tidy_unit("ns/op"), ("sec/op".to_string(), 1e-9));
        assert_eq!(tidy_unit("MB/s"), ("B/s".to_string(), 1e6));
        assert_eq!(tidy_unit("ns/GC"), ("sec/GC".to_string(), 1e-9));
        assert_eq!(tidy_unit("allocs/op"), ("allocs/op".to_string(), 1.0));
        assert!(is_binary_unit("B/op") && is_binary_unit("B/s") && !is_binary_unit("allocs/op"));
    }
}
