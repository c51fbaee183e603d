//! Sample filters (`-focus`, `-ignore`, `-hide`, `-show`, `-show_from`, `-tagfocus`,
//! `-tagignore`) and granularity aggregation, as pprof's `FilterSamplesByName`, `ShowFrom`,
//! `FilterSamplesByTag` and `Profile.Aggregate`.

use std::collections::HashMap;

use gocost_pprof::{Location, Profile, Sample};
use regex::Regex;

use crate::Granularity;

/// Which filters matched anything (pprof warns about the others).
#[derive(Default)]
pub struct Matched {
    pub focus: bool,
    pub ignore: bool,
    pub hide: bool,
    pub show: bool,
}

fn line_matches(p: &Profile, l: &gocost_pprof::Line, re: &Regex) -> bool {
    let f = &p.function[l.function as usize];
    re.is_match(&f.name) || re.is_match(&f.filename)
}

fn mapping_matches(p: &Profile, loc: &Location, re: &Regex) -> bool {
    loc.mapping
        .is_some_and(|m| re.is_match(&p.mapping[m as usize].filename))
}

fn location_matches(p: &Profile, loc: &Location, re: &Regex) -> bool {
    loc.line.iter().any(|l| line_matches(p, l, re)) || mapping_matches(p, loc, re)
}

/// Keeps samples with a frame matching `focus` and none matching `ignore`; removes lines
/// matching `hide` and lines not matching `show`.
pub fn filter_samples_by_name(
    p: &mut Profile,
    focus: Option<&Regex>,
    ignore: Option<&Regex>,
    hide: Option<&Regex>,
    show: Option<&Regex>,
) -> Matched {
    let mut m = Matched::default();
    if focus.is_none() && ignore.is_none() && hide.is_none() && show.is_none() {
        m.focus = true;
        return m;
    }
    // 0 = neither, 1 = focused, 2 = ignored
    let n = p.location.len();
    let mut state = vec![0u8; n];
    let mut hidden = vec![false; n];
    let mut any_hidden = false;
    for li in 0..n {
        let loc = &p.location[li];
        if let Some(re) = ignore
            && location_matches(p, loc, re)
        {
            m.ignore = true;
            state[li] = 2;
        } else if focus.is_none_or(|re| location_matches(p, loc, re)) {
            m.focus = true;
            state[li] = 1;
        }
        if let Some(re) = hide
            && location_matches(p, loc, re)
        {
            m.hide = true;
            let lines: Vec<_> = if mapping_matches(p, loc, re) {
                Vec::new()
            } else {
                loc.line
                    .iter()
                    .filter(|l| !line_matches(p, l, re))
                    .copied()
                    .collect()
            };
            if lines.is_empty() {
                hidden[li] = true;
                any_hidden = true;
            }
            p.location[li].line = lines;
        }
        if let Some(re) = show {
            let loc = &p.location[li];
            let lines: Vec<_> = if mapping_matches(p, loc, re) {
                loc.line.clone()
            } else {
                loc.line
                    .iter()
                    .filter(|l| line_matches(p, l, re))
                    .copied()
                    .collect()
            };
            if lines.is_empty() {
                hidden[li] = true;
                any_hidden = true;
            } else {
                m.show = true;
            }
            p.location[li].line = lines;
        }
    }
    p.sample.retain_mut(|s| {
        let mut focused = false;
        for &l in &s.location {
            match state[l as usize] {
                1 => focused = true,
                2 => return false,
                _ => {}
            }
        }
        if !focused {
            return false;
        }
        if any_hidden {
            s.location.retain(|&l| !hidden[l as usize]);
            if s.location.is_empty() {
                return false;
            }
        }
        true
    });
    m
}

