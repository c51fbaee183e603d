//! Sample filters (`-focus`, `-ignore`, `-hide`, `-show`) and granularity aggregation, as
//! pprof's `FilterSamplesByName` and `Profile.Aggregate`.

use gocost_pprof::{Location, Profile};
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
