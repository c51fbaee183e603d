//! A Go binary's bytes by section, package and module.
//!
//! - Sections: every section header's size in the file and in memory, grouped by
//!   [`Class`]; the file's bytes outside any section (headers, padding) are a row of their
//!   own, so the rows add up to the file size.
//! - Packages: each symbol's size (the symbol table's, as `go tool nm -size` prints it) goes
//!   to the package its name belongs to ([`crate::symname`]); without a symbol table
//!   (`-ldflags=-s`), the functions of the pclntab. `type:`/`go:` symbols and names without
//!   a package are rows of their own.
//! - Modules: a package goes to the module with the longest path that is a prefix of it
//!   (`main` to the main module), else to `std` when its first element has no dot, else to
//!   `unattributed`.
//! - Unattributed: per section, the bytes no symbol covers (string data, type descriptors,
//!   most of the pclntab, DWARF, alignment) — reported, never spread over the packages.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::binary::{Binary, Class, Format};
use crate::buildinfo::{self, BuildInfo};
use crate::symname::{self, Owner};
use crate::{Error, ErrorKind};

/// The module name for standard-library packages.
pub const STD: &str = "std";
/// The module name for packages and bytes no module claims.
pub const UNATTRIBUTED: &str = "unattributed";

/// One section.
#[derive(Debug, Clone, Serialize)]
pub struct SectionRow {
    pub name: String,
    pub class: Class,
    pub file_size: u64,
    pub mem_size: u64,
    /// Bytes covered by at least one symbol (overlapping symbols counted once).
    pub attributed: u64,
}

/// One class of sections (`text`, `rodata`, …).
#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    pub class: Class,
    pub file_size: u64,
    pub mem_size: u64,
    pub attributed: u64,
}

/// One package's symbols.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct PackageRow {
    /// The import path, or `(type:)`, `(go:)` for the compiler's and linker's symbols and
    /// `(no package)` for C and linker names.
    pub package: String,
    /// Module path, `std` or `unattributed`.
    pub module: String,
    pub text: u64,
    pub rodata: u64,
    pub data: u64,
    /// Zeroed memory: in `mem`, not in the file.
    pub bss: u64,
    pub symbols: u64,
}

impl PackageRow {
    /// Bytes in the file: text + rodata + data.
    pub fn file(&self) -> u64 {
        self.text
            .saturating_add(self.rodata)
            .saturating_add(self.data)
    }
}

/// One module's packages together.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct ModuleRow {
    pub module: String,
    pub version: String,
    /// `=> path version` when `go.mod` replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    pub packages: u64,
    /// File bytes of its packages' symbols (text + rodata + data).
    pub file: u64,
    pub bss: u64,
}

/// Where package sizes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The symbol table: every sized symbol, code and data.
    Symtab,
    /// The pclntab's functions only (a stripped binary): code, no data.
    Pclntab,
}

/// Everything `gocost size` reports.
#[derive(Debug, Clone, Serialize)]
pub struct SizeReport {
    pub format: Format,
    pub arch: String,
    pub file_size: u64,
    pub build_info: Option<BuildInfo>,
    pub source: Source,
    pub sections: Vec<SectionRow>,
    pub classes: Vec<ClassRow>,
    /// File bytes outside every section: headers, section table, padding between sections.
    pub outside_sections: u64,
    /// By file bytes, largest first.
    pub packages: Vec<PackageRow>,
    /// By file bytes, largest first; `unattributed` included when it has bytes.
    pub modules: Vec<ModuleRow>,
    /// File bytes of loaded sections (text, rodata, pclntab, data) no symbol covers.
    pub unattributed_loaded: u64,
    /// Bytes two symbols both claim (cgo's per-package `pkg(.text)` spans its C functions):
    /// counted in both packages' rows, once in `attributed`.
    pub overlap: u64,
    pub warnings: Vec<String>,
}

/// The module a package belongs to: the longest module path that is the package or a prefix
/// of it at a `/`; `main` to the main module; else `std` or `unattributed`.
pub fn module_of<'a>(pkg: &str, modules: &'a [String], main: Option<&'a str>) -> &'a str {
    if pkg == "main" || pkg == "command-line-arguments" {
        return main.unwrap_or(UNATTRIBUTED);
    }
    let best = modules
        .iter()
        .filter(|m| {
            pkg == m.as_str() || (pkg.starts_with(m.as_str()) && pkg.as_bytes()[m.len()] == b'/')
        })
        .max_by_key(|m| m.len());
    match best {
        Some(m) => m,
        None if symname::is_std(pkg) => STD,
        None => UNATTRIBUTED,
    }
}

