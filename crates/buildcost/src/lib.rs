//! # gocost-buildcost
//!
//! What a Go program costs to ship and to build, for `gocost size`, `gocost compare --base
//! old-binary --head new-binary` and `gocost build-cost`:
//!
//! - [`binary`]: a Go executable (ELF; Mach-O and PE through the same reader) as sections and
//!   symbols, read with the `object` crate;
//! - [`symname`]: a Go symbol name → its package path (generic instantiations, `type:` and
//!   `go:` prefixes, method receivers, escaped paths), as `debug/gosym` reads them;
//! - [`pclntab`]: Go's function table (names and sizes), for binaries without a symbol table;
//! - [`buildinfo`]: the build information Go embeds (`go version -m`): module path, main
//!   module, dependencies with versions, sums and `=>` replacements, build settings;
//! - [`size`]: the bytes by section, package and module; what cannot be attributed is a row
//!   of its own, never spread over the others;
//! - [`diff`]: two size reports compared, with the gates of a CI job (growth, new modules,
//!   new `replace` directives) and their text, Markdown and JSON;
//! - [`actiongraph`]: `go build -debug-actiongraph` → wall time per package (compile, cgo,
//!   link), the slowest actions and the critical path.
//!
//! Synchronous and without I/O: callers hand in bytes.
//!
//! ```
//! use gocost_buildcost::symname::{package_of, Owner};
//! assert_eq!(package_of("net/http.(*Server).Serve"), Owner::Package("net/http".into()));
//! assert_eq!(package_of("slices.Sort[go.shape.int]"), Owner::Package("slices".into()));
//! assert_eq!(package_of("gopkg.in/yaml%2ev3.Unmarshal"), Owner::Package("gopkg.in/yaml.v3".into()));
//! assert_eq!(package_of("type:.eq.main.T"), Owner::Compiler("type:"));
//! ```

pub mod actiongraph;
pub mod binary;
pub mod buildinfo;
pub mod diff;
pub mod pclntab;
pub mod size;
pub mod symname;

/// What went wrong reading an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not an ELF, Mach-O or PE executable.
    NotExecutable,
    /// An executable, but not one Go built (no build info, no pclntab).
    NotGo,
    /// A structure is cut short or points outside the file.
    Malformed,
    /// A Go format this reader does not know (e.g. a pclntab older than Go 1.2).
    Unsupported,
}

/// A parse error: which structure, where in the file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// The structure being read (`ELF header`, `pclntab header`, `build info`, …).
    pub what: &'static str,
    /// Byte offset in the file (or in the structure's section, when said), when known.
    pub offset: Option<u64>,
    pub msg: String,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        what: &'static str,
        offset: Option<u64>,
        msg: impl Into<String>,
    ) -> Error {
        Error {
            kind,
            what,
            offset,
            msg: msg.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(
                f,
                "{} at byte offset {o} (0x{o:x}): {}",
                self.what, self.msg
            ),
            None => write!(f, "{}: {}", self.what, self.msg),
        }
    }
}

impl std::error::Error for Error {}

/// Whether `bytes` start like an executable this crate reads (ELF, Mach-O, PE), so callers can
/// tell binaries from other inputs by their bytes.
pub fn is_executable(bytes: &[u8]) -> bool {
    const MACHO: [[u8; 4]; 4] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
    ];
    bytes.starts_with(b"\x7fELF")
        || MACHO.iter().any(|m| bytes.starts_with(m))
        || (bytes.starts_with(b"MZ") && bytes.len() >= 64)
}
