//! The [`Runner`] trait, its typed extension [`RunnerExt`], and what a runner says
//! about itself ([`RunnerInfo`]).

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::{Cell, CellOutput, CellResult, EventualResult, RunError, RunOptions, Services};

/// A boxed `Send` future, as returned by [`Runner::run_async`] and [`Services`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a runner runs cells, and what happens to background tasks between cells.
///
/// | strategy | model | between cells | `run()` inside a cell |
/// |---|---|---|---|
/// | threaded | a reactor thread that lives until shutdown (crochet, `reqwest::blocking`) | background tasks keep running | `WouldDeadlock` |
/// | per-cell | the loop is started for the cell and stopped after it (IPython's terminal) | tasks are suspended; they resume in the next cell | `WouldDeadlock` |
/// | fresh | a new loop per cell, torn down after it (`trio.run`) | tasks started by a cell end with it | `WouldDeadlock` |
/// | host | cells run on a loop the host already runs (ipykernel) | tasks keep running on the host loop | per backend |
/// | nested | re-entrant (`nest_asyncio`) | as its base loop | works, to any depth |
///
/// This table is the spec the conformance suite (`autoawait-conformance`) checks for
/// every runner.
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, Strategy};
///
/// let inline = Registry::global().get("inline")?;
/// assert_eq!(inline.info().strategy, Strategy::Nested);
/// assert_eq!(Strategy::PerCell.to_string(), "per-cell");
/// assert_eq!(Strategy::Threaded.between_cells(), "background tasks keep running");
/// # Ok::<(), autoawait_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// A reactor thread that lives until shutdown (crochet): background tasks keep
    /// running between cells.
    Threaded,
    /// One loop, driven only while a cell runs (IPython's terminal asyncio runner):
    /// background tasks are suspended between cells and resume in the next.
    PerCell,
    /// A new loop per cell, torn down after it (`trio.run`): tasks are dropped.
    Fresh,
    /// Cells run on a loop the host already runs (ipykernel).
    Host,
    /// Re-entrant (nest_asyncio): `run` may be called from inside a cell it runs.
    Nested,
}

impl Strategy {
    /// The name a user reads in `%autoawait --list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Threaded => "threaded",
            Strategy::PerCell => "per-cell",
            Strategy::Fresh => "fresh",
            Strategy::Host => "host",
            Strategy::Nested => "nested",
        }
    }

    /// What the strategy means for background tasks, in a few words.
    pub fn between_cells(self) -> &'static str {
        match self {
            Strategy::Threaded => "background tasks keep running",
            Strategy::PerCell => "background tasks pause between cells",
            Strategy::Fresh => "background tasks end with each cell",
            Strategy::Host => "cells run on the host's loop",
            Strategy::Nested => "re-entrant: cells may run cells",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a runner can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `run` may be called from inside a cell this runner is running.
    pub nests: bool,
    /// Tasks spawned by a cell make progress while no cell runs.
    pub keeps_tasks: bool,
    /// Accepts cells built with [`Cell::local`] (`!Send` futures).
    pub local_cells: bool,
}

impl Capabilities {
    /// The usual capabilities of a strategy; adjust with struct update syntax.
    pub const fn of(strategy: Strategy) -> Self {
        match strategy {
            Strategy::Threaded | Strategy::Host => Capabilities {
                nests: false,
                keeps_tasks: true,
                local_cells: true,
            },
            Strategy::PerCell | Strategy::Fresh => Capabilities {
                nests: false,
                keeps_tasks: false,
                local_cells: true,
            },
            Strategy::Nested => Capabilities {
                nests: true,
                keeps_tasks: true,
                local_cells: true,
            },
        }
    }
}

/// What a runner says about itself: shown by `%autoawait --list`.
///
/// # Examples
///
/// ```
/// use autoawait_core::{RunnerInfo, Strategy};
///
/// const INFO: RunnerInfo =
///     RunnerInfo::new("my-loop", "mine", Strategy::Threaded, "my loop on its own thread");
/// assert!(INFO.capabilities.keeps_tasks);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerInfo {
    /// The name a user types after `%autoawait` (lowercase, `backend-strategy`).
    pub name: Cow<'static, str>,
    /// The backend crate or loop (`tokio`, `smol`, `twisted`, `core`).
    pub backend: Cow<'static, str>,
    /// How cells are run.
    pub strategy: Strategy,
    /// One line for `%autoawait --list`.
    pub summary: Cow<'static, str>,
    /// What the runner can do.
    pub capabilities: Capabilities,
}

