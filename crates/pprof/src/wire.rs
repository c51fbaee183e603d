//! Protobuf wire format: a reader that keeps byte offsets, and a writer that produces the
//! same layout Go's pprof writer does (packed repeated scalars only above two elements).

use crate::error::ErrorKind;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// One decoded field: number, wire type, payload and where it started.
pub struct Field<'a> {
    pub num: u64,
    pub wire: u8,
    pub varint: u64,
    pub bytes: &'a [u8],
    /// Absolute offset of the field's tag.
    pub offset: usize,
    /// Absolute offset of the payload (for `LEN` fields: the first byte after the length).
    pub payload_offset: usize,
}

/// A reader over a message's bytes; `base` is the absolute offset of `buf[0]`.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

/// An error with the absolute offset it happened at.
pub type WireError = (ErrorKind, usize);

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        match read_varint(self.buf, self.pos) {
            Ok((u, end)) => {
                self.pos = end;
                Ok(u)
            }
            Err(_) => Err((ErrorKind::BadVarint, self.base + self.pos)),
        }
    }

    /// Fast path for small messages whose known fields are all varints (labels, lines,
    /// value types): calls `f(field_number, value)` for each varint field. Fields in the
    /// `known` bit set with another wire type are an error, as pprof's decoder has it;
    /// unknown fields are skipped.
    #[inline]
    pub fn for_each_varint(
        &mut self,
        known: u64,
        mut f: impl FnMut(u64, u64),
    ) -> Result<(), WireError> {
        while !self.at_end() {
            let start = self.pos;
            let tag = self.varint()?;
            if tag & 7 == u64::from(VARINT) {
                let v = self.varint()?;
                f(tag >> 3, v);
                continue;
            }
            self.pos = start;
            let field = self.field()?;
            if field.num < 64 && known & (1 << field.num) != 0 {
                return Err((
                    ErrorKind::WireType {
                        expected: VARINT,
                        got: field.wire,
                    },
                    field.offset,
                ));
            }
        }
        Ok(())
    }

    /// Reads the next field; call only when `!at_end()`.
    #[inline(always)]
    pub fn field(&mut self) -> Result<Field<'a>, WireError> {
        let offset = self.base + self.pos;
        let tag = self.varint()?;
        let wire = (tag & 7) as u8;
        let num = tag >> 3;
        let mut f = Field {
            num,
            wire,
            varint: 0,
            bytes: &[],
            offset,
            payload_offset: 0,
        };
        match wire {
            VARINT => {
                f.payload_offset = self.base + self.pos;
                f.varint = self.varint()?;
            }
            FIXED64 | FIXED32 => {
                let n = if wire == FIXED64 { 8 } else { 4 };
                f.payload_offset = self.base + self.pos;
                let avail = self.buf.len() - self.pos;
                if avail < n {
                    return Err((
                        ErrorKind::Truncated {
                            needed: n as u64,
                            available: avail as u64,
                        },
                        offset,
                    ));
                }
                let mut v = [0u8; 8];
                v[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                f.varint = u64::from_le_bytes(v);
                self.pos += n;
            }
            LEN => {
                let n = self.varint()?;
                let avail = (self.buf.len() - self.pos) as u64;
                if n > avail {
                    return Err((
                        ErrorKind::Truncated {
                            needed: n,
                            available: avail,
                        },
                        offset,
                    ));
                }
                f.payload_offset = self.base + self.pos;
                let n = n as usize;
                f.bytes = &self.buf[self.pos..self.pos + n];
                self.pos += n;
            }
            other => return Err((ErrorKind::UnknownWireType(other), offset)),
        }
        Ok(f)
    }
}

impl Field<'_> {
    /// The value of a scalar (varint) field, checking the wire type as pprof does.
    #[inline]
    pub fn int(&self) -> Result<u64, WireError> {
        if self.wire != VARINT {
            return Err((
                ErrorKind::WireType {
                    expected: VARINT,
                    got: self.wire,
                },
                self.offset,
            ));
        }
        Ok(self.varint)
    }

    /// The payload of a length-delimited field.
    #[inline]
    pub fn message(&self) -> Result<Reader<'_>, WireError> {
        if self.wire != LEN {
            return Err((
                ErrorKind::WireType {
                    expected: LEN,
                    got: self.wire,
                },
                self.offset,
            ));
        }
        Ok(Reader::new(self.bytes, self.payload_offset))
    }

    /// Appends a repeated scalar, packed or not.
    #[inline]
    pub fn push_ints<T>(&self, out: &mut Vec<T>, conv: impl Fn(u64) -> T) -> Result<(), WireError> {
        if self.wire == LEN {
            let mut r = Reader::new(self.bytes, self.payload_offset);
            while !r.at_end() {
                out.push(conv(r.varint()?));
            }
            Ok(())
        } else {
            out.push(conv(self.int()?));
            Ok(())
        }
    }
}

