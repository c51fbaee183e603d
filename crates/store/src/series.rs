//! Series keys and the selector language (`KIND{label="v",...}`).

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// The profile kinds gocost stores, named after their `net/http/pprof` endpoints. The kind
/// comes from where a profile was fetched: the proto alone cannot tell mutex from block.
pub const KINDS: &[&str] = &[
    "cpu",
    "heap",
    "allocs",
    "goroutine",
    "goroutineleak",
    "mutex",
    "block",
];

/// A series: one profile kind of one target, identified by its labels (`job`, `instance`
/// and any configured labels).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub kind: String,
    pub labels: BTreeMap<String, String>,
}

impl SeriesKey {
    pub fn new(kind: &str, labels: impl IntoIterator<Item = (String, String)>) -> Self {
        SeriesKey {
            kind: kind.to_string(),
            labels: labels.into_iter().collect(),
        }
    }

    /// Parses the canonical text form written by [`Display`](fmt::Display).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let sel = Selector::parse(s)?;
        let mut labels = BTreeMap::new();
        for m in sel.matchers {
            if m.op != Op::Eq {
                return Err(SelectorError {
                    text: s.to_string(),
                    offset: s
                        .find(&format!("{}!", m.name))
                        .or_else(|| s.find(&m.name))
                        .unwrap_or(0),
                    problem: SelectorProblem::NotAKey,
                });
            }
            labels.insert(m.name, m.value);
        }
        Ok(SeriesKey {
            kind: sel.kind.unwrap_or_default(),
            labels,
        })
    }
}

fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.kind)?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={}", quote(v))?;
        }
        f.write_str("}")
    }
}

/// A label matcher operator, as in PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// `name=~"…"` matching exactly the `values` given, each taken literally (a label
    /// missing from a series reads as "", as in Prometheus).
    pub fn one_of(name: &str, values: &[String]) -> Result<Matcher, regex::Error> {
        let alt: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
        let value = alt.join("|");
        let re = Regex::new(&format!("^(?:{value})$"))?;
        Ok(Matcher {
            name: name.to_string(),
            op: Op::Re,
            value,
            re: Some(re),
        })
    }

    pub fn matches(&self, v: Option<&str>) -> bool {
        let v = v.unwrap_or("");
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            Op::NotRe => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// `KIND{name="value", name!="v", name=~"re", name!~"re"}`; the kind or the braces may be
/// omitted. Regexes are anchored, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Selector {
    pub kind: Option<String>,
    pub matchers: Vec<Matcher>,
}

/// Why a selector (or a series key) does not parse: the text, the byte offset into it
/// where the problem is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector {text:?}: at byte {offset}: {problem}")]
pub struct SelectorError {
    pub text: String,
    pub offset: usize,
    pub problem: SelectorProblem,
}

/// What is wrong in a selector ([`SelectorError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorProblem {
    #[error("bad profile kind {0:?} (letters, digits and _ only)")]
    BadKind(String),
    #[error("missing closing '}}'")]
    Unclosed,
    #[error("a matcher without an operator")]
    NoOperator,
    #[error("an empty label name")]
    EmptyName,
    #[error("expected =, !=, =~ or !~ after {0}")]
    BadOperator(String),
    #[error("expected a quoted value")]
    Unquoted,
    #[error("unterminated string")]
    Unterminated,
    #[error("bad regexp for {name}: {error}")]
    BadRegex { name: String, error: String },
    #[error("expected ',' or '}}'")]
    BadSeparator,
    #[error("a series key has only = matchers")]
    NotAKey,
}

/// The selector as text that parses back to it (what is sent to peers).
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_deref().unwrap_or(""))?;
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match m.op {
                Op::Eq => "=",
                Op::Ne => "!=",
                Op::Re => "=~",
                Op::NotRe => "!~",
            };
            write!(f, "{}{op}{}", m.name, quote(&m.value))?;
        }
        f.write_str("}")
    }
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        // Every slice below is of `text`: its offset is where it starts.
        let err = |at: &str, problem| SelectorError {
            text: text.to_string(),
            offset: (at.as_ptr() as usize).saturating_sub(text.as_ptr() as usize),
            problem,
        };
        let s = text.trim();
        let (kind, rest) = match s.find('{') {
            Some(i) => (s[..i].trim(), &s[i..]),
            None => (s, ""),
        };
        let kind = if kind.is_empty() {
            None
        } else {
            if !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(kind, SelectorProblem::BadKind(kind.to_string())));
            }
            Some(kind.to_string())
        };
        let mut matchers = Vec::new();
        if !rest.is_empty() {
            let body = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| err(&rest[rest.len()..], SelectorProblem::Unclosed))?;
            let mut p = body.trim();
            while !p.is_empty() {
                let name_end = p
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .ok_or_else(|| err(p, SelectorProblem::NoOperator))?;
                let name = p[..name_end].to_string();
                if name.is_empty() {
                    return Err(err(p, SelectorProblem::EmptyName));
                }
                p = p[name_end..].trim_start();
                let (op, len) = if p.starts_with("=~") {
                    (Op::Re, 2)
                } else if p.starts_with("!~") {
                    (Op::NotRe, 2)
                } else if p.starts_with("!=") {
                    (Op::Ne, 2)
                } else if p.starts_with('=') {
                    (Op::Eq, 1)
                } else {
                    return Err(err(p, SelectorProblem::BadOperator(name)));
                };
                p = p[len..].trim_start();
                let (value, rest) = parse_string(p).map_err(|e| err(p, e))?;
                let re = match op {
                    Op::Re | Op::NotRe => {
                        Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                            err(
                                p,
                                SelectorProblem::BadRegex {
                                    name: name.clone(),
                                    error: e.to_string(),
                                },
                            )
                        })?)
                    }
                    _ => None,
                };
                matchers.push(Matcher {
                    name,
                    op,
                    value,
                    re,
                });
                p = rest.trim_start();
                if let Some(r) = p.strip_prefix(',') {
                    p = r.trim_start();
                } else if !p.is_empty() {
                    return Err(err(p, SelectorProblem::BadSeparator));
                }
            }
        }
        Ok(Selector { kind, matchers })
    }

    pub fn matches(&self, k: &SeriesKey) -> bool {
        self.kind.as_ref().is_none_or(|kind| *kind == k.kind)
            && self
                .matchers
                .iter()
                .all(|m| m.matches(k.labels.get(&m.name).map(String::as_str)))
    }
}

