//! Which gocost kind a pushed profile is: from a Pyroscope name suffix (`app.cpu`), a
//! Push's `__name__` (`process_cpu`, `memory`, …) or the profile's own sample types.

use gocost_pprof::Profile;

/// Pyroscope's name suffixes → (gocost kind, sample type they name).
const SUFFIXES: &[(&str, &str)] = &[
    ("cpu", "cpu"),
    ("itimer", "cpu"),
    ("wall", "wall"),
    ("alloc_objects", "allocs"),
    ("alloc_space", "allocs"),
    ("inuse_objects", "heap"),
    ("inuse_space", "heap"),
    ("goroutines", "goroutine"),
    ("mutex_count", "mutex"),
    ("mutex_duration", "mutex"),
    ("block_count", "block"),
    ("block_duration", "block"),
];

/// Splits a known kind suffix off an application name: `shop.alloc_objects` →
/// (`shop`, `allocs`, `alloc_objects`). Names without one are returned whole.
pub fn kind_from_name(app: &str) -> (String, Option<String>, Option<String>) {
    if let Some((base, suffix)) = app.rsplit_once('.')
        && !base.is_empty()
        && let Some((_, kind)) = SUFFIXES.iter().find(|(s, _)| *s == suffix)
    {
        return (
            base.to_string(),
            Some((*kind).to_string()),
            Some(suffix.to_string()),
        );
    }
    (app.to_string(), None, None)
}

/// The kind a Push's `__name__` names (`process_cpu` → `cpu`, `memory` → `heap`, …), or
/// `None` to decide from the profile.
pub(crate) fn kind_from_profile_name(name: &str) -> Option<String> {
    let k = match name {
        "process_cpu" | "cpu" => "cpu",
        "wall" => "wall",
        "memory" | "heap" => "heap",
        "allocs" => "allocs",
        "goroutine" | "goroutines" => "goroutine",
        "mutex" => "mutex",
        "block" => "block",
        _ => return None,
    };
    Some(k.to_string())
}

/// The kind from a profile's sample types: CPU time → `cpu`, wall time → `wall`, heap in
/// use → `heap`, allocations only → `allocs`, contentions → `mutex`, goroutines →
/// `goroutine`; otherwise the first sample type's name (sanitized), or `cpu`.
pub fn kind_for_profile(p: &Profile) -> String {
    let has = |t: &str| p.sample_type.iter().any(|s| &*s.r#type == t);
    let k = if has("cpu") || has("itimer") {
        "cpu"
    } else if has("wall") {
        "wall"
    } else if has("inuse_space") || has("inuse_objects") {
        "heap"
    } else if has("alloc_space") || has("alloc_objects") {
        "allocs"
    } else if has("contentions") || has("delay") {
        "mutex"
    } else if has("goroutine") || has("goroutines") {
        "goroutine"
    } else {
        let first = p
            .sample_type
            .first()
            .map(|s| sanitize_label_name(&s.r#type))
            .unwrap_or_default();
        return if first.is_empty() || first.starts_with("__") {
            "cpu".to_string()
        } else {
            first
        };
    };
    k.to_string()
}

/// A label name gocost's selectors can name: every character outside `[A-Za-z0-9_]`
/// becomes `_` (`otel.scope.name` → `otel_scope_name`).
pub fn sanitize_label_name(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gocost_pprof::ValueType;

    #[test]
    fn suffixes() {
        assert_eq!(
            kind_from_name("a.b.inuse_space"),
            (
                "a.b".into(),
                Some("heap".into()),
                Some("inuse_space".into())
            )
        );
        assert_eq!(kind_from_name("a.b"), ("a.b".into(), None, None));
        assert_eq!(kind_from_name(".cpu"), (".cpu".into(), None, None));
    }

    #[test]
    fn from_sample_types() {
        let p = |ts: &[(&str, &str)]| Profile {
            sample_type: ts.iter().map(|(t, u)| ValueType::new(*t, *u)).collect(),
            ..Default::default()
        };
        assert_eq!(
            kind_for_profile(&p(&[("samples", "count"), ("cpu", "nanoseconds")])),
            "cpu"
        );
        assert_eq!(
            kind_for_profile(&p(&[("samples", "count"), ("wall", "nanoseconds")])),
            "wall"
        );
        assert_eq!(
            kind_for_profile(&p(&[("inuse_objects", "count"), ("inuse_space", "bytes")])),
            "heap"
        );
        assert_eq!(kind_for_profile(&p(&[("alloc_space", "bytes")])), "allocs");
        assert_eq!(
            kind_for_profile(&p(&[("exceptions.x", "count")])),
            "exceptions_x"
        );
        assert_eq!(kind_for_profile(&p(&[])), "cpu");
    }
}
