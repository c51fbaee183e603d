//! Regressions across deploys: in one target's CPU profiles over time, find where its build
//! changed — the GNU build ID of the profile's main mapping (`mapping[0]`, the executable;
//! Go writes it into every CPU profile) or the target's `version` label — and compare the
//! profiles just before each change with those just after, per function, with
//! `gocost compare`'s statistics ([`gocost_compare::profiles`]: each function's flat share of
//! the CPU, its odds-ratio change, a U test over the profiles, Holm's correction).
//!
//! A function is reported when its share grew significantly (p ≤ alpha after the
//! correction) by at least the threshold and it holds at least `min_share` of the CPU on one
//! side. Shares are relative: one function slowing lowers every other share, one speeding
//! up raises them. So when some functions also got significantly cheaper and they are fewer
//! than those that grew (one function got faster, not several slower), a function whose
//! share grew is reported only if its CPU per second grew too (by at least half the
//! threshold); otherwise it is listed in `share_only`. CPU per second does not decide
//! always: it moves with the service's load and with the CPU a busy machine leaves it.
//!
//! The first profile after a change is not compared (it covers the restart: start-up work,
//! a cold heap); a change with fewer than `min_profiles` on either side is listed with a
//! note saying what is missing, never judged.

use gocost_compare::profiles::{Normalize, ProfileOptions};
use gocost_compare::{Options, Verdict};
use gocost_pprof::Profile;
use serde::Serialize;

/// When a change is judged and what counts.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Profiles compared per side, at most (the nearest to the change).
    pub max_profiles: usize,
    /// Profiles needed per side before a change is judged (8: fewer miss 15–30 % changes
    /// after the correction for testing many functions at once).
    pub min_profiles: usize,
    /// Profiles right after a change that are not compared (the restart).
    pub skip_after: usize,
    /// Smallest relative change (odds ratio of the flat share) that counts.
    pub threshold: f64,
    /// Significance level after Holm's correction.
    pub alpha: f64,
    /// Functions below this flat share on both sides are never reported.
    pub min_share: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            max_profiles: 12,
            min_profiles: 8,
            skip_after: 1,
            threshold: 0.10,
            alpha: 0.05,
            min_share: 0.05,
        }
    }
}

/// One CPU profile of a target, with the target's `version` label when it has one. Only
/// the profiles [`wanted`] names need be held: a long range of a busy fleet does not fit in
/// memory, the few profiles around each change do.
#[derive(Debug, Clone)]
pub struct Observation {
    /// When it was taken (Unix nanoseconds).
    pub time_nanos: i64,
    pub version: Option<String>,
    /// The main mapping's build ID ([`build_id`]).
    pub build_id: Option<String>,
    pub profile: Option<Profile>,
}

impl Observation {
    /// An observation holding its profile.
    pub fn new(time_nanos: i64, version: Option<String>, profile: Profile) -> Self {
        Observation {
            build_id: build_id(&profile),
            profile: Some(profile),
            ..Self::identity(time_nanos, version, None)
        }
    }

    /// Which build a profile came from, without the profile.
    pub fn identity(time_nanos: i64, version: Option<String>, build_id: Option<String>) -> Self {
        Observation {
            time_nanos,
            version,
            build_id,
            profile: None,
        }
    }
}

/// What identifies a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    /// The main mapping's build ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Build {
    /// How to name the build: its version label, else its build ID.
    pub fn name(&self) -> &str {
        self.version
            .as_deref()
            .or(self.build_id.as_deref())
            .unwrap_or("?")
    }
}

/// A function that got more expensive.
#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    pub function: String,
    /// Flat share of the CPU before and after.
    pub before_share: f64,
    pub after_share: f64,
    /// Relative change of the share against the rest of the profile (odds ratio − 1):
    /// 0.3 = the function costs 30 % more relative to everything else.
    pub change: f64,
    /// Cores the function kept busy on average, before and after.
    pub before_cores: f64,
    pub after_cores: f64,
    /// p-value of the U test after Holm's correction.
    pub p_adjusted: f64,
}

/// One build change.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Unix milliseconds of the first profile of the new build.
    pub at_ms: i64,
    pub before: Build,
    pub after: Build,
    /// Profiles compared on each side (or available, when not judged).
    pub before_profiles: usize,
    pub after_profiles: usize,
    /// Whether the change was judged; if not, `note` says why.
    pub compared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Most expensive change first.
    pub regressions: Vec<Regression>,
    /// Functions whose share grew significantly, at a change where fewer functions got
    /// significantly cheaper, but whose CPU per second did not grow with it: the cheaper
    /// ones left them a bigger share. Not regressions; listed so nothing is hidden.
    pub share_only: Vec<Regression>,
}

