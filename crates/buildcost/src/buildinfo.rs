//! The build information Go embeds in every binary (`go version -m`, `debug/buildinfo`):
//! the Go version, the main package's path, the main module, each dependency with version and
//! checksum, `=>` replacements, and the build settings (`-ldflags`, `CGO_ENABLED`, VCS).
//!
//! The blob starts with the 14 bytes `\xff Go buildinf:`, then the pointer size and a flags
//! byte, 16-byte aligned in the data segment (`.go.buildinfo` in ELF, `__go_buildinfo` in
//! Mach-O). Two layouts:
//! - Go ≥ 1.18 (flags bit 2): after the 32-byte header, two varint-length strings, the Go
//!   version and the module text;
//! - older: at byte 16 two pointers to Go string headers (pointer, length) in memory; bit 1
//!   of the flags says big-endian.
//!
//! The module text is framed by 16-byte sentinels and holds tab-separated lines: `path P`,
//! `mod P V SUM`, `dep P V SUM`, `=> P V SUM` (replaces the line before), `build K=V`.

use serde::Serialize;

use crate::binary::Binary;
use crate::{Error, ErrorKind};

/// The header's magic.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// A module as the build info lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    pub path: String,
    /// `(devel)` for the main module built from a work tree; empty for a replacement by a
    /// local directory.
    pub version: String,
    /// `h1:` checksum; empty for the main module and local replacements.
    pub sum: String,
    /// What `go.mod`'s `replace` put in its place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Box<Module>>,
}

/// What `go version -m` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BuildInfo {
    /// `go1.27.3`.
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: String,
    /// The main module (`mod` line), absent for `go run x.go` style builds.
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` lines, in order: `-ldflags`, `CGO_ENABLED`, `GOARCH`, `vcs.revision`, …
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// The main module and the dependencies.
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.main.iter().chain(&self.deps)
    }

    /// `go version -m`'s text (tabs as Go prints them).
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n", self.go_version);
        if !self.path.is_empty() {
            s += &format!("\tpath\t{}\n", self.path);
        }
        let mut line = |kind: &str, m: &Module| {
            s += &format!("\t{kind}\t{}\t{}\t{}\n", m.path, m.version, m.sum);
            if let Some(r) = &m.replace {
                s += &format!("\t=>\t{}\t{}\t{}\n", r.path, r.version, r.sum);
            }
        };
        if let Some(m) = &self.main {
            line("mod", m);
        }
        for d in &self.deps {
            line("dep", d);
        }
        for (k, v) in &self.settings {
            s += &format!("\tbuild\t{k}={}\n", quote_if_needed(v));
        }
        s
    }
}

/// `go version -m` quotes a setting's value when it has spaces, tabs, line breaks, quotes
/// or backquotes (`runtime/debug.quoteValue`), as `strconv.Quote` writes it.
fn quote_if_needed(v: &str) -> String {
    if !v.contains([' ', '\t', '\r', '\n', '"', '`']) {
        return v.to_string();
    }
    let mut q = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            '\x07' => q.push_str("\\a"),
            '\x08' => q.push_str("\\b"),
            '\x0c' => q.push_str("\\f"),
            '\x0b' => q.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => q.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() && (c as u32) <= 0xffff => {
                q.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if c.is_control() => q.push_str(&format!("\\U{:08x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn err(off: Option<u64>, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Malformed, "build info", off, msg)
}

/// The build info of a binary: from its build-info section, else from the first 16-byte
/// aligned magic in a data section. `Ok(None)`: there is none (not a Go binary).
pub fn read(bin: &Binary) -> Result<Option<BuildInfo>, Error> {
    let named = bin.section(&[".go.buildinfo", "__go_buildinfo"]);
    let candidates = named.into_iter().chain(bin.sections.iter().filter(|s| {
        s.class == crate::binary::Class::Data
            && named.is_none_or(|n| n.name != s.name)
            && s.file_size > 0
    }));
    for s in candidates {
        let data = bin.section_data(s);
        let mut at = 0usize;
        while at + 32 <= data.len() {
            if data[at..].starts_with(MAGIC) {
                let off = s.file_offset + at as u64;
                return parse_blob(&data[at..], off, |addr, len| bin.read_at(addr, len)).map(Some);
            }
            at += 16;
        }
    }
    Ok(None)
}

/// Parses a build-info blob (`data` starts at the magic; `file_offset` says where, for
/// errors). `mem(addr, len)` reads the binary's memory, for the pre-1.18 pointer layout.
pub fn parse_blob<'a>(
    data: &'a [u8],
    file_offset: u64,
    mem: impl Fn(u64, u64) -> Option<&'a [u8]>,
) -> Result<BuildInfo, Error> {
    if data.len() < 32 || !data.starts_with(MAGIC) {
        return Err(err(
            Some(file_offset),
            "no `\\xff Go buildinf:` header of 32 bytes",
        ));
    }
    let ptr = data[14] as usize;
    let flags = data[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let (v, n) = varint_string(&data[32..])
            .ok_or_else(|| err(Some(file_offset + 32), "the Go version string is cut short"))?;
        let (m, _) = varint_string(&data[32 + n..]).ok_or_else(|| {
            err(
                Some(file_offset + 32 + n as u64),
                "the module string is cut short",
            )
        })?;
        (v.to_vec(), m.to_vec())
    } else {
        if !(ptr == 4 || ptr == 8) {
            return Err(err(
                Some(file_offset + 14),
                format!("pointer size {ptr} (want 4 or 8)"),
            ));
        }
        let big = flags & 1 != 0;
        let word = |b: &[u8]| -> u64 {
            let mut a = [0u8; 8];
            if big {
                a[8 - b.len()..].copy_from_slice(b);
                u64::from_be_bytes(a)
            } else {
                a[..b.len()].copy_from_slice(b);
                u64::from_le_bytes(a)
            }
        };
        let string_at = |field: usize| -> Result<Vec<u8>, Error> {
            let at = 16 + field * ptr;
            let off = Some(file_offset + at as u64);
            let p = word(&data[at..at + ptr]);
            let hdr = mem(p, 2 * ptr as u64)
                .ok_or_else(|| err(off, format!("string header at 0x{p:x} is not in the file")))?;
            let (sp, sl) = (word(&hdr[..ptr]), word(&hdr[ptr..2 * ptr]));
            if sl > 1 << 24 {
                return Err(err(off, format!("string of {sl} bytes")));
            }
            mem(sp, sl)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| err(off, format!("string at 0x{sp:x} is not in the file")))
        };
        (string_at(0)?, string_at(1)?)
    };
    let version = String::from_utf8(version)
        .map_err(|_| err(Some(file_offset), "the Go version is not UTF-8"))?;
    // Strip the sentinels that frame the module text (cmd/go's infoStart and infoEnd).
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    let text = std::str::from_utf8(modinfo)
        .map_err(|_| err(Some(file_offset), "the module text is not UTF-8"))?;
    let mut bi = parse_modinfo(text)
        .map_err(|(line, msg)| err(Some(file_offset), format!("module text line {line}: {msg}")))?;
    bi.go_version = version;
    Ok(bi)
}

