//! Byte-level helpers for block sections: varints and zigzag (`gocost_pprof::varint`, the
//! one codec), length-prefixed strings, and a reader whose errors name the byte offset.

use std::fmt;

use gocost_pprof::varint::{VarintError, put_varint, read_varint, unzigzag, zigzag};

/// A malformed block section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    pub offset: usize,
    pub what: &'static str,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

#[derive(Default)]
pub struct W(pub Vec<u8>);

impl W {
    pub fn u(&mut self, v: u64) {
        put_varint(&mut self.0, v);
    }
    pub fn i(&mut self, v: i64) {
        self.u(zigzag(v));
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    pub fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

pub struct R<'a> {
    pub b: &'a [u8],
    pub off: usize,
}

impl<'a> R<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        R { b, off: 0 }
    }
    pub fn err(&self, what: &'static str) -> CodecError {
        CodecError {
            offset: self.off,
            what,
        }
    }
    pub fn done(&self) -> bool {
        self.off >= self.b.len()
    }
    /// A varint; an error names the offset where reading stopped (the end of the bytes,
    /// or just after the tenth byte).
    pub fn u(&mut self) -> Result<u64, CodecError> {
        match read_varint(self.b, self.off) {
            Ok((v, end)) => {
                self.off = end;
                Ok(v)
            }
            Err(VarintError::Truncated) => {
                self.off = self.b.len();
                Err(self.err("truncated varint"))
            }
            Err(VarintError::TooLong) => {
                self.off += 10;
                Err(self.err("varint longer than 10 bytes"))
            }
        }
    }
    pub fn i(&mut self) -> Result<i64, CodecError> {
        Ok(unzigzag(self.u()?))
    }
    /// A count of items that each take at least one byte: bounded by what is left.
    pub fn len(&mut self) -> Result<usize, CodecError> {
        let n = self.u()?;
        if n > (self.b.len() - self.off.min(self.b.len())) as u64 {
            return Err(self.err("count exceeds the section"));
        }
        Ok(n as usize)
    }
    /// An index into a table of `n` entries.
    pub fn idx(&mut self, n: usize) -> Result<u32, CodecError> {
        let v = self.u()?;
        if v >= n as u64 {
            return Err(self.err("index out of range"));
        }
        Ok(v as u32)
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.len()?;
        let s = &self.b[self.off..self.off + n];
        self.off += n;
        Ok(s)
    }
    pub fn str(&mut self) -> Result<&'a str, CodecError> {
        let at = self.off;
        std::str::from_utf8(self.bytes()?).map_err(|_| CodecError {
            offset: at,
            what: "string is not UTF-8",
        })
    }
    pub fn f64(&mut self) -> Result<f64, CodecError> {
        let Some(b) = self.b.get(self.off..self.off + 8) else {
            return Err(self.err("truncated float"));
        };
        self.off += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_errors_name_offsets() {
        let mut w = W::default();
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            w.i(v);
        }
        w.u(u64::MAX);
        w.bytes(b"abc");
        let mut r = R::new(&w.0);
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(r.i().unwrap(), v);
        }
        assert_eq!(r.u().unwrap(), u64::MAX);
        assert_eq!(r.str().unwrap(), "abc");
        assert!(r.done());
        let mut r = R::new(&[0x80, 0x80]);
        assert_eq!(r.u().unwrap_err().to_string(), "truncated varint at byte 2");
        let mut r = R::new(&[0xff; 12]);
        assert_eq!(
            r.u().unwrap_err().to_string(),
            "varint longer than 10 bytes at byte 10"
        );
        let mut r = R::new(&[5, b'a']);
        assert_eq!(
            r.bytes().unwrap_err().to_string(),
            "count exceeds the section at byte 1"
        );
    }
}
