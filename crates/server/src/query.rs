//! How queries run: on a blocking thread, at most `[server] max_concurrent_queries` at once
//! (others wait up to 5 s, then 503), under a timeout that cancels the work (503) and a
//! budget per query (nodes, stack depth, output bytes: 422), with the allocator told to hand
//! memory back after big ones (docs/adr/0010). [`blocking`] is the one way a route runs
//! store or analysis work; [`blocking_unlimited`] is the same timeout for pushes and uploads,
//! which do not take a query slot. Both lend the work a [`Lent`]: the state with the sync
//! store, which exists nowhere else (`AppState::store` is a [`gocost_store::AsyncStore`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// The server's state with the store lent to one piece of blocking work ([`blocking`],
/// [`blocking_unlimited`]): here, and only here, `st.store` is the synchronous
/// [`gocost_store::Store`]; everything else of [`AppState`] is reached through `Deref`.
pub(crate) struct Lent<'a> {
    pub store: &'a gocost_store::Store,
    state: &'a AppState,
}

impl std::ops::Deref for Lent<'_> {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        self.state
    }
}

/// How long one query may take by default before the client gets 503 and its work is
/// cancelled (`[server] query_timeout`).
pub const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

static QUERY_TIMEOUT_MS: AtomicU64 = AtomicU64::new(QUERY_TIMEOUT.as_millis() as u64);
pub(crate) static QUERIES_CANCELLED: AtomicU64 = AtomicU64::new(0);

pub(crate) static QUERIES_REFUSED: AtomicU64 = AtomicU64::new(0);
pub(crate) static QUERIES_RUNNING: AtomicU64 = AtomicU64::new(0);
/// How long a query waits for a free slot before it is refused.
const QUERY_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
type Slots = (usize, Arc<tokio::sync::Semaphore>);
static QUERY_SLOTS: RwLock<Option<Slots>> = RwLock::new(None);

/// The default number of queries that run at once: the machine's cores (at least 2).
pub fn default_query_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Sets how many queries may run at once (the config's `[server] max_concurrent_queries`).
/// Each query's memory is bounded by what it reads, so this bounds the memory of a storm
/// of them: others wait up to 5 s for a slot, then get 503 with `Retry-After`.
pub fn set_query_concurrency(n: usize) {
    let n = n.max(1);
    if let Ok(mut g) = QUERY_SLOTS.write() {
        *g = Some((n, Arc::new(tokio::sync::Semaphore::new(n))));
    }
}

fn query_slots() -> Slots {
    if let Ok(g) = QUERY_SLOTS.read()
        && let Some(s) = g.as_ref()
    {
        return s.clone();
    }
    set_query_concurrency(default_query_concurrency());
    QUERY_SLOTS
        .read()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_else(|| (2, Arc::new(tokio::sync::Semaphore::new(2))))
}

/// What one query may build and answer (`[server] query_max_nodes`, `query_max_depth`,
/// `query_max_output`). With `max_concurrent_queries`, it bounds the memory of queries: a
/// query past it stops where it is and is answered 422 naming the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBudget {
    /// Samples of the merged profile, nodes of a flame graph.
    pub max_nodes: usize,
    /// Frames of one stack (inlined ones counted).
    pub max_depth: usize,
    /// Bytes of the answer.
    pub max_output: usize,
}

impl Default for QueryBudget {
    fn default() -> Self {
        QueryBudget {
            max_nodes: 1_000_000,
            max_depth: 2048,
            max_output: 64 << 20,
        }
    }
}

static QUERY_BUDGET: RwLock<Option<QueryBudget>> = RwLock::new(None);
pub(crate) static QUERIES_OVER_BUDGET: AtomicU64 = AtomicU64::new(0);

/// Sets every query's budget (the config's `[server] query_max_*`).
pub fn set_query_budget(b: QueryBudget) {
    if let Ok(mut g) = QUERY_BUDGET.write() {
        *g = Some(b);
    }
}