impl RunnerInfo {
    /// Info with the usual [`Capabilities`] of `strategy`.
    pub const fn new(
        name: &'static str,
        backend: &'static str,
        strategy: Strategy,
        summary: &'static str,
    ) -> Self {
        RunnerInfo {
            name: Cow::Borrowed(name),
            backend: Cow::Borrowed(backend),
            strategy,
            summary: Cow::Borrowed(summary),
            capabilities: Capabilities::of(strategy),
        }
    }

    /// The same info with other capabilities.
    pub const fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

/// Runs futures to completion from synchronous code.
///
/// Object safe: hosts keep runners as `Arc<dyn Runner>` and pick them by name
/// through the [`Registry`](crate::Registry). [`RunnerExt::block_on`] gives typed
/// results on top.
///
/// Contract, checked for every runner by the conformance suite:
/// - a panic in a cell is a value ([`RunError::Panicked`]), never a crash, and the
///   next cell works;
/// - a timeout or a cancel drops the cell's future;
/// - blocking on the thread that must drive the work is [`RunError::WouldDeadlock`],
///   never a hang;
/// - after [`shutdown`](Runner::shutdown), every call is [`RunError::Stopped`].
///
/// # Examples
///
/// Using one:
///
/// ```
/// use autoawait_core::{Cell, Registry, RunOptions};
///
/// let runner = Registry::global().get("inline")?;
/// let out = runner.run(Cell::new(async { 6 * 7 }), &RunOptions::default())?;
/// assert_eq!(*out.downcast::<i32>().unwrap(), 42);
/// # Ok::<(), autoawait_core::Error>(())
/// ```
///
/// Implementing one, in ten lines: cells polled on the caller's thread, no
/// background tasks. [`kit`](crate::kit) holds what every runner needs.
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::block_on_inline;
/// use autoawait_core::kit::prelude::*;
///
/// struct OnCaller(Lifecycle);
///
/// const INFO: RunnerInfo =
///     RunnerInfo::new("on-caller", "mine", Strategy::Nested, "polls on the caller");
///
/// impl Runner for OnCaller {
///     fn info(&self) -> &RunnerInfo { self.0.info() }
///     fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
///         self.0.check()?;
///         let _driving = self.0.reactor().enter();
///         block_on_inline(opts.guard(cell.into_local_future()))
///     }
///     fn spawn(&self, _cell: Cell) -> Result<EventualResult, RunError> {
///         let reason = "it has no background tasks".into();
///         Err(RunError::Unsupported { runner: "on-caller".into(), reason, advice: Advice::default() })
///     }
///     fn shutdown(&self, _grace: Duration) { self.0.stop(); }
/// }
///
/// let runner = OnCaller(Lifecycle::new(INFO, &Config::new("on-caller")));
/// assert_eq!(runner.block_on(async { 6 * 7 })?, 42);
/// runner.shutdown(Duration::ZERO);
/// assert!(runner.block_on(async {}).unwrap_err().is_stopped());
/// # Ok::<(), RunError>(())
/// ```
pub trait Runner: Send + Sync + 'static {
    /// What this runner is.
    fn info(&self) -> &RunnerInfo;

    /// Runs `cell` to completion, blocking the calling thread.
    ///
    /// # Errors
    ///
    /// [`RunError::Panicked`], [`RunError::TimedOut`] and [`RunError::Cancelled`] for the
    /// cell's own fate; [`RunError::WouldDeadlock`] when called from the thread that
    /// drives this runner (unless it nests); [`RunError::Stopped`] after shutdown;
    /// [`RunError::Unsupported`] for a local cell the runner cannot take.
    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult;

