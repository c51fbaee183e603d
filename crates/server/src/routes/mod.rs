//! Every route, one file per area; `crate::router` puts them together. Each handler checks
//! its request, runs the work (`crate::query::blocking`) and answers JSON, pprof bytes or
//! text; every error is an [`crate::ApiError`].
//!
//! | file | routes |
//! |---|---|
//! | `profiles.rs` | `/api/v1/profile`, `top`, `tags`, `graph`, `peek`, `diff` |
//! | `flame.rs` | `/api/v1/flame` |
//! | `timeline.rs` | `/api/v1/timeline` |
//! | `series.rs` | `/api/v1/series`, `labels`, `label/{name}/values`, `targets`, `runtime` |
//! | `insights.rs` | `/api/v1/leaks`, `heap_growth`, `cost`, `gc`, `regressions` |
//! | `alerts.rs` | `/api/v1/alerts` |
//! | `traces.rs` | `/api/v1/traces` (list, upload), `/api/v1/trace/{id}` (download, `summary`, `timeline`) |
//! | `loadruns.rs` | `/api/v1/loadruns` (list, upload), `/api/v1/loadruns/{id}` (the run's JSON), `/api/v1/loadruns/{id}/report` (its HTML) |
//! | `push.rs` | `/ingest`, `/pyroscope/ingest`, `/push.v1.PusherService/Push`, `/v1development/profiles` (OTLP) |
//! | `metrics.rs` | `/metrics` |
//! | `ui.rs` | `/`, `/ui/{file}` |

pub(crate) mod alerts;
pub(crate) mod flame;
pub(crate) mod insights;
pub(crate) mod loadruns;
pub(crate) mod metrics;
pub(crate) mod profiles;
pub(crate) mod push;
pub(crate) mod series;
pub(crate) mod timeline;
pub(crate) mod traces;
pub(crate) mod ui;
