//! Replays what the `go_buildinfo` fuzz target once failed on (`fuzz/regressions/buildinfo/`):
//! module text that parses prints as `go version -m` and reads back the same.

use gocost_buildcost::buildinfo::parse_modinfo;

#[test]
fn build_info_regressions_read_back() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/buildinfo");
    let mut n = 0;
    for e in std::fs::read_dir(&root).expect("fuzz/regressions/buildinfo exists") {
        let data = std::fs::read(e.expect("dir entry").path()).expect("readable");
        let text = String::from_utf8_lossy(&data);
        let bi = parse_modinfo(&text).expect("the regression inputs parse");
        let printed: String = bi
            .to_text()
            .lines()
            .skip(1)
            .map(|l| format!("{}\n", l.strip_prefix('\t').unwrap_or(l)))
            .collect();
        assert_eq!(parse_modinfo(&printed).as_ref(), Ok(&bi), "{printed:?}");
        n += 1;
    }
    assert!(n > 0);
}
