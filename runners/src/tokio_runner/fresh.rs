//! `tokio-fresh`: a new runtime per cell.

use std::time::Duration;

use autoawait_core::kit::prelude::*;
use autoawait_core::CancelToken;
use tokio::runtime::Handle;

use super::services::SERVICES;
use super::{block_on, current_thread};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "tokio-fresh",
    "tokio",
    Strategy::Fresh,
    "a new tokio runtime per cell (like trio.run); tasks end with their cell",
);

/// `tokio-fresh`: a new current_thread runtime per cell, shut down after it, as
/// `trio.run` or evcxr do. Tasks a cell spawns end with it; timers and sockets made
/// in a cell fail in the next with a clear
/// [`WrongRuntime`](autoawait_core::RunError::WrongRuntime). A task spawned outside
/// any cell gets a runtime of its own, on a thread that lives as long as the task.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::tokio_runner::Fresh;
///
/// let runner = Fresh::new(Config::new("tokio-fresh"));
/// assert_eq!(runner.block_on(async { 2 })?, 2);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Fresh {
    /// The runner, and the threads of the tasks spawned from outside any cell.
    life: Lifecycle,
    config: Config,
    /// Cancels the tasks spawned from outside any cell, at shutdown.
    tasks: CancelToken,
}

impl Fresh {
    /// A runner that builds its runtimes as cells come.
    pub fn new(config: Config) -> Self {
        Fresh {
            life: Lifecycle::new(INFO, &config),
            config,
            tasks: CancelToken::new(),
        }
    }
}

impl Runner for Fresh {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let rt = current_thread(&self.config.thread_name)?;
        let out = {
            let _driving = self.life.reactor().enter();
            block_on(self.life.name(), &rt, opts.guard(cell.into_local_future()))
        };
        // The cell's tasks are dropped here (their results become `TaskDropped`);
        // timers and sockets made in it fail from now on.
        rt.shutdown_timeout(self.config.drop_grace);
        out
    }

    /// From inside a cell, the task runs on that cell's runtime and is dropped with
    /// it. From outside any cell, it gets a runtime of its own on a thread named
    /// `<name>-task`, for as long as it runs.
    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let origin = cell.origin();
        let reactor = self.life.reactor();
        let fut = cell
            .into_future()
            .map_err(|_| self.life.local_spawn_unsupported())?;
        if reactor.is_current() {
            if let Ok(handle) = Handle::try_current() {
                let (task, eventual) = EventualResult::task(origin, fut, Some(&reactor));
                handle.spawn(task);
                return Ok(eventual);
            }
        }
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let (task, eventual) = EventualResult::task(origin, opts.guard(fut), Some(&reactor));
        let name = format!("{}-task", self.config.thread_name);
        let rt = current_thread(&name)?;
        let grace = self.config.drop_grace;
        self.life.spawn(&name, move || {
            let _driving = reactor.enter();
            rt.block_on(task);
            rt.shutdown_timeout(grace);
        })?;
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        self.tasks.cancel();
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_traits!(Fresh);
