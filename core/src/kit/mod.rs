//! What every runner shares: the furniture of a [`Runner`](crate::Runner) that is
//! the same whatever the backend, so that a runner's file says only what is special
//! about its loop.
//!
//! | piece | what it does |
//! |---|---|
//! | [`Config`] | thread name, worker count, spin budget, drop grace: what a host may tune |
//! | [`Lifecycle`] | the runner's info and loop identity, its threads, one drop grace, stopped-after-shutdown, the "`run()` from inside a cell" refusal |
//! | [`Mailbox`] | jobs for a reactor thread: the reactor spins on one flag, then sleeps on a waker |
//! | [`reply`] | a one-shot reply to the caller's thread: spin briefly, then park |
//! | [`Spin`] | one bounded spin: bursts of busy polls, the core given away between bursts |
//! | [`Joiner`] | a runner's thread, joined within a time limit at shutdown |
//! | [`catch`], [`quietly`] | a panic that escapes a cell anyway is a value, and stays off stderr |
//! | [`lock`] | a mutex that a panicking cell cannot poison |
//!
//! The [`RunOptions::guard`](crate::RunOptions::guard) of core is the options half:
//! one type, free when there are no options.
//!
//! A runner's file starts with `use autoawait_core::kit::prelude::*;`.
//!
//! # Examples
//!
//! A threaded runner in a few lines: a thread that takes jobs from a [`Mailbox`]
//! and answers each caller through a [`reply`] slot.
//!
//! ```
//! use std::sync::Arc;
//! use autoawait_core::block_on_inline;
//! use autoawait_core::kit::prelude::*;
//!
//! type Job = (Cell, ReplySender<CellResult>);
//!
//! const INFO: RunnerInfo = RunnerInfo::new("my-loop", "mine", Strategy::Threaded, "mine");
//! let config = Config::new("my-loop");
//! let life = Lifecycle::new(INFO, &config);
//! let mailbox: Arc<Mailbox<Job>> = Arc::default();
//! let jobs = mailbox.clone();
//! life.spawn(&config.thread_name, move || {
//!     let mut queue = std::collections::VecDeque::new();
//!     while block_on_inline(jobs.wait()) {
//!         jobs.take(&mut queue);
//!         for (cell, reply) in queue.drain(..) {
//!             reply.send(block_on_inline(cell.into_local_future()));
//!         }
//!     }
//! })?;
//!
//! life.check_run()?;
//! let (tx, rx) = reply(config.spin);
//! mailbox.push((Cell::new(async { 6 * 7 }), tx)).ok();
//! let out = rx.recv().unwrap()?;
//! assert_eq!(*out.downcast::<i32>().unwrap(), 42);
//!
//! mailbox.close();
//! life.join(config.drop_grace);
//! # Ok::<(), RunError>(())
//! ```

mod config;
mod joiner;
mod lifecycle;
mod mailbox;
mod reply;
mod spin;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub use config::Config;
pub use joiner::Joiner;
pub use lifecycle::Lifecycle;
pub use mailbox::{Mailbox, Wait};
pub use reply::{default_spin, reply, ReplyReceiver, ReplySender};
pub use spin::Spin;

pub use crate::hooks::quietly;

/// What a runner's file needs, in one import: `use autoawait_core::kit::prelude::*;`.
pub mod prelude {
    pub use super::{lock, reply, Config, Lifecycle, Mailbox, ReplySender, Spin};
    pub use crate::{
        Advice, BoxFuture, Cell, CellResult, EventualResult, ReactorId, RunError, RunOptions,
        Runner, RunnerExt, RunnerInfo, Services, Strategy,
    };
}

use crate::{CellResult, RunError};

/// How long a shutdown waits past its grace for a runner's thread to exit before it
/// leaves the thread detached: a cell stuck in blocking code cannot be stopped.
pub const JOIN_MARGIN: Duration = Duration::from_secs(2);

/// Locks a mutex, ignoring poisoning: every critical section of a runner leaves its
/// data consistent, and a panicking cell must never poison a runner.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
///
/// let m = Mutex::new(1);
/// let _ = std::panic::catch_unwind(|| {
///     let _g = m.lock().unwrap();
///     panic!("poisons the mutex");
/// });
/// assert_eq!(*autoawait_core::kit::lock(&m), 1);
/// ```
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `run`, turning a panic that escapes it into [`RunError::Panicked`]: a
/// backend's `block_on` that a task panicked through, a destructor that panics when
/// a timeout drops the cell.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::catch;
///
/// let err = catch(|| panic!("escaped")).unwrap_err();
/// assert!(err.is_panicked());
/// ```
pub fn catch(run: impl FnOnce() -> CellResult) -> CellResult {
    quietly(|| catch_unwind(AssertUnwindSafe(run)))
        .unwrap_or_else(|payload| Err(RunError::from_panic(payload)))
}

/// A spawned cell as the future of [`Runner::run_async`](crate::Runner::run_async)'s
/// default: guarded by `opts`, cancelled if dropped before it finished.
pub fn await_spawned(
    spawned: Result<crate::EventualResult, crate::RunError>,
    opts: &crate::RunOptions,
) -> crate::BoxFuture<'static, CellResult> {
    let opts = opts.clone();
    Box::pin(async move { opts.guard(crate::eventual::CancelOnDrop(spawned?)).await })
}

/// A thread a runner could not start, as the [`RunError::Backend`] its caller sees.
///
/// # Examples
///
/// ```
/// let err = autoawait_core::kit::thread_error("smol", std::io::Error::other("EAGAIN"));
/// assert!(err.to_string().contains("cannot spawn a `smol` thread"));
/// ```
pub fn thread_error(name: &str, err: std::io::Error) -> RunError {
    RunError::backend(std::io::Error::new(
        err.kind(),
        format!("cannot spawn a `{name}` thread: {err}"),
    ))
}
