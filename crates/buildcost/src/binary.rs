//! A Go executable as sections and symbols. The container (ELF, Mach-O, PE) is read by the
//! `object` crate; what is Go's (which section is the pclntab, the build info, symbol sizes
//! where the format has none) is decided here.

use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind, SymbolKind};
use serde::Serialize;

use crate::{Error, ErrorKind};

/// What a section holds, for the `--by section` view. `Other` is everything else in the file
/// (notes, relocations, dynamic linking, section names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Machine code (`.text`, `.plt`).
    Text,
    /// Read-only data: constants, strings, type descriptors (`.rodata`, `.go.type`,
    /// `.typelink`, `.itablink`, `.go.func`).
    Rodata,
    /// Go's function table: names, PC→line and stack maps (`.gopclntab`).
    Pclntab,
    /// Initialised writable data (`.data`, `.noptrdata`, `.go.buildinfo`, `.go.module`).
    Data,
    /// Zeroed memory: takes address space, not file bytes (`.bss`, `.noptrbss`, `.tbss`).
    Bss,
    /// Debug information (`.debug_*`, `.zdebug_*`, `__DWARF`).
    Dwarf,
    /// Symbol tables and their strings (`.symtab`, `.strtab`, `.dynsym`, `.dynstr`).
    Symtab,
    /// The rest: notes, relocations, dynamic-linking tables, section names.
    Other,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Text => "text",
            Class::Rodata => "rodata",
            Class::Pclntab => "pclntab",
            Class::Data => "data",
            Class::Bss => "bss",
            Class::Dwarf => "DWARF",
            Class::Symtab => "symtab",
            Class::Other => "other",
        }
    }
}

/// The executable's container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Elf,
    MachO,
    Pe,
}

/// One section.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub name: String,
    pub class: Class,
    /// Virtual address (0 when not loaded).
    pub addr: u64,
    /// Bytes in memory (for `.bss` the zeroed size).
    pub size: u64,
    /// Bytes in the file (0 for `.bss`; compressed size for compressed DWARF).
    pub file_size: u64,
    /// Where its bytes start in the file.
    #[serde(skip)]
    pub file_offset: u64,
}

/// One symbol with an address and a size, as `go tool nm -size -type` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Symbol {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// `T` text, `R` read-only data, `D` data, `B` bss, as `go tool nm` prints them.
    pub code: char,
    /// Index into [`Binary::sections`].
    #[serde(skip)]
    pub section: usize,
}

/// A parsed executable: its sections and symbols; the bytes stay with the caller.
#[derive(Debug, Clone)]
pub struct Binary<'a> {
    pub bytes: &'a [u8],
    pub format: Format,
    pub arch: String,
    pub big_endian: bool,
    pub is_64: bool,
    pub sections: Vec<Section>,
    /// Defined symbols with their sizes (computed from the next symbol's address for formats
    /// without sizes, as Go's `cmd/internal/objfile` does). Empty for stripped binaries.
    pub symbols: Vec<Symbol>,
}

fn classify(name: &str, kind: SectionKind, flags: SectionFlags) -> Class {
    let n = name.trim_start_matches(['.', '_']);
    if n.starts_with("debug_") || n.starts_with("zdebug_") || name == "__DWARF" {
        return Class::Dwarf;
    }
    match n {
        "gopclntab" | "gosymtab" => return Class::Pclntab,
        "symtab" | "strtab" | "dynsym" | "dynstr" => return Class::Symtab,
        "go.buildinfo" | "go_buildinfo" | "go.module" | "go.fipsinfo" => return Class::Data,
        "go.type" | "go.func" | "typelink" | "itablink" | "rodata" | "rdata" | "noptrrodata" => {
            return Class::Rodata;
        }
        _ => {}
    }
    let elf_alloc = match flags {
        SectionFlags::Elf { sh_flags } => Some(sh_flags & u64::from(object::elf::SHF_ALLOC) != 0),
        _ => None,
    };
    match kind {
        SectionKind::Text => Class::Text,
        SectionKind::ReadOnlyData | SectionKind::ReadOnlyString => Class::Rodata,
        SectionKind::Data | SectionKind::Tls => Class::Data,
        SectionKind::UninitializedData | SectionKind::UninitializedTls | SectionKind::Common => {
            Class::Bss
        }
        SectionKind::Debug | SectionKind::DebugString => Class::Dwarf,
        _ if elf_alloc == Some(false) => Class::Other,
        _ => Class::Other,
    }
}

/// Mach-O sections by segment, as `go tool nm` codes their symbols: in `__TEXT` only
/// `__text` is code, the rest read-only (the pclntab among it); `__DATA_CONST` is
/// read-only; `__DATA` is data but for its zero-fill `__bss` and `__noptrbss`.
fn classify_macho(segment: &str, name: &str) -> Class {
    match (segment, name) {
        (_, "__gopclntab" | "__gosymtab") => Class::Pclntab,
        ("__TEXT", "__text") => Class::Text,
        ("__TEXT" | "__DATA_CONST", _) => Class::Rodata,
        ("__DATA", "__bss" | "__noptrbss") => Class::Bss,
        ("__DATA", _) => Class::Data,
        ("__DWARF", _) => Class::Dwarf,
        ("__LINKEDIT", _) => Class::Symtab,
        _ => Class::Other,
    }
}

fn malformed(what: &'static str, e: object::Error) -> Error {
    Error::new(ErrorKind::Malformed, what, None, e.to_string())
}

