use std::fmt;

/// What went wrong, broadly; [`Error`] says where and what exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes do not start with a `go 1.N trace` header.
    NotATrace,
    /// A trace in a format gocost does not read: Go 1.21 and older (the pre-generational
    /// format) or an unknown newer version. `go_minor` is the `N` of the header.
    UnsupportedVersion {
        /// The `N` of `go 1.N trace`.
        go_minor: u32,
    },
    /// The bytes end in the middle of something.
    Truncated,
    /// A malformed field: a bad varint, an unknown event type, a size over its limit, a
    /// duplicate or missing table entry.
    Malformed,
    /// Well-formed events that contradict each other (a goroutine started twice, a
    /// generation missing its clock): Go's tools reject these too.
    Inconsistent,
    /// Over a [`Limits`](crate::Limits) cap.
    TooLarge,
}

/// A trace that cannot be read, with the byte offset in the input where the problem was found
/// (when it is about bytes rather than about the order of events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The class of problem.
    pub kind: ErrorKind,
    /// Byte offset in the trace where the problem is.
    pub offset: Option<usize>,
    /// What exactly is wrong (which field, which event).
    pub message: String,
}

impl Error {
    pub(crate) fn at(kind: ErrorKind, offset: usize, message: impl Into<String>) -> Error {
        Error {
            kind,
            offset: Some(offset),
            message: message.into(),
        }
    }

    pub(crate) fn order(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Inconsistent,
            offset: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "byte {o}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}
