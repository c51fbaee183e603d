//! `gocost serve`: scrape Go services into the embedded store and serve the API.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use gocost_scrape::{Config, Scraper};
use gocost_server::{AppState, HealthSource};
use gocost_store::{Options, SeriesKey, Store};

use crate::source::InputError;

/// Profiles recorded from real Go services (testdata/profiles), loaded on a fresh start
/// without scrape jobs so that a new user sees real data at once.
const BUNDLED: &[(&str, &[u8])] = &[
    (
        "cpu",
        include_bytes!("../../../testdata/profiles/cpu.pb.gz"),
    ),
    (
        "cpu",
        include_bytes!("../../../testdata/profiles/cpu2.pb.gz"),
    ),
    (
        "heap",
        include_bytes!("../../../testdata/profiles/heap.pb.gz"),
    ),
    (
        "allocs",
        include_bytes!("../../../testdata/profiles/allocs.delta.pb.gz"),
    ),
    (
        "goroutine",
        include_bytes!("../../../testdata/profiles/goroutine.pb.gz"),
    ),
    (
        "goroutineleak",
        include_bytes!("../../../testdata/profiles/goroutineleak.pb.gz"),
    ),
    (
        "mutex",
        include_bytes!("../../../testdata/profiles/mutex.delta.pb.gz"),
    ),
    (
        "block",
        include_bytes!("../../../testdata/profiles/block.delta.pb.gz"),
    ),
];

pub struct ServeArgs {
    pub config: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub listen: Option<String>,
    pub no_demo: bool,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Loads the bundled recording as job `demo`: one set of profiles per minute over the last
/// hour.
fn load_demo(store: &Store) -> Result<usize> {
    let now = now_ns();
    let mut n = 0;
    for minute in 0..60i64 {
        let t = now - (60 - minute) * 60_000_000_000;
        for (i, (kind, bytes)) in BUNDLED.iter().enumerate() {
            // Alternate the two CPU recordings so the timeline is not flat.
            if *kind == "cpu" && (i as i64 + minute) % 2 == 0 {
                continue;
            }
            let key = SeriesKey::new(
                kind,
                [
                    ("job".to_string(), "demo".to_string()),
                    ("instance".to_string(), "recorded".to_string()),
                ],
            );
            store.append(&key, t, bytes)?;
            n += 1;
        }
    }
    store.sync()?;
    Ok(n)
}

fn health_source(s: &Arc<Scraper>) -> Box<dyn Fn() -> Vec<gocost_scrape::Health> + Send + Sync> {
    let s = s.clone();
    Box::new(move || s.health())
}

pub fn serve(a: ServeArgs) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = match &a.config {
        Some(p) => Config::load(p).map_err(InputError)?,
        None => Config::default(),
    };
    let data = a
        .data
        .clone()
        .or_else(|| cfg.storage.path.clone())
        .unwrap_or_else(|| PathBuf::from("gocost-data"));
    let listen = a
        .listen
        .clone()
        .or_else(|| cfg.server.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:4040".to_string());
    let mut opts = Options::new(&data);
    if let Some(r) = cfg.storage.retention {
        opts.retention_ns = r.as_nanos() as i64;
    }
    let sync_every = cfg.storage.sync_interval.unwrap_or(Duration::from_secs(1));
    let (store, report) =
        Store::open(opts).with_context(|| format!("opening store {}", data.display()))?;
    eprintln!(
        "gocost: store {}: replayed {} profiles from {} WAL segments{}",
        data.display(),
        report.records,
        report.segments,
        if report.truncated_bytes > 0 {
            format!(" (cut a torn record of {} bytes)", report.truncated_bytes)
        } else {
            String::new()
        }
    );
    for c in &report.corrupt {
        eprintln!("gocost: warning: {c}");
    }
    let store = Arc::new(store);
    if cfg.scrape.is_empty() && store.series().is_empty() && !a.no_demo {
        let n = load_demo(&store)?;
        eprintln!(
            "gocost: no scrape jobs configured: loaded {n} profiles recorded from a real Go service as job=\"demo\" (use --config to scrape your own)"
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let scraper = Arc::new(Scraper::start(&cfg, store.clone()).map_err(InputError)?);
        let health: HealthSource = Arc::new(RwLock::new(health_source(&scraper)));
        let state = AppState::new(store.clone(), health.clone());
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        eprintln!(
            "gocost: serving on http://{} ({} scrape jobs)",
            listener.local_addr()?,
            cfg.scrape.len()
        );

        // Durability: fsync the WAL on an interval; retention once a minute.
        let st = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sync_every);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let s = st.clone();
                let retention =
                    n.is_multiple_of((60_000 / sync_every.as_millis().max(1) as u64).max(1));
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(e) = s.sync() {
                        eprintln!("gocost: WAL sync failed: {e}");
                    }
                    if retention && let Err(e) = s.apply_retention(now_ns()) {
                        eprintln!("gocost: retention failed: {e}");
                    }
                })
                .await;
                n += 1;
            }
        });

        // SIGHUP reloads the config's scrape jobs; the store is untouched.
        #[cfg(unix)]
        if let Some(path) = a.config.clone() {
            let store = store.clone();
            let health = health.clone();
            let mut current = scraper.clone();
            tokio::spawn(async move {
                let Ok(mut hup) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                else {
                    return;
                };
                while hup.recv().await.is_some() {
                    match Config::load(&path) {
                        Ok(new_cfg) => match Scraper::start(&new_cfg, store.clone()) {
                            Ok(s) => {
                                current.stop();
                                current = Arc::new(s);
                                if let Ok(mut h) = health.write() {
                                    *h = health_source(&current);
                                }
                                eprintln!(
                                    "gocost: reloaded {} ({} scrape jobs)",
                                    path.display(),
                                    new_cfg.scrape.len()
                                );
                            }
                            Err(e) => {
                                eprintln!("gocost: reload failed, keeping the old config: {e}")
                            }
                        },
                        Err(e) => eprintln!("gocost: reload failed, keeping the old config: {e}"),
                    }
                }
            });
        }

        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        axum::serve(listener, gocost_server::router(state))
            .with_graceful_shutdown(shutdown)
            .await?;
        store.sync()?;
        eprintln!("gocost: stopped; store synced");
        Ok::<(), anyhow::Error>(())
    })
}
