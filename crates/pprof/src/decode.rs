//! Decoding profile.proto, gzip'd or raw, with pprof's validity rules.
//!
//! Decoding happens in two passes, like pprof's `decode` + `postDecode`: the first reads the
//! wire format in any field order (Go writes the string table last and interleaves samples,
//! locations and functions), keeping raw string indices and ids; the second resolves them and
//! validates references.

use rustc_hash::FxHashMap;

use crate::error::{DecodeError, ErrorKind};
use crate::model::*;
use crate::wire::{Field, Reader, WireError};

/// Default cap on the decompressed size of one profile: 512 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 512 << 20;

/// Options for [`decode_with`].
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Maximum size of the decompressed protobuf; larger inputs fail with
    /// [`ErrorKind::TooLarge`] instead of exhausting memory (gzip bombs).
    pub max_size: u64,
    /// Keep sample labels. Reports that ignore labels (top, flame graphs) set this to false
    /// to save memory and time; labels are still validated, and pprof's reserved
    /// `pprof::` labels (e.g. `pprof::base`) are always kept.
    pub labels: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_size: DEFAULT_MAX_SIZE,
            labels: true,
        }
    }
}

/// Decodes a profile (gzip'd or raw protobuf) with default options.
pub fn decode(data: &[u8]) -> Result<Profile, DecodeError> {
    decode_with(data, &DecodeOptions::default())
}

/// Decodes a profile (gzip'd or raw protobuf).
pub fn decode_with(data: &[u8], opts: &DecodeOptions) -> Result<Profile, DecodeError> {
    inflated(data, opts, |raw| decode_uncompressed_with(raw, opts))
}

/// Decodes a profile (gzip'd or raw protobuf) with its samples flat, apart from the rest
/// (`Profile::sample` stays empty): for a merge of many profiles, which would otherwise
/// allocate three buffers per sample only to copy them into its own table.
pub fn decode_flat_with(
    data: &[u8],
    opts: &DecodeOptions,
) -> Result<(Profile, FlatSamples), DecodeError> {
    inflated(data, opts, |raw| {
        let (p, ctx) = decode_first_pass(raw)?;
        let mut sink = FlatSink {
            out: FlatSamples::new(p.sample_type.len()),
            sets: FxHashMap::default(),
        };
        decode_samples(raw, &ctx, opts.labels, sink.out.nvalues, &mut sink)?;
        Ok((p, sink.out))
    })
}

/// `f` of the protobuf bytes in `data`, inflated first if gzip'd, within `opts.max_size`.
fn inflated<T>(
    data: &[u8],
    opts: &DecodeOptions,
    f: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    if data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b {
        let raw = gunzip(data, opts.max_size)?;
        f(&raw)
    } else {
        if data.len() as u64 > opts.max_size {
            return Err(DecodeError::new(ErrorKind::TooLarge {
                limit: opts.max_size,
            }));
        }
        f(data)
    }
}

/// Decompresses a gzip stream (all members, as Go's reader does), refusing to produce more
/// than `max_size` bytes.
pub fn gunzip(data: &[u8], max_size: u64) -> Result<Vec<u8>, DecodeError> {
    // The gzip trailer holds the uncompressed size (mod 2^32) of the last member: a good
    // capacity guess that avoids regrowing the buffer.
    let hint = match data.len() {
        n if n >= 18 => {
            u32::from_le_bytes([data[n - 4], data[n - 3], data[n - 2], data[n - 1]]) as u64
        }
        _ => 0,
    };
    // Trust the hint only as far as a plausible compression ratio: a forged trailer must not
    // make us reserve the whole size cap up front.
    let plausible = (data.len() as u64)
        .saturating_mul(64)
        .saturating_add(1 << 20);
    let cap = hint
        .max(data.len() as u64 * 2)
        .min(plausible)
        .min(max_size)
        .saturating_add(1);
    let mut out = Vec::with_capacity(cap as usize);
    let gz = |msg: String| DecodeError::new(ErrorKind::Gzip(msg));
    let mut pos = 0usize;
    loop {
        // One member (RFC 1952): header, raw deflate data, CRC-32 and size trailer.
        let body =
            pos + gzip_header_len(&data[pos..]).map_err(|e| gz(format!("{e} at byte {pos}")))?;
        let start = out.len();
        let mut d = take_inflater();
        loop {
            if out.len() as u64 > max_size {
                return Err(DecodeError::new(ErrorKind::TooLarge { limit: max_size }));
            }
            if out.len() == out.capacity() {
                let room =
                    (max_size + 1 - out.len() as u64).min(out.capacity().max(1 << 16) as u64);
                out.reserve_exact(room as usize);
            }
            let consumed = body + d.total_in() as usize;
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let st = d
                .decompress_vec(&data[consumed..], &mut out, flate2::FlushDecompress::None)
                .map_err(|e| gz(e.to_string()))?;
            if st == flate2::Status::StreamEnd {
                break;
            }
            if d.total_in() == in_before
                && d.total_out() == out_before
                && out.len() < out.capacity()
            {
                return Err(gz("unexpected EOF".into()));
            }
        }
        if out.len() as u64 > max_size {
            return Err(DecodeError::new(ErrorKind::TooLarge { limit: max_size }));
        }
        let end = body + d.total_in() as usize;
        let Some(trailer) = data.get(end..end + 8) else {
            return Err(gz("unexpected EOF in the trailer".into()));
        };
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc32fast::hash(&out[start..]) != crc || size != (out.len() - start) as u32 {
            return Err(gz(format!("checksum error in the member at byte {pos}")));
        }
        INFLATER.with(|c| *c.borrow_mut() = Some(d));
        pos = end + 8;
        if pos == data.len() {
            return Ok(out);
        }
    }
}

