//! `gocost serve`: scrape Go services into the embedded store and serve the API.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use gocost_config::Config;
use gocost_scrape::Scraper;
use gocost_server::{AppState, HealthSource};
use gocost_store::{BlobConfig, Options, S3Config, SeriesKey, Store};

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
    /// `--role`: over `[cluster] role` (a cluster section is assumed if there is none).
    pub role: Option<String>,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Loads the bundled recording as job `demo`: one set of profiles per minute over the last
/// hour, and over the same hour a day earlier with another mix of the two CPU recordings
/// (so that the UI's "Compare with yesterday" has something to show).
fn load_demo(store: &Store) -> Result<usize> {
    const DAY: i64 = 86_400_000_000_000;
    let now = now_ns();
    let mut n = 0;
    let decoded = BUNDLED
        .iter()
        .map(|(_, b)| gocost_pprof::decode(b))
        .collect::<Result<Vec<_>, _>>()
        .context("decoding the bundled recording")?;
    for (start, today) in [(now - DAY, false), (now, true)] {
        for minute in 0..60i64 {
            let t = start - (60 - minute) * 60_000_000_000;
            for (i, (kind, _)) in BUNDLED.iter().enumerate() {
                // Today the two CPU recordings alternate, so the timeline is not flat;
                // yesterday the first one (index 0) ran three minutes out of four.
                let skip = if today {
                    (i as i64 + minute) % 2 == 0
                } else {
                    (i == 0) == (minute % 4 == 0)
                };
                if *kind == "cpu" && skip {
                    continue;
                }
                let key = SeriesKey::new(
                    kind,
                    [
                        ("job".to_string(), "demo".to_string()),
                        ("instance".to_string(), "recorded".to_string()),
                    ],
                );
                // Each replayed profile says when it was "taken", as a scraped one does.
                let mut p = decoded[i].clone();
                p.time_nanos = t;
                store.append_profile(&key, t, &p, None)?;
                n += 1;
            }
        }
    }
    store.sync()?;
    Ok(n)
}

/// Hands what a runtime thread freed back to the allocator (and the OS) when the thread
/// goes idle, at most every two seconds per thread: scrapes and pushes free their bodies on
/// whichever thread ran them, and mimalloc otherwise keeps a thread's freed pages until that
/// thread allocates enough again — the soak saw RSS follow the busiest minute, not the live
/// heap (docs/adr/0010). A blocking thread that exits hands back everything it held.
#[cfg(not(feature = "system-alloc"))]
fn collect_now_and_then() {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    LAST.with(|last| {
        if last
            .get()
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            last.set(Some(Instant::now()));
            // SAFETY: mi_collect only walks this thread's own heap (and the shared arenas).
            unsafe { libmimalloc_sys::mi_collect(true) }
        }
    });
}

fn health_source(s: &Arc<Scraper>) -> Box<dyn Fn() -> Vec<gocost_scrape::Health> + Send + Sync> {
    let s = s.clone();
    Box::new(move || s.health())
}

fn dropped_source(s: &Arc<Scraper>) -> gocost_server::DroppedSource {
    let s = s.clone();
    Box::new(move || s.dropped())
}

/// One round of block upkeep; failures are logged and retried next round (the WAL keeps
/// everything until a block holding it is written).
fn maintain(s: &Store) {
    // A failure repeats every round while, say, the disk is full: said once, and when it ends.
    static LAST_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let mut last = LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    match s.flush(false) {
        Ok(wrote) => {
            if last.take().is_some() {
                tracing::info!("cutting blocks works again");
            }
            if wrote {
                let st = s.stats();
                tracing::info!(
                    "cut a block; {} blocks, {} bytes for {} bytes of profiles as received",
                    st.blocks,
                    st.block_bytes,
                    st.block_ingested_bytes
                );
            }
        }
        Err(e) => {
            let msg = e.to_string();
            if last.as_deref() != Some(msg.as_str()) {
                tracing::error!("cutting a block failed (will retry): {msg}");
            }
            *last = Some(msg);
        }
    }
    drop(last);
    if let Err(e) = s.compact(now_ns()) {
        tracing::error!("compaction failed (will retry): {e}");
    }
    if let Err(e) = s.apply_retention(now_ns()) {
        tracing::error!("retention failed: {e}");
    }
}