pub(crate) fn query_budget() -> QueryBudget {
    QUERY_BUDGET
        .read()
        .ok()
        .and_then(|g| *g)
        .unwrap_or_default()
}

/// The answer to a query that went over its budget, naming the setting.
pub(crate) fn over_budget(o: gocost_pprof::cancel::OverBudget) -> ApiError {
    QUERIES_OVER_BUDGET.fetch_add(1, Ordering::Relaxed);
    ApiError::TooBig(match o.limit {
        gocost_pprof::cancel::Limit::Nodes => format!(
            "the query needs more than {} stacks or flame-graph nodes (the query_max_nodes setting in [server]); narrow the range or the selector, or focus the report",
            o.max
        ),
        gocost_pprof::cancel::Limit::Depth => format!(
            "the query meets a stack deeper than {} frames (the query_max_depth setting in [server]); narrow the range or the selector",
            o.max
        ),
    })
}

/// The answer to a query whose output is too large.
pub(crate) fn output_too_big(max: usize) -> ApiError {
    QUERIES_OVER_BUDGET.fetch_add(1, Ordering::Relaxed);
    ApiError::TooBig(format!(
        "the answer is larger than {max} bytes (the query_max_output setting in [server]); narrow the range or the selector, or focus the report"
    ))
}

/// A `Vec` that refuses to grow past the query's output budget (its writes then fail).
pub(crate) struct Capped {
    pub(crate) buf: Vec<u8>,
    pub(crate) max: usize,
    pub(crate) over: bool,
}

impl Capped {
    pub(crate) fn new() -> Capped {
        Capped {
            buf: Vec::new(),
            max: query_budget().max_output,
            over: false,
        }
    }