thread_local! {
    /// One inflater per thread, reset between members: allocating and clearing a fresh
    /// 32 KiB window for every small profile costs more than inflating it.
    static INFLATER: std::cell::RefCell<Option<flate2::Decompress>> =
        const { std::cell::RefCell::new(None) };
}

fn take_inflater() -> flate2::Decompress {
    match INFLATER.with(|c| c.borrow_mut().take()) {
        Some(mut d) => {
            d.reset(false);
            d
        }
        None => flate2::Decompress::new(false),
    }
}

/// Length of a gzip member header (magic, method, flags and the optional fields).
fn gzip_header_len(b: &[u8]) -> Result<usize, &'static str> {
    if b.len() < 10 {
        return Err("truncated gzip header");
    }
    if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
        return Err("invalid gzip header");
    }
    let flags = b[3];
    let mut n = 10;
    if flags & 0x04 != 0 {
        let xlen = b.get(n..n + 2).ok_or("truncated gzip header")?;
        n += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            let z = b
                .get(n..)
                .and_then(|r| r.iter().position(|&c| c == 0))
                .ok_or("truncated gzip header")?;
            n += z + 1;
        }
    }
    if flags & 0x02 != 0 {
        n += 2;
    }
    if n > b.len() {
        return Err("truncated gzip header");
    }
    Ok(n)
}

#[derive(Default)]
struct RawMapping {
    m: Mapping,
    file: i64,
    build_id: i64,
    offset: usize,
}

#[derive(Default, Clone, Copy)]
struct RawLine {
    function_id: u64,
    line: i64,
    column: i64,
}

#[derive(Default)]
struct RawLocation {
    id: u64,
    mapping_id: u64,
    address: u64,
    lines: (u32, u32),
    is_folded: bool,
    offset: usize,
}

#[derive(Default)]
struct RawFunction {
    id: u64,
    name: i64,
    system_name: i64,
    filename: i64,
    start_line: i64,
    offset: usize,
}

#[derive(Default)]
struct Raw {
    sample_type: Vec<(i64, i64, usize)>,
    nsamples: usize,
    mappings: Vec<RawMapping>,
    locations: Vec<RawLocation>,
    lines: Vec<RawLine>,
    functions: Vec<RawFunction>,
    strings: Vec<Str>,
    drop_frames: i64,
    keep_frames: i64,
    time_nanos: i64,
    duration_nanos: i64,
    period_type: Option<(i64, i64, usize)>,
    period: i64,
    comments: Vec<i64>,
    default_sample_type: i64,
    doc_url: i64,
}

