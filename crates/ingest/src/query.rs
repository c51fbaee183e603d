//! The `/ingest` query string: `name=app.kind{k=v,…}&from=&until=&format=&sampleRate=&…`.

use std::collections::BTreeMap;

use crate::{Error, Limits, err, kind_from_name, series_labels, truncate};

/// The body format named by `format=` (Pyroscope's default is `folded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `pprof`: a profile.proto (raw or gzip'd), or `multipart/form-data` with one.
    Pprof,
    /// `folded`: `frame;frame;leaf value` per line.
    Folded,
    /// `lines`: `frame;frame;leaf` per line, each counting 1.
    Lines,
}

/// A parsed `/ingest` query.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestQuery {
    /// The application name, less a kind suffix (`myapp.cpu` → `myapp`).
    pub app: String,
    /// The kind a Pyroscope suffix named (`.cpu`, `.alloc_objects`, …), if any.
    pub kind: Option<String>,
    /// The sample type a suffix named (`alloc_objects`), for folded/lines bodies.
    pub sample_type: Option<String>,
    /// The `{k=v,…}` tags, sanitized as series labels.
    pub labels: BTreeMap<String, String>,
    /// Unix seconds.
    pub from: Option<i64>,
    pub until: Option<i64>,
    pub format: Format,
    /// Samples per second (CPU profiles from folded/lines); default 100.
    pub sample_rate: u32,
    pub spy_name: String,
    /// `samples`, `objects`, `bytes`, … (folded/lines).
    pub units: String,
    /// `sum` or `average`.
    pub aggregation_type: String,
}

impl IngestQuery {
    /// Parses decoded `key=value` pairs. Unknown keys are ignored (agents send more than
    /// gocost needs); a bad value of a known key is an error naming it.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        limits: &Limits,
    ) -> Result<IngestQuery, Error> {
        let mut name = None;
        let mut q = IngestQuery {
            app: String::new(),
            kind: None,
            sample_type: None,
            labels: BTreeMap::new(),
            from: None,
            until: None,
            format: Format::Folded,
            sample_rate: 100,
            spy_name: String::new(),
            units: String::new(),
            aggregation_type: String::new(),
        };
        for (k, v) in pairs {
            match k {
                "name" => name = Some(v),
                "from" => q.from = Some(unix_seconds("from", v)?),
                "until" => q.until = Some(unix_seconds("until", v)?),
                "format" => {
                    q.format = match v {
                        "pprof" => Format::Pprof,
                        "folded" | "" => Format::Folded,
                        "lines" => Format::Lines,
                        other => {
                            return err(format!(
                                "format {:?} is not supported: use pprof, folded or lines",
                                truncate(other, 64)
                            ));
                        }
                    }
                }
                "sampleRate" => {
                    q.sample_rate = match v.trim().parse::<u32>() {
                        Ok(r) if r > 0 => r,
                        _ => {
                            return err(format!(
                                "sampleRate {:?}: want a positive integer (samples per second)",
                                truncate(v, 64)
                            ));
                        }
                    }
                }
                "spyName" => q.spy_name = truncate(v, 128).to_string(),
                "units" => q.units = truncate(v, 64).to_string(),
                "aggregationType" => {
                    if !matches!(v, "" | "sum" | "average" | "avg") {
                        return err(format!(
                            "aggregationType {:?}: want sum or average",
                            truncate(v, 64)
                        ));
                    }
                    q.aggregation_type = v.to_string();
                }
                _ => {}
            }
        }
        let name =
            name.ok_or_else(|| Error::Malformed("missing name=APP{tag=value,...}".into()))?;
        let (app, tags) = parse_name(name, limits)?;
        let (app, kind, sample_type) = kind_from_name(&app);
        q.app = app;
        q.kind = kind;
        q.sample_type = sample_type;
        q.labels = series_labels(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), limits)
            .map_err(|e| e.within("name: "))?;
        q.labels.remove(crate::JOB_LABEL);
        if let (Some(f), Some(u)) = (q.from, q.until)
            && u < f
        {
            return err(format!("until ({u}) is before from ({f})"));
        }
        Ok(q)
    }
}

fn unix_seconds(field: &str, v: &str) -> Result<i64, Error> {
    let v = v.trim();
    let bad = || Error::Malformed(format!("{field} {:?}: want unix seconds", truncate(v, 64)));
    if let Ok(s) = v.parse::<i64>() {
        return if (0..=1 << 40).contains(&s) {
            Ok(s)
        } else {
            Err(bad())
        };
    }
    match v.parse::<f64>() {
        Ok(s) if (0.0..=(1u64 << 40) as f64).contains(&s) => Ok(s as i64),
        _ => Err(bad()),
    }
}

