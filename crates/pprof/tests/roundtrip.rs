//! Decode → encode → decode is lossless for every profile in the corpus, and merging follows
//! pprof's rules.

use std::path::PathBuf;

use gocost_pprof::{decode, encode, encode_uncompressed, merge};

fn corpus() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/profiles");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "gz" || x == "pprof") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "corpus missing: {out:?}");
    out
}

#[test]
fn roundtrip_is_lossless() {
    for path in corpus() {
        let bytes = std::fs::read(&path).unwrap();
        let p = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let again = decode(&encode(&p)).unwrap();
        assert_eq!(p, again, "{}", path.display());
        // Encoding is deterministic and stable under a second round trip.
        assert_eq!(encode_uncompressed(&p), encode_uncompressed(&again));
    }
}

#[test]
fn merging_a_profile_with_itself_doubles_values() {
    for path in corpus() {
        let p = decode(&std::fs::read(&path).unwrap()).unwrap();
        let m = merge::merge(vec![p.clone(), p.clone()]).unwrap();
        let sum = |p: &gocost_pprof::Profile| -> Vec<i64> {
            let mut t = vec![0i64; p.sample_type.len()];
            for s in &p.sample {
                for (a, b) in t.iter_mut().zip(&s.value) {
                    *a += b;
                }
            }
            t
        };
        let want: Vec<i64> = sum(&p).iter().map(|v| v * 2).collect();
        assert_eq!(sum(&m), want, "{}", path.display());
        assert_eq!(m.duration_nanos, p.duration_nanos * 2);
        assert_eq!(m.time_nanos, p.time_nanos);
        assert!(m.sample.len() <= p.sample.len());
    }
}

/// A merge of flat-decoded profiles (`decode_flat_with` + `Merger::add_flat`, what
/// `gocost merge` does) is the merge of the model's profiles: the same profile, and encoded
/// straight from the merge, the same bytes. The inputs cover labels (string and numeric,
/// shared between profiles), samples that cancel out (a profile and its negation: the merge
/// compacts), and every profile kind of the corpus.
#[test]
fn flat_merge_is_the_model_merge() {
    use gocost_pprof::{DecodeOptions, Merger, decode_flat_with, encode_parallel};
    let opts = DecodeOptions::default();
    for path in corpus() {
        let bytes = std::fs::read(&path).unwrap();
        let p = decode(&bytes).unwrap();
        if p.sample.is_empty() {
            continue;
        }
        // A copy with every value negated but the first sample's: merged with the profile,
        // all but one sample sum to zero (compacted away); with the profile twice, to the
        // profile's own values.
        let mut neg = p.clone();
        for (i, s) in neg.sample.iter_mut().enumerate() {
            if i > 0 {
                s.value.iter_mut().for_each(|v| *v = -*v);
            }
        }
        let neg = encode(&neg);
        for inputs in [vec![&bytes, &neg], vec![&bytes, &neg, &bytes]] {
            let mut model = Merger::new(&p);
            let mut flat = Merger::new(&p);
            for b in inputs {
                model.add_owned(decode(b).unwrap()).unwrap();
                let (q, samples) = decode_flat_with(b, &opts).unwrap();
                assert!(q.sample.is_empty());
                flat.add_flat(&q, &samples).unwrap();
            }
            let want = model.finish();
            let got_bytes = flat.encode_parallel(2);
            assert_eq!(
                decode(&got_bytes).unwrap(),
                want,
                "{}: encoded from the flat merge",
                path.display()
            );
            // The same protobuf bytes (the gzip pieces may be cut elsewhere).
            let gunzip = |b: &[u8]| gocost_pprof::gunzip(b, u64::MAX).unwrap();
            assert_eq!(
                gunzip(&got_bytes),
                gunzip(&encode_parallel(&want, 2)),
                "{}: bytes",
                path.display()
            );
            assert_eq!(
                gunzip(&got_bytes),
                encode_uncompressed(&want),
                "{}",
                path.display()
            );
        }
    }
}

/// The flat decode is the model's decode with its samples kept apart: on every corpus
/// profile and every input the fuzzers ever crashed on, it fails with the same error or
/// gives the same samples.
#[test]
fn flat_decode_agrees_with_the_model_decode() {
    use gocost_pprof::{DecodeOptions, Samples, decode_flat_with, decode_with};
    let regressions = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&regressions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    inputs.extend(corpus());
    for labels in [true, false] {
        let opts = DecodeOptions {
            labels,
            ..DecodeOptions::default()
        };
        for path in &inputs {
            let bytes = std::fs::read(path).unwrap();
            match (decode_with(&bytes, &opts), decode_flat_with(&bytes, &opts)) {
                (Ok(p), Ok((q, samples))) => {
                    assert_eq!(samples.to_samples(), p.sample, "{}", path.display());
                    let mut p = p;
                    p.sample.clear();
                    assert_eq!(q, p, "{}", path.display());
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{}", path.display()),
                (a, b) => panic!("{}: {:?} vs {:?}", path.display(), a.err(), b.err()),
            }
        }
    }
}