/// Measures a binary.
pub fn analyze(bytes: &[u8]) -> Result<SizeReport, Error> {
    let bin = Binary::parse(bytes)?;
    let build_info = buildinfo::read(&bin)?;
    let mut warnings = Vec::new();

    // Symbols, or the pclntab's functions for a stripped binary.
    let (source, syms): (Source, Vec<(String, u64, u64, Class)>) = if !bin.symbols.is_empty() {
        let s = bin
            .symbols
            .iter()
            .map(|s| {
                // The symbol's code, not only its section: PE keeps bss inside .data.
                let class = match s.code {
                    'B' => Class::Bss,
                    _ => bin.sections[s.section].class,
                };
                (s.name.clone(), s.addr, s.size, class)
            })
            .collect();
        (Source::Symtab, s)
    } else {
        let Some(sec) = bin.section(&[".gopclntab", "__gopclntab"]) else {
            if build_info.is_none() {
                return Err(Error::new(
                    ErrorKind::NotGo,
                    "executable",
                    None,
                    "no Go build info, symbol table or pclntab: not a binary Go built",
                ));
            }
            return Err(Error::new(
                ErrorKind::Unsupported,
                "executable",
                None,
                "no symbol table and no pclntab section to attribute code with",
            ));
        };
        let text = bin.section(&[".text", "__text"]).map_or(0, |s| s.addr);
        let fs = crate::pclntab::functions(bin.section_data(sec), bin.big_endian, text).map_err(
            |mut e| {
                e.offset = e.offset.map(|o| o + sec.file_offset);
                e
            },
        )?;
        warnings.push(
            "no symbol table (built with -ldflags=-s?): packages get their code from the \
             pclntab (sizes include alignment padding); their data is not attributed"
                .into(),
        );
        (
            Source::Pclntab,
            fs.into_iter()
                .map(|f| (f.name, f.entry, f.size, Class::Text))
                .collect(),
        )
    };
    if build_info.is_none() {
        warnings.push("no Go build info in this binary: modules are not known".into());
    }

    // Sections and the bytes symbols cover in each (interval union).
    let mut covered = vec![0u64; bin.sections.len()];
    let mut overlap = 0u64;
    {
        let mut by_addr: Vec<(u64, u64)> = syms
            .iter()
            .filter(|s| s.2 > 0)
            .map(|s| (s.1, s.1.saturating_add(s.2)))
            .collect();
        by_addr.sort_unstable();
        let mut end = 0u64;
        let mut iv: Vec<(u64, u64)> = Vec::new();
        for (a, b) in by_addr {
            if a < end {
                overlap = overlap.saturating_add(end.min(b) - a);
            }
            match iv.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => iv.push((a, b)),
            }
            end = end.max(b);
        }
        for (i, s) in bin.sections.iter().enumerate() {
            if s.addr == 0 || s.size == 0 {
                continue;
            }
            let (lo, hi) = (s.addr, s.addr.saturating_add(s.size));
            covered[i] = iv
                .iter()
                .map(|&(a, b)| b.min(hi).saturating_sub(a.max(lo)))
                .fold(0u64, u64::saturating_add);
        }
    }
    let sections: Vec<SectionRow> = bin
        .sections
        .iter()
        .zip(&covered)
        .map(|(s, &c)| SectionRow {
            name: s.name.clone(),
            class: s.class,
            file_size: s.file_size,
            mem_size: if s.addr != 0 || s.class == Class::Bss {
                s.size
            } else {
                0
            },
            attributed: c,
        })
        .collect();
    let mut classes: BTreeMap<Class, ClassRow> = BTreeMap::new();
    for s in &sections {
        let c = classes.entry(s.class).or_insert(ClassRow {
            class: s.class,
            file_size: 0,
            mem_size: 0,
            attributed: 0,
        });
        c.file_size = c.file_size.saturating_add(s.file_size);
        c.mem_size = c.mem_size.saturating_add(s.mem_size);
        c.attributed = c.attributed.saturating_add(s.attributed);
    }
    // Section file ranges may overlap in a malformed file: count each byte once.
    let mut ranges: Vec<(u64, u64)> = bin
        .sections
        .iter()
        .filter(|s| s.file_size > 0)
        .map(|s| (s.file_offset, s.file_offset + s.file_size))
        .collect();
    ranges.sort_unstable();
    let mut in_sections = 0u64;
    let mut end = 0u64;
    for (a, b) in ranges {
        let a = a.max(end);
        if b > a {
            in_sections += b - a;
            end = b;
        }
    }
    let file_size = bytes.len() as u64;
    let unattributed_loaded = sections
        .iter()
        .filter(|s| {
            matches!(
                s.class,
                Class::Text | Class::Rodata | Class::Pclntab | Class::Data
            )
        })
        .map(|s| s.file_size.saturating_sub(s.attributed.min(s.file_size)))
        .fold(0u64, u64::saturating_add);

    // Packages.
    let mut packages: BTreeMap<String, PackageRow> = BTreeMap::new();
    for (name, _, size, class) in &syms {
        let key = match symname::package_of(name) {
            Owner::Package(p) => p,
            Owner::Compiler(prefix) => format!("({prefix})"),
            Owner::None => "(no package)".into(),
        };
        let row = packages.entry(key).or_default();
        row.symbols += 1;
        let col = match class {
            Class::Text => &mut row.text,
            Class::Rodata | Class::Pclntab => &mut row.rodata,
            Class::Data => &mut row.data,
            Class::Bss => &mut row.bss,
            _ => continue,
        };
        *col = col.saturating_add(*size);
    }
    let module_paths: Vec<String> = build_info
        .iter()
        .flat_map(|b| b.modules().map(|m| m.path.clone()))
        .collect();
    let main = build_info
        .as_ref()
        .and_then(|b| b.main.as_ref().map(|m| m.path.as_str()));
    let mut packages: Vec<PackageRow> = packages
        .into_iter()
        .map(|(package, mut row)| {
            row.module = if package.starts_with('(') {
                UNATTRIBUTED.into()
            } else {
                module_of(&package, &module_paths, main).to_string()
            };
            row.package = package;
            row
        })
        .collect();
    packages.sort_by(|a, b| b.file().cmp(&a.file()).then(a.package.cmp(&b.package)));

    // Modules.
    let mut modules: BTreeMap<String, ModuleRow> = BTreeMap::new();
    if let Some(bi) = &build_info {
        for m in bi.modules() {
            modules.insert(
                m.path.clone(),
                ModuleRow {
                    module: m.path.clone(),
                    version: m.version.clone(),
                    replace: m
                        .replace
                        .as_ref()
                        .map(|r| format!("{} {}", r.path, r.version).trim_end().to_string()),
                    ..ModuleRow::default()
                },
            );
        }
    }
    for p in &packages {
        let m = modules
            .entry(p.module.clone())
            .or_insert_with(|| ModuleRow {
                module: p.module.clone(),
                version: if p.module == STD {
                    build_info
                        .as_ref()
                        .map(|b| b.go_version.clone())
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                ..ModuleRow::default()
            });
        m.packages += 1;
        m.file = m.file.saturating_add(p.file());
        m.bss = m.bss.saturating_add(p.bss);
    }
    let mut modules: Vec<ModuleRow> = modules.into_values().collect();
    modules.sort_by(|a, b| b.file.cmp(&a.file).then(a.module.cmp(&b.module)));

    Ok(SizeReport {
        format: bin.format,
        arch: bin.arch.clone(),
        file_size,
        build_info,
        source,
        sections,
        classes: classes.into_values().collect(),
        outside_sections: file_size.saturating_sub(in_sections),
        packages,
        modules,
        unattributed_loaded,
        overlap,
        warnings,
    })
}

