//! The scraper's decode-and-append pool: a fixed set of blocking threads
//! (`[storage] scrape_workers`, default the number of cores) fed through a bounded queue.
//!
//! A scrape reserves a place in the queue *before* it reads a response's body, and hands
//! the body over with the place: at most `workers + queue` bodies are in memory, however
//! many targets there are and however slow the disk is. When the workers stall (a slow
//! WAL write, the store's lock held by a block cut), the queue fills, scrapes wait for a
//! place with their response unread, and memory stays where it was (docs/adr/0025).
//!
//! The threads are blocking tasks of the store's handle ([`AsyncStore::spawn`]), so they
//! hold the `&Store` as any store work does; they end when the pool is dropped (every
//! scrape loop that held it aborted) and the queue is empty.

use std::sync::{Arc, Mutex};

use gocost_store::{AsyncStore, Store};
use tokio::sync::{mpsc, oneshot};

use crate::ScrapeError;

type Work = Box<dyn FnOnce(&Store) + Send>;

/// A handle on the pool; cheap to clone (one per scrape loop).
#[derive(Clone)]
pub(crate) struct Pool {
    tx: mpsc::Sender<Work>,
}

/// A place in the queue, held while a body is read.
pub(crate) struct Place(mpsc::OwnedPermit<Work>);

/// The queue's length per worker: bodies fetched and waiting for a thread.
pub const QUEUE_PER_WORKER: usize = 2;

/// The default number of workers: the machine's cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Pool {
    /// Starts `workers` threads (at least one) on `store`'s blocking pool.
    pub(crate) fn start(store: &AsyncStore, workers: usize) -> Pool {
        let workers = workers.max(1);
        let (tx, rx) = mpsc::channel::<Work>(workers * QUEUE_PER_WORKER);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            let rx = rx.clone();
            drop(store.spawn(move |s| {
                loop {
                    // One thread waits for work at a time; the others wait for the lock.
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                    let Some(work) = next else { return };
                    // A panic is the work's (its caller sees its answer dropped), not the
                    // thread's.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(s)));
                }
            }));
        }
        Pool { tx }
    }

    /// Waits for a place in the queue (back-pressure: all workers busy and the queue
    /// full).
    pub(crate) async fn place(&self) -> Result<Place, ScrapeError> {
        self.tx
            .clone()
            .reserve_owned()
            .await
            .map(Place)
            .map_err(|_| ScrapeError::Store("the scraper is stopping".into()))
    }

    /// Runs `f` on a worker in the place taken, and waits for its answer.
    pub(crate) async fn run<T: Send + 'static>(
        place: Place,
        what: &'static str,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, ScrapeError> {
        let (tx, rx) = oneshot::channel();
        drop(place.0.send(Box::new(move |s: &Store| {
            let _ = tx.send(f(s));
        })));
        rx.await
            .map_err(|_| ScrapeError::Store(format!("{what} failed (a panic: see the log)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    fn store(name: &str) -> AsyncStore {
        let dir = std::env::temp_dir().join(format!("gocost-pool-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::thread::spawn(move || {
            Store::open(gocost_store::Options::new(&dir))
                .expect("open")
                .0
        })
        .join()
        .expect("opening thread")
        .into()
    }

    /// A stalled worker stops producers at `workers + queue` bodies: the rest wait for a
    /// place holding nothing, and all finish once the stall ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_worker_holds_producers_back() {
        let pool = Pool::start(&store("stall"), 1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        // Bodies handed over (in the queue or being stored) and bodies stored.
        let handed = Arc::new(AtomicUsize::new(0));
        let stored = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (pool, handed, stored, release) = (
                pool.clone(),
                handed.clone(),
                stored.clone(),
                release_rx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let place = pool.place().await.expect("place");
                // Only now is the body read.
                let body = vec![7u8; 1 << 20];
                handed.fetch_add(1, SeqCst);
                Pool::run(place, "a stalled append", move |_| {
                    // The first append stalls until released (a disk that stopped).
                    let _ = release.lock().expect("lock").recv();
                    stored.fetch_add(1, SeqCst);
                    body.len()
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // One being stored, two queued (QUEUE_PER_WORKER × 1 worker): 17 scrapes wait
        // without a body.
        assert_eq!(handed.load(SeqCst), 1 + QUEUE_PER_WORKER);
        assert_eq!(stored.load(SeqCst), 0);
        for _ in 0..20 {
            release_tx.send(()).expect("release");
        }
        for t in tasks {
            assert_eq!(t.await.expect("task").expect("ran"), 1 << 20);
        }
        assert_eq!(stored.load(SeqCst), 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_panic_is_the_works_not_the_pools() {
        let pool = Pool::start(&store("panic"), 1);
        let place = pool.place().await.expect("place");
        let e = Pool::run(place, "a broken append", |_| -> () { panic!("boom") })
            .await
            .expect_err("no answer");
        assert!(e.to_string().contains("a broken append"), "{e}");
        let place = pool.place().await.expect("place");
        assert_eq!(Pool::run(place, "next", |_| 5).await.expect("ran"), 5);
    }
}
