//! `smol-nested`: re-entrant `block_on` on a shared executor.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use autoawait_core::kit::quietly;
use smol::future::FutureExt as _;
use smol::Executor;

use super::services::SERVICES;
use super::{block_on_cell, spawn_send, tick_forever, Shared};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "smol-nested",
    "smol",
    Strategy::Nested,
    "re-entrant smol block_on (nest_asyncio): cells may run cells; tasks keep running",
);

/// `smol-nested`: every `run` is a `block_on` on the calling thread that ticks the
/// shared executor, so a cell may run cells to any depth and an inner future may
/// wait for a task an outer cell spawned (`nest_asyncio`). A thread named after the
/// runner ticks the executor between cells, so background tasks keep running.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use autoawait_core::kit::Config;
/// use autoawait_core::{Runner, RunnerExt};
/// use autoawait_runners::smol_runner::Nested;
///
/// let runner: Arc<dyn Runner> = Arc::new(Nested::new(Config::new("smol-nested"))?);
/// let inner = runner.clone();
/// assert_eq!(runner.block_on(async move { inner.block_on(async { 2 }) })??, 2);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Nested {
    /// Entered by threads running cells: names the runner for `WrongRuntime`.
    life: Lifecycle,
    /// Entered by the runner's own thread: waiting for a task there would deadlock.
    driver: ReactorId,
    executor: Shared,
    stop: smol::channel::Sender<()>,
}

impl Nested {
    /// Starts the thread that ticks the executor between cells.
    ///
    /// # Errors
    ///
    /// If the thread cannot start.
    pub fn new(config: Config) -> Result<Self, RunError> {
        let ex = Arc::new(Executor::new());
        let driver = ReactorId::new(&config.name);
        let (stop, stopped_rx) = smol::channel::bounded::<()>(1);
        let life = Lifecycle::new(INFO, &config);
        life.spawn(&config.thread_name, {
            let ex = ex.clone();
            move || {
                let _driving = driver.enter();
                // Ticks, like the cells do: every driver takes tasks from the one
                // shared queue, so a task never waits in the local queue of a thread
                // that is blocked in a nested run().
                let mut stop = pin!(stopped_rx.recv());
                // A task that panics out of its poll must not end the thread.
                while quietly(|| {
                    catch_unwind(AssertUnwindSafe(|| {
                        smol::block_on(stop.as_mut().or(tick_forever(&ex)))
                    }))
                })
                .is_err()
                {}
            }
        })?;
        Ok(Nested {
            life,
            driver,
            executor: Shared::new(ex),
            stop,
        })
    }
}

impl Runner for Nested {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_block()?;
        let ex = self.executor.get(&self.life)?;
        let _driving = self.life.reactor().enter();
        block_on_cell(cell, opts, &ex)
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        spawn_send(&self.life, &self.executor, self.driver, cell)
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        self.stop.close();
        // Tasks are dropped with the last clone of the executor: this one, or the
        // thread's, or that of a cell still running.
        drop(self.executor.take());
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_traits!(Nested);