/// The main mapping's build ID (`mapping[0]`), if it has one.
pub fn build_id(p: &Profile) -> Option<String> {
    p.mapping
        .first()
        .map(|m| m.build_id.to_string())
        .filter(|b| !b.is_empty())
}

/// One build change: the builds and which observations (sorted by time) each side compares.
struct Sides {
    before: Build,
    after: Build,
    /// The first observation of the new build.
    first: usize,
    base: Vec<usize>,
    head: Vec<usize>,
}

/// Sorts the observations by time and pairs the runs of one build around each change.
fn sides(observations: &mut [Observation], rule: &Rule) -> Vec<Sides> {
    observations.sort_by_key(|o| o.time_nanos);
    // Runs of profiles of one build; a profile that names no build ID belongs to the run it
    // is in (the build cannot have changed without the process restarting).
    let mut runs: Vec<(Build, Vec<usize>)> = Vec::new();
    for (i, o) in observations.iter().enumerate() {
        let mut b = Build {
            build_id: o.build_id.clone(),
            version: o.version.clone(),
        };
        if let Some((last, idx)) = runs.last_mut() {
            if b.build_id.is_none() {
                b.build_id = last.build_id.clone();
            }
            if *last == b {
                idx.push(i);
                continue;
            }
        }
        runs.push((b, vec![i]));
    }
    runs.windows(2)
        .map(|w| {
            let ((before, bi), (after, ai)) = (&w[0], &w[1]);
            Sides {
                before: before.clone(),
                after: after.clone(),
                first: ai[0],
                base: bi[bi.len().saturating_sub(rule.max_profiles)..].to_vec(),
                head: ai
                    .iter()
                    .skip(rule.skip_after)
                    .take(rule.max_profiles)
                    .copied()
                    .collect(),
            }
        })
        .collect()
}

/// The times of the profiles [`find`] compares: load these into the observations (after a
/// first pass that kept only each profile's [`Observation::identity`]).
pub fn wanted(observations: &mut [Observation], rule: &Rule) -> std::collections::BTreeSet<i64> {
    let all = sides(observations, rule);
    all.iter()
        .filter(|s| s.base.len() >= rule.min_profiles && s.head.len() >= rule.min_profiles)
        .flat_map(|s| s.base.iter().chain(&s.head))
        .map(|&i| observations[i].time_nanos)
        .collect()
}

/// Finds the build changes in one target's CPU profiles (any order; sorted by time here)
/// and judges each; the profiles [`wanted`] names must be present.
pub fn find(observations: &mut [Observation], rule: &Rule) -> Vec<Change> {
    let mut changes = Vec::new();
    for Sides {
        before,
        after,
        first,
        base,
        head,
    } in sides(observations, rule)
    {
        let mut c = Change {
            at_ms: observations[first].time_nanos / 1_000_000,
            before,
            after,
            before_profiles: base.len(),
            after_profiles: head.len(),
            compared: false,
            note: None,
            regressions: Vec::new(),
            share_only: Vec::new(),
        };
        if base.len() < rule.min_profiles || head.len() < rule.min_profiles {
            c.note = Some(format!(
                "not judged: {} profiles before and {} after the change (not counting the first {} \
                 after it); {} per side are needed",
                base.len(),
                head.len(),
                rule.skip_after,
                rule.min_profiles
            ));
        } else {
            match judge(observations, &base, &head, rule) {
                Ok((r, s)) => {
                    c.compared = true;
                    c.regressions = r;
                    c.share_only = s;
                }
                Err(e) => c.note = Some(format!("not judged: {e}")),
            }
        }
        changes.push(c);
    }
    changes
}