/// Splits Pyroscope's `name`: `app.name{k=v,k2=v2}` → (`app.name`, [(k, v), …]). Tags are
/// comma-separated `key=value` pairs (the value may contain `=`); spaces around them are
/// ignored. The app name must be non-empty and have no braces.
pub fn parse_name(name: &str, limits: &Limits) -> Result<(String, Vec<(String, String)>), Error> {
    let name = name.trim();
    let (app, rest) = match name.find('{') {
        Some(i) => (name[..i].trim(), Some(&name[i + 1..])),
        None => (name, None),
    };
    if app.is_empty() {
        return err(format!(
            "name {:?}: empty application name",
            truncate(name, 64)
        ));
    }
    if app.len() > limits.max_label_len {
        return err(format!(
            "name: application name longer than {} bytes",
            limits.max_label_len
        ));
    }
    if app.contains('}') || app.chars().any(char::is_control) {
        return err(format!(
            "name {:?}: bad character in the application name",
            truncate(name, 64)
        ));
    }
    let mut tags = Vec::new();
    if let Some(rest) = rest {
        let body = rest.strip_suffix('}').ok_or_else(|| {
            Error::Malformed(format!(
                "name {:?}: missing closing '}}'",
                truncate(name, 64)
            ))
        })?;
        if body.contains('{') || body.contains('}') {
            return err(format!(
                "name {:?}: braces inside the tags",
                truncate(name, 64)
            ));
        }
        for (i, t) in body.split(',').enumerate() {
            let t = t.trim();
            if t.is_empty() {
                continue;
            }
            let (k, v) = t.split_once('=').ok_or_else(|| {
                Error::Malformed(format!(
                    "name: tag {} ({:?}) is not key=value",
                    i + 1,
                    truncate(t, 64)
                ))
            })?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return err(format!("name: tag {} has an empty key", i + 1));
            }
            if tags.len() >= limits.max_labels {
                return err(format!("name: more than {} tags", limits.max_labels));
            }
            tags.push((k.to_string(), v.to_string()));
        }
    }
    Ok((app.to_string(), tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<IngestQuery, Error> {
        IngestQuery::from_pairs(pairs.iter().copied(), &Limits::default())
    }

    #[test]
    fn names() {
        let l = Limits::default();
        assert_eq!(parse_name("app", &l).unwrap(), ("app".into(), vec![]));
        assert_eq!(
            parse_name("my.app{env=prod, region = eu ,x=a=b}", &l).unwrap(),
            (
                "my.app".into(),
                vec![
                    ("env".into(), "prod".into()),
                    ("region".into(), "eu".into()),
                    ("x".into(), "a=b".into())
                ]
            )
        );
        for bad in [
            "",
            "{a=b}",
            "app{a=b",
            "app{a}",
            "app{=b}",
            "app{a{=b}",
            "a}pp",
        ] {
            assert!(parse_name(bad, &l).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries() {
        let x = q(&[
            (
                "name",
                "shop.alloc_objects{otel.scope.name=n,service_name=zzz,__tenant__=evil}",
            ),
            ("from", "1700000000"),
            ("until", "1700000010"),
            ("format", "pprof"),
            ("sampleRate", "100"),
        ])
        .unwrap();
        assert_eq!(x.app, "shop");
        assert_eq!(x.kind.as_deref(), Some("allocs"));
        assert_eq!(x.sample_type.as_deref(), Some("alloc_objects"));
        assert_eq!(x.format, Format::Pprof);
        // Reserved names are dropped; the app name is the job, never a tag.
        assert_eq!(
            x.labels,
            BTreeMap::from([("otel_scope_name".to_string(), "n".to_string())])
        );
        let e = q(&[("name", "a"), ("from", "soon")]).unwrap_err();
        assert!(e.message().starts_with("from \"soon\""), "{e}");
        let e = q(&[("name", "a"), ("format", "jfr")]).unwrap_err();
        assert!(e.message().contains("format \"jfr\""), "{e}");
        let e = q(&[("name", "a"), ("sampleRate", "0")]).unwrap_err();
        assert!(e.message().starts_with("sampleRate"), "{e}");
        let e = q(&[("format", "pprof")]).unwrap_err();
        assert!(e.message().contains("missing name"), "{e}");
        let e = q(&[("name", "a"), ("from", "20"), ("until", "10")]).unwrap_err();
        assert!(e.message().contains("until"), "{e}");
    }
}
