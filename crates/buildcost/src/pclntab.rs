//! Go's function table (`runtime.pclntab`, the `.gopclntab` section): every function's name
//! and entry PC, so a binary without a symbol table (`-ldflags=-s`) still has its code
//! attributed. Sizes are the distance to the next function's entry (alignment padding
//! included), which is what `runtime.FuncForPC` sees.
//!
//! Layouts (`cmd/link/internal/ld/pcln.go`, `debug/gosym/pclntab.go`):
//! - Go 1.18+ (magic `0xfffffff0`, 1.20+ `0xfffffff1`): header `magic, 0, 0, quantum, ptrsize,
//!   nfunc, nfiles, textStart, funcnameOffset, cuOffset, filetabOffset, pctabOffset,
//!   pclnOffset`; the function table at `pclnOffset` is `nfunc` × (entryoff u32, funcoff u32)
//!   plus the end PC offset; a `_func` starts `entryoff u32, nameoff i32`.
//! - Go 1.16–1.17 (`0xfffffffa`): no `textStart`; table entries are (entry, funcoff) words.
//! - Go 1.2–1.15 (`0xfffffffb`): `nfunc` right after the 8-byte header, the table after it,
//!   name offsets relative to the table's start.

use crate::{Error, ErrorKind};

/// One function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    pub name: String,
    pub entry: u64,
    pub size: u64,
}

fn err(off: usize, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Malformed, "pclntab", Some(off as u64), msg)
}

struct Reader<'a> {
    b: &'a [u8],
    big: bool,
    ptr: usize,
}

impl Reader<'_> {
    fn u32(&self, off: usize) -> Result<u32, Error> {
        let s = off
            .checked_add(4)
            .and_then(|e| self.b.get(off..e))
            .ok_or_else(|| err(off, "a 4-byte field runs past the end of the table"))?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn word(&self, off: usize) -> Result<u64, Error> {
        if self.ptr == 4 {
            return self.u32(off).map(u64::from);
        }
        let s = off
            .checked_add(8)
            .and_then(|e| self.b.get(off..e))
            .ok_or_else(|| err(off, "an 8-byte field runs past the end of the table"))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(if self.big {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        })
    }

    fn offset(&self, off: usize) -> Result<usize, Error> {
        let v = self.word(off)?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= self.b.len())
            .ok_or_else(|| err(off, format!("offset {v} is past the end of the table")))
    }

    fn cstr(&self, off: usize) -> Result<String, Error> {
        let s = self
            .b
            .get(off..)
            .ok_or_else(|| err(off, "a function name starts past the end of the table"))?;
        let end = s
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| err(off, "a function name is not NUL-terminated"))?;
        Ok(String::from_utf8_lossy(&s[..end]).into_owned())
    }
}

/// The functions of a pclntab (`data`: the section's bytes). `text_fallback` is the start of
/// the text section, used when the table's own `textStart` is 0 (position-independent
/// binaries before relocation). Functions come in address order.
pub fn functions(data: &[u8], big_endian: bool, text_fallback: u64) -> Result<Vec<Func>, Error> {
    if data.len() < 8 {
        return Err(err(0, "shorter than its 8-byte header"));
    }
    let magic = Reader {
        b: data,
        big: big_endian,
        ptr: 4,
    }
    .u32(0)?;
    let (pad, ptr) = (&data[4..6], data[7] as usize);
    if pad != [0, 0] || !(ptr == 4 || ptr == 8) {
        return Err(err(
            4,
            "bad header (padding must be 0, pointer size 4 or 8)",
        ));
    }
    let r = Reader {
        b: data,
        big: big_endian,
        ptr,
    };
    match magic {
        0xffff_fff0 | 0xffff_fff1 => go118(&r, text_fallback),
        0xffff_fffa => go116(&r),
        0xffff_fffb => go12(&r),
        m => Err(Error::new(
            ErrorKind::Unsupported,
            "pclntab",
            Some(0),
            format!("magic 0x{m:08x} is not a Go 1.2+ pclntab"),
        )),
    }
}

/// A sane bound on a function count: each takes at least 8 bytes of table.
fn check_nfunc(r: &Reader, nfunc: u64) -> Result<usize, Error> {
    usize::try_from(nfunc)
        .ok()
        .filter(|&n| n.saturating_mul(8) <= r.b.len())
        .ok_or_else(|| {
            err(
                8,
                format!("{nfunc} functions cannot fit a {}-byte table", r.b.len()),
            )
        })
}

