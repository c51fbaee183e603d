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

/// The stacks of [`sample_tree`], in an order that is neither sorted nor reverse-sorted.
fn sample_stacks() -> Vec<(Vec<Frame>, i64)> {
    vec![
        (vec![f("main.main"), f("main.work"), fi("main.mix")], 30),
        (vec![f("main.main"), f("main.work")], 10),
        (
            vec![f("main.main"), f("main.fib"), f("main.fib"), f("main.fib")],
            20,
        ),
        (vec![f("runtime.goexit"), f("runtime.gcBgMarkWorker")], 5),
    ]
}

fn tree_of(stacks: &[(Vec<Frame>, i64)]) -> Tree {
    let mut t = Tree::new();
    for (s, v) in stacks {
        t.add(s, *v);
    }
    t
}

fn sample_tree() -> Tree {
    tree_of(&sample_stacks())
}

/// Every distinct stack with a non-zero self value, sorted.
fn stacks_of(t: &Tree) -> Vec<(Vec<Frame>, i64)> {
    let mut out = Vec::new();
    t.walk(|id, n| {
        if n.self_value != 0 {
            let frames = t
                .path(id)
                .into_iter()
                .map(|p| Frame {
                    name: t.name(p).to_string(),
                    inline: t.node(p).inline,
                })
                .collect();
            out.push((frames, n.self_value));
        }
    });
    out.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
    out
}

fn folded(t: &Tree) -> String {
    let mut out = Vec::new();
    write_folded(t, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Parses folded stacks: the value after the last space, frames split at `;`, a ` (inline)`
/// suffix marking inlined frames.
fn parse_folded(text: &str) -> Tree {
    let mut t = Tree::new();
    for line in text.lines() {
        let (stack, v) = line.rsplit_once(' ').unwrap();
        let frames: Vec<Frame> = stack
            .split(';')
            .map(|s| match s.strip_suffix(" (inline)") {
                Some(n) => fi(n),
                None => f(s),
            })
            .collect();
        t.add(&frames, v.parse().unwrap());
    }
    t
}

fn speedscope(t: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    write_speedscope(t, "cpu", SpeedscopeUnit::Nanoseconds, &mut out).unwrap();
    out
}

fn svg_with(t: &Tree, tweak: impl FnOnce(&mut Options)) -> String {
    let fmt = |v: i64| format!("{v}ms");
    let mut opts = Options {
        title: "demo — cpu".into(),
        subtitle: "Type: cpu · Total: 65ms".into(),
        format_value: &fmt,
        ..Options::default()
    };
    tweak(&mut opts);
    let mut out = Vec::new();
    write_svg(t, &opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn svg(t: &Tree) -> String {
    svg_with(t, |_| {})
}

/// Checks `&` in text or an attribute value starts one of the entities we write.
fn check_entities(s: &str, ctx: &str) {
    for (j, _) in s.match_indices('&') {
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|e| s[j..].starts_with(e)),
            "unescaped & in {ctx}: {s:?}"
        );
    }
}

/// A minimal XML well-formedness check: one root element, balanced tags, quoted attributes
/// without raw `<` or bare `&`, no bare `&` in text, CDATA sections closed.
fn check_xml(doc: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = doc;
    loop {
        let i = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..i];
        if stack.is_empty() {
            assert!(text.trim().is_empty(), "text outside the root: {text:?}");
        }
        check_entities(text, "text");
        rest = &rest[i..];
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            assert!(!stack.is_empty(), "CDATA outside the root");
            let end = r.find("]]>").expect("unclosed CDATA");
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").expect("unclosed comment") + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>").expect("unclosed <?") + 2..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').expect("unclosed end tag");
            let name = r[..end].trim();
            assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            rest = &r[end + 1..];
            continue;
        }
        // A start tag: name, then name="value" pairs, then > or />.
        let r = &rest[1..];
        let name_end = r
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .expect("unclosed tag");
        let name = &r[..name_end];
        assert!(!name.is_empty(), "empty tag name near {:?}", &r[..20]);
        let mut a = &r[name_end..];
        let self_closing;
        loop {
            a = a.trim_start();
            if let Some(x) = a.strip_prefix("/>") {
                self_closing = true;
                a = x;
                break;
            }
            if let Some(x) = a.strip_prefix('>') {
                self_closing = false;
                a = x;
                break;
            }
            let eq = a.find('=').expect("attribute without =");
            let attr = a[..eq].trim();
            assert!(
                !attr.is_empty() && !attr.contains(['<', '>', '"', ' ']),
                "bad attribute name {attr:?} in <{name}>"
            );
            let v = a[eq + 1..].trim_start();
            let q = v.chars().next().expect("attribute without value");
            assert!(
                q == '"' || q == '\'',
                "unquoted attribute {attr} in <{name}>"
            );
            let close = v[1..].find(q).expect("unclosed attribute value") + 1;
            let value = &v[1..close];
            assert!(!value.contains('<'), "raw < in {attr}={value:?}");
            check_entities(value, attr);
            a = &v[close + 1..];
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name);
        }
        rest = a;
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "one root element");
}