/// A protobuf writer.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    #[inline]
    pub fn varint(&mut self, x: u64) {
        put_varint(&mut self.buf, x);
    }

    #[inline]
    pub fn tag(&mut self, num: u64, wire: u8) {
        self.varint(num << 3 | u64::from(wire));
    }

    /// A varint field, omitted when zero (proto3 optional semantics).
    #[inline]
    pub fn uint_opt(&mut self, num: u64, x: u64) {
        if x != 0 {
            self.tag(num, VARINT);
            self.varint(x);
        }
    }

    #[inline]
    pub fn int_opt(&mut self, num: u64, x: i64) {
        self.uint_opt(num, x as u64);
    }

    pub fn int(&mut self, num: u64, x: i64) {
        self.tag(num, VARINT);
        self.varint(x as u64);
    }

    pub fn bool_opt(&mut self, num: u64, x: bool) {
        if x {
            self.tag(num, VARINT);
            self.varint(1);
        }
    }

    /// Repeated scalars: packed when more than two, as Go's pprof writer does.
    pub fn ints(&mut self, num: u64, xs: impl ExactSizeIterator<Item = u64> + Clone) {
        if xs.len() > 2 {
            let len: usize = xs.clone().map(varint_len).sum();
            self.tag(num, LEN);
            self.varint(len as u64);
            for x in xs {
                self.varint(x);
            }
        } else {
            for x in xs {
                self.tag(num, VARINT);
                self.varint(x);
            }
        }
    }

    pub fn bytes(&mut self, num: u64, b: &[u8]) {
        self.tag(num, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// Writes a nested message produced by `f`, length-prefixed.
    pub fn message(&mut self, num: u64, f: impl FnOnce(&mut Writer)) {
        self.tag(num, LEN);
        // Reserve one byte for the length; move the body if it needs more.
        let len_pos = self.buf.len();
        self.buf.push(0);
        let start = self.buf.len();
        f(self);
        let len = self.buf.len() - start;
        if len < 0x80 {
            self.buf[len_pos] = len as u8;
        } else {
            let mut tmp = Writer::default();
            tmp.varint(len as u64);
            let n = tmp.buf.len();
            self.buf.splice(len_pos..len_pos + 1, tmp.buf);
            debug_assert_eq!(self.buf.len(), start + len + n - 1);
        }
    }
}

/// The bytes [`put_varint`] writes for `x`.
#[inline]
pub fn varint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `x` as a base-128 varint, least significant group first (protobuf's encoding;
/// gocost's WAL and block sections use the same one).
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push(x as u8 | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes end inside it.
    Truncated,
    /// More than 10 bytes (no `u64` needs more).
    TooLong,
}

/// Reads the varint that starts at `b[at]`: its value and the offset just after it. As Go's
/// and protobuf's readers do, the tenth byte's bits beyond 64 are ignored.
#[inline]
pub fn read_varint(b: &[u8], at: usize) -> Result<(u64, usize), VarintError> {
    let mut u: u64 = 0;
    let mut pos = at;
    for i in 0..10 {
        let Some(&c) = b.get(pos) else {
            return Err(VarintError::Truncated);
        };
        pos += 1;
        u |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Ok((u, pos));
        }
    }
    Err(VarintError::TooLong)
}

/// Zigzag encoding of a signed value (protobuf's `sint64`): small magnitudes, small varints.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip() {
        for x in [0u64, 1, 127, 128, 300, u64::MAX, (-1i64) as u64, 1 << 35] {
            let mut w = Writer::default();
            w.varint(x);
            assert_eq!(w.buf.len(), varint_len(x));
            let mut r = Reader::new(&w.buf, 0);
            assert_eq!(r.varint().unwrap(), x);
            assert!(r.at_end());
        }
    }

    #[test]
    fn shared_varint_functions() {
        let mut b = Vec::new();
        for x in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut b, x);
        }
        let mut at = 0;
        for x in [0u64, 1, 127, 128, 300, u64::MAX] {
            let (v, end) = read_varint(&b, at).unwrap();
            assert_eq!((v, end - at), (x, varint_len(x)));
            at = end;
        }
        assert_eq!(read_varint(&b, at), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0x80, 0x80], 0), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0xff; 11], 0), Err(VarintError::TooLong));
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!((zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)), (0, 1, 2, 3));
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        let mut r = Reader::new(&b, 5);
        assert_eq!(r.varint().unwrap_err(), (ErrorKind::BadVarint, 5));
    }

    #[test]
    fn long_message_length_prefix() {
        let mut w = Writer::default();
        w.message(2, |w| w.bytes(1, &[7u8; 300]));
        let mut r = Reader::new(&w.buf, 0);
        let f = r.field().unwrap();
        assert_eq!(f.num, 2);
        let mut inner = f.message().unwrap();
        let g = inner.field().unwrap();
        assert_eq!(g.bytes.len(), 300);
        assert!(r.at_end());
    }
}
