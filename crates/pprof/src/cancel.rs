//! Cooperative cancellation for long merges and reports: a caller that gives up on work
//! (a server query past its timeout) sets a flag; loops over samples call [`checkpoint`],
//! which unwinds the thread with [`Cancelled`] once the flag is set. No panic message is
//! printed (`resume_unwind` skips the panic hook); the caller catches it at the thread's
//! edge (`spawn_blocking`'s `JoinError::is_panic`, or `catch_unwind`).
//!
//! Code that runs without a flag (the CLI) pays one thread-local read per checkpoint.
//!
//! ```
//! use std::sync::{Arc, atomic::AtomicBool};
//! let flag = Arc::new(AtomicBool::new(true));
//! let r = std::panic::catch_unwind(|| gocost_pprof::cancel::with_flag(flag, || {
//!     gocost_pprof::cancel::checkpoint();
//!     "finished"
//! }));
//! assert!(gocost_pprof::cancel::is_cancelled(&*r.unwrap_err()));
//! ```

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static FLAG: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// The unwind payload of cancelled work.
#[derive(Debug)]
pub struct Cancelled;

/// Runs `f` with `flag` as this thread's cancellation flag.
pub fn with_flag<T>(flag: Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Arc<AtomicBool>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            FLAG.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = FLAG.with(|c| c.borrow_mut().replace(flag));
    let _reset = Reset(prev);
    f()
}

/// Unwinds with [`Cancelled`] if this thread's work was cancelled.
#[inline]
pub fn checkpoint() {
    let cancelled = FLAG.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    });
    if cancelled {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// Whether an unwind payload is a cancellation.
pub fn is_cancelled(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<Cancelled>()
}
