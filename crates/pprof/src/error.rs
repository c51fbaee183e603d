//! Decoding errors: what went wrong, in which field, at which byte offset.

use std::fmt;

/// Why a profile could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input has no bytes.
    Empty,
    /// The gzip stream is corrupt or truncated.
    Gzip(String),
    /// Decompressing would exceed the configured limit (a gzip bomb or a huge profile).
    TooLarge { limit: u64 },
    /// A varint runs past the end of its message or is longer than 10 bytes.
    BadVarint,
    /// A length-delimited or fixed-size field runs past the end of its message.
    Truncated { needed: u64, available: u64 },
    /// A wire type that protobuf does not define (3, 4 = groups, 6, 7).
    UnknownWireType(u8),
    /// A known field arrived with the wrong wire type.
    WireType { expected: u8, got: u8 },
    /// `time_nanos` seen twice: several profiles were concatenated.
    Concatenated,
    /// `string_table[0]` is not the empty string.
    FirstStringNotEmpty,
    /// A string index is negative or past the end of the string table.
    StringIndex { index: i64, len: usize },
    /// The decoded profile violates one of pprof's validity rules.
    Invalid(String),
    /// A profile in a format that came before profile.proto (named).
    LegacyFormat(&'static str),
}

/// A decoding error with its location in the (decompressed) protobuf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: ErrorKind,
    /// Field path such as `Profile.sample[3].value` (empty for whole-input errors).
    pub field: String,
    /// Byte offset in the decompressed protobuf where the problem starts.
    pub offset: Option<u64>,
}

impl DecodeError {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        DecodeError {
            kind,
            field: String::new(),
            offset: None,
        }
    }
    pub(crate) fn at(kind: ErrorKind, field: impl Into<String>, offset: usize) -> Self {
        DecodeError {
            kind,
            field: field.into(),
            offset: Some(offset as u64),
        }
    }
    pub(crate) fn invalid(msg: impl Into<String>, field: impl Into<String>) -> Self {
        DecodeError {
            kind: ErrorKind::Invalid(msg.into()),
            field: field.into(),
            offset: None,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Empty => write!(f, "empty input file"),
            ErrorKind::Gzip(e) => write!(f, "decompressing profile: {e}"),
            ErrorKind::TooLarge { limit } => write!(
                f,
                "decompressed profile exceeds the size limit of {limit} bytes"
            ),
            ErrorKind::BadVarint => write!(f, "bad varint (truncated or longer than 10 bytes)"),
            ErrorKind::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated data: field needs {needed} bytes, {available} left"
                )
            }
            ErrorKind::UnknownWireType(t) => write!(f, "unknown wire type {t}"),
            ErrorKind::WireType { expected, got } => {
                write!(f, "wire type mismatch: expected {expected}, got {got}")
            }
            ErrorKind::Concatenated => write!(f, "concatenated profiles detected"),
            ErrorKind::FirstStringNotEmpty => write!(f, "string_table[0] must be ''"),
            ErrorKind::StringIndex { index, len } => {
                write!(
                    f,
                    "string index {index} out of range (string table has {len} entries)"
                )
            }
            ErrorKind::Invalid(m) => write!(f, "malformed profile: {m}"),
            ErrorKind::LegacyFormat(what) => write!(
                f,
                "this is {what}, not profile.proto; gocost reads only the profile.proto format \
                 Go writes since 1.9 (convert it with `go tool pprof -proto FILE > FILE.pb.gz`)"
            ),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match (self.field.is_empty(), self.offset) {
            (false, Some(o)) => write!(f, " (field {}, byte offset {o})", self.field),
            (false, None) => write!(f, " (field {})", self.field),
            (true, Some(o)) => write!(f, " (byte offset {o})"),
            (true, None) => Ok(()),
        }
    }
}

impl std::error::Error for DecodeError {}