/// The config file's settings, or the defaults without one.
fn load_config(path: Option<&std::path::Path>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p).map_err(InputError)?,
        None => Config::default(),
    })
}

/// What replay cut from a torn WAL tail, for the start-up line ("" if nothing).
fn torn(report: &gocost_store::ReplayReport) -> String {
    if report.truncated_bytes > 0 {
        format!(" (cut a torn record of {} bytes)", report.truncated_bytes)
    } else {
        String::new()
    }
}

/// The store options a config asks for.
fn store_options(cfg: &Config, data: &std::path::Path) -> Options {
    let mut opts = Options::new(data);
    if let Some(r) = cfg.storage.retention {
        opts.retention_ns = r.as_nanos() as i64;
    }
    if let Some(b) = cfg.storage.block_duration {
        opts.block_duration_ns = b.as_nanos() as i64;
    }
    if let Some(m) = cfg.storage.head_max {
        opts.head_max_bytes = m;
    }
    if let Some(c) = cfg.storage.head_cache {
        opts.head_cache_bytes = usize::try_from(c).unwrap_or(usize::MAX);
    }
    if let Some(c) = cfg.storage.block_cache {
        opts.block_cache_bytes = c;
    }
    if let Some(c) = &cfg.cluster {
        let refresh = c.refresh();
        opts.cluster = Some(gocost_store::ClusterOptions {
            instance: c.instance(),
            query_only: c.role() == Ok(gocost_config::Role::Query),
            // Readers see a compaction's block at their next refresh; until then they may
            // still read its inputs.
            delete_delay: (refresh * 4).max(Duration::from_secs(60)),
            compactor: c.compactor().unwrap_or_default(),
            lease_ttl: c.lease_ttl(),
        });
    }
    if let Some(d) = &cfg.storage.shared_dir {
        opts.blobs = BlobConfig::Dir(d.clone());
    }
    if let Some(s3) = &cfg.storage.s3 {
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        opts.blobs = BlobConfig::S3(S3Config {
            bucket: s3.bucket.clone(),
            prefix: s3.prefix.clone(),
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            access_key_id: s3
                .access_key_id
                .clone()
                .unwrap_or_else(|| env("AWS_ACCESS_KEY_ID")),
            secret_access_key: s3
                .secret_access_key
                .clone()
                .unwrap_or_else(|| env("AWS_SECRET_ACCESS_KEY")),
            allow_http: s3.allow_http,
        });
    }
    opts
}

/// The data directory: `--data`, else the config's `storage.path`, else `./gocost-data`.
fn data_dir(arg: Option<PathBuf>, cfg: &Config) -> PathBuf {
    arg.or_else(|| cfg.storage.path.clone())
        .unwrap_or_else(|| PathBuf::from("gocost-data"))
}

