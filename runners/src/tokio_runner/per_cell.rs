//! `tokio-per-cell`: one runtime, driven only while a cell runs.

use std::sync::RwLock;
use std::thread;
use std::time::{Duration, Instant};

use autoawait_core::kit::prelude::*;
use autoawait_core::kit::JOIN_MARGIN;
use tokio::runtime::{Handle, Runtime};

use super::services::SERVICES;
use super::{block_on, current_thread, shut_down};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "tokio-per-cell",
    "tokio",
    Strategy::PerCell,
    "one tokio runtime driven on the caller's thread during cells; tasks pause in between",
);

/// `tokio-per-cell`: one current_thread runtime, driven by `block_on` on the
/// caller's thread only while a cell runs (IPython's terminal asyncio): background
/// tasks pause between cells and resume in the next.
///
/// It may run on a `spawn_blocking` thread; inside a runtime's own threads tokio
/// refuses to block, and so does this runner
/// ([`RunError::WouldBlock`](autoawait_core::RunError::WouldBlock)).
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::tokio_runner::PerCell;
///
/// let runner = PerCell::new(Config::new("tokio-per-cell"))?;
/// assert_eq!(runner.block_on(async { tokio::task::yield_now().await; 1 })?, 1);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct PerCell {
    life: Lifecycle,
    /// Spawns without driving the runtime (tasks wait for the next cell).
    handle: Handle,
    /// Read-locked while a cell runs; taken by shutdown.
    rt: RwLock<Option<Runtime>>,
}

impl PerCell {
    /// Builds the runtime (no thread starts until a cell needs a blocking one).
    ///
    /// # Errors
    ///
    /// If the runtime cannot be built.
    pub fn new(config: Config) -> Result<Self, RunError> {
        let rt = current_thread(&config.thread_name)?;
        Ok(PerCell {
            life: Lifecycle::new(INFO, &config),
            handle: rt.handle().clone(),
            rt: RwLock::new(Some(rt)),
        })
    }

    /// Takes the runtime out and shuts it down, unless a cell is running: then the
    /// last cell to finish does it.
    fn finish_shutdown(&self, grace: Duration) {
        let rt = match self.rt.try_write() {
            Ok(mut rt) => rt.take(),
            Err(_) => None,
        };
        if let Some(rt) = rt {
            shut_down(rt, grace);
        }
    }
}

impl Runner for PerCell {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let out = {
            let rt = self.rt.read().unwrap_or_else(|e| e.into_inner());
            let Some(rt) = rt.as_ref() else {
                return Err(self.life.stopped());
            };
            let _driving = self.life.reactor().enter();
            block_on(self.life.name(), rt, opts.guard(cell.into_local_future()))
        };
        if self.life.is_stopped() {
            self.finish_shutdown(self.life.drop_grace());
        }
        out
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let (task, eventual) = self.life.send_task(cell, None, self.life.reactor())?;
        self.handle.spawn(task);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        if self.life.reactor().is_current() {
            // Called from one of our cells: the runtime goes when that cell ends.
            return;
        }
        // Cells in flight keep the runtime until they end (the last one shuts it
        // down); wait for them a little.
        let deadline = Instant::now() + grace.min(JOIN_MARGIN);
        loop {
            if let Ok(mut guard) = self.rt.try_write() {
                let rt = guard.take();
                drop(guard);
                if let Some(rt) = rt {
                    shut_down(rt, grace);
                }
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

impl Drop for PerCell {
    fn drop(&mut self) {
        self.life.stop();
        let rt = self.rt.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(rt) = rt {
            shut_down(rt, self.life.drop_grace());
        }
    }
}

runner_debug!(PerCell);
