//! Any bytes as Go's embedded build info (the `\xff Go buildinf:` blob, both the Go ≥ 1.18
//! inline layout and the older pointer layout, whose pointers read a second slice of the
//! input as memory at 0x1000) and as its module text: a `BuildInfo` or an error naming the
//! byte offset or line, never a panic; what parses prints as `go version -m` and parses back.
#![no_main]

use gocost_buildcost::buildinfo::{self, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match buildinfo::parse_modinfo(text) {
            Ok(bi) => {
                // The module lines of `go version -m`, without their tab, read back the same.
                let printed: String = bi
                    .to_text()
                    .lines()
                    .skip(1)
                    .map(|l| format!("{}\n", l.strip_prefix('\t').unwrap_or(l)))
                    .collect();
                if !bi
                    .settings
                    .iter()
                    .any(|(k, v)| k.contains(['"', '\n', '=']) || v.contains('\n'))
                    && bi.modules().all(|m| {
                        !m.path.contains(['\t', '\n'])
                            && !m.version.contains(['\t', '\n'])
                            && !m.sum.contains(['\t', '\n'])
                    })
                    && !bi.path.contains('\n')
                {
                    let again = buildinfo::parse_modinfo(&printed);
                    assert_eq!(
                        again.as_ref().map(|b| b.modules().count()).ok(),
                        Some(bi.modules().count()),
                        "{printed:?}"
                    );
                }
            }
            Err((line, msg)) => assert!(line >= 1 && !msg.is_empty()),
        }
    }
    let (blob, mem) = data.split_at(data.len() / 2);
    let mut b = MAGIC.to_vec();
    b.extend(blob);
    let read = |addr: u64, len: u64| {
        let start = usize::try_from(addr.checked_sub(0x1000)?).ok()?;
        mem.get(start..start.checked_add(usize::try_from(len).ok()?)?)
    };
    if let Err(e) = buildinfo::parse_blob(&b, 0, read) {
        assert!(e.offset.is_some_and(|o| o <= b.len() as u64), "{e}");
    }
});