/// `gocost verify`: checks the data directory without changing it (it runs on a full disk,
/// and a damaged store stays as found); with `repair`, then fixes what it found. Returns
/// whether the store is clean (after the repair, with `repair`).
pub fn verify(config: Option<PathBuf>, data: Option<PathBuf>, repair: bool) -> Result<bool> {
    let cfg = load_config(config.as_deref())?;
    let data = data_dir(data, &cfg);
    if !data.is_dir() {
        return Err(InputError(format!("{}: no such data directory", data.display())).into());
    }
    let opts = store_options(&cfg, &data);
    let check = |opts: &Options| -> Result<gocost_store::VerifyReport> {
        match gocost_store::verify_dir(opts) {
            Ok(r) => Ok(r),
            Err(gocost_store::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Err(InputError(e.to_string()).into())
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("checking {}", data.display()))),
        }
    };
    let print = |r: &gocost_store::VerifyReport| {
        println!(
            "{}: {} series, {} profiles: {} in {} blocks ({} bytes for {} bytes as received), {} in the WAL ({} records in {} segments); {} traces ({} bytes)",
            data.display(),
            r.series,
            r.block_profiles + r.wal_profiles as u64,
            r.block_profiles,
            r.blocks,
            r.block_bytes,
            r.block_ingested_bytes,
            r.wal_profiles,
            r.wal_records,
            r.wal_segments,
            r.traces,
            r.trace_bytes,
        );
        for n in &r.notes {
            println!("note: {n}");
        }
        for p in &r.problems {
            println!("problem: {p}");
        }
        if r.problems.is_empty() {
            println!("clean");
        }
    };
    let mut r = check(&opts)?;
    print(&r);
    if repair && !(r.problems.is_empty() && r.notes.is_empty()) {
        let done = gocost_store::repair_dir(&opts, &r)
            .with_context(|| format!("repairing {}", data.display()))?;
        for d in &done {
            println!("repaired: {d}");
        }
        r = check(&opts)?;
        print(&r);
    }
    Ok(r.problems.is_empty())
}

