//! Build cost end to end, on Go programs each test writes and builds with the real toolchain:
//! `gocost size` against `go tool nm -size -type` (per-package sums), `go list -deps` (the
//! packages), `go version -m` (the build info, with a `replace` of a local module) and
//! `readelf -S` (the section headers); `gocost compare` of two binaries (a heavy import, 20 %
//! more data, a new module and a new `replace`, and a change that adds nothing); `gocost
//! build-cost` naming a deliberately slow package.
//!
//! Go is found through `$GO` or `go` on `PATH`, readelf through `$READELF` or `PATH`; without
//! them these tests are reported as ignored, except in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gocost_buildcost::symname::{Owner, package_of};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    gocost_testkit::procs::fresh_dir("buildcost", name)
}

fn gocost(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running gocost")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// A go command that never downloads.
fn go_cmd(go: &Path, dir: &Path) -> Command {
    let mut c = Command::new(go);
    c.current_dir(dir)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOWORK", "off")
        .env("GOTOOLCHAIN", "local");
    c
}

fn go_out(go: &Path, dir: &Path, args: &[&str]) -> String {
    let o = go_cmd(go, dir).args(args).output().expect("running go");
    assert!(
        o.status.success(),
        "go {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn build(go: &Path, dir: &Path, out: &str, extra: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let mut c = go_cmd(go, dir);
    c.arg("build").args(extra).args(["-o", out, "."]);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("running go build");
    assert!(
        o.status.success(),
        "go build in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    dir.join(out)
}

fn size_json(bin: &Path) -> Value {
    let o = gocost(&["size", "--json", bin.to_str().unwrap()], Path::new("."));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

const APP_GO_MOD: &str = "module example.com/app\n\ngo 1.27\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ./lib\n";

/// A program whose build info carries a `replace` by a local directory, with generics,
/// methods, an `internal` package and net/http (cgo's C code on Linux).
fn app(dir: &Path) {
    write(
        dir,
        &[
            ("go.mod", APP_GO_MOD),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n\n\t\"example.com/lib\"\n)\n\n\
                 func main() {\n\tfmt.Println(lib.Hello(), lib.Map([]int{1, 2}, func(i int) string { return fmt.Sprint(i) }))\n\
                 \tif len(os.Args) > 5 {\n\t\t_ = http.ListenAndServe(os.Args[1], nil)\n\t}\n}\n",
            ),
            ("lib/go.mod", "module example.com/lib\n\ngo 1.27\n"),
            (
                "lib/lib.go",
                "package lib\n\nimport \"example.com/lib/internal/deep\"\n\n\
                 type T struct{ n int }\n\nfunc (t *T) Name() string { return deep.Name(t.n) }\n\n\
                 func Hello() string { return (&T{3}).Name() }\n\n\
                 func Map[A, B any](xs []A, f func(A) B) []B {\n\tout := make([]B, 0, len(xs))\n\tfor _, x := range xs {\n\t\tout = append(out, f(x))\n\t}\n\treturn out\n}\n",
            ),
            (
                "lib/internal/deep/deep.go",
                "package deep\n\nimport \"strconv\"\n\nvar Names = [4]string{\"a\", \"b\", \"c\", \"d\"}\n\n\
                 func Name(n int) string { return Names[n%4] + strconv.Itoa(n) }\n",
            ),
        ],
    );
}

fn owner_key(name: &str) -> String {
    match package_of(name) {
        Owner::Package(p) => p,
        Owner::Compiler(p) => format!("({p})"),
        Owner::None => "(no package)".into(),
    }
}

/// `go tool nm -size -type` → per package: [text, rodata, data, bss] sums and how many
/// text symbols.
fn nm_sums(go: &Path, bin: &Path) -> BTreeMap<String, ([u64; 4], u64)> {
    let out = go_out(
        go,
        Path::new("."),
        &["tool", "nm", "-size", "-type", bin.to_str().unwrap()],
    );
    let tok = |s: &str| -> (String, String) {
        let s = s.trim_start();
        let i = s.find(' ').unwrap_or(s.len());
        (s[..i].to_string(), s[i..].to_string())
    };
    let mut sums: BTreeMap<String, ([u64; 4], u64)> = BTreeMap::new();
    for line in out.lines() {
        let (t1, r1) = tok(line);
        let (t2, r2) = tok(&r1);
        let (size, code, name) = if t2.len() == 1 && !t2.as_bytes()[0].is_ascii_digit() {
            (t1, t2, r2)
        } else {
            let (t3, r3) = tok(&r2);
            (t2, t3, r3)
        };
        let name = name.strip_prefix(' ').unwrap_or(&name).to_string();
        let col = match code.to_ascii_uppercase().as_str() {
            "T" => 0,
            "R" => 1,
            "D" => 2,
            "B" => 3,
            _ => continue,
        };
        let size: u64 = size.parse().unwrap_or_else(|_| panic!("nm line {line:?}"));
        let e = sums.entry(owner_key(&name)).or_default();
        e.0[col] += size;
        if col == 0 {
            e.1 += 1;
        }
    }
    sums
}

fn packages(report: &Value) -> BTreeMap<String, [u64; 4]> {
    report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap();
            (
                p["package"].as_str().unwrap().to_string(),
                [n("text"), n("rodata"), n("data"), n("bss")],
            )
        })
        .collect()
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn size_agrees_with_go_tool_nm_go_list_and_go_version_m() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("nm");
    app(&dir);
    let bin = build(&go, &dir, "app", &[], &[]);
    let r = size_json(&bin);
    assert_eq!(r["source"], "symtab");

    // Every package's text, rodata, data and bss equal the sums of nm's symbol sizes.
    let nm = nm_sums(&go, &bin);
    let ours = packages(&r);
    let nm_cols: BTreeMap<String, [u64; 4]> = nm
        .iter()
        .filter(|(_, (c, _))| c.iter().sum::<u64>() > 0)
        .map(|(k, (c, _))| (k.clone(), *c))
        .collect();
    let ours_nonzero: BTreeMap<String, [u64; 4]> = ours
        .iter()
        .filter(|(_, c)| c.iter().sum::<u64>() > 0)
        .map(|(k, c)| (k.clone(), *c))
        .collect();
    assert_eq!(
        ours_nonzero, nm_cols,
        "per-package sums differ from go tool nm"
    );
    assert!(ours.len() > 50, "{} packages", ours.len());

    // The packages are the program's: each one `go list -deps` lists (main as itself).
    let deps: BTreeSet<String> =
        go_out(&go, &dir, &["list", "-deps", "-f", "{{.ImportPath}}", "."])
            .lines()
            .map(|l| {
                if l == "example.com/app" {
                    "main".into()
                } else {
                    l.to_string()
                }
            })
            .collect();
    // A few std functions are compiled in one package under another's name
    // (`//go:linkname`: runtime's `runtime/debug.SetTraceback`); nothing else may be foreign.
    let total: u64 = ours.values().map(|c| c[0] + c[1] + c[2]).sum();
    let foreign: Vec<(&String, u64)> = ours
        .iter()
        .filter(|(p, _)| !p.starts_with('(') && !deps.contains(*p))
        .map(|(p, c)| (p, c[0] + c[1] + c[2]))
        .collect();
    for (p, _) in &foreign {
        assert!(!p.contains('.'), "{p} is not one of the program's packages");
    }
    let foreign_bytes: u64 = foreign.iter().map(|f| f.1).sum();
    assert!(foreign_bytes * 1000 < total, "{foreign:?}");
    for p in [
        "main",
        "example.com/lib",
        "example.com/lib/internal/deep",
        "net/http",
        "net",
    ] {
        assert!(ours.contains_key(p), "{p} missing");
    }
    // Modules by longest prefix: the local module's packages are its, std's are std's.
    let module_of = |pkg: &str| -> String {
        r["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["package"] == pkg)
            .map(|p| p["module"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        module_of("example.com/lib/internal/deep"),
        "example.com/lib"
    );
    assert_eq!(module_of("main"), "example.com/app");
    assert_eq!(module_of("net/http"), "std");

    // The build info is what `go version -m` prints.
    let vm = go_out(
        &go,
        Path::new("."),
        &["version", "-m", bin.to_str().unwrap()],
    );
    let bi = &r["build_info"];
    let mut lines = vm.lines();
    let first = lines.next().unwrap();
    assert!(
        first.ends_with(&format!(": {}", bi["go_version"].as_str().unwrap())),
        "{first}"
    );
    let mut deps_seen = 0;
    let mut settings = Vec::new();
    let mut last_module: Option<&Value> = None;
    for l in lines {
        let f: Vec<&str> = l.trim_start_matches('\t').split('\t').collect();
        let m = |v: &Value, f: &[&str]| {
            assert_eq!(v["path"], f[1], "{l}");
            assert_eq!(v["version"], *f.get(2).unwrap_or(&""), "{l}");
            assert_eq!(v["sum"], *f.get(3).unwrap_or(&""), "{l}");
        };
        match f[0] {
            "path" => assert_eq!(bi["path"], f[1]),
            "mod" => {
                m(&bi["main"], &f);
                last_module = Some(&bi["main"]);
            }
            "dep" => {
                let d = &bi["deps"][deps_seen];
                m(d, &f);
                last_module = Some(d);
                deps_seen += 1;
            }
            "=>" => m(&last_module.expect("=> after a module")["replace"], &f),
            "build" => settings.push(f[1].to_string()),
            // Go prints a line of just a tab after a replaced dependency.
            "" => {}
            other => panic!("unexpected go version -m line {other:?}"),
        }
    }
    assert_eq!(deps_seen, bi["deps"].as_array().unwrap().len());
    assert_eq!(bi["deps"][0]["replace"]["path"], "./lib", "{vm}");
    let ours_settings: Vec<String> = bi["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            let (k, v) = (kv[0].as_str().unwrap(), kv[1].as_str().unwrap());
            if v.contains([' ', '"', '\t']) {
                format!("{k}={}", serde_json::to_string(v).unwrap())
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    assert_eq!(ours_settings, settings);

    // The module view names the replacement.
    let o = gocost(&["size", "--by", "module", bin.to_str().unwrap()], &dir);
    let t = text(&o);
    assert!(
        t.lines()
            .any(|l| l.contains("example.com/lib") && l.contains("=> ./lib")),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(
    not(all(has_go, has_readelf)),
    ignore = "needs Go and readelf (binutils) on PATH"
)]
#[test]
fn sections_agree_with_readelf() {
    let go = gocost_testkit::go_toolchain();
    let readelf = gocost_testkit::tools::require(&gocost_testkit::tools::READELF);
    let dir = tmp("readelf");
    app(&dir);
    let bin = build(&go, &dir, "app", &[], &[]);
    let r = size_json(&bin);
    let o = Command::new(readelf)
        .args(["-S", "-W"])
        .arg(&bin)
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut want = Vec::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let Some(rest) = l.trim_start().strip_prefix('[') else {
            continue;
        };
        let Some((nr, rest)) = rest.split_once(']') else {
            continue;
        };
        if nr.trim() == "Nr" || nr.trim() == "0" {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        // name type address offset size …
        let size = u64::from_str_radix(f[4], 16).unwrap();
        want.push((f[0].to_string(), f[1] == "NOBITS", size));
    }
    let got: Vec<(String, bool, u64)> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let nobits = s["file_size"] == 0 && s["mem_size"].as_u64().unwrap() > 0;
            let size = if nobits {
                s["mem_size"].as_u64()
            } else {
                s["file_size"].as_u64()
            };
            (
                s["name"].as_str().unwrap().to_string(),
                nobits,
                size.unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Sections plus headers and padding make up the file.
    let sum: u64 = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file_size"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sum + r["outside_sections"].as_u64().unwrap(),
        std::fs::metadata(&bin).unwrap().len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn stripped_binary_gets_its_code_from_the_pclntab() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("strip");
    app(&dir);
    let env = [("CGO_ENABLED", "0")];
    let full = build(&go, &dir, "full", &[], &env);
    let stripped = build(&go, &dir, "stripped", &["-ldflags=-s -w"], &env);
    let r = size_json(&stripped);
    assert_eq!(r["source"], "pclntab");
    assert!(r["warnings"][0].as_str().unwrap().contains("-ldflags=-s"));
    let nm = nm_sums(&go, &full);
    let ours = packages(&r);
    // Function sizes run to the next function: the symbol's size plus alignment padding
    // (at most 31 bytes a function on amd64/arm64).
    let mut checked = 0;
    for (pkg, (cols, nfuncs)) in nm.iter().filter(|(k, _)| !k.starts_with('(')) {
        if cols[0] == 0 {
            continue;
        }
        let text = ours.get(pkg).map_or(0, |c| c[0]);
        assert!(
            text >= cols[0] && text <= cols[0] + 31 * nfuncs,
            "{pkg}: pclntab {text}, nm {} over {nfuncs} functions",
            cols[0]
        );
        checked += 1;
    }
    assert!(checked > 30, "{checked}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn base_program(dir: &Path, greeting: &str) {
    write(
        dir,
        &[
            ("go.mod", "module example.com/app\n\ngo 1.27\n"),
            (
                "main.go",
                &format!(
                    "package main\n\nimport \"fmt\"\n\nfunc main() {{ fmt.Println({greeting:?}) }}\n"
                ),
            ),
        ],
    );
}

fn compare_json(base: &Path, head: &Path, extra: &[&str], dir: &Path) -> (Option<i32>, Value) {
    let mut args = vec![
        "compare",
        "--base",
        base.to_str().unwrap(),
        "--head",
        head.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(extra);
    let o = gocost(&args, dir);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    (o.status.code(), v)
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn compare_fails_a_heavy_import_or_20_percent_more_and_names_who() {
    let go = gocost_testkit::go_toolchain();
    let env = [("CGO_ENABLED", "0")];
    let root = tmp("gate");
    let (b, same, http, big) = (
        root.join("base"),
        root.join("same"),
        root.join("http"),
        root.join("big"),
    );
    base_program(&b, "hello");
    base_program(&same, "hello, world");
    write(
        &http,
        &[
            ("go.mod", "module example.com/app\n\ngo 1.27\n"),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n)\n\n\
                 func main() {\n\tfmt.Println(\"hello\")\n\tif len(os.Args) > 5 {\n\t\t\
                 _ = http.ListenAndServe(os.Args[1], http.FileServer(http.Dir(\".\")))\n\t}\n}\n",
            ),
        ],
    );
    let base_bin = build(&go, &b, "app", &[], &env);
    let same_bin = build(&go, &same, "app", &[], &env);
    let http_bin = build(&go, &http, "app", &[], &env);

    // A table a quarter of the base binary's size, in a package of the main module.
    let n = std::fs::metadata(&base_bin).unwrap().len() / 4 / 8 + 1;
    let mut table = String::from("package big\n\nvar Table = [...]uint64{");
    for i in 0..n {
        table += &format!("{},", i.wrapping_mul(2654435761) + 1);
    }
    table += "}\n";
    write(
        &big,
        &[
            ("go.mod", "module example.com/app\n\ngo 1.27\n"),
            ("big/big.go", &table),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\n\t\"example.com/app/big\"\n)\n\n\
                 func main() { fmt.Println(\"hello\", big.Table[len(os.Args)]) }\n",
            ),
        ],
    );
    let big_bin = build(&go, &big, "app", &[], &env);

    // Nothing added: passes.
    let o = gocost(
        &[
            "compare",
            "--base",
            base_bin.to_str().unwrap(),
            "--head",
            same_bin.to_str().unwrap(),
        ],
        &root,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).starts_with("ok: "), "{}", text(&o));

    // net/http: fails; what grew most are packages net/http brought, of module std.
    let (code, v) = compare_json(&base_bin, &http_bin, &[], &root);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["verdict"], "fail");
    let why = v["failures"][0].as_str().unwrap();
    let base_deps: BTreeSet<String> = go_out(&go, &b, &["list", "-deps", "."])
        .lines()
        .map(String::from)
        .collect();
    let http_deps: BTreeSet<String> = go_out(&go, &b, &["list", "-deps", "net/http"])
        .lines()
        .map(String::from)
        .collect();
    let named: Vec<&Value> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["name"].as_str().unwrap().starts_with('('))
        .take(3)
        .collect();
    for p in &named {
        let name = p["name"].as_str().unwrap();
        assert!(
            why.contains(&format!("{name} +")),
            "{name} not named in {why}"
        );
        assert!(
            http_deps.contains(name) && !base_deps.contains(name),
            "{name} is not what net/http added"
        );
        assert_eq!(p["module"], "std");
        assert_eq!(p["base"], 0);
    }
    assert!(why.contains("by module most in std"), "{why}");
    let nh = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "net/http")
        .unwrap();
    assert!(
        nh["base"] == 0 && nh["head"].as_u64().unwrap() > 100_000,
        "{nh}"
    );
    // Every package the change added is one net/http brought.
    for p in v["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        if p["base"] == 0 && !name.starts_with('(') {
            assert!(
                http_deps.contains(name),
                "{name} is new but not a dependency of net/http"
            );
        }
    }
    let md = text(&gocost(
        &[
            "compare",
            "--base",
            base_bin.to_str().unwrap(),
            "--head",
            http_bin.to_str().unwrap(),
            "--format",
            "markdown",
        ],
        &root,
    ));
    assert!(md.starts_with("### ❌ gocost compare: binary size"), "{md}");
    assert!(md.contains("| `net/http` | std |"), "{md}");

    // 25 % more data: fails at the default 10 %, names the package and its module.
    let (code, v) = compare_json(&base_bin, &big_bin, &[], &root);
    assert_eq!(code, Some(1), "{v}");
    let why = v["failures"][0].as_str().unwrap();
    assert!(why.contains("example.com/app/big +"), "{why}");
    assert!(why.contains("(example.com/app)"), "{why}");
    assert!(why.contains("by module most in example.com/app"), "{why}");
    let row = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "example.com/app/big")
        .unwrap();
    assert_eq!(
        row["head"].as_u64(),
        Some(8 * n),
        "the table is 8 bytes × {n}"
    );
    // A looser gate passes it; an absolute one below the growth fails it.
    let (code, _) = compare_json(&base_bin, &big_bin, &["--max-size-growth", "60%"], &root);
    assert_eq!(code, Some(0));
    let (code, v) = compare_json(
        &base_bin,
        &big_bin,
        &["--max-size-growth", "60%,100kB"],
        &root,
    );
    assert_eq!(code, Some(1), "{v}");
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn new_modules_and_replace_directives_are_gated() {
    let go = gocost_testkit::go_toolchain();
    let env = [("CGO_ENABLED", "0")];
    let root = tmp("modules");
    let (b, h) = (root.join("base"), root.join("head"));
    base_program(&b, "hello");
    app(&h);
    let base_bin = build(&go, &b, "app", &[], &env);
    let head_bin = build(&go, &h, "app", &[], &env);
    let args = ["--max-size-growth", "1000%"];

    // A new `replace`: fails unless allowed.
    let (code, v) = compare_json(&base_bin, &head_bin, &args, &root);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["new_modules"][0]["module"], "example.com/lib");
    // A local directory's replacement has the version (devel) in the build info.
    assert!(
        v["new_replaces"][0]["by"]
            .as_str()
            .unwrap()
            .starts_with("./lib"),
        "{v}"
    );
    assert_eq!(v["failures"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["failures"][0]
            .as_str()
            .unwrap()
            .contains("example.com/lib => ./lib"),
        "{v}"
    );
    let allow = [
        "--max-size-growth",
        "1000%",
        "--allow-replace",
        "example.com/*",
    ];
    let (code, v) = compare_json(&base_bin, &head_bin, &allow, &root);
    assert_eq!(code, Some(0), "{v}");

    // New modules: fail when denied, pass when allow-listed.
    let deny = [&allow[..], &["--deny-new-modules"]].concat();
    let (code, v) = compare_json(&base_bin, &head_bin, &deny, &root);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["failures"][0]
            .as_str()
            .unwrap()
            .starts_with("new module example.com/lib"),
        "{v}"
    );
    let listed = [&allow[..], &["--allow-module", "example.com/lib"]].concat();
    let (code, _) = compare_json(&base_bin, &head_bin, &listed, &root);
    assert_eq!(code, Some(0));

    // The same from a repository's [compare] section.
    write(
        &root,
        &[(
            "gocost.toml",
            "[compare]\nmax_size_growth = \"1000%\"\ndeny_new_modules = true\nallow_modules = [\"example.com/lib\"]\nallow_replace = [\"example.com/lib\"]\n",
        )],
    );
    let (code, v) = compare_json(&base_bin, &head_bin, &[], &root);
    assert_eq!(code, Some(0), "{v}");
    std::fs::remove_file(root.join("gocost.toml")).unwrap();

    // The text report lists them.
    let o = gocost(
        &[
            "compare",
            "--base",
            base_bin.to_str().unwrap(),
            "--head",
            head_bin.to_str().unwrap(),
        ],
        &root,
    );
    let t = text(&o);
    assert!(t.contains("new modules:\n  example.com/lib"), "{t}");
    assert!(
        t.lines()
            .skip_while(|l| *l != "new replace directives:")
            .nth(1)
            .is_some_and(
                |l| l.starts_with("  example.com/lib => ./lib") && l.ends_with("not allowed")
            ),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_binaries_are_refused_with_the_file_and_the_place() {
    let dir = tmp("bad");
    // A real executable (gocost itself) cut after its headers.
    let me = std::fs::read(env!("CARGO_BIN_EXE_gocost")).unwrap();
    std::fs::write(dir.join("cut"), &me[..200]).unwrap();
    std::fs::write(dir.join("text"), "BenchmarkX 1 2 ns/op\n").unwrap();
    let o = gocost(&["size", "cut"], &dir);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).starts_with("gocost: cut: "), "{}", text(&o));
    let o = gocost(&["size", "text"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("text: file header at byte offset 0"),
        "{}",
        text(&o)
    );
    // gocost is not a Go binary: it has symbols, no Go packages or build info.
    let o = gocost(&["size", "--json", env!("CARGO_BIN_EXE_gocost")], &dir);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["build_info"].is_null());
    assert!(
        v["warnings"].to_string().contains("no Go build info"),
        "{v}"
    );
    // A binary is compared only with a binary.
    let o = gocost(&["compare", "--base", "cut", "--head", "text"], &dir);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("one with one"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn build_cost_names_the_slow_package() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("buildcost");
    // One package with a function of 2,000 branches (seconds to compile), two trivial ones.
    let mut slow = String::from("package slow\n\nfunc F(x uint64) uint64 {\n");
    for i in 0..2000u64 {
        slow += &format!(
            "\tif x&{} == {} {{ x = x*{} + {i} }} else {{ x ^= x >> {} }}\n",
            (i * 7919) % 1024,
            i % 97,
            i + 3,
            i % 13 + 1
        );
    }
    slow += "\treturn x\n}\n";
    // A fresh constant: the go command cannot take the package from its cache.
    let nonce = format!(
        "package fast\n\nconst Nonce = {}\n\nfunc G(x uint64) uint64 {{ return x*3 + 1 }}\n",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    slow = slow.replace("return x\n}", &format!("return x + {}\n}}", nonce.len()));
    write(
        &dir,
        &[
            ("go.mod", "module example.com/gen\n\ngo 1.27\n"),
            ("slow/slow.go", &slow),
            (
                "slow/nonce.go",
                &nonce
                    .replace("package fast", "package slow")
                    .replace("func G", "func g"),
            ),
            ("fast/fast.go", &nonce),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/gen/fast\"\n\t\"example.com/gen/slow\"\n)\n\n\
                 func main() { fmt.Println(slow.F(1) + fast.G(2)) }\n",
            ),
        ],
    );
    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args([
            "build-cost",
            "--json",
            "--",
            go.to_str().unwrap(),
            "build",
            "-o",
            "out",
            ".",
        ])
        .current_dir(&dir)
        .env("GOPROXY", "off")
        .env("GOWORK", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(dir.join("run.json"), &o.stdout).unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["slowest"][0]["package"], "example.com/gen/slow", "{v}");
    assert_eq!(v["slowest"][0]["mode"], "build");
    assert_eq!(v["packages"][0]["package"], "example.com/gen/slow");
    assert!(
        v["critical_path"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["package"] == "example.com/gen/slow" && a["mode"] == "build"),
        "{v}"
    );
    let link = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == "example.com/gen")
        .unwrap();
    assert!(link["link"].as_f64().unwrap() > 0.0, "{link}");
    assert!(dir.join("out").exists());

    // Saved runs compare like benchmarks: the same run on both sides is no regression.
    let o = gocost(
        &["build-cost", "--base", "run.json", "--head", "run.json"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("Build/pkg=example.com/gen/slow"),
        "{}",
        text(&o)
    );

    // Not a building go command: a usage error.
    let o = gocost(&["build-cost", "--", go.to_str().unwrap(), "env"], &dir);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fuzz targets' properties on real Go binaries with bytes flipped where the parsers look
/// (ELF and section headers, the pclntab's header and function table, the build info) and
/// cut at random lengths: a report or an error, never a panic. Deterministic (a fixed seed).
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn damaged_go_binaries_give_errors_not_panics() {
    use gocost_buildcost::binary::Binary;
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("damaged");
    app(&dir);
    let env = [("CGO_ENABLED", "0")];
    let full = std::fs::read(build(&go, &dir, "full", &[], &env)).unwrap();
    let stripped = std::fs::read(build(&go, &dir, "stripped", &["-ldflags=-s -w"], &env)).unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n.max(1)
    };
    let (mut ok, mut errors) = (0, 0);
    for original in [&full, &stripped] {
        let bin = Binary::parse(original).unwrap();
        // Where the parsers read: file and section headers, then each Go structure's start.
        let mut spots: Vec<(usize, usize)> = vec![(0, 64)];
        let shoff = u64::from_le_bytes(original[0x28..0x30].try_into().unwrap()) as usize;
        spots.push((shoff, original.len() - shoff));
        for name in [".gopclntab", ".go.buildinfo", ".symtab", ".strtab"] {
            if let Some(s) = bin.section(&[name]) {
                spots.push((s.file_offset as usize, (s.file_size as usize).min(4096)));
            }
        }
        for i in 0..150 {
            let mut b = original.clone();
            let (start, len) = spots[i % spots.len()];
            for _ in 0..1 + rand(8) {
                let at = start + rand(len);
                b[at] = match rand(4) {
                    0 => 0,
                    1 => 0xff,
                    _ => b[at] ^ (1 << rand(8)),
                };
            }
            if i % 5 == 0 {
                b.truncate(rand(b.len()));
            }
            match gocost_buildcost::size::analyze(&b) {
                Ok(r) => {
                    ok += 1;
                    let _ = r.to_text(gocost_buildcost::size::By::Package, 5);
                }
                Err(e) => {
                    errors += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    // Both outcomes happen: the damage reached the parsers.
    assert!(ok > 0 && errors > 0, "{ok} reports, {errors} errors");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Windows (PE) and macOS (Mach-O) binaries, whose symbols have no sizes, measure as `go
/// tool nm` measures them: sizes run to the next symbol; PE's zero-filled data is bss.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn pe_and_macho_binaries_agree_with_go_tool_nm() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("pe");
    app(&dir);
    for (goos, format) in [("windows", "pe"), ("darwin", "macho")] {
        let env = [("CGO_ENABLED", "0"), ("GOOS", goos), ("GOARCH", "amd64")];
        let bin = build(&go, &dir, &format!("app.{goos}"), &[], &env);
        let r = size_json(&bin);
        assert_eq!(r["format"], format);
        assert_eq!(r["build_info"]["deps"][0]["path"], "example.com/lib");
        let nm: BTreeMap<String, [u64; 4]> = nm_sums(&go, &bin)
            .into_iter()
            .filter(|(_, (c, _))| c.iter().sum::<u64>() > 0)
            .map(|(k, (c, _))| (k, c))
            .collect();
        let ours: BTreeMap<String, [u64; 4]> = packages(&r)
            .into_iter()
            .filter(|(_, c)| c.iter().sum::<u64>() > 0)
            .collect();
        assert_eq!(ours, nm, "{goos}: per-package sums differ from go tool nm");
        assert!(ours.contains_key("example.com/lib/internal/deep"), "{goos}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
