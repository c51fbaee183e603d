//! Encoding profile.proto the way Go's pprof writes it (field order, packing rules,
//! string-table order), gzip'd or raw.

use rustc_hash::FxHashMap;

use crate::model::*;
use crate::wire::Writer;

struct Strings<'a> {
    index: FxHashMap<&'a str, i64>,
    /// The same shared string (`Arc`) recurs in many labels: look it up by address first.
    by_ptr: FxHashMap<usize, i64>,
    table: Vec<&'a str>,
}

impl<'a> Strings<'a> {
    /// A table holding the empty string, at index 0.
    fn new() -> Self {
        let mut st = Strings {
            index: FxHashMap::default(),
            by_ptr: FxHashMap::default(),
            table: Vec::new(),
        };
        st.add("");
        st
    }

    fn add(&mut self, s: &'a str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.index.insert(s, i);
        self.table.push(s);
        i
    }

    fn add_shared(&mut self, s: &'a Str) -> i64 {
        let key = std::sync::Arc::as_ptr(s) as *const u8 as usize;
        if let Some(&i) = self.by_ptr.get(&key) {
            return i;
        }
        let i = self.add(s);
        self.by_ptr.insert(key, i);
        i
    }
}

/// Serializes a profile to uncompressed protobuf bytes.
pub fn encode_uncompressed(p: &Profile) -> Vec<u8> {
    encode_uncompressed_samples(p, &p.sample[..])
}

/// [`encode_uncompressed`] of `p`'s header, locations and functions with `samples`.
fn encode_uncompressed_samples<S: Samples + ?Sized>(p: &Profile, samples: &S) -> Vec<u8> {
    let mut out = Vec::new();
    encode_to(p, samples, &mut |b: &[u8]| out.extend_from_slice(b));
    out
}

/// How many encoded bytes are handed to the sink at a time (at a sample's end).
const CHUNK: usize = 1 << 20;

/// Samples per piece when workers encode them: about [`CHUNK`] bytes of a merged CPU profile.
const SAMPLES_PER_PIECE: usize = 16 << 10;

/// Serializes a profile to uncompressed protobuf bytes, handed to `sink` a chunk at a time, so
/// that compressing a big merged profile never holds its whole encoding (hundreds of MB for
/// a day of profiles whose samples stay distinct). The samples are `samples`, not
/// `p.sample` (a merge keeps its own).
fn encode_to<'a, S: Samples + ?Sized>(p: &'a Profile, samples: &'a S, sink: &mut dyn FnMut(&[u8])) {
    let mut st = Strings::new();
    let mut w = Writer {
        buf: Vec::with_capacity(CHUNK + 64 * 1024),
    };
    head(p, &mut st, &mut w);
    // Label strings get their indices in sample order, as pprof's table has them: after the
    // sample types and before everything below. Samples whose source numbers its label sets
    // share each set's encoding, made when the set is first written.
    let mut sets = SetBytes::new(samples.label_sets());
    for i in 0..samples.len() {
        let s = samples.get(i);
        match s.label_set {
            Some(id) => {
                let labels = sets.get_or_encode(&mut st, id, s.label);
                sample_message(p, &mut w, &s, |w| w.buf.extend_from_slice(labels));
            }
            None => sample_message(p, &mut w, &s, |w| label_messages(&mut st, w, s.label)),
        }
        if w.buf.len() >= CHUNK {
            sink(&w.buf);
            w.buf.clear();
        }
    }
    tail(p, &mut st, &mut w);
    sink(&w.buf);
}

