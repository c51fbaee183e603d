//! Prometheus' text exposition format, written in one place for every `/metrics` producer
//! (gocost's own counters, scrape health, insight gauges, alerts): `# HELP` and `# TYPE`
//! once per family, label values escaped, numbers as Prometheus reads them (`NaN`, `+Inf`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    Gauge,
    Counter,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Gauge => "gauge",
            Type::Counter => "counter",
        }
    }
}

/// A `/metrics` answer being written.
#[derive(Default)]
pub(crate) struct Text {
    out: String,
}

impl Text {
    pub(crate) fn new() -> Text {
        Text::default()
    }

    /// A family's `# HELP` and `# TYPE` lines; its samples follow with [`Text::sample`].
    pub(crate) fn family(&mut self, name: &str, kind: Type, help: &str) -> &mut Text {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} {}",
            kind.name()
        );
        self
    }

    /// One sample: `name{labels} value`. `labels` is label text from [`labels`] (empty:
    /// no braces).
    pub(crate) fn sample(&mut self, name: &str, labels: &str, value: f64) -> &mut Text {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {}", number(value));
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {}", number(value));
        }
        self
    }

    /// A family with one unlabelled sample.
    pub(crate) fn single(&mut self, name: &str, kind: Type, help: &str, value: f64) {
        self.family(name, kind, help).sample(name, "", value);
    }

    /// A family and a sample per (label text, value).
    pub(crate) fn samples(
        &mut self,
        name: &str,
        kind: Type,
        help: &str,
        samples: impl IntoIterator<Item = (String, f64)>,
    ) {
        self.family(name, kind, help);
        for (labels, v) in samples {
            self.sample(name, &labels, v);
        }
    }

    /// Text written by another [`Text`] (a cached part).
    pub(crate) fn append(&mut self, text: &str) {
        self.out.push_str(text);
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A label value escaped as the format wants (`\\`, `\"`, `\n`).
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Label text: a target's labels, then extra ones (`k="v",…`, values escaped).
pub(crate) fn labels(target: &BTreeMap<String, String>, extra: &[(&str, &str)]) -> String {
    target
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A number as Prometheus parses it: Rust prints infinity as `inf`, which it does not read.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_escapes_and_numbers() {
        let mut t = Text::new();
        t.single("a_total", Type::Counter, "Things.\nMore", 3.0);
        let target = BTreeMap::from([("job".to_string(), "x\"y\\z\n".to_string())]);
        t.samples(
            "b",
            Type::Gauge,
            "B.",
            [
                (labels(&target, &[("q", "0.5")]), 0.25),
                (labels(&BTreeMap::new(), &[]), f64::INFINITY),
                (String::new(), f64::NAN),
                (String::new(), f64::NEG_INFINITY),
            ],
        );
        assert_eq!(
            t.finish(),
            "# HELP a_total Things.\\nMore\n# TYPE a_total counter\na_total 3\n\
             # HELP b B.\n# TYPE b gauge\nb{job=\"x\\\"y\\\\z\\n\",q=\"0.5\"} 0.25\n\
             b +Inf\nb NaN\nb -Inf\n"
        );
    }
}
