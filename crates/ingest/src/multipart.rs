//! `multipart/form-data` bodies (RFC 7578) as Pyroscope's Go agent sends them: a `profile`
//! part (pprof), optionally `prev_profile` (the previous cumulative profile: what is stored
//! is the difference) and `sample_type_config` (JSON: per sample type `units`,
//! `aggregation`, `cumulative`, …).

use gocost_pprof::Profile;

use crate::{Error, IngestQuery, Limits, decode_pprof, err, truncate};

/// Most parts one body may have.
const MAX_PARTS: usize = 16;

/// One part: its form field name, file name (if any) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub data: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type, or `None` for any other type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let mut it = content_type.split(';');
    let mime = it.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    for param in it {
        let (k, v) = param.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim().trim_matches('"');
            return Some(v.to_string());
        }
    }
    // multipart without a boundary: an empty one fails to parse with a clear error.
    Some(String::new())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    let first = needle[0];
    let mut i = from;
    while i + needle.len() <= hay.len() {
        match hay[i..hay.len() - needle.len() + 1]
            .iter()
            .position(|&b| b == first)
        {
            Some(off) => {
                let at = i + off;
                if &hay[at..at + needle.len()] == needle {
                    return Some(at);
                }
                i = at + 1;
            }
            None => return None,
        }
    }
    None
}

/// Splits a multipart body into its parts. Errors name the part (1-based) at fault.
pub fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, Error> {
    if boundary.is_empty() || boundary.len() > 200 {
        return err("multipart: missing or bad boundary in Content-Type");
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let Some(start) = find(body, delim, 0) else {
        return err("multipart: the boundary never occurs in the body");
    };
    let mut pos = start + delim.len();
    let mut parts = Vec::new();
    loop {
        let n = parts.len() + 1;
        if body[pos..].starts_with(b"--") {
            break;
        }
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos..].starts_with(b"\n") {
            pos += 1;
        } else {
            return err(format!(
                "multipart: part {n}: no line break after the boundary"
            ));
        }
        if parts.len() >= MAX_PARTS {
            return err(format!("multipart: more than {MAX_PARTS} parts"));
        }
        let (head_end, body_start) = match find(body, b"\r\n\r\n", pos) {
            Some(i) => (i, i + 4),
            None => match find(body, b"\n\n", pos) {
                Some(i) => (i, i + 2),
                None => return err(format!("multipart: part {n}: headers never end")),
            },
        };
        if head_end - pos > 8192 {
            return err(format!("multipart: part {n}: headers longer than 8 KiB"));
        }
        let head = std::str::from_utf8(&body[pos..head_end])
            .map_err(|_| Error::Malformed(format!("multipart: part {n}: headers are not UTF-8")))?;
        let mut name = None;
        let mut filename = None;
        for line in head.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for param in v.split(';').skip(1) {
                let Some((pk, pv)) = param.split_once('=') else {
                    continue;
                };
                let pv = pv.trim().trim_matches('"').to_string();
                match pk.trim() {
                    "name" => name = Some(pv),
                    "filename" => filename = Some(pv),
                    _ => {}
                }
            }
        }
        let name = name.ok_or_else(|| {
            Error::Malformed(format!("multipart: part {n}: no Content-Disposition name"))
        })?;
        let mut end_delim = Vec::with_capacity(delim.len() + 2);
        end_delim.extend_from_slice(b"\r\n");
        end_delim.extend_from_slice(delim);
        let (data_end, next) = match find(body, &end_delim, body_start) {
            Some(i) => (i, i + end_delim.len()),
            None => match find(body, &end_delim[1..], body_start) {
                Some(i) => (i, i + end_delim.len() - 1),
                None => {
                    return err(format!(
                        "multipart: part {n} ({:?}): no closing boundary",
                        truncate(&name, 64)
                    ));
                }
            },
        };
        parts.push(Part {
            name,
            filename,
            data: &body[body_start..data_end],
        });
        pos = next;
    }
    Ok(parts)
}

/// The profile(s) of a multipart push: `profile`, minus `prev_profile` for the sample
/// types `sample_type_config` calls cumulative (all of them when there is no config).
pub(crate) fn profiles(
    parts: &[Part<'_>],
    _q: &IngestQuery,
    limits: &Limits,
) -> Result<Vec<Profile>, Error> {
    let get = |n: &str| parts.iter().find(|p| p.name == n);
    let Some(cur) = get("profile") else {
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        return err(format!(
            "multipart: no part named \"profile\" (parts: {})",
            names.join(", ")
        ));
    };
    let cur = decode_pprof(cur.data, "multipart part \"profile\"", limits)?;
    let config = match get("sample_type_config") {
        Some(c) => Some(
            serde_json::from_slice::<serde_json::Value>(c.data)
                .ok()
                .filter(serde_json::Value::is_object)
                .ok_or_else(|| {
                    Error::Malformed(
                        "multipart part \"sample_type_config\": not a JSON object".into(),
                    )
                })?,
        ),
        None => None,
    };
    let Some(prev) = get("prev_profile") else {
        return Ok(vec![cur]);
    };
    let mut prev = decode_pprof(prev.data, "multipart part \"prev_profile\"", limits)?;
    if prev.sample_type != cur.sample_type {
        return err(
            "multipart part \"prev_profile\": sample types differ from \"profile\"'s".to_string(),
        );
    }
    let ratios: Vec<f64> = cur
        .sample_type
        .iter()
        .map(|t| {
            let cumulative = match &config {
                None => true,
                Some(c) => c
                    .get(&*t.r#type)
                    .and_then(|e| e.get("cumulative"))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
            };
            if cumulative { -1.0 } else { 0.0 }
        })
        .collect();
    if ratios.iter().all(|&r| r == 0.0) {
        return Ok(vec![cur]);
    }
    prev.scale_n(&ratios);
    let (time, duration, dst) = (
        cur.time_nanos,
        cur.duration_nanos,
        cur.default_sample_type.clone(),
    );
    let mut d = gocost_pprof::merge::combine(vec![cur, prev])
        .map_err(|e| Error::Malformed(format!("multipart: profile - prev_profile: {}", e.0)))?;
    d.time_nanos = time;
    d.duration_nanos = duration;
    d.default_sample_type = dst;
    Ok(vec![d])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(
            boundary_of("multipart/form-data; boundary=\"ab c\"").as_deref(),
            Some("ab c")
        );
        assert_eq!(boundary_of("application/octet-stream"), None);
        assert_eq!(boundary_of("multipart/form-data").as_deref(), Some(""));
    }

    #[test]
    fn parts() {
        let body = b"preamble\r\n--XX\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\nab\r\n--XX\r\nContent-Disposition: form-data; name=\"sample_type_config\"\r\n\r\n{}\r\n--XX--\r\n";
        let p = parse_multipart(body, "XX").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "profile");
        assert_eq!(p[0].filename.as_deref(), Some("p.pprof"));
        assert_eq!(p[0].data, b"ab");
        assert_eq!(p[1].data, b"{}");
        for (bad, want) in [
            (
                &b"--XX\r\nContent-Disposition: form-data\r\n\r\nab\r\n--XX--"[..],
                "part 1: no Content-Disposition name",
            ),
            (
                b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nab",
                "part 1 (\"a\"): no closing",
            ),
            (b"nothing", "never occurs"),
            (
                b"--XX\r\nContent-Disposition: form-data; name=\"a\"",
                "part 1: headers never end",
            ),
        ] {
            let e = parse_multipart(bad, "XX").unwrap_err();
            assert!(e.message().contains(want), "{e}");
        }
    }
}