/// A uvarint-length-prefixed string and the bytes it took.
fn varint_string(b: &[u8]) -> Option<(&[u8], usize)> {
    let mut v: u64 = 0;
    let mut shift = 0;
    for (i, &c) in b.iter().enumerate().take(10) {
        v |= u64::from(c & 0x7f) << shift;
        if c & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(v).ok()?)?;
            return Some((b.get(start..end)?, end));
        }
        shift += 7;
    }
    None
}

/// Parses the module text (`runtime/debug.ParseBuildInfo` without its `go` line). Errors
/// are (1-based line, message).
pub fn parse_modinfo(text: &str) -> Result<BuildInfo, (usize, String)> {
    let mut bi = BuildInfo::default();
    // Which module the next `=>` replaces: None, the main module, or deps' last.
    let mut last: Option<bool> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let (key, rest) = line
            .split_once('\t')
            .ok_or_else(|| (n, format!("no tab in {line:?}")))?;
        let module = |rest: &str| -> Result<Module, (usize, String)> {
            let f: Vec<&str> = rest.split('\t').collect();
            if f.is_empty() || f[0].is_empty() || f.len() > 3 {
                return Err((n, format!("want `path [version [sum]]`, got {rest:?}")));
            }
            Ok(Module {
                path: f[0].to_string(),
                version: f.get(1).unwrap_or(&"").to_string(),
                sum: f.get(2).unwrap_or(&"").to_string(),
                replace: None,
            })
        };
        match key {
            "go" => {}
            "path" => bi.path = rest.to_string(),
            "mod" => {
                bi.main = Some(module(rest)?);
                last = Some(true);
            }
            "dep" => {
                bi.deps.push(module(rest)?);
                last = Some(false);
            }
            "=>" => {
                let r = module(rest)?;
                let target = match last {
                    Some(true) => bi.main.as_mut(),
                    Some(false) => bi.deps.last_mut(),
                    None => None,
                };
                let t = target.ok_or_else(|| (n, "`=>` without a module before it".into()))?;
                if t.replace.is_some() {
                    return Err((n, format!("{} is replaced twice", t.path)));
                }
                t.replace = Some(Box::new(r));
                last = None;
            }
            "build" => {
                let (k, v) = rest
                    .split_once('=')
                    .ok_or_else(|| (n, format!("build setting without `=`: {rest:?}")))?;
                if k.is_empty() {
                    return Err((n, "build setting with an empty key".into()));
                }
                let v = if v.starts_with('"') {
                    unquote(v).ok_or_else(|| (n, format!("bad quoted value {v}")))?
                } else {
                    v.to_string()
                };
                bi.settings.push((k.to_string(), v));
            }
            other => return Err((n, format!("unknown line kind {other:?}"))),
        }
    }
    Ok(bi)
}

