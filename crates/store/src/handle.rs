//! [`AsyncStore`]: the only way async code holds the store.
//!
//! [`Store`]'s API is synchronous: a call may read a block from disk or a bucket, fsync the
//! WAL or rewrite a day of blocks. On a thread that drives async tasks that stalls every task
//! queued behind it, and the blob layer refuses it ([`Error::AsyncContext`]). An
//! [`AsyncStore`] lends a `&Store` only to a closure it runs on tokio's blocking pool, a
//! bounded number at a time, so a handler or task that calls the store directly does not
//! compile: the mistake is found by the compiler, not by a test that happens to run after the
//! first block cut.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{Error, Store};

/// Store work in flight at once by default ([`AsyncStore::with_limit`]). Each one holds a
/// blocking thread; above this, callers wait their turn instead of growing the pool.
pub const DEFAULT_BLOCKING_LIMIT: usize = 32;

/// The store as async code holds it: cheap to clone, shared by the server and the scraper.
#[derive(Clone)]
pub struct AsyncStore {
    store: Arc<Store>,
    slots: Arc<Semaphore>,
}

/// Why [`AsyncStore::run`] has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The work did not finish within the caller's timeout. It cannot be stopped halfway
    /// (a half-done append would be worse), so it finishes in the background.
    #[error("{what} took longer than {timeout:?}")]
    Timeout {
        what: &'static str,
        timeout: Duration,
    },
    /// The work panicked (a bug); the message is the panic's.
    #[error("{what} failed: {message}")]
    Panicked { what: &'static str, message: String },
    /// The runtime is shutting down and the work was never run.
    #[error("{what} was not run: the runtime is shutting down")]
    ShuttingDown { what: &'static str },
}

impl From<Arc<Store>> for AsyncStore {
    fn from(store: Arc<Store>) -> Self {
        AsyncStore::with_limit(store, DEFAULT_BLOCKING_LIMIT)
    }
}

impl From<Store> for AsyncStore {
    fn from(store: Store) -> Self {
        Arc::new(store).into()
    }
}

impl AsyncStore {
    /// A handle that runs at most `limit` pieces of store work at once (at least one).
    pub fn with_limit(store: Arc<Store>, limit: usize) -> Self {
        AsyncStore {
            store,
            slots: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Runs `f` with the store on the blocking pool, once a slot is free, and returns what
    /// it returns. `what` names the work in errors ("a push", "the WAL sync").
    pub async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, RunError> {
        self.run_inner(what, None, f).await
    }

    /// As [`run`](Self::run), but gives up waiting after `timeout` (counted from the call,
    /// queueing included): the caller gets [`RunError::Timeout`] and the work, once
    /// started, finishes in the background.
    pub async fn run_within<T: Send + 'static>(
        &self,
        what: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, RunError> {
        self.run_inner(what, Some(timeout), f).await
    }

    async fn run_inner<T: Send + 'static>(
        &self,
        what: &'static str,
        timeout: Option<Duration>,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, RunError> {
        let work = async {
            let permit = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| RunError::ShuttingDown { what })?;
            let store = self.store.clone();
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                f(&store)
            });
            task.await.map_err(|e| join_error(what, e))
        };
        match timeout {
            None => work.await,
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| RunError::Timeout { what, timeout: t })?,
        }
    }

    /// Starts `f` with the store on the blocking pool *without* taking one of this handle's
    /// slots, and hands back its task. For callers that bound and time their work themselves
    /// and must see it end even after they stopped waiting (the server's queries hold a
    /// query slot, can be cancelled, and count cancellations when the work has unwound).
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
    }
}

/// A blocking task's failure as a [`RunError`].
fn join_error(what: &'static str, e: tokio::task::JoinError) -> RunError {
    if e.is_panic() {
        let p = e.into_panic();
        let message = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        RunError::Panicked { what, message }
    } else {
        RunError::ShuttingDown { what }
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        Error::Io(std::io::Error::other(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh store, opened on a plain thread (opening lists blocks: refused in a task).
    fn store(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("gocost-handle-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::thread::spawn(move || Store::open(crate::Options::new(&dir)).expect("open").0)
            .join()
            .expect("opening thread")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn work_runs_on_the_blocking_pool_and_reaches_blocks() {
        use crate::{Selector, SeriesKey};
        let s = AsyncStore::from(store("run"));
        let p = gocost_pprof::Profile {
            sample_type: vec![gocost_pprof::ValueType::new("goroutine", "count")],
            sample: vec![gocost_pprof::Sample {
                value: vec![3],
                ..Default::default()
            }],
            ..Default::default()
        };
        let key = SeriesKey::new("goroutine", [("job".into(), "api".into())]);
        // Appending, cutting a block and reading it back all touch the blob layer, which
        // refuses a thread that drives async tasks (Error::AsyncContext): through the
        // handle they run where it allows them.
        let merged = s
            .run("a round trip", move |st| {
                st.append(&key, 1_000, &gocost_pprof::encode(&p))?;
                st.sync()?;
                st.flush(true)?;
                assert_eq!(st.blocks().len(), 1);
                st.query(
                    &Selector::parse(r#"goroutine{job="api"}"#).expect("selector"),
                    0,
                    2_000,
                )
            })
            .await
            .expect("ran")
            .expect("stored and read");
        assert_eq!(merged.expect("a profile").sample[0].value, vec![3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_limit_run_at_once() {
        let s = AsyncStore::with_limit(Arc::new(store("limit")), 2);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (s, running, peak) = (s.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                s.run("a probe", move |_| {
                    use std::sync::atomic::Ordering::SeqCst;
                    let n = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(n, SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, SeqCst);
                })
                .await
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("ran");
        }
        // Never more than the limit (eight were asked for at once).
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&peak), "{peak} ran at once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_timeout_and_a_panic_are_errors_that_name_the_work() {
        let s = AsyncStore::from(store("errors"));
        let e = s
            .run_within("a slow thing", Duration::from_millis(10), |_| {
                std::thread::sleep(Duration::from_millis(200))
            })
            .await
            .expect_err("timed out");
        assert!(
            matches!(
                e,
                RunError::Timeout {
                    what: "a slow thing",
                    ..
                }
            ),
            "{e}"
        );
        let e = s
            .run("a broken thing", |_| -> () { panic!("boom") })
            .await
            .expect_err("panicked");
        assert_eq!(e.to_string(), "a broken thing failed: boom");
    }
}
