//! Any bytes as a file_sd / http_sd file (JSON and YAML) and, as TOML, as a job's relabel
//! rules: parse or error, never panic; parsed groups and compiled rules then resolve into
//! targets without panicking either.
#![no_main]

use gocost_scrape::discovery::{self, Format, JobDefaults, Labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let extra = Labels::from([("__meta_filepath".to_string(), "f.json".to_string())]);
    let mut groups = Vec::new();
    for f in [Format::Json, Format::Yaml] {
        if let Ok(g) = discovery::parse_groups(data, f, "f", &extra) {
            groups.extend(g);
        }
    }
    let mut rules = Vec::new();
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(cfg) = gocost_config::Config::parse(
            &format!("[[scrape]]\njob = \"j\"\ntargets = [\"a:1\"]\n{text}"),
            std::path::Path::new("fuzz.toml"),
        )
    {
        rules = discovery::compile(&cfg.scrape[0].relabel).expect("validated rules compile");
    }
    let d = JobDefaults {
        job: "j".into(),
        interval: std::time::Duration::from_secs(15),
        timeout: std::time::Duration::from_secs(10),
        scheme: "http".into(),
        path_prefix: "/debug/pprof".into(),
        labels: Labels::new(),
    };
    let r = discovery::resolve(&d, &rules, &groups, |_| true);
    for t in &r.active {
        assert!(t.labels.keys().all(|k| !k.starts_with("__")));
        assert!(t.labels.contains_key("instance"));
    }
});
