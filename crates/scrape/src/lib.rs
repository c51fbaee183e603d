//! # gocost-scrape
//!
//! Pulls profiles from Go services' `net/http/pprof` endpoints into the store on a schedule:
//! the configuration file ([`Config`]), the per-target scrape loops ([`Scraper`]) and the
//! Go semantics of each kind — cpu windows stored as they are, heap and goroutine
//! snapshots stored as gauges, cumulative allocs/mutex/block turned into deltas between
//! consecutive scrapes with restart detection ([`delta`]).
//!
//! It does not serve HTTP or decide how profiles are stored.

pub mod alerting;
pub mod config;
pub mod delta;
pub mod runtime;
mod scraper;

pub use config::{
    AuthConfig, Config, CostConfig, LimitsConfig, ScrapeConfig, TenancyConfig, TokenConfig,
    parse_duration, valid_tenant,
};
pub use runtime::{MAX_PROM_SAMPLES, PromSample, parse_prometheus};
pub use scraper::{Health, Scraper, is_cumulative};