/// The sample types (the first strings of the table after the empty one).
fn head<'a>(p: &'a Profile, st: &mut Strings<'a>, w: &mut Writer) {
    let sample_types: Vec<(i64, i64)> = p
        .sample_type
        .iter()
        .map(|t| (st.add(&t.r#type), st.add(&t.unit)))
        .collect();
    for &(t, u) in &sample_types {
        w.message(1, |w| {
            w.int_opt(1, t);
            w.int_opt(2, u);
        });
    }
}

/// One sample, its labels written by `labels`.
fn sample_message(
    p: &Profile,
    w: &mut Writer,
    s: &SampleRef<'_>,
    labels: impl FnOnce(&mut Writer),
) {
    w.message(2, |w| {
        w.ints(1, s.location.iter().map(|&l| p.location[l as usize].id));
        w.ints(2, s.value.iter().map(|&v| v as u64));
        labels(w);
    });
}

/// A sample's label messages, their strings added to the table.
fn label_messages<'a>(st: &mut Strings<'a>, w: &mut Writer, label: &'a [Label]) {
    for l in label {
        let (k, v, n, u) = match &l.value {
            LabelValue::Str(v) => (st.add_shared(&l.key), st.add_shared(v), 0, 0),
            LabelValue::Num { value, unit } => {
                (st.add_shared(&l.key), 0, *value, st.add_shared(unit))
            }
        };
        w.message(3, |w| {
            w.int_opt(1, k);
            w.int_opt(2, v);
            w.int_opt(3, n);
            w.int_opt(4, u);
        });
    }
}

/// Each numbered label set's label messages, encoded when first met.
struct SetBytes {
    ranges: Vec<Option<std::ops::Range<usize>>>,
    bytes: Writer,
}

impl SetBytes {
    fn new(sets: usize) -> Self {
        SetBytes {
            ranges: vec![None; sets],
            bytes: Writer::default(),
        }
    }

    /// Set `id`'s label messages (`label`), encoded now if not yet.
    fn get_or_encode<'a>(&mut self, st: &mut Strings<'a>, id: u32, label: &'a [Label]) -> &[u8] {
        let r = match &mut self.ranges[id as usize] {
            Some(r) => r.clone(),
            slot => {
                let start = self.bytes.buf.len();
                label_messages(st, &mut self.bytes, label);
                let r = start..self.bytes.buf.len();
                *slot = Some(r.clone());
                r
            }
        };
        &self.bytes.buf[r]
    }

    /// Set `id`'s label messages, encoded already.
    fn get(&self, id: u32) -> &[u8] {
        match &self.ranges[id as usize] {
            Some(r) => &self.bytes.buf[r.clone()],
            None => &[],
        }
    }
}