pub fn serve(a: ServeArgs) -> Result<()> {
    let mut cfg = load_config(a.config.as_deref())?;
    if let Some(role) = &a.role {
        cfg.cluster.get_or_insert_with(Default::default).role = Some(role.clone());
    }
    let data = data_dir(a.data.clone(), &cfg);
    let listen = a
        .listen
        .clone()
        .or_else(|| cfg.server.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:4040".to_string());
    let opts = store_options(&cfg, &data);
    // Cut blocks, compact finished days and apply retention this often.
    let maintain_every = Duration::from_nanos(
        (opts.block_duration_ns / 4).clamp(1_000_000_000, 60_000_000_000) as u64,
    );
    let sync_every = cfg.storage.sync_interval.unwrap_or(Duration::from_secs(1));
    let (store, report) =
        Store::open(opts).with_context(|| format!("opening store {}", data.display()))?;
    if store.query_only() {
        tracing::info!(
            "query instance: blocks in {}, heads from the peers; no WAL (the block cache is in {})",
            store.blocks_location(),
            data.display()
        );
    } else {
        tracing::info!(
            "store {} (blocks in {}): replayed {} records from {} WAL segments{}",
            data.display(),
            store.blocks_location(),
            report.records,
            report.segments,
            torn(&report)
        );
    }
    for c in &report.corrupt {
        tracing::warn!("{c}");
    }
    let store = Arc::new(store);
    if let Some(c) = &cfg.cluster {
        let peers = gocost_server::cluster::HttpPeers::new(
            store.instance(),
            c.peers.clone(),
            c.peer_token.clone(),
            c.peer_timeout(),
        )
        .map_err(anyhow::Error::msg)?;
        if !c.peers.is_empty() {
            store.set_peers(Arc::new(peers));
        }
        let (shard, shards) = c.shard().map_err(InputError)?;
        tracing::info!(
            "cluster instance {:?} ({}), shard {shard}/{shards}, {} peers",
            store.instance(),
            if store.query_only() {
                "query only"
            } else {
                "scrapes, accepts pushes, writes blocks"
            },
            c.peers.len()
        );
    }
    if cfg.scrape.is_empty() && cfg.cluster.is_none() && store.series().is_empty() && !a.no_demo {
        let n = load_demo(&store)?;
        tracing::info!(
            "no scrape jobs configured: loaded {n} profiles recorded from a real Go service as job=\"demo\" (use --config to scrape your own)"
        );
    }

    // From here on the store is reached only through the async handle: work on it runs on
    // the blocking pool (gocost_store::AsyncStore).
    let store = gocost_store::AsyncStore::from(store);
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.worker_threads(2).enable_all();
    #[cfg(not(feature = "system-alloc"))]
    rt.on_thread_park(collect_now_and_then).on_thread_stop(|| {
        // SAFETY: mi_collect only walks this thread's own heap (and the shared arenas).
        unsafe { libmimalloc_sys::mi_collect(true) }
    });
    let rt = rt.build()?;
    rt.block_on(async move {
        let scraper = Arc::new(Scraper::start(&cfg, store.clone()).map_err(InputError)?);
        let health: HealthSource = Arc::new(RwLock::new(health_source(&scraper)));
        let state = AppState::new(store.clone(), health.clone());
        state.set_dropped_source(dropped_source(&scraper));
        state.access.configure(&cfg);
        state.set_cost_rates(cost_rates(&cfg.cost));
        state
            .alerts
            .set_rules(cfg.alert.clone(), cfg.alerting.interval());
        tokio::spawn(gocost_server::alerts::run(state.clone()));
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        tracing::info!(
            "serving on http://{} ({} scrape jobs)",
            listener.local_addr()?,
            cfg.scrape.len()
        );

        // Durability: fsync the WAL on an interval (scraped data; pushes wait for their own
        // sync), and say when ingest stops and starts again.
        let st = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sync_every);
            let mut failing: Option<String> = None;
            loop {
                tick.tick().await;
                let now = st
                    .run("the WAL sync", |s| {
                        if let Err(e) = s.sync() {
                            tracing::error!("WAL sync failed: {e}");
                        }
                        s.stats().write_error
                    })
                    .await
                    .unwrap_or_else(|e| Some(e.to_string()));
                match (&failing, &now) {
                    (None, Some(e)) => tracing::error!("ingest failing: {e}"),
                    (Some(_), None) => {
                        tracing::info!("ingest resumed: the WAL is writable again")
                    }
                    _ => {}
                }
                failing = now;
            }
        });
        // Blocks: cut the WAL into blocks, compact finished days, apply retention.
        let st = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(maintain_every);
            loop {
                tick.tick().await;
                if let Err(e) = st.run("block maintenance", maintain).await {
                    tracing::error!("{e}");
                }
            }
        });

        // A cluster: read the bucket index for the other instances' blocks on a period (and
        // write this one's part again if a write failed).
        if let Some(c) = &cfg.cluster {
            let st = store.clone();
            let every = c.refresh();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    match st.run("the bucket index", |s| s.refresh_cluster()).await {
                        Ok(Ok((0, 0))) => {}
                        Ok(Ok((added, dropped))) => tracing::info!(
                            "bucket index: {added} blocks of other instances added, {dropped} dropped"
                        ),
                        Ok(Err(e)) => tracing::warn!("reading the bucket index failed: {e}"),
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            });
        }

        // The bucket's compactor lease (docs/adr/0022): taken, renewed or given up every
        // sixth of its time; only its holder compacts and applies retention to the bucket.
        if let Some(c) = &cfg.cluster
            && store
                .run("the compactor mode", |s| {
                    s.compaction_mode() == gocost_store::CompactionMode::Lease
                })
                .await
                .unwrap_or(false)
        {
            let st = store.clone();
            let every = c.lease_ttl() / 6;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match st.run("the compactor lease", |s| s.tick_lease()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::warn!("the compactor lease: {e}"),
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            });
        }

        // SIGHUP reloads the config's scrape jobs; the store is untouched.
        #[cfg(unix)]
        if let Some(path) = a.config.clone() {
            let store = store.clone();
            let health = health.clone();
            let state = state.clone();
            let mut current = scraper.clone();
            let role = a.role.clone();
            tokio::spawn(async move {
                let Ok(mut hup) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                else {
                    return;
                };
                while hup.recv().await.is_some() {
                    let loaded = Config::load(&path).map(|mut c| {
                        if let Some(role) = &role {
                            c.cluster.get_or_insert_with(Default::default).role =
                                Some(role.clone());
                        }
                        c
                    });
                    match loaded {
                        Ok(new_cfg) => match Scraper::start(&new_cfg, store.clone()) {
                            Ok(s) => {
                                current.stop();
                                current = Arc::new(s);
                                state.set_cost_rates(cost_rates(&new_cfg.cost));
                                state
                                    .alerts
                                    .set_rules(new_cfg.alert.clone(), new_cfg.alerting.interval());
                                state.access.configure(&new_cfg);
                                if let Ok(mut h) = health.write() {
                                    *h = health_source(&current);
                                }
                                state.set_dropped_source(dropped_source(&current));
                                tracing::info!(
                                    "reloaded {} ({} scrape jobs)",
                                    path.display(),
                                    new_cfg.scrape.len()
                                );
                            }
                            Err(e) => {
                                tracing::error!("reload failed, keeping the old config: {e}")
                            }
                        },
                        Err(e) => tracing::error!("reload failed, keeping the old config: {e}"),
                    }
                }
            });
        }

        gocost_server::set_query_timeout(
            cfg.server
                .query_timeout
                .unwrap_or(gocost_server::QUERY_TIMEOUT),
        );
        gocost_server::set_query_concurrency(
            cfg.server
                .max_concurrent_queries
                .unwrap_or_else(gocost_server::default_query_concurrency),
        );
        // A query's blocking thread returns the memory it freed at once, not when the
        // allocator gets to it (docs/adr/0010).
        #[cfg(not(feature = "system-alloc"))]
        gocost_server::set_after_query(|| {
            // SAFETY: mi_collect only walks this thread's own heap.
            unsafe { libmimalloc_sys::mi_collect(true) }
        });
        let defaults = gocost_server::QueryBudget::default();
        gocost_server::set_query_budget(gocost_server::QueryBudget {
            max_nodes: cfg.server.query_max_nodes.unwrap_or(defaults.max_nodes),
            max_depth: cfg.server.query_max_depth.unwrap_or(defaults.max_depth),
            max_output: cfg
                .server
                .query_max_output
                .map_or(defaults.max_output, |b| b as usize),
        });
        let opts = listen_options(&cfg.server);
        *state
            .body_timeout
            .write()
            .unwrap_or_else(|p| p.into_inner()) = opts.body_timeout;
        let grace = opts.grace;
        let drained = gocost_server::listen::serve(
            listener,
            gocost_server::router(state.clone()),
            state,
            opts,
            stop_signal(grace),
        )
        .await?;
        if drained.cut > 0 {
            tracing::warn!(
                "cut {} connections still open after the grace period",
                drained.cut
            );
        }
        scraper.stop();
        store.run("the last WAL sync", |s| s.sync()).await??;
        // Another instance takes the compactor lease at once rather than after it expires.
        match store.run("releasing the compactor lease", |s| s.release_lease()).await {
            Ok(Ok(true)) => tracing::info!("compactor lease released"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!("releasing the compactor lease: {e}"),
            Err(e) => tracing::warn!("{e}"),
        }
        tracing::info!("stopped; store synced");
        Ok::<(), anyhow::Error>(())
    })
}

