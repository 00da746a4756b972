//! smol runners: the smol executor (async-executor on async-io's reactor) in every
//! strategy.
//!
//! | runner | strategy | how |
//! |---|---|---|
//! | `smol` ([`Threaded`]) | threaded | a reactor thread named `smol` runs one executor until shutdown; cells are handed over through a mailbox that spins before it sleeps |
//! | `smol-per-cell` ([`PerCell`]) | per-cell | one executor, ticked by the calling thread only while a cell runs |
//! | `smol-fresh` ([`Fresh`]) | fresh | a new executor per cell, dropped with it (and its tasks) |
//! | `smol-host` (`Host`, with the `tokio` feature) | host | the executor is driven forever by one task on a host tokio runtime |
//! | `smol-nested` ([`Nested`]) | nested | a re-entrant `block_on` that ticks the shared executor at every level; a thread named `smol-nested` ticks it between cells |
//!
//! Every runner offers the same [`Services`](autoawait_core::Services): async-io
//! timers and async-net sockets. They run on async-io's process-wide reactor, so
//! they work under any executor.
//!
//! # Examples
//!
//! ```
//! use autoawait_core::kit::Config;
//! use autoawait_core::RunnerExt;
//! use autoawait_runners::smol_runner::Threaded;
//!
//! let smol = Threaded::new(Config::new("smol"))?;
//! let waited = smol.block_on(async {
//!     smol::Timer::after(std::time::Duration::from_millis(1)).await;
//!     "slept"
//! })?;
//! assert_eq!(waited, "slept");
//! # Ok::<(), autoawait_core::RunError>(())
//! ```

mod fresh;
#[cfg(feature = "tokio")]
mod host;
mod nested;
mod per_cell;
mod services;
mod threaded;

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use autoawait_core::kit::{catch, quietly, Config, Lifecycle};
use autoawait_core::{
    Cell, CellResult, EventualResult, ReactorId, RunError, RunOptions, RunnerFactory,
};
use smol::future::{self as future, FutureExt as _};
use smol::{Executor, LocalExecutor};

pub use fresh::Fresh;
#[cfg(feature = "tokio")]
pub use host::Host;
pub use nested::Nested;
pub use per_cell::PerCell;
pub use threaded::Threaded;

/// Tasks an executor-only thread runs before it yields, so that the future it is
/// raced against with `or` is polled again.
const TICKS: u32 = 200;

/// Runs the tasks of `ex` forever, for a thread whose only work is the executor
/// (the `smol-nested` thread, the `smol-host` task).
async fn tick_forever<T>(ex: &Executor<'_>) -> T {
    loop {
        for _ in 0..TICKS {
            ex.tick().await;
        }
        future::yield_now().await;
    }
}

/// [`tick_forever`] for a [`LocalExecutor`].
async fn tick_forever_local<T>(ex: &LocalExecutor<'_>) -> T {
    loop {
        for _ in 0..TICKS {
            ex.tick().await;
        }
        future::yield_now().await;
    }
}

/// Polls a cell on this thread, running the tasks of a shared executor while it
/// waits.
///
/// Unlike racing the cell against `ex.run()` or `ex.tick()`, no ticker of this
/// level sleeps while the cell is polled. async-executor wakes one sleeping ticker
/// per scheduled task and no other until that one wakes up, so a level whose cell
/// blocks in a nested `run()` (or in blocking code) with its ticker asleep would
/// swallow the wake-ups of every later task, and a nested cell waiting for one of
/// them would hang.
struct Drive<'a, F> {
    cell: F,
    ex: &'a Executor<'static>,
    ticker: Option<Pin<Box<dyn Future<Output = ()> + 'a>>>,
}

impl<F: Future + Unpin> Future for Drive<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // Out of the sleepers before the cell runs (a notification it got is passed on).
        this.ticker = None;
        let mut budget = TICKS;
        loop {
            if let Poll::Ready(out) = Pin::new(&mut this.cell).poll(cx) {
                return Poll::Ready(out);
            }
            let mut ran = false;
            while budget > 0 && this.ex.try_tick() {
                ran = true;
                budget -= 1;
            }
            if !ran {
                // Nothing ready: sleep on a ticker until a task is scheduled.
                let mut ticker: Pin<Box<dyn Future<Output = ()> + '_>> = Box::pin(this.ex.tick());
                if ticker.as_mut().poll(cx).is_pending() {
                    this.ticker = Some(ticker);
                    return Poll::Pending;
                }
                budget = budget.saturating_sub(1);
            }
            if budget == 0 {
                // Let the caller's block_on look at I/O before going on.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // A task that ran may have woken the cell: poll it again.
        }
    }
}

/// Runs `cell` on this thread with smol's `block_on`, running the tasks of `ex`
/// whenever it waits. A ready cell never touches the executor.
fn block_on_cell(cell: Cell, opts: &RunOptions, ex: &Executor<'static>) -> CellResult {
    let cell = opts.guard(cell.into_local_future());
    catch(|| {
        smol::block_on(Drive {
            cell,
            ex,
            ticker: None,
        })
    })
}

/// [`block_on_cell`] for a cell alone with its own local executor (no other level
/// ticks it, so racing the cell against the executor is enough).
fn block_on_cell_local(cell: Cell, opts: &RunOptions, ex: &LocalExecutor<'static>) -> CellResult {
    let cell = opts.guard(cell.into_local_future());
    catch(|| smol::block_on(cell.or(tick_forever_local(ex))))
}