impl<'a> Binary<'a> {
    /// Reads an executable's sections and symbols.
    pub fn parse(bytes: &'a [u8]) -> Result<Binary<'a>, Error> {
        if !crate::is_executable(bytes) {
            return Err(Error::new(
                ErrorKind::NotExecutable,
                "file header",
                Some(0),
                "not an ELF, Mach-O or PE executable (a Go binary from `go build`)",
            ));
        }
        let file = object::File::parse(bytes).map_err(|e| malformed("executable header", e))?;
        let format = match file.format() {
            object::BinaryFormat::Elf => Format::Elf,
            object::BinaryFormat::MachO => Format::MachO,
            object::BinaryFormat::Pe => Format::Pe,
            other => {
                return Err(Error::new(
                    ErrorKind::NotExecutable,
                    "file header",
                    Some(0),
                    format!("{other:?} files are not read"),
                ));
            }
        };
        let mut sections = Vec::new();
        // object's section index → ours.
        let mut index = std::collections::HashMap::new();
        for s in file.sections() {
            let name = s.name().map_err(|e| malformed("section name", e))?;
            if name.is_empty() && s.size() == 0 {
                continue;
            }
            let (file_offset, file_size) = match s.kind() {
                SectionKind::UninitializedData
                | SectionKind::UninitializedTls
                | SectionKind::Common => (0, 0),
                _ => s.file_range().unwrap_or((0, 0)),
            };
            if file_offset.saturating_add(file_size) > bytes.len() as u64 {
                return Err(Error::new(
                    ErrorKind::Malformed,
                    "section header",
                    None,
                    format!(
                        "section {name:?} ends at byte {} past the end of the file ({} bytes)",
                        file_offset.saturating_add(file_size),
                        bytes.len()
                    ),
                ));
            }
            index.insert(s.index().0, sections.len());
            sections.push(Section {
                name: name.to_string(),
                class: match s.segment_name().ok().flatten() {
                    Some(seg) if format == Format::MachO => classify_macho(seg, name),
                    _ => classify(name, s.kind(), s.flags()),
                },
                addr: s.address(),
                size: s.size(),
                file_size,
                file_offset,
            });
        }
        let mut symbols = Vec::new();
        // Every symbol's address, for sizes where the format has none (Go's rule counts the
        // symbols this reader skips too).
        let mut addrs = Vec::new();
        for sym in file.symbols() {
            addrs.push(sym.address());
            if matches!(sym.kind(), SymbolKind::Section | SymbolKind::File) || sym.is_undefined() {
                continue;
            }
            let Some(si) = sym.section_index().and_then(|i| index.get(&i.0).copied()) else {
                continue;
            };
            let Ok(mut name) = sym.name() else { continue };
            // The Go linker prefixes Mach-O symbols with `_`; `debug/macho` strips it from
            // names with a dot (Go issue 33808), and so do we.
            if format == Format::MachO && name.contains('.') {
                name = name.strip_prefix('_').unwrap_or(name);
            }
            let sec = &sections[si];
            let code = match sec.class {
                Class::Text => 'T',
                Class::Rodata | Class::Pclntab => 'R',
                // A PE or Mach-O data section's zero-filled tail (past its file bytes) is bss.
                Class::Data
                    if sym.address() >= sec.addr.saturating_add(sec.file_size)
                        && sec.size > sec.file_size =>
                {
                    'B'
                }
                Class::Data => 'D',
                Class::Bss => 'B',
                _ => continue,
            };
            symbols.push(Symbol {
                name: name.to_string(),
                addr: sym.address(),
                size: sym.size(),
                code,
                section: si,
            });
        }
        if format == Format::Pe {
            // Internally linked Windows binaries keep bss inside .data: everything in its
            // section from `runtime.bss` on is bss (as `go tool nm` decides).
            if let Some((sec, at)) = symbols
                .iter()
                .find(|s| s.name == "runtime.bss")
                .map(|s| (s.section, s.addr))
            {
                for s in symbols.iter_mut() {
                    if s.section == sec && s.addr >= at && s.code == 'D' {
                        s.code = 'B';
                    }
                }
            }
        }
        if format != Format::Elf {
            sizes_from_addresses(&mut symbols, addrs);
        }
        Ok(Binary {
            bytes,
            format,
            arch: format!("{:?}", file.architecture()).to_lowercase(),
            big_endian: !file.is_little_endian(),
            is_64: file.is_64(),
            sections,
            symbols,
        })
    }

    /// The first section with one of these names.
    pub fn section(&self, names: &[&str]) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| names.contains(&s.name.as_str()))
    }

    /// A section's bytes in the file.
    pub fn section_data(&self, s: &Section) -> &'a [u8] {
        let start = s.file_offset as usize;
        self.bytes
            .get(start..start.saturating_add(s.file_size as usize))
            .unwrap_or(&[])
    }

    /// `len` bytes at virtual address `addr`, when a section with file bytes holds them.
    pub fn read_at(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| {
            s.file_size > 0
                && addr >= s.addr
                && addr
                    .checked_add(len)
                    .is_some_and(|end| end <= s.addr.saturating_add(s.file_size))
        })?;
        let start = s.file_offset.checked_add(addr - s.addr)?;
        self.bytes
            .get(usize::try_from(start).ok()?..usize::try_from(start.checked_add(len)?).ok()?)
    }
}

/// Mach-O and PE symbols have no sizes: each runs to the next greater address of any
/// symbol, the last has none (`cmd/internal/objfile`'s rule, so sizes equal `go tool nm`'s).
fn sizes_from_addresses(symbols: &mut [Symbol], mut addrs: Vec<u64>) {
    addrs.sort_unstable();
    for s in symbols.iter_mut() {
        let i = addrs.partition_point(|&a| a <= s.addr);
        s.size = addrs.get(i).map_or(0, |&next| next - s.addr);
    }
}
