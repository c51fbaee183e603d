//! Malformed input gets a precise error (kind, field, byte offset), never a panic.

use gocost_pprof::{DecodeOptions, ErrorKind, Profile, Sample, ValueType, decode, decode_with};

fn good() -> Vec<u8> {
    let p = Profile {
        sample_type: vec![
            ValueType::new("samples", "count"),
            ValueType::new("cpu", "nanoseconds"),
        ],
        sample: vec![Sample {
            value: vec![1, 10],
            ..Default::default()
        }],
        ..Default::default()
    };
    gocost_pprof::encode_uncompressed(&p)
}

#[test]
fn empty_input() {
    assert_eq!(decode(&[]).unwrap_err().kind, ErrorKind::Empty);
}

#[test]
fn every_truncation_is_an_error_or_a_valid_profile() {
    let b = good();
    for n in 1..b.len() {
        // Never panics; cuts inside a field are reported with an offset.
        if let Err(e) = decode(&b[..n]) {
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn truncated_message_names_field_and_offset() {
    let b = good();
    // The first field is sample_type[0] (tag 0x0a, length 4); cut inside it.
    let e = decode(&b[..3]).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
    assert_eq!(e.offset, Some(0));
    assert_eq!(e.field, "Profile");
}

#[test]
fn overlong_varint() {
    let mut b = vec![0x48]; // field 9 (time_nanos), varint
    b.extend([0xff; 11]);
    let e = decode(&b).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadVarint);
    assert_eq!(e.offset, Some(1));
}

#[test]
fn wrong_wire_type() {
    // field 2 (sample) as a varint
    let e = decode(&[0x10, 0x05]).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::WireType {
            expected: 2,
            got: 0
        }
    );
    assert_eq!(e.field, "Profile.sample[0]");
}

#[test]
fn string_index_out_of_range() {
    // sample_type { type: 99, unit: 1 }, string_table [""]
    let e = decode(&[0x0a, 0x04, 0x08, 99, 0x10, 0x01, 0x32, 0x00]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StringIndex { index: 99, len: 1 });
    assert_eq!(e.field, "Profile.sample_type[0].type");
    assert_eq!(e.offset, Some(0));
}

#[test]
fn first_string_must_be_empty() {
    let e = decode(&[0x32, 0x01, b'x']).unwrap_err();
    assert_eq!(e.kind, ErrorKind::FirstStringNotEmpty);
}

#[test]
fn unknown_location_reference() {
    // sample { location_id: 7, value: 1 } with one sample type.
    let mut b = vec![0x0a, 0x02, 0x08, 0x00];
    b.extend([0x12, 0x04, 0x08, 0x07, 0x10, 0x01, 0x32, 0x00]);
    let e = decode(&b).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Invalid(_)), "{e}");
    assert_eq!(e.field, "Profile.sample[0].location_id[0]");
}

#[test]
fn value_count_mismatch() {
    let mut b = vec![0x0a, 0x00]; // one sample type
    b.extend([0x12, 0x04, 0x10, 0x01, 0x10, 0x02]); // two values
    b.extend([0x32, 0x00]);
    let e = decode(&b).unwrap_err();
    assert!(
        e.to_string().contains("sample has 2 values vs. 1 types"),
        "{e}"
    );
}

#[test]
fn concatenated_profiles() {
    let mut b = good();
    b.extend([0x48, 0x01]);
    let mut c = b.clone();
    c.extend([0x48, 0x02]);
    assert_eq!(decode(&c).unwrap_err().kind, ErrorKind::Concatenated);
}

#[test]
fn gzip_bomb_is_capped() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 8 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    let e = decode_with(
        &bomb,
        &DecodeOptions {
            max_size: 1 << 20,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge { limit: 1 << 20 });
}

#[test]
fn corrupt_gzip() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &good()).unwrap();
    let mut z = gz.finish().unwrap();
    z.truncate(z.len() - 6);
    assert!(matches!(decode(&z).unwrap_err().kind, ErrorKind::Gzip(_)));
}

#[test]
fn packed_and_unpacked_values_decode_alike() {
    // value [1, 10] unpacked (tag 0x10 twice) vs packed (tag 0x12, len 2)
    let head = [0x0a, 0x00, 0x0a, 0x00];
    let mut a = head.to_vec();
    a.extend([0x12, 0x04, 0x10, 0x01, 0x10, 0x0a, 0x32, 0x00]);
    let mut b = head.to_vec();
    b.extend([0x12, 0x04, 0x12, 0x02, 0x01, 0x0a, 0x32, 0x00]);
    assert_eq!(decode(&a).unwrap(), decode(&b).unwrap());
}

fn gzip_with(f: impl FnOnce(flate2::GzBuilder) -> flate2::GzBuilder, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = f(flate2::GzBuilder::new()).write(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

#[test]
fn gzip_members_headers_and_checksums() {
    let raw = good();
    let plain = decode(&raw).unwrap();
    // Optional header fields (name, comment, extra) are skipped.
    let named = gzip_with(
        |b| b.filename("cpu.pb").comment("hi").extra(vec![1, 2, 3]),
        &raw,
    );
    assert_eq!(decode(&named).unwrap(), plain);
    // Concatenated members decompress to the concatenation, as Go's reader does.
    let (a, b) = raw.split_at(raw.len() / 2);
    let mut two = gzip_with(|g| g, a);
    two.extend(gzip_with(|g| g, b));
    assert_eq!(decode(&two).unwrap(), plain);
    // A flipped byte in the trailer is a checksum error; trailing garbage is an error.
    let mut bad = gzip_with(|g| g, &raw);
    let n = bad.len();
    bad[n - 6] ^= 0xff;
    let e = decode(&bad).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    let mut trailing = gzip_with(|g| g, &raw);
    trailing.extend_from_slice(b"junk");
    assert!(matches!(
        decode(&trailing).unwrap_err().kind,
        ErrorKind::Gzip(_)
    ));
    // Every truncation of a gzip stream is an error, never a panic.
    let z = gzip_with(|g| g, &raw);
    for n in 2..z.len() {
        assert!(decode(&z[..n]).is_err(), "truncated at {n} decoded");
    }
}

#[test]
fn legacy_formats_are_recognised_and_named() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/legacy");
    let want = [
        ("cppbench.contention", "contention"),
        ("cppbench.cpu", "legacy binary CPU profile"),
        ("cppbench.growth", "text heap profile"),
        ("cppbench.heap", "text heap profile"),
        ("cppbench.thread", "thread dump"),
        ("cppbench.thread.all", "thread dump"),
        ("cppbench.thread.none", "thread dump"),
        ("go.crc32.cpu", "Go before 1.9"),
        ("go.godoc.thread", "threadcreate profile in text form"),
        ("gobench.cpu", "Go before 1.9"),
        ("gobench.heap", "text heap profile"),
        ("java.contention", "Java"),
        ("java.cpu", "Java CPU"),
        ("java.heap", "Java"),
    ];
    for (file, what) in want {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let e = decode(&bytes).unwrap_err();
        assert!(
            matches!(e.kind, ErrorKind::LegacyFormat(f) if f.contains(what)),
            "{file}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("not profile.proto") && msg.contains("go tool pprof -proto"),
            "{msg}"
        );
        // gzip'd the same.
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &bytes).unwrap();
        let e = decode(&z.finish().unwrap()).unwrap_err();
        assert!(
            matches!(e.kind, ErrorKind::LegacyFormat(_)),
            "{file} gzip'd: {e}"
        );
    }
}