/// Everything after the samples: mappings, locations, functions, the string table and the
/// header's scalars.
fn tail<'a>(p: &'a Profile, st: &mut Strings<'a>, w: &mut Writer) {
    let mapping_x: Vec<(i64, i64)> = p
        .mapping
        .iter()
        .map(|m| (st.add(&m.filename), st.add(&m.build_id)))
        .collect();
    let function_x: Vec<(i64, i64, i64)> = p
        .function
        .iter()
        .map(|f| (st.add(&f.name), st.add(&f.system_name), st.add(&f.filename)))
        .collect();
    let drop_x = st.add(&p.drop_frames);
    let keep_x = st.add(&p.keep_frames);
    let period_x = (st.add(&p.period_type.r#type), st.add(&p.period_type.unit));
    let comment_x: Vec<i64> = p.comments.iter().map(|c| st.add(c)).collect();
    let default_x = st.add(&p.default_sample_type);
    let doc_x = st.add(&p.doc_url);

    for (m, &(file, build)) in p.mapping.iter().zip(&mapping_x) {
        w.message(3, |w| {
            w.uint_opt(1, m.id);
            w.uint_opt(2, m.memory_start);
            w.uint_opt(3, m.memory_limit);
            w.uint_opt(4, m.file_offset);
            w.int_opt(5, file);
            w.int_opt(6, build);
            w.bool_opt(7, m.has_functions);
            w.bool_opt(8, m.has_filenames);
            w.bool_opt(9, m.has_line_numbers);
            w.bool_opt(10, m.has_inline_frames);
        });
    }
    for l in &p.location {
        w.message(4, |w| {
            w.uint_opt(1, l.id);
            w.uint_opt(2, l.mapping.map_or(0, |m| p.mapping[m as usize].id));
            w.uint_opt(3, l.address);
            for ln in &l.line {
                w.message(4, |w| {
                    w.uint_opt(1, p.function[ln.function as usize].id);
                    w.int_opt(2, ln.line);
                    w.int_opt(3, ln.column);
                });
            }
            w.bool_opt(5, l.is_folded);
        });
    }
    for (f, &(n, sn, file)) in p.function.iter().zip(&function_x) {
        w.message(5, |w| {
            w.uint_opt(1, f.id);
            w.int_opt(2, n);
            w.int_opt(3, sn);
            w.int_opt(4, file);
            w.int_opt(5, f.start_line);
        });
    }
    for s in &st.table {
        w.bytes(6, s.as_bytes());
    }
    w.int_opt(7, drop_x);
    w.int_opt(8, keep_x);
    w.int_opt(9, p.time_nanos);
    w.int_opt(10, p.duration_nanos);
    if period_x != (0, 0) {
        w.message(11, |w| {
            w.int_opt(1, period_x.0);
            w.int_opt(2, period_x.1);
        });
    }
    w.int_opt(12, p.period);
    w.ints(13, comment_x.iter().map(|&c| c as u64));
    w.int(14, default_x);
    w.int_opt(15, doc_x);
}

/// Serializes a profile as gzip-compressed protobuf (what Go and pprof write to disk).
pub fn encode(p: &Profile) -> Vec<u8> {
    encode_samples(p, &p.sample[..])
}

/// [`encode`] of `p`'s header, locations and functions with `samples`.
fn encode_samples<S: Samples + ?Sized>(p: &Profile, samples: &S) -> Vec<u8> {
    // A gzip member (RFC 1952) as flate2's `GzEncoder` writes it at the fast level: no
    // name, mtime 0, XFL 4, OS unknown.
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]);
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0usize;
    let ok = DEFLATER.with(|c| {
        let mut c = c.borrow_mut();
        let z = c.get_or_insert_with(|| flate2::Compress::new(flate2::Compression::fast(), false));
        z.reset();
        let mut ok = true;
        encode_to(p, samples, &mut |chunk: &[u8]| {
            crc.update(chunk);
            len += chunk.len();
            ok = ok && deflate(z, chunk, &mut out, flate2::FlushCompress::None);
        });
        ok = ok && deflate(z, &[], &mut out, flate2::FlushCompress::Finish);
        if !ok {
            *c = None;
        }
        ok
    });
    if !ok {
        // Compressing from memory into memory cannot fail; if it did, the output is still
        // valid: the same bytes again, as stored blocks.
        let raw = encode_uncompressed_samples(p, samples);
        fallback(&raw, &mut out);
        crc = crc32fast::Hasher::new();
        crc.update(&raw);
        len = raw.len();
    }
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// Like [`encode`], with the compression spread over `workers` threads, for the big profiles
/// a merge of many writes (compressing is a third of such a merge). The output is still one
/// gzip member: each megabyte the encoder hands over is compressed on its own, ending at a
/// byte boundary with a sync flush (the last one with the final block), and the pieces are
/// joined in order, their CRC-32s combined, as pigz does. A piece does not look back into
/// the one before it, which costs a fraction of a percent in size.
pub fn encode_parallel(p: &Profile, workers: usize) -> Vec<u8> {
    encode_samples_parallel(p, &p.sample[..], workers)
}

