//! gRPC's message framing, for the OTLP receiver's `ProfilesService/Export` (a unary call):
//! a request body is one length-prefixed message — a flag byte (1: compressed with the
//! call's `grpc-encoding`), a 4-byte big-endian length, the message — and the answer is the
//! same. gRPC's status travels in HTTP/2 trailers (`grpc-status`, `grpc-message`); the
//! message is percent-encoded as gRPC's HTTP/2 protocol document says. Pure: no I/O.

use crate::Error;

/// The prefix before each message: flag byte and length.
pub const PREFIX: usize = 5;

/// The one message of a unary request body, and whether it is compressed. Errors name the
/// byte offset; a body with more than one message, or a length that does not match, is
/// malformed (a unary call carries exactly one).
pub fn unframe(body: &[u8]) -> Result<(bool, &[u8]), Error> {
    if body.len() < PREFIX {
        return Err(Error::Malformed(format!(
            "gRPC body of {} bytes: a message needs a {PREFIX}-byte prefix (flag, length)",
            body.len()
        )));
    }
    let compressed = match body[0] {
        0 => false,
        1 => true,
        f => {
            return Err(Error::Malformed(format!(
                "gRPC message at byte 0: compressed-flag {f} (0 or 1)"
            )));
        }
    };
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let rest = &body[PREFIX..];
    if rest.len() < len {
        return Err(Error::Malformed(format!(
            "gRPC message at byte 0 declares {len} bytes, the body holds {}",
            rest.len()
        )));
    }
    if rest.len() > len {
        return Err(Error::Malformed(format!(
            "gRPC body has {} bytes after its message (byte {}): a unary call sends one message",
            rest.len() - len,
            PREFIX + len
        )));
    }
    Ok((compressed, rest))
}

/// `msg` as one uncompressed gRPC message.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX + msg.len());
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// `grpc-message`'s encoding: bytes outside printable ASCII, and `%`, as `%XX`.
pub fn percent_encode(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for &b in msg.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// gRPC status codes gocost answers with.
pub mod code {
    pub const OK: u32 = 0;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const PERMISSION_DENIED: u32 = 7;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const UNAUTHENTICATED: u32 = 16;
}

/// The gRPC status for an HTTP status gocost would have answered: OTLP's retryable
/// conditions (overload, a full disk, a store not ready) become `UNAVAILABLE`, which OTLP
/// exporters retry with back-off; a body over the cap `RESOURCE_EXHAUSTED`, which they do
/// not (no `RetryInfo`).
pub fn code_for_http(status: u16) -> u32 {
    match status {
        200..=299 => code::OK,
        400 | 411 | 415 | 422 | 431 | 414 => code::INVALID_ARGUMENT,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 | 405 => code::UNIMPLEMENTED,
        413 => code::RESOURCE_EXHAUSTED,
        408 | 429 | 502 | 503 | 504 | 507 => code::UNAVAILABLE,
        _ => code::INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_frames_are_named() {
        let f = frame(b"hello");
        assert_eq!(f, b"\0\0\0\0\x05hello");
        assert_eq!(unframe(&f).unwrap(), (false, &b"hello"[..]));
        let mut c = f.clone();
        c[0] = 1;
        assert_eq!(unframe(&c).unwrap(), (true, &b"hello"[..]));
        assert_eq!(unframe(&frame(b"")).unwrap(), (false, &b""[..]));
        let e = |b: &[u8]| unframe(b).unwrap_err().to_string();
        assert!(e(b"\0\0\0").contains("5-byte prefix"));
        assert!(e(b"\x02\0\0\0\0").contains("compressed-flag 2"));
        assert!(e(b"\0\0\0\0\x06hello").contains("declares 6 bytes, the body holds 5"));
        assert!(e(b"\0\0\0\0\x04hello").contains("1 bytes after its message (byte 9)"));
        // Two messages.
        let mut two = frame(b"a");
        two.extend(frame(b"b"));
        assert!(e(&two).contains("a unary call sends one message"));
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("bad field: 100%"), "bad field: 100%25");
        assert_eq!(percent_encode("line\nnext é"), "line%0Anext %C3%A9");
    }
}