    /// The bytes, or the 422 if the output went over budget.
    pub(crate) fn finish(self) -> Result<Vec<u8>, ApiError> {
        if self.over {
            Err(output_too_big(self.max))
        } else {
            Ok(self.buf)
        }
    }
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.max {
            self.over = true;
            return Err(std::io::Error::other("over the query_max_output budget"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON answer written within the output budget.
pub(crate) fn capped_json<T: serde::Serialize>(v: &T) -> Result<Response, ApiError> {
    let mut w = Capped::new();
    match serde_json::to_writer(&mut w, v) {
        Ok(()) => {}
        Err(_) if w.over => return Err(output_too_big(w.max)),
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    }
    let mut r = w.finish()?.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

static AFTER_QUERY: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();
/// Queries shorter than this skip [`set_after_query`]'s hook (they built little, and the
/// hook costs ~2 ms).
const AFTER_QUERY_MIN: std::time::Duration = std::time::Duration::from_millis(50);

/// Sets what runs on a query's thread when a query of 50 ms or more is done (the binary
/// hands the thread's freed memory back to the system with it: docs/adr/0010).
pub fn set_after_query(f: fn()) {
    let _ = AFTER_QUERY.set(f);
}

/// Sets how long a query may run (the config's `[server] query_timeout`).
pub fn set_query_timeout(d: std::time::Duration) {
    QUERY_TIMEOUT_MS.store(d.as_millis().max(1) as u64, Ordering::Relaxed);
}

/// Runs query work on a blocking thread. Past the query timeout the client gets 503 and the
/// work is cancelled: the merge and report loops check a flag ([`gocost_pprof::cancel`]) and
/// unwind, so an abandoned query does not burn a core to its end.
pub(crate) async fn blocking<T: Send + 'static>(
    st: &Arc<AppState>,
    f: impl FnOnce(&Lent<'_>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (n, slots) = query_slots();
    let Ok(Ok(permit)) = tokio::time::timeout(QUERY_QUEUE_WAIT, slots.acquire_owned()).await else {
        QUERIES_REFUSED.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::Busy(format!(
            "too many queries at once ({n} run at a time: the max_concurrent_queries setting in [server]); retry shortly"
        )));
    };
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f_flag = flag.clone();
    let state = st.clone();
    let mut h = st.store.spawn(move |store| {
        // The slot is held until the work ends, cancelled or not.
        let _permit = permit;
        QUERIES_RUNNING.fetch_add(1, Ordering::Relaxed);
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                QUERIES_RUNNING.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _done = Done;
        let budget = query_budget();
        let budget = gocost_pprof::cancel::Budget {
            max_nodes: budget.max_nodes,
            max_depth: budget.max_depth,
        };
        // Runs when the work ends, answered, over budget or cancelled (an unwind), after
        // queries that ran long enough to have built something big.
        struct After(Instant);
        impl Drop for After {
            fn drop(&mut self) {
                if self.0.elapsed() >= AFTER_QUERY_MIN
                    && let Some(f) = AFTER_QUERY.get()
                {
                    f();
                }
            }
        }
        let _after = After(Instant::now());
        let lent = Lent {
            store,
            state: &state,
        };
        // Peers a query could not reach make its answer partial (cluster::mark_partial).
        gocost_store::collect_partial(|| {
            gocost_pprof::cancel::with_flag(f_flag, || {
                gocost_pprof::cancel::with_budget(budget, || f(&lent))
            })
        })
    });
    let timeout = std::time::Duration::from_millis(QUERY_TIMEOUT_MS.load(Ordering::Relaxed));
    let unavailable = || {
        ApiError::Timeout(format!(
            "query took longer than {timeout:?} (the query_timeout setting in [server]) and was stopped; narrow the range or the selector"
        ))
    };
    match tokio::time::timeout(timeout, &mut h).await {
        Ok(Ok((v, missing))) => {
            crate::cluster::note_partial(missing);
            Ok(v)
        }
        Ok(Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            if gocost_pprof::cancel::is_cancelled(&*payload) {
                Err(unavailable())
            } else if let Some(o) = gocost_pprof::cancel::over_budget(&*payload) {
                Err(over_budget(o))
            } else {
                tracing::error!(target: "gocost::query", panic = panic_text(&*payload), "a query panicked");
                Err(ApiError::Internal(
                    "the query failed (a bug: see the log)".into(),
                ))
            }
        }
        Ok(Err(e)) => Err(ApiError::Internal(format!("the query's thread: {e}"))),
        Err(_) => {
            flag.store(true, Ordering::Relaxed);
            // Counted when the work has actually stopped.
            tokio::spawn(async move {
                if let Err(e) = h.await
                    && e.is_panic()
                    && gocost_pprof::cancel::is_cancelled(&*e.into_panic())
                {
                    QUERIES_CANCELLED.fetch_add(1, Ordering::Relaxed);
                }
            });
            Err(unavailable())
        }
    }
}

/// A panic's message, for the log.
fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Blocking work that is not a query (a push's decoding and its append, an upload), under
/// the same timeout as queries but without a query slot: past the timeout the client gets
/// 503 naming the setting (`what` says what took long). The work itself cannot be stopped
/// halfway (a half-done append would be worse), so it finishes in the background.
pub(crate) async fn blocking_unlimited<T: Send + 'static>(
    st: &Arc<AppState>,
    what: &'static str,
    f: impl FnOnce(&Lent<'_>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    use gocost_store::RunError;
    let timeout = std::time::Duration::from_millis(QUERY_TIMEOUT_MS.load(Ordering::Relaxed));
    let state = st.clone();
    let run = st.store.run_within(what, timeout, move |store| {
        f(&Lent {
            store,
            state: &state,
        })
    });
    match run.await {
        Ok(v) => Ok(v),
        Err(RunError::Timeout { .. }) => {
            tracing::warn!(target: "gocost::http", ?timeout, "{what} timed out");
            Err(ApiError::Timeout(format!(
                "{what} took longer than {timeout:?} (the query_timeout setting in [server])"
            )))
        }
        Err(e @ RunError::ShuttingDown { .. }) => Err(ApiError::Busy(e.to_string())),
        Err(e) => {
            tracing::error!(target: "gocost::http", "{e}");
            Err(ApiError::Internal(format!(
                "{what} failed (a bug: see the log)"
            )))
        }
    }
}
