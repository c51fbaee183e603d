//! # gocost-scrape
//!
//! Pulls profiles from Go services' `net/http/pprof` endpoints into the store on a schedule,
//! as the configuration file's `[[scrape]]` jobs say (`gocost-config`): the per-target
//! scrape loops ([`Scraper`]) and the
//! Go semantics of each kind — cpu windows stored as they are, heap and goroutine
//! snapshots stored as gauges, cumulative allocs/mutex/block turned into deltas between
//! consecutive scrapes with restart detection ([`delta`]); execution traces (`profiles =
//! ["trace"]`) taken on their own schedule and stored with their analyses ([`trace`]);
//! which targets there are ([`discovery`]: static `targets`, `file_sd`, `http_sd`, `dns_sd`
//! and `relabel` rules as Prometheus reads them; targets start and stop as they change).
//!
//! It does not serve HTTP or decide how profiles are stored.

pub mod delta;
pub mod discovery;
mod error;
mod pool;
pub mod runtime;
mod scraper;
pub mod trace;

pub use error::ScrapeError;
pub use pool::{QUEUE_PER_WORKER, default_workers};
pub use runtime::{MAX_PROM_SAMPLES, PromSample, parse_prometheus};
pub use scraper::{DroppedTarget, Health, MAX_DROPPED, Scraper, is_cumulative, shard_address};