/// Keeps each sample's frames from its leaf up to its rootmost frame matching `rx`, and drops
/// samples without one (pprof's `ShowFrom`). In a matching location, inlined callers beyond
/// the outermost matching line are removed. Returns whether anything matched.
pub fn show_from(p: &mut Profile, rx: &Regex) -> bool {
    // Per location: matched (by its binary: all lines kept, or up to its last matching line).
    let hits: Vec<Option<Option<usize>>> = p
        .location
        .iter()
        .map(|loc| {
            if mapping_matches(p, loc, rx) {
                Some(None)
            } else {
                loc.line
                    .iter()
                    .rposition(|l| line_matches(p, l, rx))
                    .map(Some)
            }
        })
        .collect();
    for (loc, hit) in p.location.iter_mut().zip(&hits) {
        if let Some(Some(i)) = hit {
            loc.line.truncate(i + 1);
        }
    }
    let matched_loc: Vec<bool> = hits.iter().map(Option::is_some).collect();
    let matched = matched_loc.contains(&true);
    p.sample.retain_mut(
        |s| match s.location.iter().rposition(|&l| matched_loc[l as usize]) {
            Some(i) => {
                s.location.truncate(i + 1);
                true
            }
            None => false,
        },
    );
    matched
}

/// A compiled `-tagfocus`/`-tagignore` value: whether a sample matches.
pub type TagMatch = Box<dyn Fn(&Sample) -> bool>;

/// pprof's `NumLabelUnits`: per numeric label key, the first unit the samples give it, else
/// `bytes` for `alignment` and `request`, else the key itself.
pub fn num_label_units(p: &Profile) -> HashMap<String, String> {
    let mut units: HashMap<String, String> = HashMap::new();
    for s in &p.sample {
        for (k, _, u) in s.num_labels() {
            let e = units.entry(k.to_string()).or_default();
            if e.is_empty() && !u.is_empty() {
                *e = u.to_string();
            }
        }
    }
    for (k, u) in units.iter_mut() {
        if u.is_empty() {
            *u = match k.as_str() {
                "alignment" | "request" => "bytes".into(),
                _ => k.clone(),
            };
        }
    }
    units
}

/// Whether a numeric label value in a unit lies in a range.
type InRange = Box<dyn Fn(i64, &str) -> bool>;

/// A numeric range (`32kb`, `:64kb`, `4mb:`, `12kb:64mb`) as pprof's `parseTagFilterRange`
/// reads it: whether a value in a unit lies in it. `None`: not a range (a regexp).
fn tag_range(filter: &str) -> Option<InRange> {
    // pprof's `([+-]?[[:digit:]]+)([[:alpha:]]+)?`, at most two matches.
    let rx = Regex::new(r"([+-]?[0-9]+)([A-Za-z]+)?").ok()?;
    let caps: Vec<regex::Captures> = rx.captures_iter(filter).take(2).collect();
    let first = caps.first()?;
    let num = |c: &regex::Captures| c[1].parse::<i64>().ok();
    let unit = first.get(2).map_or("", |m| m.as_str()).to_string();
    let (lo, unit) = gocost_pprof::units::scale(num(first)?, &unit, &unit);
    let whole = &first[0];
    let in_unit = {
        let unit = unit.clone();
        move |v: i64, u: &str| {
            let (sv, su) = gocost_pprof::units::scale(v, u, &unit);
            (su == unit).then_some(sv)
        }
    };
    if caps.len() == 1 {
        return if filter == whole {
            Some(Box::new(move |v, u| in_unit(v, u) == Some(lo)))
        } else if filter == format!("{whole}:") {
            Some(Box::new(move |v, u| in_unit(v, u).is_some_and(|x| x >= lo)))
        } else if filter == format!(":{whole}") {
            Some(Box::new(move |v, u| in_unit(v, u).is_some_and(|x| x <= lo)))
        } else {
            None
        };
    }
    let second = &caps[1];
    if filter != format!("{whole}:{}", &second[0]) {
        return None;
    }
    let unit2 = second.get(2).map_or("", |m| m.as_str());
    let (hi, u2) = gocost_pprof::units::scale(num(second)?, unit2, &unit);
    if u2 != unit {
        return None;
    }
    Some(Box::new(move |v, u| {
        in_unit(v, u).is_some_and(|x| x >= lo && x <= hi)
    }))
}