/// The listener's settings from `[server]`.
fn listen_options(c: &gocost_config::ServerConfig) -> gocost_server::listen::ListenOptions {
    let d = gocost_server::listen::ListenOptions::default();
    gocost_server::listen::ListenOptions {
        header_timeout: c.header_timeout.unwrap_or(d.header_timeout),
        body_timeout: c.body_timeout.unwrap_or(d.body_timeout),
        max_connections: c.max_connections.unwrap_or(d.max_connections),
        grace: c.shutdown_grace.unwrap_or(d.grace),
    }
}

/// Resolves on SIGTERM (how systemd and Kubernetes stop a service) or SIGINT, saying what
/// happens next.
async fn stop_signal(grace: Duration) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: stopping; requests in flight have {grace:?} to finish");
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The `[cost]` section's prices over gocost's defaults.
pub fn cost_rates(c: &gocost_config::CostConfig) -> gocost_insights::cost::Rates {
    let d = gocost_insights::cost::Rates::default();
    gocost_insights::cost::Rates {
        cpu_per_core_hour: c.cpu_per_core_hour.unwrap_or(d.cpu_per_core_hour),
        memory_per_gib_hour: c.memory_per_gib_hour.unwrap_or(d.memory_per_gib_hour),
        currency: c.currency.clone().unwrap_or(d.currency),
    }
}
