use std::path::Path;

use anyhow::{Context, Result};
use gocost_report::Report;

use crate::source::InputError;

/// Checks the output file's extension names a format we write.
pub fn check_format(output: &Path) -> Result<()> {
    match output.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "svg" | "folded" | "txt" | "json" => Ok(()),
        other => Err(InputError(format!(
            "unknown flame graph format {other:?} for {}: use .svg, .folded or .json",
            output.display()
        ))
        .into()),
    }
}

pub fn flame(rpt: &Report, output: &Path, inverted: bool) -> Result<()> {
    let tree = gocost_flame::tree_from_report(rpt);
    let ext = output.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut buf: Vec<u8> = Vec::new();
    let unit = rpt.sample_unit.clone();
    match ext {
        "svg" => {
            let fmt = |v: i64| gocost_pprof::units::label(v, &unit);
            let file = rpt
                .prof
                .mapping
                .first()
                .map(|m| m.filename.rsplit('/').next().unwrap_or("").to_string())
                .unwrap_or_default();
            let opts = gocost_flame::Options {
                title: if file.is_empty() {
                    rpt.sample_type.clone()
                } else {
                    format!("{file} — {}", rpt.sample_type)
                },
                subtitle: format!("Type: {} · Total: {}", rpt.sample_type, fmt(rpt.total)),
                format_value: &fmt,
                inverted,
                ..gocost_flame::Options::default()
            };
            gocost_flame::write_svg(&tree, &opts, &mut buf)?;
        }
        "folded" | "txt" => gocost_flame::write_folded(&tree, &mut buf)?,
        "json" => {
            let su = match gocost_pprof::units::scale(1, &unit, "auto").1.as_str() {
                "ns" | "us" | "ms" | "s" | "hrs" => gocost_flame::SpeedscopeUnit::Nanoseconds,
                "B" | "kB" | "MB" | "GB" | "TB" | "PB" => gocost_flame::SpeedscopeUnit::Bytes,
                _ => gocost_flame::SpeedscopeUnit::None,
            };
            gocost_flame::write_speedscope(&tree, &rpt.sample_type, su, &mut buf)?;
        }
        other => {
            return Err(InputError(format!(
                "unknown flame graph format {other:?} for {}: use .svg, .folded or .json",
                output.display()
            ))
            .into());
        }
    }
    std::fs::write(output, buf).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}