fn go118(r: &Reader, text_fallback: u64) -> Result<Vec<Func>, Error> {
    let p = r.ptr;
    let nfunc = check_nfunc(r, r.word(8)?)?;
    let mut text = r.word(8 + 2 * p)?;
    if text == 0 {
        text = text_fallback;
    }
    let funcname = r.offset(8 + 3 * p)?;
    let pcln = r.offset(8 + 7 * p)?;
    let mut out = Vec::with_capacity(nfunc);
    let end = u64::from(r.u32(pcln + nfunc * 8)?);
    for i in 0..nfunc {
        let at = pcln + i * 8;
        let entry = u64::from(r.u32(at)?);
        let next = if i + 1 < nfunc {
            u64::from(r.u32(at + 8)?)
        } else {
            end
        };
        let funcoff = r.u32(at + 4)? as usize;
        let f = pcln
            .checked_add(funcoff)
            .ok_or_else(|| err(at + 4, "function offset overflows"))?;
        let nameoff = r.u32(f + 4)? as usize;
        let name = r.cstr(
            funcname
                .checked_add(nameoff)
                .ok_or_else(|| err(f + 4, "name offset overflows"))?,
        )?;
        out.push(Func {
            name,
            entry: text.wrapping_add(entry),
            size: next.saturating_sub(entry),
        });
    }
    Ok(out)
}

fn go116(r: &Reader) -> Result<Vec<Func>, Error> {
    let p = r.ptr;
    let nfunc = check_nfunc(r, r.word(8)?)?;
    let funcname = r.offset(8 + 2 * p)?;
    let pcln = r.offset(8 + 6 * p)?;
    table(r, nfunc, pcln, |f| {
        let nameoff = r.u32(f + p)? as usize;
        funcname
            .checked_add(nameoff)
            .ok_or_else(|| err(f + p, "name offset overflows"))
    })
}

fn go12(r: &Reader) -> Result<Vec<Func>, Error> {
    let p = r.ptr;
    let nfunc = check_nfunc(r, r.word(8)?)?;
    table(r, nfunc, 8 + p, |f| Ok(r.u32(f + p)? as usize))
}

/// The word-sized function table of Go 1.2–1.17: (entry, funcoff) pairs, then the end PC.
/// `funcoff` is relative to the pclntab's start for 1.2, to the table for 1.16.
fn table(
    r: &Reader,
    nfunc: usize,
    tab: usize,
    name_at: impl Fn(usize) -> Result<usize, Error>,
) -> Result<Vec<Func>, Error> {
    let p = r.ptr;
    let base = if tab == 8 + p { 0 } else { tab };
    let mut out = Vec::with_capacity(nfunc);
    for i in 0..nfunc {
        let at = tab + i * 2 * p;
        let entry = r.word(at)?;
        let next = r.word(at + 2 * p)?;
        let funcoff = usize::try_from(r.word(at + p)?).unwrap_or(usize::MAX);
        let f = base
            .checked_add(funcoff)
            .filter(|&f| f < r.b.len())
            .ok_or_else(|| err(at + p, "function offset past the end of the table"))?;
        let name = r.cstr(name_at(f)?)?;
        out.push(Func {
            name,
            entry,
            size: next.saturating_sub(entry),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_pclntab() {
        assert_eq!(
            functions(&[], false, 0).unwrap_err().kind,
            ErrorKind::Malformed
        );
        let e = functions(&[1, 2, 3, 4, 0, 0, 1, 8], false, 0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(e.to_string().contains("magic 0x04030201"), "{e}");
        // A Go 1.20 header claiming more functions than fit.
        let mut b = vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        b.extend(u64::MAX.to_le_bytes());
        b.resize(72, 0);
        let e = functions(&b, false, 0).unwrap_err();
        assert!(e.to_string().contains("cannot fit"), "{e}");
    }

    #[test]
    fn reads_a_go120_table() {
        // Two functions, "a.f" at text+0 (16 bytes) and "a.g" at text+16 (32 bytes).
        let p = 8usize;
        let hdr = 8 + 8 * p;
        let names = b"a.f\0a.g\0";
        let funcname = hdr;
        let pcln = funcname + names.len();
        let mut b = vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        for v in [2u64, 0, 0x1000, funcname as u64, 0, 0, 0, pcln as u64] {
            b.extend(v.to_le_bytes());
        }
        b.extend(names);
        // Table: (0, f0), (16, f1), end 48; _func records after it.
        let f0 = 2 * 8 + 4;
        let f1 = f0 + 8;
        for v in [0u32, f0, 16, f1, 48] {
            b.extend(v.to_le_bytes());
        }
        for (entry, name) in [(0u32, 0u32), (16, 4)] {
            b.extend(entry.to_le_bytes());
            b.extend(name.to_le_bytes());
        }
        let fs = functions(&b, false, 0).unwrap();
        assert_eq!(
            fs,
            vec![
                Func {
                    name: "a.f".into(),
                    entry: 0x1000,
                    size: 16
                },
                Func {
                    name: "a.g".into(),
                    entry: 0x1010,
                    size: 32
                }
            ]
        );
    }
}
