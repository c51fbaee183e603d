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

/// What one piece of work (a server query) may build: the samples of a merged profile and
/// the nodes of a flame graph (`max_nodes`), and the frames of one stack (`max_depth`). Past
/// either, the work unwinds with [`OverBudget`] — caught like a cancellation, and answered
/// as a query too big for the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_nodes: usize,
    pub max_depth: usize,
}

/// Which part of a [`Budget`] was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Nodes,
    Depth,
}

/// The unwind payload of work that went over its [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub limit: Limit,
    /// The budget's value for that limit.
    pub max: usize,
}

thread_local! {
    static BUDGET: std::cell::Cell<Option<Budget>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with `budget` as this thread's budget.
pub fn with_budget<T>(budget: Budget, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Budget>);
    impl Drop for Reset {
        fn drop(&mut self) {
            BUDGET.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(BUDGET.with(|c| c.replace(Some(budget))));
    f()
}

/// Unwinds with [`OverBudget`] if `n` nodes (samples, flame-graph nodes) are more than this
/// thread's budget allows.
#[inline]
pub fn nodes(n: usize) {
    if let Some(b) = BUDGET.with(|c| c.get())
        && n > b.max_nodes
    {
        std::panic::resume_unwind(Box::new(OverBudget {
            limit: Limit::Nodes,
            max: b.max_nodes,
        }));
    }
}

/// Unwinds with [`OverBudget`] if a stack of `n` frames is deeper than this thread's budget
/// allows.
#[inline]
pub fn depth(n: usize) {
    if let Some(b) = BUDGET.with(|c| c.get())
        && n > b.max_depth
    {
        std::panic::resume_unwind(Box::new(OverBudget {
            limit: Limit::Depth,
            max: b.max_depth,
        }));
    }
}

/// The [`OverBudget`] an unwind payload is, if it is one.
pub fn over_budget(payload: &(dyn std::any::Any + Send)) -> Option<OverBudget> {
    payload.downcast_ref::<OverBudget>().copied()
}

/// A thread's cancellation flag and budget, for threads that do part of its work
/// ([`context`], then [`Context::run`] on each).
#[derive(Debug, Clone, Default)]
pub struct Context {
    flag: Option<Arc<AtomicBool>>,
    budget: Option<Budget>,
}

/// This thread's cancellation flag and budget.
pub fn context() -> Context {
    Context {
        flag: FLAG.with(|c| c.borrow().clone()),
        budget: BUDGET.with(|c| c.get()),
    }
}

impl Context {
    /// Runs `f` under this flag and budget. A helper thread catches what `f` unwinds with
    /// and hands it to the thread it works for, which resumes it: the caller's edge then
    /// sees [`Cancelled`] or [`OverBudget`] as if the work had been its own.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let with_budget = || match self.budget {
            Some(b) => with_budget(b, f),
            None => f(),
        };
        match &self.flag {
            Some(flag) => with_flag(flag.clone(), with_budget),
            None => with_budget(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_unwinds_past_its_limits_only_inside() {
        nodes(usize::MAX);
        depth(usize::MAX);
        let b = Budget {
            max_nodes: 10,
            max_depth: 3,
        };
        with_budget(b, || {
            nodes(10);
            depth(3);
        });
        let r = std::panic::catch_unwind(|| with_budget(b, || nodes(11)));
        assert_eq!(
            over_budget(&*r.unwrap_err()),
            Some(OverBudget {
                limit: Limit::Nodes,
                max: 10
            })
        );
        let r = std::panic::catch_unwind(|| with_budget(b, || depth(4)));
        assert_eq!(
            over_budget(&*r.unwrap_err()).map(|o| o.limit),
            Some(Limit::Depth)
        );
        // The budget ends with its work, unwound or not.
        nodes(11);
    }
}
