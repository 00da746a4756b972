//! `smol-per-cell`: one executor, ticked only while a cell runs.

use std::sync::Arc;
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use smol::Executor;

use super::services::SERVICES;
use super::{block_on_cell, spawn_send, Shared};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "smol-per-cell",
    "smol",
    Strategy::PerCell,
    "one smol executor driven by the calling thread during cells (IPython terminal)",
);

/// `smol-per-cell`: `block_on` on the calling thread, ticking one executor kept
/// across cells (IPython's terminal asyncio): background tasks are suspended
/// between cells and resume in the next.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::smol_runner::PerCell;
///
/// let runner = PerCell::new(Config::new("smol-per-cell"));
/// assert_eq!(runner.block_on(async { smol::future::yield_now().await; 1 })?, 1);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct PerCell {
    life: Lifecycle,
    executor: Shared,
}

impl PerCell {
    /// A runner with a new executor.
    pub fn new(config: Config) -> Self {
        PerCell {
            life: Lifecycle::new(INFO, &config),
            executor: Shared::new(Arc::new(Executor::new())),
        }
    }
}

impl Runner for PerCell {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let ex = self.executor.get(&self.life)?;
        let _driving = self.life.reactor().enter();
        block_on_cell(cell, opts, &ex)
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        spawn_send(&self.life, &self.executor, self.life.reactor(), cell)
    }

    fn shutdown(&self, _grace: Duration) {
        self.life.stop();
        // Tasks are suspended between cells: dropping the executor drops them.
        drop(self.executor.take());
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_debug!(PerCell);