/// Bytes as Go developers read them: `1.2 MB` (decimal, as `ls -lh` and go-size-analyzer
/// print them would be binary; gocost uses SI units to match `--max-size-growth 2MB`).
pub fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.2} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} kB", f / 1e3)
    } else {
        format!("{n} B")
    }
}

/// Signed bytes: `+1.20 MB`, `-3.0 kB`.
pub fn human_delta(d: i64) -> String {
    let s = human(d.unsigned_abs());
    if d < 0 {
        format!("-{s}")
    } else {
        format!("+{s}")
    }
}

impl SizeReport {
    /// The text report: sections, then the largest packages or modules.
    pub fn to_text(&self, by: By, top: usize) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let go = self
            .build_info
            .as_ref()
            .map_or("unknown Go version".to_string(), |b| b.go_version.clone());
        let _ = writeln!(
            s,
            "{} bytes ({}), {:?} {}, {go}; packages from the {}",
            self.file_size,
            human(self.file_size),
            self.format,
            self.arch,
            match self.source {
                Source::Symtab => "symbol table",
                Source::Pclntab => "pclntab (no symbol table)",
            }
        );
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s.push('\n');
        match by {
            By::Section => {
                let _ = writeln!(
                    s,
                    "{:<22} {:>8} {:>12} {:>12} {:>12}",
                    "section", "class", "file", "memory", "by symbols"
                );
                for r in &self.sections {
                    let _ = writeln!(
                        s,
                        "{:<22} {:>8} {:>12} {:>12} {:>12}",
                        r.name,
                        r.class.name(),
                        r.file_size,
                        r.mem_size,
                        r.attributed
                    );
                }
                let _ = writeln!(
                    s,
                    "{:<22} {:>8} {:>12}",
                    "(headers, padding)", "", self.outside_sections
                );
                s.push('\n');
                let _ = writeln!(
                    s,
                    "{:<8} {:>12} {:>7} {:>12} {:>12}",
                    "class", "file", "file%", "memory", "by symbols"
                );
                for c in &self.classes {
                    let _ = writeln!(
                        s,
                        "{:<8} {:>12} {:>6.1}% {:>12} {:>12}",
                        c.class.name(),
                        c.file_size,
                        pct(c.file_size, self.file_size),
                        c.mem_size,
                        c.attributed
                    );
                }
            }
            By::Package => {
                let _ = writeln!(
                    s,
                    "{:>12} {:>6} {:>10} {:>10} {:>10} {:>10}  {:<40} module",
                    "file", "file%", "text", "rodata", "data", "bss", "package"
                );
                for p in self.packages.iter().take(top_n(top)) {
                    let _ = writeln!(
                        s,
                        "{:>12} {:>5.1}% {:>10} {:>10} {:>10} {:>10}  {:<40} {}",
                        p.file(),
                        pct(p.file(), self.file_size),
                        p.text,
                        p.rodata,
                        p.data,
                        p.bss,
                        p.package,
                        p.module
                    );
                }
                if self.packages.len() > top_n(top) {
                    let _ = writeln!(
                        s,
                        "({} more packages: --top 0 lists all)",
                        self.packages.len() - top_n(top)
                    );
                }
            }
            By::Module => {
                let _ = writeln!(
                    s,
                    "{:>12} {:>6} {:>9}  {:<44} version",
                    "file", "file%", "packages", "module"
                );
                for m in self.modules.iter().take(top_n(top)) {
                    let mut v = m.version.clone();
                    if let Some(r) = &m.replace {
                        v += &format!(" => {r}");
                    }
                    let _ = writeln!(
                        s,
                        "{:>12} {:>5.1}% {:>9}  {:<44} {v}",
                        m.file,
                        pct(m.file, self.file_size),
                        m.packages,
                        m.module
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "\nnot attributed to a package: {} of loaded sections (strings, type descriptors, \
             most of the pclntab), {} of DWARF, {} of symbol tables, {} of headers and padding",
            human(self.unattributed_loaded),
            human(self.class_file(Class::Dwarf)),
            human(self.class_file(Class::Symtab)),
            human(self.outside_sections)
        );
        s
    }

    /// File bytes of one class of sections.
    pub fn class_file(&self, c: Class) -> u64 {
        self.classes
            .iter()
            .filter(|r| r.class == c)
            .map(|r| r.file_size)
            .sum()
    }
}

fn top_n(top: usize) -> usize {
    if top == 0 { usize::MAX } else { top }
}

pub(crate) fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

/// What `gocost size` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Package,
    Module,
    Section,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_by_longest_prefix() {
        let mods = vec![
            "example.com/app".to_string(),
            "example.com/app/sub".to_string(),
            "golang.org/x/text".to_string(),
        ];
        let main = Some("example.com/app");
        for (pkg, want) in [
            ("main", "example.com/app"),
            ("example.com/app/internal/x", "example.com/app"),
            ("example.com/app/sub/y", "example.com/app/sub"),
            ("example.com/application", UNATTRIBUTED),
            ("golang.org/x/text/unicode/norm", "golang.org/x/text"),
            ("vendor/golang.org/x/text/unicode/norm", STD),
            ("net/http", STD),
            ("github.com/unknown/pkg", UNATTRIBUTED),
        ] {
            assert_eq!(module_of(pkg, &mods, main), want, "{pkg}");
        }
        assert_eq!(module_of("main", &mods, None), UNATTRIBUTED);
    }

    #[test]
    fn refuses_non_executables_by_name() {
        let e = analyze(b"goos: linux\nBenchmarkX 1 2 ns/op\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotExecutable);
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(40, 0);
        let e = analyze(&elf).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
    }
}
