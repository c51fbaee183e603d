//! # gocost-insights
//!
//! Analyses of profiles over time that no profiler viewer does by itself. Synchronous, no
//! I/O: callers (the CLI, the server) read profiles and hand them over.
//!
//! - [`leaks`]: goroutine leaks from goroutine profiles over time, Go's `goroutineleak`
//!   profile and `debug=2` dumps ([`dump`]);
//! - [`heap`]: allocation sites whose heap in use keeps growing;
//! - [`cost`]: what CPU and memory cost, per service and per function;
//! - [`gc`]: GC pauses, the CPU the collector takes, and the allocation that drives it;
//! - [`regress`]: functions that got more expensive when a build changed;
//! - [`growth`]: the one rule for "keeps growing" both use.

pub mod cost;
pub mod dump;
pub mod gc;
pub mod growth;
pub mod heap;
pub mod leaks;
pub mod regress;