/// [`encode_parallel`] of `p`'s header, locations and functions with `samples`. When the
/// samples number their label sets (a merge's do), the workers encode the samples too: each
/// set's labels are encoded first, in sample order (which gives the string table pprof's
/// order), and then any range of samples encodes on its own.
pub(crate) fn encode_samples_parallel<S: Samples + Sync + ?Sized>(
    p: &Profile,
    samples: &S,
    workers: usize,
) -> Vec<u8> {
    if workers <= 1 {
        return encode_samples(p, samples);
    }
    use std::sync::{Arc, Mutex, mpsc};
    type Piece = (usize, Option<Vec<u8>>, crc32fast::Hasher, usize);
    /// Bytes to compress, or samples to encode first.
    enum Work {
        Raw(Vec<u8>),
        Samples(std::ops::Range<usize>),
    }
    // With every set numbered, the label strings are added here, before any sample is
    // encoded; otherwise samples are encoded on this thread as the table grows.
    let mut st = Strings::new();
    let mut head_bytes = Writer::default();
    head(p, &mut st, &mut head_bytes);
    let mut sets = SetBytes::new(samples.label_sets());
    let numbered = samples.label_sets() > 0
        && (0..samples.len()).all(|i| {
            let s = samples.get(i);
            match s.label_set {
                Some(id) => {
                    sets.get_or_encode(&mut st, id, s.label);
                    true
                }
                None => false,
            }
        });
    let sets = &sets;
    std::thread::scope(|scope| {
        // At most `workers` pieces wait to be compressed: the encoder is held back, not memory.
        let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Work, bool)>(workers);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Piece>();
        for _ in 0..workers {
            let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
            scope.spawn(move || {
                let mut z = flate2::Compress::new(flate2::Compression::fast(), false);
                let mut w = Writer::default();
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, work, last)) = job else { return };
                    let raw = match work {
                        Work::Raw(raw) => raw,
                        Work::Samples(range) => {
                            w.buf.clear();
                            for i in range {
                                let s = samples.get(i);
                                let labels = s.label_set.map_or(&[][..], |id| sets.get(id));
                                sample_message(p, &mut w, &s, |w| w.buf.extend_from_slice(labels));
                            }
                            std::mem::take(&mut w.buf)
                        }
                    };
                    z.reset();
                    let mut out = Vec::with_capacity(raw.len() / 4 + 4096);
                    let flush = if last {
                        flate2::FlushCompress::Finish
                    } else {
                        flate2::FlushCompress::Sync
                    };
                    let ok = deflate(&mut z, &raw, &mut out, flush);
                    let mut crc = crc32fast::Hasher::new();
                    crc.update(&raw);
                    if done_tx
                        .send((seq, ok.then_some(out), crc, raw.len()))
                        .is_err()
                    {
                        return;
                    }
                    w.buf = raw; // its buffer serves the next range
                }
            });
        }
        drop(done_tx);
        let mut seq = 0usize;
        let mut send = |work: Work, last: bool| {
            let _ = job_tx.send((seq, work, last));
            seq += 1;
        };
        if numbered {
            send(Work::Raw(head_bytes.buf), false);
            // About a megabyte of encoding per range.
            let per = samples
                .len()
                .div_ceil(samples.len().div_ceil(SAMPLES_PER_PIECE).max(1));
            let mut start = 0;
            while start < samples.len() {
                let end = (start + per).min(samples.len());
                send(Work::Samples(start..end), false);
                start = end;
            }
            let mut t = Writer::default();
            tail(p, &mut st, &mut t);
            send(Work::Raw(t.buf), true);
        } else {
            // The encoder hands over borrowed chunks; the newest one is held back until the
            // next arrives, so that the last piece is known when it is sent.
            let mut held: Option<Vec<u8>> = None;
            encode_to(p, samples, &mut |chunk: &[u8]| {
                if let Some(prev) = held.replace(chunk.to_vec()) {
                    send(Work::Raw(prev), false);
                }
            });
            send(Work::Raw(held.take().unwrap_or_default()), true);
        }
        drop(job_tx);
        let mut pieces: Vec<Option<Piece>> = (0..seq).map(|_| None).collect();
        for piece in done_rx {
            let i = piece.0;
            pieces[i] = Some(piece);
        }
        let mut out = Vec::with_capacity(
            10 + 8
                + pieces
                    .iter()
                    .flatten()
                    .map(|p| p.1.as_ref().map_or(0, Vec::len))
                    .sum::<usize>(),
        );
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]);
        let mut crc = crc32fast::Hasher::new();
        let mut len = 0usize;
        for piece in &pieces {
            match piece {
                Some((_, Some(bytes), c, n)) => {
                    out.extend_from_slice(bytes);
                    crc.combine(c);
                    len += n;
                }
                // A compressor failed (it cannot, from memory into memory) or a thread died:
                // encode on this thread instead.
                _ => return encode_samples(p, samples),
            }
        }
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out
    })
}

