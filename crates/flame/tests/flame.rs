//! Flame graph tree math and the three output formats.

use gocost_flame::{
    Frame, Options, SpeedscopeUnit, Tree, write_folded, write_speedscope, write_svg,
};

fn f(n: &str) -> Frame {
    Frame {
        name: n.to_string(),
        inline: false,
    }
}

fn fi(n: &str) -> Frame {
    Frame {
        name: n.to_string(),
        inline: true,
    }
}

fn sample_tree() -> Tree {
    let mut t = Tree::new();
    t.add(&[f("main.main"), f("main.work"), fi("main.mix")], 30);
    t.add(&[f("main.main"), f("main.work")], 10);
    t.add(
        &[f("main.main"), f("main.fib"), f("main.fib"), f("main.fib")],
        20,
    );
    t.add(&[f("runtime.goexit"), f("runtime.gcBgMarkWorker")], 5);
    t
}

fn svg(t: &Tree) -> String {
    let fmt = |v: i64| format!("{v}ms");
    let opts = Options {
        title: "demo — cpu".into(),
        subtitle: "Type: cpu".into(),
        format_value: &fmt,
        ..Options::default()
    };
    let mut out = Vec::new();
    write_svg(t, &opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A minimal well-formedness check: balanced tags, no raw `<`/`&` in text, one root.
fn check_xml(s: &str) {
    let body =
        s.split("<script>").next().unwrap().to_string() + s.split("</script>").nth(1).unwrap_or("");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body.as_str();
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        for (j, _) in text.match_indices('&') {
            let ent = &text[j..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "unescaped & in {text:?}"
            );
        }
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn tree_totals_and_self_values() {
    let t = sample_tree();
    assert_eq!(t.total(), 65);
    // root, main.main, main.work, main.mix(inline), main.fib×3, runtime.goexit, gcBgMarkWorker
    assert_eq!(t.node_count(), 8);
    let main = t.sorted_children(0)[0];
    assert_eq!(t.name(main), "main.main");
    assert_eq!(t.nodes[main as usize].total, 60);
    assert_eq!(t.nodes[main as usize].self_value, 0);
    let kids = t.sorted_children(main);
    let names: Vec<String> = kids.iter().map(|&k| t.label(k)).collect();
    assert_eq!(names, ["main.fib", "main.work"]);
    let work = kids[1];
    assert_eq!(t.nodes[work as usize].self_value, 10);
    assert_eq!(t.nodes[work as usize].total, 40);
    // Recursion is not merged: three nested main.fib boxes.
    assert_eq!(
        t.path(t.sorted_children(t.sorted_children(kids[0])[0])[0])
            .len(),
        4
    );
}

#[test]
fn inline_and_not_inline_are_distinct_boxes() {
    let mut t = Tree::new();
    t.add(&[f("main.a"), fi("main.b")], 1);
    t.add(&[f("main.a"), f("main.b")], 2);
    let a = t.sorted_children(0)[0];
    assert_eq!(t.sorted_children(a).len(), 2);
}

#[test]
fn folded_is_exact_and_round_trips() {
    let t = sample_tree();
    let mut out = Vec::new();
    write_folded(&t, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "main.main;main.fib;main.fib;main.fib 20\n\
         main.main;main.work 10\n\
         main.main;main.work;main.mix (inline) 30\n\
         runtime.goexit;runtime.gcBgMarkWorker 5\n"
    );
    let mut back = Tree::new();
    for line in text.lines() {
        let (stack, v) = line.rsplit_once(' ').unwrap();
        let frames: Vec<Frame> = stack
            .split(';')
            .map(|s| match s.strip_suffix(" (inline)") {
                Some(n) => fi(n),
                None => f(s),
            })
            .collect();
        back.add(&frames, v.parse().unwrap());
    }
    let mut again = Vec::new();
    write_folded(&back, &mut again).unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), text);
}

#[test]
fn folded_escapes_separator() {
    let mut t = Tree::new();
    t.add(&[f("a;b")], 1);
    let mut out = Vec::new();
    write_folded(&t, &mut out).unwrap();
    assert_eq!(out, b"a:b 1\n");
}

#[test]
fn speedscope_follows_the_schema() {
    let t = sample_tree();
    let mut out = Vec::new();
    write_speedscope(&t, "cpu", SpeedscopeUnit::Nanoseconds, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    let p = &v["profiles"][0];
    assert_eq!(p["type"], "sampled");
    assert_eq!(p["unit"], "nanoseconds");
    let weights: i64 = p["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_i64().unwrap())
        .sum();
    assert_eq!(weights, 65);
    assert_eq!(p["endValue"], 65);
    let nframes = v["shared"]["frames"].as_array().unwrap().len();
    for s in p["samples"].as_array().unwrap() {
        for i in s.as_array().unwrap() {
            assert!((i.as_u64().unwrap() as usize) < nframes);
        }
    }
    assert_eq!(
        p["samples"].as_array().unwrap().len(),
        p["weights"].as_array().unwrap().len()
    );
}

#[test]
fn svg_is_well_formed_escaped_and_deterministic() {
    let mut t = sample_tree();
    t.add(&[f("main.F[...]"), f(r#"pkg.(*T[a&b]).M"<'>"#)], 7);
    let a = svg(&t);
    check_xml(&a);
    assert!(a.contains("pkg.(*T[a&amp;b]).M&quot;&lt;&#39;&gt;"));
    assert!(
        a.contains(r#"<g class="f""#)
            && a.contains(r#"id="details""#)
            && a.contains(r#"id="search""#)
    );
    // Insertion order does not matter.
    let mut u = Tree::new();
    u.add(&[f("main.F[...]"), f(r#"pkg.(*T[a&b]).M"<'>"#)], 7);
    u.add(&[f("runtime.goexit"), f("runtime.gcBgMarkWorker")], 5);
    u.add(
        &[f("main.main"), f("main.fib"), f("main.fib"), f("main.fib")],
        20,
    );
    u.add(&[f("main.main"), f("main.work")], 10);
    u.add(&[f("main.main"), f("main.work"), fi("main.mix")], 30);
    assert_eq!(svg(&u), a);
}

#[test]
fn svg_of_a_diff_and_of_nothing() {
    let mut t = Tree::new();
    t.add(&[f("main.main"), f("main.grew")], 50);
    t.add(&[f("main.main"), f("main.shrank")], -20);
    let s = svg(&t);
    check_xml(&s);
    assert!(s.contains("of the change"));
    let empty = svg(&Tree::new());
    check_xml(&empty);
    assert!(empty.contains("no samples"));
}

#[test]
fn svg_snapshot() {
    let got = svg(&sample_tree());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/small.svg");
    if std::env::var_os("GOCOST_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with GOCOST_BLESS=1)", path.display()));
    assert_eq!(
        got, want,
        "SVG changed; review and bless with GOCOST_BLESS=1"
    );
}

#[test]
fn fifty_thousand_nodes() {
    let mut t = Tree::new();
    let names: Vec<String> = (0..500)
        .map(|i| format!("pkg{}.func{}", i % 37, i))
        .collect();
    // A deterministic pseudo-random walk (LCG) yields ever new stacks.
    let mut x: u64 = 42;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    while t.node_count() < 50_000 {
        let depth = 3 + next() % 40;
        let stack: Vec<Frame> = (0..depth)
            .map(|d| f(&names[(next() % 4 + d * 11) % names.len()]))
            .collect();
        t.add(&stack, 1 + (next() % 100) as i64);
    }
    let start = std::time::Instant::now();
    let s = svg(&t);
    eprintln!(
        "50k-node flame graph: {} bytes of SVG in {:?}",
        s.len(),
        start.elapsed()
    );
    check_xml(&s);
}
