//! `tokio-nested`: re-entrant, on a multi_thread runtime.

use std::sync::Mutex;
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use super::services::SERVICES;
use super::{block_in_place, drives_current_thread, inside_runtime, multi_thread, shut_down};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "tokio-nested",
    "tokio",
    Strategy::Nested,
    "a multi_thread tokio runtime; run() works inside cells, to any depth (nest_asyncio)",
);

/// `tokio-nested`: `run` works inside a cell, to any depth (`nest_asyncio`): a
/// cell is polled on the calling thread with `Handle::block_on` while the workers of
/// a multi_thread runtime drive timers, sockets and tasks; inside a worker, the
/// worker's duties go to another thread first (`block_in_place`).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use autoawait_core::kit::Config;
/// use autoawait_core::{Runner, RunnerExt};
/// use autoawait_runners::tokio_runner::Nested;
///
/// let runner: Arc<dyn Runner> = Arc::new(Nested::new(Config::new("tokio-nested"))?);
/// let inner = runner.clone();
/// let depth_two = runner.block_on(async move { inner.block_on(async { 2 }) })??;
/// assert_eq!(depth_two, 2);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Nested {
    /// Marks the threads polling our cells (for error messages).
    life: Lifecycle,
    /// Names the runner in task results; never entered, since waiting for a task
    /// from a cell is fine here (workers run it).
    tasks_of: ReactorId,
    handle: Handle,
    runtime: Mutex<Option<Runtime>>,
}

impl Nested {
    /// Starts the runtime's workers (`<name>-worker`).
    ///
    /// # Errors
    ///
    /// If the runtime cannot be built.
    pub fn new(config: Config) -> Result<Self, RunError> {
        let rt = multi_thread(&config, &format!("{}-worker", config.thread_name))?;
        Ok(Nested {
            life: Lifecycle::new(INFO, &config),
            tasks_of: ReactorId::new(&config.name),
            handle: rt.handle().clone(),
            runtime: Mutex::new(Some(rt)),
        })
    }

    fn block_on(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        let _driving = self.life.reactor().enter();
        self.handle.block_on(opts.guard(cell.into_local_future()))
    }
}

impl Runner for Nested {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check()?;
        match Handle::try_current() {
            // Inside a multi_thread runtime (ours, nested; or another): give the
            // worker's duties to another thread, then block this one.
            Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
                block_in_place(self.life.name(), || self.block_on(cell, opts))?
            }
            // A current_thread runtime cannot hand its duties over.
            Ok(_) if drives_current_thread().is_some() => Err(inside_runtime(self.life.name())),
            _ => self.block_on(cell, opts),
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let (task, eventual) = self.life.send_task(cell, None, self.tasks_of)?;
        self.handle.spawn(task);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        let rt = {
            let mut runtime = lock(&self.runtime);
            self.life.stop();
            runtime.take()
        };
        if let Some(rt) = rt {
            shut_down(rt, grace);
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_traits!(Nested);