/// Compares the profiles at `base` with those at `head`.
fn judge(
    obs: &[Observation],
    base: &[usize],
    head: &[usize],
    rule: &Rule,
) -> Result<(Vec<Regression>, Vec<Regression>), String> {
    let side = |idx: &[usize]| -> Result<Vec<(String, Profile)>, String> {
        idx.iter()
            .map(|&i| {
                let name = format!("profile at {} ms", obs[i].time_nanos / 1_000_000);
                match &obs[i].profile {
                    Some(p) => Ok((name, p.clone())),
                    None => Err(format!("{name} was not loaded")),
                }
            })
            .collect()
    };
    let (base_p, head_p) = (side(base)?, side(head)?);
    // CPU time per second covered, to turn Σ flat into cores.
    let seconds = |ps: &[(String, Profile)]| -> f64 {
        ps.iter()
            .map(|(_, p)| p.duration_nanos.max(0) as f64 / 1e9)
            .sum()
    };
    let (sb, sh) = (seconds(&base_p), seconds(&head_p));
    let po = ProfileOptions {
        sample_index: Some("cpu".into()),
        normalize: Normalize::Total,
        min_share: rule.min_share,
    };
    let o = Options {
        threshold: rule.threshold,
        alpha: rule.alpha,
        ..Options::default()
    };
    let cmp = gocost_compare::profiles::compare(base_p, head_p, &po, &o)?;
    let cores = |flat: i64, secs: f64| {
        if secs > 0.0 {
            flat as f64 / 1e9 / secs
        } else {
            0.0
        }
    };
    let mut grew: Vec<Regression> = cmp
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::Regression)
        .map(|r| Regression {
            function: r.function.clone(),
            before_share: r.base.flat_norm,
            after_share: r.head.flat_norm,
            change: r.flat_change.unwrap_or(f64::INFINITY),
            before_cores: cores(r.base.flat, sb),
            after_cores: cores(r.head.flat, sh),
            p_adjusted: r.p_adjusted.unwrap_or(1.0),
        })
        .collect();
    grew.sort_by(|a, b| {
        b.change
            .total_cmp(&a.change)
            .then_with(|| a.function.cmp(&b.function))
    });
    // Shares are relative: one function slowing lowers every other share, one speeding up
    // raises them. When some functions got significantly cheaper too, the side with fewer
    // functions is taken as what changed (one got slower, not several faster); otherwise
    // CPU per second must confirm the growth. CPU per second does not decide always: it
    // moves with load and with the CPU a busy machine leaves the service.
    let cheaper = cmp
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::Improvement)
        .count();
    let odd_one_out = grew.len() <= cheaper;
    Ok(grew.into_iter().partition(|r| {
        cheaper == 0
            || odd_one_out
            || sb <= 0.0
            || sh <= 0.0
            || r.after_cores >= r.before_cores * (1.0 + rule.threshold / 2.0)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gocost_pprof::{Function, Line, Location, Mapping, Sample, ValueType};

    /// A CPU profile of 1 s with `ms` milliseconds per function, built by `build`.
    fn cpu(build: &str, t_s: i64, ms: &[(&str, i64)]) -> Profile {
        let mut p = Profile {
            sample_type: vec![
                ValueType::new("samples", "count"),
                ValueType::new("cpu", "nanoseconds"),
            ],
            mapping: vec![Mapping {
                id: 1,
                memory_start: 0x400000,
                memory_limit: 0x800000,
                filename: "/bin/svc".into(),
                build_id: build.into(),
                has_functions: true,
                ..Mapping::default()
            }],
            time_nanos: t_s * 1_000_000_000,
            duration_nanos: 1_000_000_000,
            period_type: ValueType::new("cpu", "nanoseconds"),
            period: 10_000_000,
            ..Profile::default()
        };
        for (i, (name, v)) in ms.iter().enumerate() {
            p.function.push(Function {
                id: i as u64 + 1,
                name: (*name).into(),
                system_name: (*name).into(),
                ..Function::default()
            });
            p.location.push(Location {
                id: i as u64 + 1,
                mapping: Some(0),
                address: 0x401000 + i as u64,
                line: vec![Line {
                    function: i as u32,
                    line: 1,
                    column: 0,
                }],
                is_folded: false,
            });
            p.sample.push(Sample {
                location: vec![i as u32],
                value: vec![v / 10, v * 1_000_000],
                label: Vec::new(),
            });
        }
        p
    }

    /// `n` profiles of `build` from `t0`, with a jitter so that they are not all equal.
    fn run(build: &str, t0: i64, n: usize, slow: f64) -> Vec<Observation> {
        (0..n)
            .map(|i| {
                let j = (i as i64 * 37) % 11 - 5;
                let a = ((300 + j * 2) as f64 * slow) as i64;
                Observation::new(
                    (t0 + i as i64) * 1_000_000_000,
                    None,
                    cpu(
                        build,
                        t0 + i as i64,
                        &[("main.a", a), ("main.b", 300 - j), ("main.c", 300 + j)],
                    ),
                )
            })
            .collect()
    }

    #[test]
    fn finds_the_slower_function_and_not_an_identical_build() {
        let mut obs = run("aaa", 0, 12, 1.0);
        obs.extend(run("bbb", 12, 12, 1.3));
        obs.extend(run("ccc", 24, 12, 1.3));
        obs.reverse();
        let ch = find(&mut obs, &Rule::default());
        assert_eq!(ch.len(), 2, "{ch:#?}");
        assert!(ch[0].compared);
        assert_eq!(ch[0].before.build_id.as_deref(), Some("aaa"));
        assert_eq!(ch[0].after.build_id.as_deref(), Some("bbb"));
        assert_eq!(ch[0].at_ms, 12_000);
        let names: Vec<&str> = ch[0]
            .regressions
            .iter()
            .map(|r| r.function.as_str())
            .collect();
        assert_eq!(names, ["main.a"], "{ch:#?}");
        let r = &ch[0].regressions[0];
        assert!((r.change - 0.3).abs() < 0.05, "{r:?}");
        assert!(r.after_cores > r.before_cores * 1.2, "{r:?}");
        assert!(ch[1].compared && ch[1].regressions.is_empty(), "{ch:#?}");
    }

    #[test]
    fn only_the_wanted_profiles_are_needed() {
        let mut all = run("aaa", 0, 20, 1.0);
        all.extend(run("bbb", 20, 20, 1.3));
        let rule = Rule::default();
        let mut ids: Vec<Observation> = all
            .iter()
            .map(|o| Observation::identity(o.time_nanos, None, o.build_id.clone()))
            .collect();
        let w = wanted(&mut ids, &rule);
        // The last max_profiles before the change, the first after it (skipping skip_after).
        assert_eq!(w.len(), 2 * rule.max_profiles);
        assert!(w.contains(&(19 * 1_000_000_000)) && !w.contains(&(20 * 1_000_000_000)));
        for o in &mut ids {
            if w.contains(&o.time_nanos) {
                o.profile = all
                    .iter()
                    .find(|a| a.time_nanos == o.time_nanos)
                    .and_then(|a| a.profile.clone());
            }
        }
        let lean = find(&mut ids, &rule);
        let full = find(&mut all, &rule);
        assert_eq!(format!("{lean:?}"), format!("{full:?}"));
        assert!(lean[0].compared && lean[0].regressions.len() == 1);
        // A profile missing from a side: the change says so instead of judging.
        if let Some(o) = ids.iter_mut().rev().find(|o| o.profile.is_some()) {
            o.profile = None;
        }
        let ch = find(&mut ids, &rule);
        assert!(!ch[0].compared && ch[0].note.as_deref().unwrap_or("").contains("not loaded"));
    }

    #[test]
    fn a_faster_function_does_not_make_the_others_regressions() {
        let mut obs = run("aaa", 0, 12, 1.5);
        obs.extend(run("bbb", 12, 12, 1.0));
        let ch = find(&mut obs, &Rule::default());
        assert_eq!(ch.len(), 1);
        assert!(ch[0].compared && ch[0].regressions.is_empty(), "{ch:#?}");
        let mut others: Vec<&str> = ch[0]
            .share_only
            .iter()
            .map(|r| r.function.as_str())
            .collect();
        others.sort();
        assert_eq!(others, ["main.b", "main.c"], "{ch:#?}");
    }

    #[test]
    fn a_version_label_is_a_change_and_short_runs_are_not_judged() {
        let mut obs = run("aaa", 0, 12, 1.0);
        for o in &mut obs[6..] {
            o.version = Some("v2".into());
        }
        let ch = find(&mut obs, &Rule::default());
        assert_eq!(ch.len(), 1);
        assert!(!ch[0].compared);
        assert_eq!(ch[0].after.version.as_deref(), Some("v2"));
        assert_eq!((ch[0].before_profiles, ch[0].after_profiles), (6, 5));
        assert!(
            ch[0].note.as_deref().unwrap_or("").contains("8 per side"),
            "{ch:?}"
        );
        // No build ID at all and no version: nothing to compare.
        let mut obs = run("", 0, 20, 1.0);
        assert!(find(&mut obs, &Rule::default()).is_empty());
    }
}