/// Compiles a `-tagfocus`/`-tagignore` value as pprof does: `[key=]value`, where value is a
/// numeric range (matched against numeric labels, in the key's unit) or comma-separated
/// regexps. With a key, a sample matches when one of its values for the key matches one
/// regexp; without, when every regexp matches some `key:value` of the sample.
pub fn tag_filter(
    name: &str,
    value: &str,
    units: &HashMap<String, String>,
) -> Result<TagMatch, String> {
    let (want_key, value) = match value.split_once('=') {
        Some((k, v)) => (Some(k.to_string()), v),
        None => (None, value),
    };
    if let Some(range) = tag_range(value) {
        let units = units.clone();
        let unit_of = move |k: &str| units.get(k).cloned().unwrap_or_default();
        return Ok(match want_key {
            None => {
                Box::new(move |s: &Sample| s.num_labels().any(|(k, v, _)| range(v, &unit_of(k))))
            }
            Some(want) => Box::new(move |s: &Sample| {
                s.num_labels()
                    .any(|(k, v, _)| k == want && range(v, &unit_of(k)))
            }),
        });
    }
    let rxs = value
        .split(',')
        .map(|r| Regex::new(r).map_err(|e| format!("parsing {name} regexp: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match want_key {
        None => Box::new(move |s: &Sample| {
            rxs.iter().all(|rx| {
                s.str_labels()
                    .any(|(k, v)| rx.is_match(&format!("{k}:{v}")))
            })
        }),
        Some(want) => Box::new(move |s: &Sample| {
            let vals: Vec<&str> = s
                .str_labels()
                .filter(|(k, _)| *k == want)
                .map(|(_, v)| v)
                .collect();
            !vals.is_empty() && rxs.iter().any(|rx| vals.iter().any(|v| rx.is_match(v)))
        }),
    })
}

/// Keeps samples that `focus` matches (if given) and `ignore` does not (pprof's
/// `FilterSamplesByTag`); returns whether each matched any sample.
pub fn filter_samples_by_tag(
    p: &mut Profile,
    focus: Option<&TagMatch>,
    ignore: Option<&TagMatch>,
) -> (bool, bool) {
    let (mut fm, mut im) = (false, false);
    if focus.is_none() && ignore.is_none() {
        return (true, false);
    }
    p.sample.retain(|s| {
        let focused = focus.is_none_or(|f| f(s));
        let ignored = ignore.is_some_and(|f| f(s));
        fm |= focused;
        im |= ignored;
        focused && !ignored
    });
    (fm, im)
}

/// pprof's `Profile.Aggregate` for a granularity (`inlines` = not `-noinlines`).
pub fn aggregate(p: &mut Profile, g: Granularity, inlines: bool) {
    let (function, filename, linenumber, address) = match g {
        Granularity::Addresses if inlines => return,
        Granularity::Addresses => (true, true, true, true),
        Granularity::Lines => (true, true, true, false),
        Granularity::Files => (false, true, false, false),
        Granularity::Functions => (true, false, false, false),
        Granularity::FileFunctions => (true, true, false, false),
    };
    let columnnumber = false;
    for m in &mut p.mapping {
        m.has_inline_frames &= inlines;
        m.has_functions &= function;
        m.has_filenames &= filename;
        m.has_line_numbers &= linenumber;
    }
    if !function || !filename {
        for f in &mut p.function {
            if !function {
                f.name = "".into();
                f.system_name = "".into();
            }
            if !filename {
                f.filename = "".into();
            }
        }
    }
    for l in &mut p.location {
        if !inlines && l.line.len() > 1 {
            l.line.drain(..l.line.len() - 1);
        }
        if !linenumber {
            for ln in &mut l.line {
                ln.line = 0;
                ln.column = 0;
            }
        }
        if !columnnumber {
            for ln in &mut l.line {
                ln.column = 0;
            }
        }
        if !address {
            l.address = 0;
        }
    }
}