#[test]
fn the_xml_checker_catches_mistakes() {
    check_xml(r#"<?xml version="1.0"?><a x="1&amp;"><b/>t &lt; &#39;<![CDATA[ & < ]]></a>"#);
    for bad in [
        "<a><b></a>",
        "<a>&</a>",
        r#"<a x="<"/>"#,
        r#"<a x="&"/>"#,
        "<a/><b/>",
        "<a><![CDATA[</a>",
        "<a>",
    ] {
        assert!(
            std::panic::catch_unwind(|| check_xml(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}

#[test]
fn tree_totals_and_self_values() {
    let t = sample_tree();
    assert_eq!(t.total(), 65);
    assert_eq!(t.abs_total(), 65);
    assert!(!t.has_negative());
    // main.main, main.work, main.mix(inline), main.fib×3, runtime.goexit, gcBgMarkWorker
    assert_eq!(t.node_count(), 8);
    let top = t.sorted_children(Tree::ROOT);
    let names: Vec<&str> = top.iter().map(|&k| t.name(k)).collect();
    assert_eq!(names, ["main.main", "runtime.goexit"]);
    let main = t.node(top[0]);
    assert_eq!((main.total, main.self_value, main.depth), (60, 0, 1));
    let kids = t.sorted_children(top[0]);
    let labels: Vec<String> = kids.iter().map(|&k| t.label(k)).collect();
    assert_eq!(labels, ["main.fib", "main.work"]);
    let work = t.node(kids[1]);
    assert_eq!((work.total, work.self_value), (40, 10));
    let mix = t.sorted_children(kids[1])[0];
    assert_eq!(t.label(mix), "main.mix (inline)");
    assert_eq!(t.node(mix).self_value, 30);
    assert_eq!(t.path(mix), [top[0], kids[1], mix]);
}

#[test]
fn recursion_is_not_folded() {
    let mut t = Tree::new();
    t.add(&[f("a"), f("a"), f("a")], 1);
    t.add(&[f("a")], 2);
    t.add(&[f("a"), f("a")], 4);
    assert_eq!(t.node_count(), 3);
    let mut got = Vec::new();
    t.walk(|_, n| got.push((n.depth, n.total, n.self_value)));
    assert_eq!(got, [(1, 7, 2), (2, 5, 4), (3, 1, 1)]);
}

#[test]
fn inline_and_not_inline_are_distinct_boxes() {
    let mut t = Tree::new();
    t.add(&[f("main.a"), fi("main.b")], 1);
    t.add(&[f("main.a"), f("main.b")], 2);
    t.add(&[f("main.a"), fi("main.b")], 4);
    let a = t.sorted_children(Tree::ROOT)[0];
    let kids = t.sorted_children(a);
    assert_eq!(kids.len(), 2);
    // Non-inlined first, then the inlined one.
    assert_eq!(
        kids.iter()
            .map(|&k| (t.label(k), t.node(k).total))
            .collect::<Vec<_>>(),
        [
            ("main.b".to_string(), 2),
            ("main.b (inline)".to_string(), 5)
        ]
    );
}

#[test]
fn zero_values_and_empty_stacks() {
    let mut t = Tree::new();
    t.add(&[f("a")], 0);
    assert_eq!((t.node_count(), t.total()), (0, 0));
    t.add(&[], 3);
    assert_eq!(
        (t.node_count(), t.total(), t.node(Tree::ROOT).self_value),
        (0, 3, 3)
    );
    // The root's self value is not a stack: nothing to fold.
    assert_eq!(folded(&t), "");
}

#[test]
fn negative_values_are_summed_signed_and_sized_by_magnitude() {
    let mut t = Tree::new();
    t.add(&[f("main.main"), f("main.grew")], 50);
    t.add(&[f("main.main"), f("main.shrank")], -20);
    t.add(&[f("main.main"), f("main.grew")], -5);
    assert!(t.has_negative());
    assert_eq!((t.total(), t.abs_total()), (25, 75));
    let main = t.sorted_children(Tree::ROOT)[0];
    assert_eq!((t.node(main).total, t.node(main).abs_total), (25, 75));
    let kids = t.sorted_children(main);
    assert_eq!((t.node(kids[0]).total, t.node(kids[0]).abs_total), (45, 55));
    assert_eq!(
        (t.node(kids[1]).total, t.node(kids[1]).abs_total),
        (-20, 20)
    );
    assert_eq!(
        folded(&t),
        "main.main;main.grew 45\nmain.main;main.shrank -20\n"
    );
    // A stack whose values cancel out is still drawn (its width is 10) but not folded.
    let mut c = Tree::new();
    c.add(&[f("x")], 5);
    c.add(&[f("x")], -5);
    assert_eq!((c.total(), c.abs_total(), c.has_negative()), (0, 10, true));
    assert_eq!(folded(&c), "");
}

#[test]
fn folded_is_exact_and_round_trips() {
    let t = sample_tree();
    let text = folded(&t);
    assert_eq!(
        text,
        "main.main;main.fib;main.fib;main.fib 20\n\
         main.main;main.work 10\n\
         main.main;main.work;main.mix (inline) 30\n\
         runtime.goexit;runtime.gcBgMarkWorker 5\n"
    );
    let back = parse_folded(&text);
    assert_eq!(stacks_of(&back), stacks_of(&t));
    assert_eq!(stacks_of(&back), {
        let mut s = sample_stacks();
        s.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
        s
    });
    assert_eq!(folded(&back), text);
    // Insertion order does not matter.
    let mut rev = sample_stacks();
    rev.reverse();
    assert_eq!(folded(&tree_of(&rev)), text);
}

#[test]
fn folded_keeps_separators_parseable() {
    let mut t = Tree::new();
    t.add(&[f("main.F[a;b]"), f("x\ny"), f("main.(*T[int]).M")], 1);
    t.add(&[f("a:b")], 2);
    t.add(&[f("a;b")], 3);
    let text = folded(&t);
    assert_eq!(text, "a:b 5\nmain.F[a:b];x y;main.(*T[int]).M 1\n");
    let back = parse_folded(&text);
    assert_eq!(back.node_count(), 4);
    assert_eq!(back.total(), 6);
}

#[test]
fn speedscope_follows_the_schema() {
    let t = sample_tree();
    let out = speedscope(&t);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    assert_eq!(v["name"], "cpu");
    assert_eq!(v["activeProfileIndex"], 0);
    assert_eq!(v["exporter"], "gocost");
    let p = &v["profiles"][0];
    assert_eq!(v["profiles"].as_array().unwrap().len(), 1);
    assert_eq!(p["type"], "sampled");
    assert_eq!(p["name"], "cpu");
    assert_eq!(p["unit"], "nanoseconds");
    assert_eq!(p["startValue"], 0);
    let weights: Vec<i64> = p["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_i64().unwrap())
        .collect();
    assert_eq!(weights.iter().sum::<i64>(), t.total());
    assert_eq!(p["endValue"], t.total());
    let frames: Vec<&str> = v["shared"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // One frame per distinct label, in order of first use (depth-first, sorted).
    assert_eq!(
        frames,
        [
            "main.main",
            "main.fib",
            "main.work",
            "main.mix (inline)",
            "runtime.goexit",
            "runtime.gcBgMarkWorker"
        ]
    );
    let samples: Vec<Vec<String>> = p["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|i| frames[i.as_u64().unwrap() as usize].to_string())
                .collect()
        })
        .collect();
    assert_eq!(samples.len(), weights.len());
    // The same stacks as the folded output.
    let from_json: Vec<String> = samples
        .iter()
        .zip(&weights)
        .map(|(s, w)| format!("{} {w}\n", s.join(";")))
        .collect();
    assert_eq!(from_json.concat(), folded(&t));
    // Deterministic whatever the insertion order.
    let mut rev = sample_stacks();
    rev.reverse();
    assert_eq!(speedscope(&tree_of(&rev)), out);
}

#[test]
fn speedscope_of_a_diff_and_of_nothing() {
    let mut t = Tree::new();
    t.add(&[f("a")], 7);
    t.add(&[f("b")], -3);
    let v: serde_json::Value = serde_json::from_slice(&speedscope(&t)).unwrap();
    assert_eq!(v["profiles"][0]["weights"], serde_json::json!([7, 3]));
    assert_eq!(v["profiles"][0]["endValue"], 10);
    let v: serde_json::Value = serde_json::from_slice(&speedscope(&Tree::new())).unwrap();
    assert_eq!(v["profiles"][0]["samples"], serde_json::json!([]));
    assert_eq!(v["profiles"][0]["endValue"], 0);
    let mut out = Vec::new();
    write_speedscope(&t, "alloc_space", SpeedscopeUnit::Bytes, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["profiles"][0]["unit"], "bytes");
}

#[test]
fn svg_is_well_formed_escaped_and_deterministic() {
    let nasty = r#"pkg.(*T[a&b]).M"<'>"#;
    let mut stacks = sample_stacks();
    stacks.push((vec![f("main.F[...]"), f(nasty)], 7));
    let a = svg(&tree_of(&stacks));
    check_xml(&a);
    assert!(a.contains("<title>pkg.(*T[a&amp;b]).M&quot;&lt;&#39;&gt; (7ms, 9.72%)</title>"));
    assert!(a.contains("<title>main.F[...] (7ms, 9.72%)</title>"));
    assert!(!a.contains(nasty));
    assert!(a.contains(
        "<text id=\"title\" x=\"600\" y=\"22\" text-anchor=\"middle\">demo — cpu</text>"
    ));
    for hook in [
        r#"<g class="f""#,
        r#"id="details""#,
        r#"id="search""#,
        r#"id="reset""#,
        r#"id="matched""#,
        "<script",
        "<style>",
    ] {
        assert!(a.contains(hook), "{hook}");
    }
    // Self-contained: no external references.
    assert!(!a.contains("href") && !a.contains("src=") && !a.contains("url("));
    assert!(!a.contains("no samples") && !a.contains("id=\"legend\""));
    // Every node is drawn (all are wide enough), plus the root.
    assert_eq!(a.matches("<g class=\"f\"").count(), 11);
    // Same bytes twice, and whatever the insertion order.
    assert_eq!(svg(&tree_of(&stacks)), a);
    stacks.reverse();
    assert_eq!(svg(&tree_of(&stacks)), a);
    stacks.swap(0, 3);
    assert_eq!(svg(&tree_of(&stacks)), a);
}

/// The text drawn in the box whose `<title>` is `title`.
fn box_text<'a>(svg: &'a str, title: &str) -> &'a str {
    let line = svg
        .lines()
        .find(|l| l.contains(&format!("<title>{title}</title>")))
        .unwrap_or_else(|| panic!("no box titled {title}"));
    let t = &line[line.rfind("\">").unwrap() + 2..];
    t.strip_suffix("</text></g>").unwrap()
}

#[test]
fn svg_text_is_truncated_to_fit() {
    let long = format!("main.{}", "x".repeat(300));
    let mut t = Tree::new();
    t.add(&[f(&long)], 1);
    t.add(&[f("main.y")], 99);
    let s = svg(&t);
    check_xml(&s);
    // 1% of 1180 px = 11.8 px: too narrow for 3 characters, so no text at all.
    assert_eq!(box_text(&s, &format!("{long} (1ms, 1.00%)")), "");
    assert_eq!(box_text(&s, "main.y (99ms, 99.00%)"), "main.y");
    let mut w = Tree::new();
    w.add(&[f(&long)], 1);
    let s = svg(&w);
    let text = box_text(&s, &format!("{long} (1ms, 100.00%)"));
    // (1180 - 6) / (12 × 0.59) = 165.8 → 165 characters, the last two "..".
    assert_eq!(text.chars().count(), 165);
    assert_eq!(text, format!("main.{}..", "x".repeat(158)));
    // Truncation happens before escaping: no entity is cut.
    let mut e = Tree::new();
    e.add(&[f(&"<&>".repeat(100))], 1);
    let s = svg(&e);
    check_xml(&s);
    // 163 characters of `<&>` then "..".
    assert!(s.contains("&amp;&gt;&lt;..</text>"));
}

#[test]
fn svg_of_a_diff_and_of_nothing() {
    let mut t = Tree::new();
    t.add(&[f("main.main"), f("main.grew")], 50);
    t.add(&[f("main.main"), f("main.shrank")], -20);
    let s = svg(&t);
    check_xml(&s);
    assert!(s.contains("<title>main.shrank (-20ms, 28.57% of the change)</title>"));
    assert!(s.contains("<title>main.grew (50ms, 71.43% of the change)</title>"));
    assert!(s.contains("id=\"legend\""));
    // Growth is orange, shrinkage blue.
    assert!(s.contains(r#"fill="rgb(240,80,20)""#));
    assert!(s.contains(r#"fill="rgb(20,80,240)""#));
    // Box widths by |value|: 50/70 and 20/70 of 1180 px.
    assert!(s.contains(r#"width="842.86""#) && s.contains(r#"width="337.14""#));

    let empty = svg(&Tree::new());
    check_xml(&empty);
    assert!(empty.contains("no samples"));
    assert_eq!(empty.matches("<g class=\"f\"").count(), 0);
    let cancelled = svg(&{
        let mut c = Tree::new();
        c.add(&[f("x")], 5);
        c.add(&[f("x")], -5);
        c
    });
    check_xml(&cancelled);
}

#[test]
fn svg_skips_narrow_boxes_but_keeps_their_value() {
    let mut t = Tree::new();
    t.add(&[f("main.big")], 1_000_000);
    t.add(&[f("main.big"), f("main.tiny")], 1);
    let s = svg(&t);
    check_xml(&s);
    assert!(!s.contains("main.tiny"));
    assert!(s.contains("<title>main.big (1000001ms, 100.00%)</title>"));
    let all = svg_with(&t, |o| o.min_width_px = 0.0);
    assert!(all.contains("<title>main.tiny (1ms, 0.00%)</title>"));
}

#[test]
fn svg_inverted_puts_the_root_on_top() {
    let t = sample_tree();
    let root_y = |s: &str| {
        s.split("<title>root ")
            .nth(1)
            .and_then(|r| r.split(" y=\"").nth(1))
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string()
    };
    // Depths 0..=4: flame puts the root on the lowest row (56 + 4 × 16), icicle on the first.
    assert_eq!(root_y(&svg(&t)), "120.0");
    assert_eq!(root_y(&svg_with(&t, |o| o.inverted = true)), "56.0");
    let narrow = svg_with(&t, |o| o.width_px = 400);
    check_xml(&narrow);
    assert!(narrow.starts_with("<?xml") && narrow.contains(r#"width="400""#));
}

#[test]
fn svg_snapshot() {
    let got = svg(&sample_tree());
    check_xml(&got);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/small.svg");
    if std::env::var_os("GOCOST_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with GOCOST_BLESS=1)", path.display()));
    if got != want {
        let new = std::env::temp_dir().join("gocost-flame-small.svg");
        let _ = std::fs::write(&new, &got);
        panic!(
            "SVG differs from {}; the new one is in {}; review it and bless with GOCOST_BLESS=1",
            path.display(),
            new.display()
        );
    }
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
    let svg_time = start.elapsed();
    let drawn = s.matches("<g class=\"f\"").count();
    let start = std::time::Instant::now();
    let all = svg_with(&t, |o| o.min_width_px = 0.0);
    let all_time = start.elapsed();
    eprintln!(
        "{} nodes: SVG with min_width_px 0.1: {} boxes, {} bytes in {svg_time:?}; \
         min_width_px 0: {} bytes in {all_time:?}",
        t.node_count(),
        drawn,
        s.len(),
        all.len(),
    );
    assert_eq!(all.matches("<g class=\"f\"").count(), t.node_count() + 1);
    assert!(drawn <= t.node_count() + 1);
    check_xml(&s);
    let start = std::time::Instant::now();
    let text = folded(&t);
    let json = speedscope(&t);
    eprintln!(
        "folded {} bytes, speedscope {} bytes in {:?}",
        text.len(),
        json.len(),
        start.elapsed()
    );
    assert_eq!(parse_folded(&text).total(), t.total());
}

#[test]
fn diff_tree_matches_paths_and_keeps_base_only_nodes() {
    let mut head = Tree::new();
    head.add(&[f("main"), f("a")], 30);
    head.add(&[f("main"), fi("b")], 10);
    let mut base = Tree::new();
    base.add(&[f("main"), f("a")], 20);
    base.add(&[f("main"), f("b")], 5);
    base.add(&[f("main"), f("c"), f("d")], 7);
    let d = gocost_flame::DiffTree::new(&head, &base);
    let t = &d.tree;
    // Head nodes keep their indices and values.
    assert_eq!(t.nodes.len(), 4 + 3);
    assert_eq!(t.total(), 40);
    assert_eq!(d.base_total[0], 32);
    let find = |path: &[(&str, bool)]| {
        (1..t.nodes.len() as u32)
            .find(|&n| {
                let p = t.path(n);
                p.len() == path.len()
                    && p.iter()
                        .zip(path)
                        .all(|(&n, &(name, inl))| t.name(n) == name && t.node(n).inline == inl)
            })
            .unwrap()
    };
    let a = find(&[("main", false), ("a", false)]) as usize;
    assert_eq!(
        (t.nodes[a].total, d.base_total[a], d.base_self[a]),
        (30, 20, 20)
    );
    // The inlined b of the head and the normal b of the base are different boxes.
    let bi = find(&[("main", false), ("b", true)]) as usize;
    assert_eq!((t.nodes[bi].total, d.base_total[bi]), (10, 0));
    let b = find(&[("main", false), ("b", false)]) as usize;
    assert_eq!((t.nodes[b].total, d.base_total[b]), (0, 5));
    let dd = find(&[("main", false), ("c", false), ("d", false)]) as usize;
    assert_eq!(
        (t.nodes[dd].total, d.base_total[dd], d.base_self[dd]),
        (0, 7, 7)
    );
    let main = find(&[("main", false)]) as usize;
    assert_eq!((d.base_total[main], d.base_self[main]), (32, 0));
}
