//! The Connect `push.v1.PusherService/Push` request (protobuf), as the Python agent sends it:
//!
//! ```text
//! PushRequest      { repeated RawProfileSeries series = 1; }
//! RawProfileSeries { repeated LabelPair labels = 1; repeated RawSample samples = 2; }
//! LabelPair        { string name = 1; string value = 2; }
//! RawSample        { bytes raw_profile = 1; string ID = 2; }
//! ```
//!
//! `__name__` names the profile type (`process_cpu`, `memory`, …), `service_name` the
//! application (gocost's `job`); other labels become series labels.

use gocost_pprof::varint::{VarintError, read_varint};

use crate::kind::kind_from_profile_name;
use crate::{Error, JOB_LABEL, Limits, Pushed, decode_pprof, err, kind_for_profile, series_labels};

/// Most series and samples one request may carry.
const MAX_SERIES: usize = 1024;

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

enum Field<'a> {
    Bytes(&'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }

    fn varint(&mut self, at: &str) -> Result<u64, Error> {
        match read_varint(self.b, self.i) {
            Ok((v, end)) => {
                self.i = end;
                Ok(v)
            }
            Err(VarintError::Truncated) => {
                err(format!("{at}: truncated varint at byte {}", self.b.len()))
            }
            Err(VarintError::TooLong) => err(format!(
                "{at}: varint longer than 10 bytes at byte {}",
                self.i + 10
            )),
        }
    }

    /// The next (field number, value), or `None` at the end.
    fn next(&mut self, at: &str) -> Result<Option<(u64, Field<'a>)>, Error> {
        if self.i >= self.b.len() {
            return Ok(None);
        }
        let key = self.varint(at)?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => {
                self.varint(at)?;
                Field::Other
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if self.b.len() - self.i < n {
                    return err(format!("{at}: truncated fixed field {num}"));
                }
                self.i += n;
                Field::Other
            }
            2 => {
                let len = self.varint(at)?;
                if len > (self.b.len() - self.i) as u64 {
                    return err(format!(
                        "{at}: field {num} is {len} bytes, past the end of the message"
                    ));
                }
                let s = &self.b[self.i..self.i + len as usize];
                self.i += len as usize;
                Field::Bytes(s)
            }
            w => return err(format!("{at}: field {num} has unsupported wire type {w}")),
        };
        Ok(Some((num, f)))
    }
}

fn utf8<'a>(b: &'a [u8], at: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(b).map_err(|_| Error::Malformed(format!("{at}: not UTF-8")))
}

/// Parses a `PushRequest` (already content-decoded) into profiles; `now_ns` stands in for a
/// profile without a time. Every series needs a `service_name` label.
pub fn parse_push_request(body: &[u8], now_ns: i64, limits: &Limits) -> Result<Vec<Pushed>, Error> {
    let mut out = Vec::new();
    let mut r = Reader::new(body);
    let mut si = 0usize;
    while let Some((num, f)) = r.next("PushRequest")? {
        let (1, Field::Bytes(series)) = (num, f) else {
            continue;
        };
        let at = format!("PushRequest.series[{si}]");
        si += 1;
        if si > MAX_SERIES {
            return err(format!("PushRequest: more than {MAX_SERIES} series"));
        }
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let mut raws: Vec<&[u8]> = Vec::new();
        let mut sr = Reader::new(series);
        while let Some((num, f)) = sr.next(&at)? {
            match (num, f) {
                (1, Field::Bytes(lp)) => {
                    let at = format!("{at}.labels[{}]", pairs.len());
                    let (mut name, mut value) = ("", "");
                    let mut lr = Reader::new(lp);
                    while let Some((n, f)) = lr.next(&at)? {
                        match (n, f) {
                            (1, Field::Bytes(b)) => name = utf8(b, &format!("{at}.name"))?,
                            (2, Field::Bytes(b)) => value = utf8(b, &format!("{at}.value"))?,
                            _ => {}
                        }
                    }
                    pairs.push((name, value));
                }
                (2, Field::Bytes(s)) => {
                    let mut rr = Reader::new(s);
                    let at = format!("{at}.samples[{}]", raws.len());
                    let mut raw = None;
                    while let Some((n, f)) = rr.next(&at)? {
                        if let (1, Field::Bytes(b)) = (n, f) {
                            raw = Some(b);
                        }
                    }
                    raws.push(raw.unwrap_or_default());
                    if raws.len() > MAX_SERIES {
                        return err(format!("{at}: more than {MAX_SERIES} samples"));
                    }
                }
                _ => {}
            }
        }
        let labels = series_labels(pairs.iter().copied(), limits)
            .map_err(|e| e.within(&format!("{at}.labels: ")))?;
        if !labels.contains_key(JOB_LABEL) {
            return err(format!("{at}: no service_name label"));
        }
        let named = pairs
            .iter()
            .find(|(k, _)| *k == "__name__")
            .and_then(|(_, v)| kind_from_profile_name(v));
        for (i, raw) in raws.iter().enumerate() {
            let what = format!("{at}.samples[{i}].raw_profile");
            if raw.is_empty() {
                return err(format!("{what}: empty"));
            }
            let mut p = decode_pprof(raw, &what, limits)?;
            let kind = named.clone().unwrap_or_else(|| kind_for_profile(&p));
            if p.time_nanos <= 0 {
                p.time_nanos = now_ns;
            }
            gocost_pprof::check_depth(&p, limits.max_depth)
                .map_err(|e| Error::Malformed(format!("{at}: {e}")))?;
            out.push(Pushed {
                kind,
                labels: labels.clone(),
                time_ns: p.time_nanos,
                profile: p,
            });
        }
    }
    Ok(out)
}