/// Go's `strconv.Unquote` for the double-quoted values `build` lines use.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            'x' => {
                let h: String = [it.next()?, it.next()?].iter().collect();
                out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
            }
            'u' => {
                let h: String = (0..4).map(|_| it.next()).collect::<Option<_>>()?;
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = (0..8).map(|_| it.next()).collect::<Option<_>>()?;
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "path\texample.com/app\n\
        mod\texample.com/app\t(devel)\t\n\
        dep\texample.com/lib\tv1.2.3\th1:abc=\n\
        =>\t../lib\t\t\n\
        dep\tgolang.org/x/text\tv0.3.0\th1:xyz=\n\
        build\t-ldflags=\"-s -w\"\n\
        build\tCGO_ENABLED=0\n";

    #[test]
    fn parses_module_lines() {
        let bi = parse_modinfo(TEXT).unwrap();
        assert_eq!(bi.path, "example.com/app");
        assert_eq!(bi.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(bi.deps.len(), 2);
        let r = bi.deps[0].replace.as_ref().unwrap();
        assert_eq!((r.path.as_str(), r.version.as_str()), ("../lib", ""));
        assert_eq!(bi.deps[1].sum, "h1:xyz=");
        assert_eq!(bi.settings[0], ("-ldflags".into(), "-s -w".into()));
        assert_eq!(bi.settings[1], ("CGO_ENABLED".into(), "0".into()));
    }

    #[test]
    fn quoted_settings_read_back() {
        for v in ["-s -w", "a\"b", "\u{2} x\\y\n", "tab\there", "plain\u{2}"] {
            let bi = BuildInfo {
                settings: vec![("-ldflags".into(), v.into())],
                ..BuildInfo::default()
            };
            let line = bi
                .to_text()
                .lines()
                .nth(1)
                .unwrap()
                .trim_start()
                .to_string();
            let back = parse_modinfo(&format!("{line}\n")).unwrap();
            assert_eq!(back.settings[0].1, v, "{line}");
        }
    }

    #[test]
    fn names_the_bad_line() {
        for (text, line, what) in [
            ("path\tx\n=>\ta\tb\tc\n", 2, "without a module"),
            ("mod\tm\tv\n=>\ta\n=>\tb\n", 3, "without a module"),
            (
                "dep\tm\tv\n=>\ta\ndep\tn\n=>\tb\n=>\tc\n",
                5,
                "without a module",
            ),
            ("nope\tx\n", 1, "unknown line kind"),
            ("mod m v\n", 1, "no tab"),
            ("build\tnoequals\n", 1, "without `=`"),
            ("dep\ta\tb\tc\td\n", 1, "want `path"),
        ] {
            let (l, msg) = parse_modinfo(text).unwrap_err();
            assert_eq!(l, line, "{text:?}: {msg}");
            assert!(msg.contains(what), "{text:?}: {msg}");
        }
    }

    fn framed(s: &str) -> Vec<u8> {
        let mut m = vec![b'S'; 16];
        m.extend(s.as_bytes());
        m.extend([b'E'; 16]);
        m
    }

    #[test]
    fn both_blob_layouts() {
        // Go >= 1.18: inline varint strings.
        let mut b = MAGIC.to_vec();
        b.extend([8, 2]);
        b.resize(32, 0);
        let m = framed(TEXT);
        b.push(8);
        b.extend(b"go1.27.3");
        b.extend([(m.len() & 0x7f) as u8 | 0x80, (m.len() >> 7) as u8]);
        b.extend(&m);
        let bi = parse_blob(&b, 0, |_, _| None).unwrap();
        assert_eq!(bi.go_version, "go1.27.3");
        assert_eq!(bi.deps.len(), 2);
        assert_eq!(bi.to_text().lines().nth(4), Some("\t=>\t../lib\t\t"));

        // Older: pointers to string headers, here in a fake memory at 0x1000.
        let version = b"go1.17.13".to_vec();
        let mut mem = vec![0u8; 64];
        let put = |mem: &mut Vec<u8>, at: usize, v: u64| {
            mem[at..at + 8].copy_from_slice(&v.to_le_bytes())
        };
        // Headers at 0x1000 and 0x1010; data at 0x1020 (version) and 0x1040 (modinfo).
        put(&mut mem, 0, 0x1020);
        put(&mut mem, 8, version.len() as u64);
        put(&mut mem, 16, 0x1040);
        put(&mut mem, 24, m.len() as u64);
        mem[0x20..0x20 + version.len()].copy_from_slice(&version);
        mem.extend(&m);
        let mut b = MAGIC.to_vec();
        b.extend([8, 0]);
        b.extend(0x1000u64.to_le_bytes());
        b.extend(0x1010u64.to_le_bytes());
        let read = |addr: u64, len: u64| {
            let start = usize::try_from(addr.checked_sub(0x1000)?).ok()?;
            mem.get(start..start + usize::try_from(len).ok()?)
        };
        let bi = parse_blob(&b, 0, read).unwrap();
        assert_eq!(bi.go_version, "go1.17.13");
        assert_eq!(bi.main.unwrap().path, "example.com/app");

        // A pointer outside memory names the field's offset.
        let mut bad = b.clone();
        bad[16..24].copy_from_slice(&0x9000u64.to_le_bytes());
        let e = parse_blob(&bad, 100, read).unwrap_err();
        assert_eq!(e.offset, Some(116));
        assert!(e.to_string().contains("0x9000"), "{e}");
    }
}
