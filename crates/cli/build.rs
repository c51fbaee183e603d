//! Sets a cfg (`has_go`, `has_garage`, …) for each external tool this crate's tests need that
//! is present, so a test without its tool is reported as skipped (with the reason), never as
//! passed; under `CI` all are set and a missing tool fails. See `crates/testkit/src/tools.rs`.

#[allow(dead_code)]
#[path = "../testkit/src/tools.rs"]
mod tools;

fn main() {
    tools::emit_cfgs(&[
        tools::GO,
        tools::READELF,
        tools::PROMETHEUS,
        tools::BROWSER,
        tools::AGENTS,
        tools::ROOT,
        tools::GARAGE,
        tools::DNSMASQ,
        tools::OTLP_PROTO,
    ]);
}
