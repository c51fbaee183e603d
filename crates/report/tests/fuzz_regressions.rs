//! Replays every input the fuzzers ever crashed on (`fuzz/regressions/`), plus the seed
//! corpus, through the decode→report path: none may panic.

mod fuzz_support;

#[test]
fn fuzz_regressions_do_not_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&root).expect("fuzz/regressions exists") {
        let path = e.expect("dir entry").path();
        if path.is_file() {
            let data = std::fs::read(&path).expect("readable");
            fuzz_support::run(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no regression inputs in {}", root.display());
}
