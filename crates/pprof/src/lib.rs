//! # gocost-pprof
//!
//! The pprof profile model and everything that works on whole profiles: decoding and encoding
//! `profile.proto` (gzip'd or raw, in any field order, packed or unpacked, unknown fields
//! skipped), pprof's validity rules, merging with pprof's identity rules, unit scaling, and
//! `drop_frames` pruning. It does no I/O: callers hand it bytes.
//!
//! It does not build call graphs or print reports (that is `gocost-report`).
//!
//! ```
//! use gocost_pprof::{Profile, Sample, ValueType, decode, encode};
//!
//! let p = Profile {
//!     sample_type: vec![ValueType::new("samples", "count")],
//!     sample: vec![Sample { value: vec![3], ..Default::default() }],
//!     ..Default::default()
//! };
//! let bytes = encode(&p); // gzip'd protobuf, as Go writes it
//! assert_eq!(decode(&bytes).unwrap(), p);
//! ```

pub mod cancel;
mod decode;
mod encode;
mod error;
pub mod merge;
mod model;
pub mod prune;
pub mod units;
mod wire;

/// Base-128 varints as protobuf writes them: the one codec gocost has (the store's WAL and
/// block sections and ingest's protobuf reader use it too).
pub mod varint {
    pub use crate::wire::{VarintError, put_varint, read_varint, unzigzag, varint_len, zigzag};
}

/// The protobuf wire reader the pprof decoder uses, for other hand-written decoders (ingest's
/// OTLP profiles): fields with their absolute byte offsets, errors as (`ErrorKind`, offset).
pub mod protowire {
    pub use crate::wire::{FIXED32, FIXED64, Field, LEN, Reader, VARINT, WireError};
}

pub use decode::{
    DEFAULT_MAX_SIZE, DecodeOptions, decode, decode_flat_with, decode_uncompressed,
    decode_uncompressed_with, decode_with, gunzip, legacy_format,
};
pub use encode::{encode, encode_parallel, encode_uncompressed};
pub use error::{DecodeError, ErrorKind};
pub use merge::{
    Combiner, HeaderOf, MergeError, MergeHeader, Merger, combine, merge, merge_header,
};
pub use model::*;

/// The most frames one sample may have, counting inlined functions (gocost's limit on every
/// ingest path): twice the deepest stack Go records (`GODEBUG=profstackdepth` allows at most
/// 1024; the default is 128). Deeper stacks are refused, not truncated.
pub const MAX_STACK_DEPTH: usize = 2048;

/// Checks that no sample of `p` is deeper than `max` frames (inlined functions counted);
/// the error names the sample and its depth.
pub fn check_depth(p: &Profile, max: usize) -> Result<(), String> {
    check_depth_of(p, &p.sample[..], max)
}

/// [`check_depth`] of `samples`, whose locations are `p`'s.
pub fn check_depth_of<S: Samples + ?Sized>(
    p: &Profile,
    samples: &S,
    max: usize,
) -> Result<(), String> {
    for i in 0..samples.len() {
        let s = samples.get(i);
        let mut frames = 0usize;
        for &l in s.location {
            frames += p
                .location
                .get(l as usize)
                .map_or(1, |l| l.line.len().max(1));
        }
        if frames > max {
            return Err(format!(
                "sample {i} has a stack of {frames} frames; at most {max} are accepted (Go records at most 1024)"
            ));
        }
    }
    Ok(())
}