/// Feeds `input` to the compressor, growing `out` as needed; with a sync flush, until the
/// output ends at a byte boundary; with `Finish`, until the end of the stream is written.
/// False if the compressor failed.
fn deflate(
    z: &mut flate2::Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: flate2::FlushCompress,
) -> bool {
    let finish = flush == flate2::FlushCompress::Finish;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(1 << 16));
        }
        let before = z.total_in();
        match z.compress_vec(input, out, flush) {
            Ok(flate2::Status::StreamEnd) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        input = &input[(z.total_in() - before) as usize..];
        if !finish && input.is_empty() && out.len() < out.capacity() {
            return true;
        }
    }
}

thread_local! {
    /// One compressor per thread, reset between profiles: its state is far larger than a
    /// typical profile, and allocating it each time dominated encoding small deltas.
    static DEFLATER: std::cell::RefCell<Option<flate2::Compress>> =
        const { std::cell::RefCell::new(None) };
}

/// Stored (uncompressed) deflate blocks: always valid, used only if compression failed.
fn fallback(raw: &[u8], out: &mut Vec<u8>) {
    out.truncate(10);
    let mut chunks = raw.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        let n = c.len() as u16;
        out.push(last);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_block_fallback_is_valid_gzip() {
        for n in [0usize, 1, 0xffff, 0x10000, 200_000] {
            let raw: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];
            fallback(&raw, &mut out);
            out.extend_from_slice(&crc32fast::hash(&raw).to_le_bytes());
            out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            assert_eq!(crate::gunzip(&out, 1 << 30).unwrap(), raw, "{n} bytes");
        }
    }

    #[test]
    fn parallel_encoding_is_one_gzip_member_of_the_same_bytes() {
        // Big enough for several pieces (the encoder hands over a megabyte at a time).
        let mut p = Profile {
            sample_type: vec![crate::ValueType::new("samples", "count")],
            location: (1..=64u64)
                .map(|id| crate::Location {
                    id,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        for i in 0..200_000u32 {
            p.sample.push(crate::Sample {
                location: vec![i % 64, (i / 64) % 64, (i * 7) % 64],
                value: vec![i64::from(i)],
                label: vec![crate::Label {
                    key: Str::from("minute"),
                    value: LabelValue::Str(Str::from(format!("{}", i % 1440))),
                }],
            });
        }
        let raw = encode_uncompressed(&p);
        assert!(raw.len() > 3 * CHUNK, "{} bytes", raw.len());
        for workers in [1, 2, 3] {
            let gz = encode_parallel(&p, workers);
            // One member: the header once, and the trailer's size is the whole encoding's.
            let n = gz.len();
            let size = u32::from_le_bytes([gz[n - 4], gz[n - 3], gz[n - 2], gz[n - 1]]);
            assert_eq!(size as usize, raw.len(), "{workers} workers");
            assert_eq!(
                crate::gunzip(&gz, 1 << 30).unwrap(),
                raw,
                "{workers} workers"
            );
        }
        // A profile smaller than one piece is one piece, with the final block.
        let small = Profile {
            sample_type: p.sample_type.clone(),
            ..Default::default()
        };
        let gz = encode_parallel(&small, 2);
        assert_eq!(crate::decode(&gz).unwrap(), small);
    }

    #[test]
    fn reused_compressor_gives_identical_output() {
        let p = Profile {
            sample_type: vec![crate::ValueType::new("samples", "count")],
            sample: vec![crate::Sample {
                value: vec![3],
                ..Default::default()
            }],
            ..Default::default()
        };
        let a = encode(&p);
        let b = encode(&p);
        assert_eq!(a, b);
        assert_eq!(crate::decode(&a).unwrap(), p);
    }
}