    /// Starts `cell` in the background (crochet's `run_in_reactor`).
    ///
    /// # Errors
    ///
    /// [`RunError::Stopped`] after shutdown; [`RunError::Unsupported`] if the runner
    /// cannot run background tasks.
    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError>;

    /// Starts `cell` in the background with nothing to wait on: a cell that reports
    /// its own result, as a plugin host's cells do. The runner keeps no handle to it;
    /// it may run past [`shutdown`](Self::shutdown) if the runner's loop does.
    ///
    /// The default spawns and drops the [`EventualResult`] (which does not cancel
    /// the task); a runner that can skip making one overrides it.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    fn submit(&self, cell: Cell) -> Result<(), RunError> {
        self.spawn(cell).map(drop)
    }

    /// Stops the runner: background tasks are dropped after at most `grace`, and every
    /// thread it started is joined. Idempotent.
    fn shutdown(&self, grace: Duration);

    /// Runs `cell` for a host that is itself async, without blocking a thread: the
    /// way to run a cell from a thread that drives a loop, where [`run`](Self::run)
    /// would be [`RunError::WouldBlock`].
    ///
    /// The default spawns the cell and awaits its [`EventualResult`]; dropping the
    /// future cancels the cell.
    ///
    /// # Examples
    ///
    /// ```
    /// use autoawait_core::{block_on_inline, Cell, Registry, RunOptions};
    ///
    /// let runner = Registry::global().get("inline")?;
    /// let cell = runner.run_async(Cell::new(async { 6 * 7 }), &RunOptions::default());
    /// // Any executor can await it: the host's own, or here the simplest.
    /// let out = block_on_inline(cell)?;
    /// assert_eq!(*out.downcast::<i32>().unwrap(), 42);
    /// # Ok::<(), autoawait_core::Error>(())
    /// ```
    fn run_async(&self, cell: Cell, opts: &RunOptions) -> BoxFuture<'static, CellResult> {
        crate::kit::await_spawned(self.spawn(cell), opts)
    }

    /// The services (sleep, spawn, TCP) this runner offers to cells, if any.
    fn services(&self) -> Option<&dyn Services> {
        None
    }

    /// The reactor of this runner, if its host's loop can drive it (a plugin's
    /// runner of strategy host): see [`Hosted`](crate::Hosted).
    fn hosted(&self) -> Option<&dyn crate::Hosted> {
        None
    }

    /// This runner's loop, if it can drive the reactors of hosted runners:
    /// `tokio-host`'s. See [`HostLoop`](crate::HostLoop).
    fn host_loop(&self) -> Option<&dyn crate::HostLoop> {
        None
    }
}

impl fmt::Debug for dyn Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.info().name)
            .field("strategy", &self.info().strategy)
            .finish()
    }
}

/// Typed convenience on every [`Runner`], `dyn Runner` included.
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, RunnerExt};
///
/// let runner = Registry::global().get("inline").unwrap();
/// let s: String = runner.block_on(async { "typed".to_string() }).unwrap();
/// assert_eq!(s, "typed");
/// ```
pub trait RunnerExt: Runner {
    /// Runs `fut` to completion and returns its output.
    ///
    /// # Errors
    ///
    /// As [`Runner::run`].
    fn block_on<F>(&self, fut: F) -> Result<F::Output, RunError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.run(Cell::new(fut), &RunOptions::default())
            .map(downcast::<F::Output>)
    }

    /// [`block_on`](Self::block_on) with options.
    ///
    /// # Errors
    ///
    /// As [`Runner::run`].
    fn block_on_with<F>(&self, fut: F, opts: &RunOptions) -> Result<F::Output, RunError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.run(Cell::new(fut), opts).map(downcast::<F::Output>)
    }
}

impl<R: Runner + ?Sized> RunnerExt for R {}

/// Downcasts a cell's output to the type the host put in.
///
/// # Panics
///
/// If the output is not a `T`: a runner returned another cell's output.
#[track_caller]
pub fn downcast<T: 'static>(out: CellOutput) -> T {
    match out.downcast::<T>() {
        Ok(v) => *v,
        Err(_) => panic!(
            "a runner returned an output that is not a {}",
            type_name::<T>()
        ),
    }
}
