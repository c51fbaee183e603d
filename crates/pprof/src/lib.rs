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

mod decode;
mod encode;
mod error;
pub mod merge;
mod model;
pub mod prune;
pub mod units;
mod wire;

pub use decode::{
    DEFAULT_MAX_SIZE, DecodeOptions, decode, decode_uncompressed, decode_uncompressed_with,
    decode_with, gunzip,
};
pub use encode::{encode, encode_uncompressed};
pub use error::{DecodeError, ErrorKind};
pub use merge::{Combiner, MergeError, Merger, combine, merge};
pub use model::*;