type Inner<T> = Result<T, (ErrorKind, usize, &'static str)>;

fn name(field: &'static str) -> impl Fn(WireError) -> (ErrorKind, usize, &'static str) {
    move |(k, o)| (k, o, field)
}

fn bytes_to_string(b: &[u8]) -> Str {
    match std::str::from_utf8(b) {
        Ok(s) => Str::from(s),
        Err(_) => Str::from(String::from_utf8_lossy(b)),
    }
}

/// Decodes an uncompressed profile.proto message.
pub fn decode_uncompressed(data: &[u8]) -> Result<Profile, DecodeError> {
    decode_uncompressed_with(data, &DecodeOptions::default())
}

/// Decodes an uncompressed profile.proto message with options (the size cap is not
/// checked here: the caller already holds the bytes).
pub fn decode_uncompressed_with(data: &[u8], opts: &DecodeOptions) -> Result<Profile, DecodeError> {
    let (mut p, ctx) = decode_first_pass(data)?;
    let mut samples = Vec::new();
    decode_samples(data, &ctx, opts.labels, p.sample_type.len(), &mut samples)?;
    p.sample = samples;
    Ok(p)
}

/// The first pass: everything but the samples, which it counts; strings and locations are
/// resolved for the sample pass.
fn decode_first_pass(data: &[u8]) -> Result<(Profile, Ctx), DecodeError> {
    if data.is_empty() {
        return Err(DecodeError::new(ErrorKind::Empty));
    }
    if let Some(format) = legacy_format(data) {
        return Err(DecodeError::new(ErrorKind::LegacyFormat(format)));
    }
    let mut raw = Raw::default();
    let mut r = Reader::new(data, 0);
    let mut time_seen = false;
    while !r.at_end() {
        let f = r
            .field()
            .map_err(|(k, o)| DecodeError::at(k, "Profile", o))?;
        let top = |field: &str, i: usize| format!("Profile.{field}[{i}]");
        match f.num {
            1 => {
                let (t, u) = value_type(&f).map_err(|(k, o, n)| {
                    DecodeError::at(
                        k,
                        format!("{}{n}", top("sample_type", raw.sample_type.len())),
                        o,
                    )
                })?;
                raw.sample_type.push((t, u, f.offset));
            }
            2 => {
                // Samples are decoded in a second pass, once strings and locations are known.
                f.message()
                    .map_err(|(k, o)| DecodeError::at(k, top("sample", raw.nsamples), o))?;
                raw.nsamples += 1;
            }
            3 => {
                let i = raw.mappings.len();
                let m = mapping(&f).map_err(|(k, o, n)| {
                    DecodeError::at(k, format!("{}{n}", top("mapping", i)), o)
                })?;
                raw.mappings.push(m);
            }
            4 => {
                let i = raw.locations.len();
                let l = location(&f, &mut raw.lines).map_err(|(k, o, n)| {
                    DecodeError::at(k, format!("{}{n}", top("location", i)), o)
                })?;
                raw.locations.push(l);
            }
            5 => {
                let i = raw.functions.len();
                let fun = function(&f).map_err(|(k, o, n)| {
                    DecodeError::at(k, format!("{}{n}", top("function", i)), o)
                })?;
                raw.functions.push(fun);
            }
            6 => {
                let i = raw.strings.len();
                let b = f
                    .message()
                    .map_err(|(k, o)| DecodeError::at(k, top("string_table", i), o))?;
                let _ = b;
                if i == 0 && !f.bytes.is_empty() {
                    return Err(DecodeError::at(
                        ErrorKind::FirstStringNotEmpty,
                        "Profile.string_table[0]",
                        f.offset,
                    ));
                }
                raw.strings.push(bytes_to_string(f.bytes));
            }
            7..=10 | 12 | 14 | 15 => {
                let v = f
                    .int()
                    .map_err(|(k, o)| DecodeError::at(k, top_name(f.num), o))?
                    as i64;
                match f.num {
                    7 => raw.drop_frames = v,
                    8 => raw.keep_frames = v,
                    9 => {
                        if time_seen && raw.time_nanos != 0 {
                            return Err(DecodeError::at(
                                ErrorKind::Concatenated,
                                "Profile.time_nanos",
                                f.offset,
                            ));
                        }
                        time_seen = true;
                        raw.time_nanos = v;
                    }
                    10 => raw.duration_nanos = v,
                    12 => raw.period = v,
                    14 => raw.default_sample_type = v,
                    _ => raw.doc_url = v,
                }
            }
            11 => {
                let (t, u) = value_type(&f).map_err(|(k, o, n)| {
                    DecodeError::at(k, format!("Profile.period_type{n}"), o)
                })?;
                raw.period_type = Some((t, u, f.offset));
            }
            13 => f
                .push_ints(&mut raw.comments, |v| v as i64)
                .map_err(|(k, o)| DecodeError::at(k, "Profile.comment", o))?,
            _ => {} // unknown fields are skipped, as pprof does
        }
    }
    resolve(raw)
}

/// What the sample pass needs from the first pass.
struct Ctx {
    strings: Vec<Str>,
    location_ids: IdMap,
    nsamples: usize,
}

/// Where the sample pass puts each sample: the model's `Vec<Sample>` or [`FlatSamples`].
trait SampleSink {
    fn reserve(&mut self, n: usize);
    fn len(&self) -> usize;
    /// Takes the sample in `s` (its buffers are reused for the next one); its labels' strings
    /// are `strings`' entries.
    fn push(&mut self, s: &mut Scratch, strings: &[Str]);
}

/// One sample as decoded, in buffers reused from sample to sample.
#[derive(Default)]
struct Scratch {
    ids: Vec<u64>,
    location: Vec<LocationIdx>,
    value: Vec<i64>,
    label: Vec<RawLabel>,
}

impl SampleSink for Vec<Sample> {
    fn reserve(&mut self, n: usize) {
        self.reserve_exact(n);
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn push(&mut self, s: &mut Scratch, strings: &[Str]) {
        // Copies sized exactly.
        Vec::push(
            self,
            Sample {
                location: s.location.clone(),
                value: s.value.clone(),
                label: s.label.iter().map(|l| l.resolve(strings)).collect(),
            },
        );
    }
}

/// Flat samples, with each distinct set of raw labels resolved once.
struct FlatSink {
    out: FlatSamples,
    sets: FxHashMap<Box<[RawLabel]>, u32>,
}

impl SampleSink for FlatSink {
    fn reserve(&mut self, n: usize) {
        self.out.location_end.reserve_exact(n);
        self.out.label_set.reserve_exact(n);
        self.out.value.reserve_exact(n * self.out.nvalues);
    }
    fn len(&self) -> usize {
        self.out.location_end.len()
    }
    fn push(&mut self, s: &mut Scratch, strings: &[Str]) {
        let set = if s.label.is_empty() {
            0
        } else if let Some(&set) = self.sets.get(&s.label[..]) {
            set
        } else {
            let labels = s.label.iter().map(|l| l.resolve(strings)).collect();
            let set = self.out.add_label_set(labels);
            self.sets.insert(s.label.clone().into_boxed_slice(), set);
            set
        };
        self.out.push_with_set(&s.location, &s.value, set);
    }
}

/// The second pass: decodes every sample straight into `out`.
fn decode_samples(
    data: &[u8],
    ctx: &Ctx,
    keep_labels: bool,
    nvalues: usize,
    out: &mut impl SampleSink,
) -> Result<(), DecodeError> {
    out.reserve(ctx.nsamples);
    let mut scratch = Scratch::default();
    let mut r = Reader::new(data, 0);
    while !r.at_end() {
        let f = r
            .field()
            .map_err(|(k, o)| DecodeError::at(k, "Profile", o))?;
        if f.num != 2 {
            continue;
        }
        let i = out.len();
        sample(&f, ctx, keep_labels, &mut scratch)
            .map_err(|(k, o, n)| DecodeError::at(k, format!("Profile.sample[{i}]{n}"), o))?;
        if scratch.value.len() != nvalues {
            return Err(DecodeError::at(
                ErrorKind::Invalid(format!(
                    "mismatch: sample has {} values vs. {} types",
                    scratch.value.len(),
                    nvalues
                )),
                format!("Profile.sample[{i}].value"),
                f.offset,
            ));
        }
        out.push(&mut scratch, &ctx.strings);
    }
    if nvalues == 0 && out.len() > 0 {
        return Err(DecodeError::invalid(
            "missing sample type information",
            "Profile.sample_type",
        ));
    }
    Ok(())
}

fn top_name(num: u64) -> &'static str {
    match num {
        7 => "Profile.drop_frames",
        8 => "Profile.keep_frames",
        9 => "Profile.time_nanos",
        10 => "Profile.duration_nanos",
        12 => "Profile.period",
        14 => "Profile.default_sample_type",
        15 => "Profile.doc_url",
        _ => "Profile",
    }
}

fn value_type(f: &Field) -> Inner<(i64, i64)> {
    let mut r = f.message().map_err(name(""))?;
    let (mut t, mut u) = (0, 0);
    while !r.at_end() {
        let g = r.field().map_err(name(""))?;
        match g.num {
            1 => t = g.int().map_err(name(".type"))? as i64,
            2 => u = g.int().map_err(name(".unit"))? as i64,
            _ => {}
        }
    }
    Ok((t, u))
}

type SampleError = (ErrorKind, usize, String);

/// Decodes one sample into `out`'s buffers; its labels as string-table indices, in pprof's
/// canonical order (see [`Sample::label`]).
fn sample(f: &Field, ctx: &Ctx, keep_labels: bool, out: &mut Scratch) -> Result<(), SampleError> {
    let plain = |field: &'static str| move |(k, o): WireError| (k, o, field.to_string());
    let mut r = f.message().map_err(plain(""))?;
    let Scratch {
        ids,
        location,
        value,
        label,
        ..
    } = out;
    ids.clear();
    location.clear();
    value.clear();
    label.clear();
    let mut nlabels = 0usize;
    // A string-table index, checked.
    let string = |idx: i64, j: usize, offset: usize| -> Result<u32, SampleError> {
        match usize::try_from(idx) {
            Ok(i) if i < ctx.strings.len() => Ok(i as u32),
            _ => Err((
                ErrorKind::StringIndex {
                    index: idx,
                    len: ctx.strings.len(),
                },
                offset,
                format!(".label[{j}]"),
            )),
        }
    };
    while !r.at_end() {
        let g = r.field().map_err(plain(""))?;
        match g.num {
            1 => g.push_ints(ids, |v| v).map_err(plain(".location_id"))?,
            2 => g.push_ints(value, |v| v as i64).map_err(plain(".value"))?,
            3 => {
                let j = nlabels;
                nlabels += 1;
                let mut lr = g
                    .message()
                    .map_err(|(k, o)| (k, o, format!(".label[{j}]")))?;
                let (mut key, mut str, mut num, mut unit) = (0i64, 0i64, 0i64, 0i64);
                lr.for_each_varint(0b11110, |n, v| match n {
                    1 => key = v as i64,
                    2 => str = v as i64,
                    3 => num = v as i64,
                    4 => unit = v as i64,
                    _ => {}
                })
                .map_err(|(k, o)| (k, o, format!(".label[{j}]")))?;
                let k = string(key, j, g.offset)?;
                if str != 0 {
                    let v = string(str, j, g.offset)?;
                    if keep_labels || ctx.strings[k as usize].starts_with("pprof::") {
                        label.push(RawLabel::Str { key: k, value: v });
                    }
                } else if num != 0 || unit != 0 {
                    // No unit is index 0, the empty string.
                    let unit = if unit != 0 {
                        string(unit, j, g.offset)?
                    } else {
                        0
                    };
                    if keep_labels {
                        label.push(RawLabel::Num {
                            key: k,
                            value: num,
                            unit,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    for (j, &id) in ids.iter().enumerate() {
        let Some(li) = ctx.location_ids.get(id) else {
            return Err((
                ErrorKind::Invalid(format!("sample references unknown location id {id}")),
                f.offset,
                format!(".location_id[{j}]"),
            ));
        };
        location.push(li);
    }
    // `canonicalize_labels` on indices: string labels before numeric ones, by key.
    if label.len() > 1 {
        label.sort_by(|a, b| {
            a.is_num()
                .cmp(&b.is_num())
                .then_with(|| ctx.strings[a.key() as usize].cmp(&ctx.strings[b.key() as usize]))
        });
    }
    Ok(())
}

/// A decoded label whose strings are still string-table indices: labels are resolved to
/// shared strings once per distinct set (flat decoding) or once per sample (the model), never
/// cloned only to be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RawLabel {
    Str { key: u32, value: u32 },
    Num { key: u32, value: i64, unit: u32 },
}

impl RawLabel {
    fn is_num(&self) -> bool {
        matches!(self, RawLabel::Num { .. })
    }

    fn key(&self) -> u32 {
        match *self {
            RawLabel::Str { key, .. } | RawLabel::Num { key, .. } => key,
        }
    }

    fn resolve(&self, strings: &[Str]) -> Label {
        match *self {
            RawLabel::Str { key, value } => Label {
                key: strings[key as usize].clone(),
                value: LabelValue::Str(strings[value as usize].clone()),
            },
            RawLabel::Num { key, value, unit } => Label {
                key: strings[key as usize].clone(),
                value: LabelValue::Num {
                    value,
                    unit: strings[unit as usize].clone(),
                },
            },
        }
    }
}

fn mapping(f: &Field) -> Inner<RawMapping> {
    let mut r = f.message().map_err(name(""))?;
    let mut m = RawMapping {
        offset: f.offset,
        ..Default::default()
    };
    while !r.at_end() {
        let g = r.field().map_err(name(""))?;
        if !(1..=10).contains(&g.num) {
            continue;
        }
        let v = g.int().map_err(name(mapping_field(g.num)))?;
        match g.num {
            1 => m.m.id = v,
            2 => m.m.memory_start = v,
            3 => m.m.memory_limit = v,
            4 => m.m.file_offset = v,
            5 => m.file = v as i64,
            6 => m.build_id = v as i64,
            7 => m.m.has_functions = v as i64 != 0,
            8 => m.m.has_filenames = v as i64 != 0,
            9 => m.m.has_line_numbers = v as i64 != 0,
            _ => m.m.has_inline_frames = v as i64 != 0,
        }
    }
    Ok(m)
}

fn mapping_field(n: u64) -> &'static str {
    [
        "",
        ".id",
        ".memory_start",
        ".memory_limit",
        ".file_offset",
        ".filename",
        ".build_id",
        ".has_functions",
        ".has_filenames",
        ".has_line_numbers",
        ".has_inline_frames",
    ][n as usize]
}

fn location(f: &Field, lines: &mut Vec<RawLine>) -> Inner<RawLocation> {
    let mut r = f.message().map_err(name(""))?;
    let start = lines.len() as u32;
    let mut l = RawLocation {
        offset: f.offset,
        ..Default::default()
    };
    while !r.at_end() {
        let g = r.field().map_err(name(""))?;
        match g.num {
            1 => l.id = g.int().map_err(name(".id"))?,
            2 => l.mapping_id = g.int().map_err(name(".mapping_id"))?,
            3 => l.address = g.int().map_err(name(".address"))?,
            4 => {
                let mut lr = g.message().map_err(name(".line"))?;
                let mut line = RawLine::default();
                while !lr.at_end() {
                    let h = lr.field().map_err(name(".line"))?;
                    match h.num {
                        1 => line.function_id = h.int().map_err(name(".line.function_id"))?,
                        2 => line.line = h.int().map_err(name(".line.line"))? as i64,
                        3 => line.column = h.int().map_err(name(".line.column"))? as i64,
                        _ => {}
                    }
                }
                lines.push(line);
            }
            5 => l.is_folded = g.int().map_err(name(".is_folded"))? as i64 != 0,
            _ => {}
        }
    }
    l.lines = (start, lines.len() as u32 - start);
    Ok(l)
}

fn function(f: &Field) -> Inner<RawFunction> {
    let mut r = f.message().map_err(name(""))?;
    let mut fun = RawFunction {
        offset: f.offset,
        ..Default::default()
    };
    while !r.at_end() {
        let g = r.field().map_err(name(""))?;
        match g.num {
            1 => fun.id = g.int().map_err(name(".id"))?,
            2 => fun.name = g.int().map_err(name(".name"))? as i64,
            3 => fun.system_name = g.int().map_err(name(".system_name"))? as i64,
            4 => fun.filename = g.int().map_err(name(".filename"))? as i64,
            5 => fun.start_line = g.int().map_err(name(".start_line"))? as i64,
            _ => {}
        }
    }
    Ok(fun)
}

/// Maps ids to indices: a dense table for small ids, a hash map for the rest (pprof's trick).
struct IdMap {
    dense: Vec<u32>,
    sparse: FxHashMap<u64, u32>,
}

const NONE: u32 = u32::MAX;

impl IdMap {
    fn new(n: usize) -> Self {
        IdMap {
            dense: vec![NONE; n + 1],
            sparse: FxHashMap::default(),
        }
    }
    /// Returns false if the id was already present.
    fn insert(&mut self, id: u64, idx: u32) -> bool {
        if (id as usize) < self.dense.len() && id < u64::from(u32::MAX) {
            let slot = &mut self.dense[id as usize];
            let fresh = *slot == NONE;
            *slot = idx;
            fresh
        } else {
            self.sparse.insert(id, idx).is_none()
        }
    }
    #[inline]
    fn get(&self, id: u64) -> Option<u32> {
        if (id as usize) < self.dense.len() {
            let v = self.dense[id as usize];
            (v != NONE).then_some(v)
        } else {
            self.sparse.get(&id).copied()
        }
    }
}

fn resolve(raw: Raw) -> Result<(Profile, Ctx), DecodeError> {
    let strings = &raw.strings;
    let s = |idx: i64, field: &dyn Fn() -> String, offset: usize| -> Result<Str, DecodeError> {
        if idx < 0 || idx as usize >= strings.len() {
            return Err(DecodeError::at(
                ErrorKind::StringIndex {
                    index: idx,
                    len: strings.len(),
                },
                field(),
                offset,
            ));
        }
        Ok(strings[idx as usize].clone())
    };

    let mut mapping = Vec::with_capacity(raw.mappings.len());
    let mut mapping_ids = IdMap::new(raw.mappings.len());
    for (i, rm) in raw.mappings.into_iter().enumerate() {
        let mut m = rm.m;
        m.filename = s(
            rm.file,
            &|| format!("Profile.mapping[{i}].filename"),
            rm.offset,
        )?;
        m.build_id = s(
            rm.build_id,
            &|| format!("Profile.mapping[{i}].build_id"),
            rm.offset,
        )?;
        if m.id == 0 {
            return Err(DecodeError::at(
                ErrorKind::Invalid("found mapping with reserved ID=0".into()),
                format!("Profile.mapping[{i}].id"),
                rm.offset,
            ));
        }
        if !mapping_ids.insert(m.id, i as u32) {
            return Err(DecodeError::at(
                ErrorKind::Invalid(format!("multiple mappings with same id: {}", m.id)),
                format!("Profile.mapping[{i}].id"),
                rm.offset,
            ));
        }
        mapping.push(m);
    }

    let mut function = Vec::with_capacity(raw.functions.len());
    let mut function_ids = IdMap::new(raw.functions.len());
    for (i, rf) in raw.functions.into_iter().enumerate() {
        let f = Function {
            id: rf.id,
            name: s(
                rf.name,
                &|| format!("Profile.function[{i}].name"),
                rf.offset,
            )?,
            system_name: s(
                rf.system_name,
                &|| format!("Profile.function[{i}].system_name"),
                rf.offset,
            )?,
            filename: s(
                rf.filename,
                &|| format!("Profile.function[{i}].filename"),
                rf.offset,
            )?,
            start_line: rf.start_line,
        };
        if f.id == 0 {
            return Err(DecodeError::at(
                ErrorKind::Invalid("found function with reserved ID=0".into()),
                format!("Profile.function[{i}].id"),
                rf.offset,
            ));
        }
        if !function_ids.insert(f.id, i as u32) {
            return Err(DecodeError::at(
                ErrorKind::Invalid(format!("multiple functions with same id: {}", f.id)),
                format!("Profile.function[{i}].id"),
                rf.offset,
            ));
        }
        function.push(f);
    }

    let mut location = Vec::with_capacity(raw.locations.len());
    let mut location_ids = IdMap::new(raw.locations.len());
    for (i, rl) in raw.locations.into_iter().enumerate() {
        let mut lines = Vec::with_capacity(rl.lines.1 as usize);
        for (j, ln) in raw.lines[rl.lines.0 as usize..(rl.lines.0 + rl.lines.1) as usize]
            .iter()
            .enumerate()
        {
            let Some(fi) = (ln.function_id != 0)
                .then(|| function_ids.get(ln.function_id))
                .flatten()
            else {
                return Err(DecodeError::at(
                    ErrorKind::Invalid(format!(
                        "location id: {} has a line with unknown function id {}",
                        rl.id, ln.function_id
                    )),
                    format!("Profile.location[{i}].line[{j}].function_id"),
                    rl.offset,
                ));
            };
            lines.push(Line {
                function: fi,
                line: ln.line,
                column: ln.column,
            });
        }
        if rl.id == 0 {
            return Err(DecodeError::at(
                ErrorKind::Invalid("found location with reserved id=0".into()),
                format!("Profile.location[{i}].id"),
                rl.offset,
            ));
        }
        if !location_ids.insert(rl.id, i as u32) {
            return Err(DecodeError::at(
                ErrorKind::Invalid(format!("multiple locations with same id: {}", rl.id)),
                format!("Profile.location[{i}].id"),
                rl.offset,
            ));
        }
        // pprof treats an unknown mapping id as "no mapping".
        let mapping = if rl.mapping_id == 0 {
            None
        } else {
            mapping_ids.get(rl.mapping_id)
        };
        location.push(Location {
            id: rl.id,
            mapping,
            address: rl.address,
            line: lines,
            is_folded: rl.is_folded,
        });
    }

    let mut sample_type = Vec::with_capacity(raw.sample_type.len());
    for (i, &(t, u, off)) in raw.sample_type.iter().enumerate() {
        sample_type.push(ValueType {
            r#type: s(t, &|| format!("Profile.sample_type[{i}].type"), off)?,
            unit: s(u, &|| format!("Profile.sample_type[{i}].unit"), off)?,
        });
    }

    let (pt, pu, poff) = raw.period_type.unwrap_or((0, 0, 0));
    let period_type = ValueType {
        r#type: s(pt, &|| "Profile.period_type.type".into(), poff)?,
        unit: s(pu, &|| "Profile.period_type.unit".into(), poff)?,
    };
    let mut comments = Vec::with_capacity(raw.comments.len());
    for (i, &c) in raw.comments.iter().enumerate() {
        comments.push(s(c, &|| format!("Profile.comment[{i}]"), 0)?);
    }
    let p = Profile {
        sample_type,
        sample: Vec::new(),
        mapping,
        location,
        function,
        drop_frames: s(raw.drop_frames, &|| "Profile.drop_frames".into(), 0)?,
        keep_frames: s(raw.keep_frames, &|| "Profile.keep_frames".into(), 0)?,
        time_nanos: raw.time_nanos,
        duration_nanos: raw.duration_nanos,
        period_type,
        period: raw.period,
        comments,
        default_sample_type: s(
            raw.default_sample_type,
            &|| "Profile.default_sample_type".into(),
            0,
        )?,
        doc_url: s(raw.doc_url, &|| "Profile.doc_url".into(), 0)?,
    };
    let ctx = Ctx {
        strings: raw.strings,
        location_ids,
        nsamples: raw.nsamples,
    };
    Ok((p, ctx))
}

/// Recognises the profile formats that came before profile.proto (google/pprof's
/// `legacy_profile.go` and `legacy_java_profile.go` read them), by their first bytes. None
/// of them can be a valid profile.proto: a protobuf message never starts with field 0, a
/// space or a letter in the text headers' positions.
pub fn legacy_format(data: &[u8]) -> Option<&'static str> {
    // The binary CPU format of Go before 1.9 and of gperftools: a header of words
    // 0, 3 (header words), 0 (version), period, 0 — 8-byte or 4-byte, either byte order.
    let word = |w: usize, i: usize, be: bool| -> Option<u64> {
        let b = data.get(i * w..(i + 1) * w)?;
        let mut v = 0u64;
        if be {
            for &x in b {
                v = (v << 8) | u64::from(x);
            }
        } else {
            for &x in b.iter().rev() {
                v = (v << 8) | u64::from(x);
            }
        }
        Some(v)
    };
    for w in [8, 4] {
        for be in [false, true] {
            if word(w, 0, be) == Some(0) && word(w, 1, be) == Some(3) {
                match word(w, 2, be) {
                    Some(0) => {
                        return Some(
                            "a legacy binary CPU profile (the format of Go before 1.9 and of gperftools)",
                        );
                    }
                    Some(1) => return Some("a legacy Java CPU profile"),
                    _ => {}
                }
            }
        }
    }
    // Text formats start with a letter or `-` (a protobuf with a field tag byte): checked on
    // the bytes, without a string made of every profile's first bytes.
    let head = &data[..data.len().min(256)];
    let t = head.trim_ascii_start();
    if !t
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'-')
    {
        return None;
    }
    if t.starts_with(b"--- ") && head.windows(13).any(|w| w == b"format = java") {
        return Some("a legacy Java profile (text)");
    }
    const TEXT: &[(&str, &str)] = &[
        (
            "heap profile:",
            "a legacy text heap profile (`heap profile: …`)",
        ),
        ("heap_v2/", "a legacy text heap profile (`heap_v2/…`)"),
        ("--- heapz", "a legacy text heap profile (`--- heapz`)"),
        (
            "--- growthz",
            "a legacy text heap growth profile (`--- growthz`)",
        ),
        (
            "--- contention",
            "a legacy text contention profile (`--- contention`)",
        ),
        ("--- mutex:", "a legacy text mutex profile (`--- mutex:`)"),
        (
            "--- delay",
            "a legacy text contention profile (`--- delay`)",
        ),
        ("--- threadz", "a legacy text thread dump (`--- threadz`)"),
        ("--- contentionz", "a legacy Java contention profile"),
        ("--- cpu", "a legacy Java CPU profile"),
        (
            "goroutine profile: total",
            "a goroutine profile in text form (`?debug=1`)",
        ),
        (
            "threadcreate profile: total",
            "a threadcreate profile in text form (`?debug=1`)",
        ),
        (
            "goroutine 1 [",
            "a goroutine dump (`?debug=2`; `gocost leaks` reads it)",
        ),
    ];
    TEXT.iter()
        .find(|(p, _)| t.starts_with(p.as_bytes()))
        .map(|(_, f)| *f)
}