fn parse_string(p: &str) -> Result<(String, &str), SelectorProblem> {
    let quote = p
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')
        .ok_or(SelectorProblem::Unquoted)?;
    let mut out = String::new();
    let mut chars = p.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, c)) => out.push(c),
                None => break,
            },
            c if c == quote => return Ok((out, &p[i + 1..])),
            c => out.push(c),
        }
    }
    Err(SelectorProblem::Unterminated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_print_as_they_parse() {
        for text in [
            "cpu",
            r#"heap{job="a\"b",instance!="x\ny"}"#,
            r#"{job=~"api|db",env!~"te.*"}"#,
        ] {
            let s = Selector::parse(text).unwrap();
            let back = Selector::parse(&s.to_string()).unwrap();
            assert_eq!(back.to_string(), s.to_string());
            assert_eq!(back.kind, s.kind);
            assert_eq!(back.matchers.len(), s.matchers.len());
            for (a, b) in back.matchers.iter().zip(&s.matchers) {
                assert_eq!((&a.name, a.op, &a.value), (&b.name, b.op, &b.value));
            }
        }
    }

    #[test]
    fn keys_round_trip() {
        let k = SeriesKey::new(
            "cpu",
            [
                ("job".to_string(), "checkout".to_string()),
                ("env".into(), "a \"b\"".into()),
            ],
        );
        let s = k.to_string();
        assert_eq!(s, r#"cpu{env="a \"b\"",job="checkout"}"#);
        assert_eq!(SeriesKey::parse(&s).unwrap(), k);
    }

    #[test]
    fn errors_name_the_byte_and_the_problem() {
        for (text, offset, problem) in [
            ("he-ap", 0, SelectorProblem::BadKind("he-ap".into())),
            ("  cpu{job=\"a\"", 13, SelectorProblem::Unclosed),
            ("cpu{job}", 4, SelectorProblem::NoOperator),
            (
                "cpu{job<\"a\"}",
                7,
                SelectorProblem::BadOperator("job".into()),
            ),
            ("cpu{job=a}", 8, SelectorProblem::Unquoted),
            (
                "cpu{job=\"a\" env=\"b\"}",
                12,
                SelectorProblem::BadSeparator,
            ),
        ] {
            let e = Selector::parse(text).expect_err(text);
            assert_eq!((e.offset, &e.problem), (offset, &problem), "{text}: {e}");
            assert!(
                e.to_string().contains(&format!("at byte {offset}: ")),
                "{e}"
            );
        }
        let e = Selector::parse("cpu{job=~\"(\"}").expect_err("bad regexp");
        assert_eq!(e.offset, 9);
        assert!(matches!(e.problem, SelectorProblem::BadRegex { ref name, .. } if name == "job"));
        let e = SeriesKey::parse("cpu{job!=\"a\"}").expect_err("not a key");
        assert_eq!((e.offset, e.problem), (4, SelectorProblem::NotAKey));
    }

    #[test]
    fn selectors() {
        let k = SeriesKey::new(
            "heap",
            [("job".into(), "api".into()), ("env".into(), "prod".into())],
        );
        for (sel, want) in [
            ("heap", true),
            ("cpu", false),
            (r#"heap{job="api"}"#, true),
            (r#"heap{job!="api"}"#, false),
            (r#"{env=~"pr.*"}"#, true),
            (r#"heap{env=~"pr"}"#, false),
            (r#"heap{env!~"dev|test", job='api'}"#, true),
            (r#"heap{zone=""}"#, true),
        ] {
            assert_eq!(Selector::parse(sel).unwrap().matches(&k), want, "{sel}");
        }
        for bad in [
            "heap{",
            "heap{job}",
            r#"heap{job="x"#,
            r#"heap{job=~"("}"#,
            "he-ap",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