/// A cell's future under `opts`, for the task that runs it while its caller waits:
/// a panic that escapes the cell (a destructor that panics when the timeout drops
/// it) is the caller's `Panicked`, not a dead task.
async fn guarded<F>(fut: F, opts: RunOptions) -> CellResult
where
    F: Future<Output = CellResult> + Unpin,
{
    let mut fut = AssertUnwindSafe(opts.guard(fut)).catch_unwind();
    future::poll_fn(|cx| quietly(|| Pin::new(&mut fut).poll(cx)))
        .await
        .unwrap_or_else(|payload| Err(RunError::from_panic(payload)))
}

/// `ex.try_tick()`, surviving a task that panics out of its poll (its result is
/// then `TaskDropped`): the thread driving a runner must not die of one task.
fn try_tick(ex: &LocalExecutor<'_>) -> bool {
    quietly(|| catch_unwind(AssertUnwindSafe(|| ex.try_tick()))).unwrap_or(true)
}

/// `smol::block_on(fut)` on a runner's own thread, surviving a task that panics.
fn block_on_surviving(fut: impl Future<Output = ()>) {
    let _ = quietly(|| catch_unwind(AssertUnwindSafe(|| smol::block_on(fut))));
}

thread_local! {
    /// The local executors this thread drives, innermost last, with the runner they
    /// belong to: a cell spawns its tasks into its runner's executor on its thread.
    static EXECUTORS: RefCell<Vec<(ReactorId, Rc<LocalExecutor<'static>>)>> =
        const { RefCell::new(Vec::new()) };
}

/// Makes `ex` the executor of `reactor` on this thread until dropped.
struct ExecutorScope;

impl ExecutorScope {
    fn enter(reactor: &ReactorId, ex: &Rc<LocalExecutor<'static>>) -> Self {
        EXECUTORS.with(|e| e.borrow_mut().push((*reactor, ex.clone())));
        ExecutorScope
    }
}

impl Drop for ExecutorScope {
    fn drop(&mut self) {
        let entry = EXECUTORS.with(|e| e.borrow_mut().pop());
        drop(entry);
    }
}

/// The executor of `reactor` that this thread drives, if any.
fn current_executor(reactor: &ReactorId) -> Option<Rc<LocalExecutor<'static>>> {
    EXECUTORS.with(|e| {
        e.borrow()
            .iter()
            .rev()
            .find(|(r, _)| r == reactor)
            .map(|(_, ex)| ex.clone())
    })
}

/// Spawns `cell` as a background task of `ex`, on this thread.
fn spawn_on(ex: &LocalExecutor<'static>, reactor: &ReactorId, cell: Cell) -> EventualResult {
    let origin = cell.origin();
    match cell.into_future() {
        Ok(fut) => {
            let (task, eventual) = EventualResult::task(origin, fut, Some(reactor));
            ex.spawn(task).detach();
            eventual
        }
        Err(cell) => {
            let fut = cell.into_local_future();
            let (task, eventual) = EventualResult::local_task(origin, fut, Some(reactor));
            ex.spawn(task).detach();
            eventual
        }
    }
}

/// Spawns a `Send` cell on the shared executor of `life`'s runner, waited on as
/// `driver`; a local cell is `Unsupported`.
fn spawn_send(
    life: &Lifecycle,
    executor: &Shared,
    driver: ReactorId,
    cell: Cell,
) -> Result<EventualResult, RunError> {
    life.check()?;
    let ex = executor.get(life)?;
    let (task, eventual) = life.send_task(cell, None, driver)?;
    ex.spawn(task).detach();
    Ok(eventual)
}

/// A shared executor that shutdown can take away: its tasks are dropped with the
/// last clone, so work handed to a runner that is shutting down ends instead of
/// waiting forever.
struct Shared(RwLock<Option<Arc<Executor<'static>>>>);

impl Shared {
    fn new(ex: Arc<Executor<'static>>) -> Self {
        Shared(RwLock::new(Some(ex)))
    }

    fn get(&self, life: &Lifecycle) -> Result<Arc<Executor<'static>>, RunError> {
        let ex = self.0.read().unwrap_or_else(PoisonError::into_inner);
        ex.clone().ok_or_else(|| life.stopped())
    }

    fn take(&self) -> Option<Arc<Executor<'static>>> {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

inventory::submit! {
    RunnerFactory::new(threaded::INFO, || Ok(Arc::new(Threaded::new(Config::new("smol"))?)))
}
inventory::submit! {
    RunnerFactory::new(per_cell::INFO, || Ok(Arc::new(PerCell::new(Config::new("smol-per-cell")))))
}
inventory::submit! {
    RunnerFactory::new(fresh::INFO, || Ok(Arc::new(Fresh::new(Config::new("smol-fresh")))))
}
inventory::submit! {
    RunnerFactory::new(nested::INFO, || Ok(Arc::new(Nested::new(Config::new("smol-nested"))?)))
}
#[cfg(feature = "tokio")]
inventory::submit! {
    RunnerFactory::new(host::INFO, || Ok(Arc::new(Host::new(Config::new("smol-host"))?)))
}
#[cfg(not(feature = "tokio"))]
inventory::submit! {
    RunnerFactory::unavailable(
        autoawait_core::RunnerInfo::new(
            "smol-host",
            "smol",
            autoawait_core::Strategy::Host,
            "a smol executor driven by a task on the host's tokio runtime",
        ),
        "runner `smol-host` drives smol from a tokio runtime: enable the `tokio` feature \
         of autoawait-runners as well as `smol`",
    )
}
