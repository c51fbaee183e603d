//! `drop_frames` / `keep_frames` pruning (pprof's `RemoveUninteresting`, `Prune`, `PruneFrom`).

use regex::Regex;
use rustc_hash::FxHashMap;

use crate::model::Profile;

/// pprof's `simplifyFunc`: strip a leading `.` and cut the name at the first `(` that does
/// not start `(anonymous namespace)` or `operator()`. Note that this cuts Go method names
/// (`net/http.(*conn).serve` → `net/http.`), exactly as pprof does.
pub fn simplify_func(f: &str) -> &str {
    let name = f.strip_prefix('.').unwrap_or(f);
    let mut i = 0;
    let b = name.as_bytes();
    while i < b.len() {
        // Byte-wise: `i` need not be a char boundary (names may hold any UTF-8).
        let rest = &b[i..];
        if rest.starts_with(b"(anonymous namespace)") {
            i += "(anonymous namespace)".len();
            continue;
        }
        if rest.starts_with(b"operator()") {
            i += "operator()".len();
            continue;
        }
        if b[i] == b'(' {
            return &name[..i];
        }
        i += 1;
    }
    name
}

/// Applies the profile's own `drop_frames`/`keep_frames` (pprof's `RemoveUninteresting`).
pub fn remove_uninteresting(p: &mut Profile) -> Result<(), regex::Error> {
    if p.drop_frames.is_empty() {
        return Ok(());
    }
    let drop = Regex::new(&format!("^({})$", p.drop_frames))?;
    let keep = if p.keep_frames.is_empty() {
        None
    } else {
        Some(Regex::new(&format!("^({})$", p.keep_frames))?)
    };
    prune(p, &drop, keep.as_ref());
    Ok(())
}

/// Removes every frame matching `drop` (and not `keep`) together with everything leafward of
/// it, but never before the first non-matching frame from the root.
pub fn prune(p: &mut Profile, drop: &Regex, keep: Option<&Regex>) {
    let mut cache: FxHashMap<u32, bool> = FxHashMap::default();
    let n = p.location.len();
    let mut prune_loc = vec![false; n];
    let mut beneath = vec![false; n];
    for (li, loc) in p.location.iter_mut().enumerate() {
        let mut found = None;
        for i in (0..loc.line.len()).rev() {
            let fi = loc.line[i].function;
            let f = &p.function[fi as usize];
            if f.name.is_empty() {
                continue;
            }
            let hit = *cache.entry(fi).or_insert_with(|| {
                let s = simplify_func(&f.name);
                drop.is_match(s) && keep.is_none_or(|k| !k.is_match(s))
            });
            if hit {
                found = Some(i);
                break;
            }
        }
        if let Some(i) = found {
            beneath[li] = true;
            if i == loc.line.len() - 1 {
                prune_loc[li] = true;
            } else {
                loc.line.drain(..=i);
            }
        }
    }
    for s in &mut p.sample {
        let mut found_user = false;
        for i in (0..s.location.len()).rev() {
            let l = s.location[i] as usize;
            if !prune_loc[l] && !beneath[l] {
                found_user = true;
                continue;
            }
            if !found_user {
                continue;
            }
            if prune_loc[l] {
                s.location.drain(..=i);
                break;
            }
            if beneath[l] {
                s.location.drain(..i);
                break;
            }
        }
    }
}

/// Removes all frames leafward of the lowest frame matching `rx` (pprof's `PruneFrom`).
pub fn prune_from(p: &mut Profile, rx: &Regex) {
    let n = p.location.len();
    let mut beneath = vec![false; n];
    for (li, loc) in p.location.iter_mut().enumerate() {
        for i in 0..loc.line.len() {
            let f = &p.function[loc.line[i].function as usize];
            if !f.name.is_empty() && rx.is_match(simplify_func(&f.name)) {
                beneath[li] = true;
                loc.line.drain(..i);
                break;
            }
        }
    }
    for s in &mut p.sample {
        if let Some(i) = s.location.iter().position(|&l| beneath[l as usize]) {
            s.location.drain(..i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::simplify_func;

    #[test]
    fn simplify() {
        assert_eq!(simplify_func("net/http.(*conn).serve"), "net/http.");
        assert_eq!(simplify_func("main.main"), "main.main");
        assert_eq!(simplify_func(".foo(int)"), "foo");
        assert_eq!(
            simplify_func("(anonymous namespace)::f(int)"),
            "(anonymous namespace)::f"
        );
        assert_eq!(simplify_func("a::operator()(int)"), "a::operator()");
        assert_eq!(simplify_func("main.é(x"), "main.é");
        assert_eq!(simplify_func("ééé"), "ééé");
    }
}
