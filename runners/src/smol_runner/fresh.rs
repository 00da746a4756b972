//! `smol-fresh`: a new executor per cell.

use std::rc::Rc;
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use autoawait_core::CancelToken;
use smol::future::FutureExt as _;
use smol::LocalExecutor;

use super::services::SERVICES;
use super::{block_on_cell_local, current_executor, spawn_on, tick_forever_local, ExecutorScope};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "smol-fresh",
    "smol",
    Strategy::Fresh,
    "a new smol executor per cell, dropped with its tasks after the cell (trio.run)",
);

/// `smol-fresh`: every cell gets a new executor, dropped after it with its tasks
/// (`trio.run`). A cell spawned from outside any cell is a cell of its own, on a
/// thread named after the runner that ends with it.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::smol_runner::Fresh;
///
/// let runner = Fresh::new(Config::new("smol-fresh"));
/// assert_eq!(runner.block_on(async { 2 })?, 2);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Fresh {
    life: Lifecycle,
    config: Config,
    /// Cancels the background cells at shutdown.
    tasks: CancelToken,
}

impl Fresh {
    /// A runner that makes its executors as cells come.
    pub fn new(config: Config) -> Self {
        Fresh {
            life: Lifecycle::new(INFO, &config),
            config,
            tasks: CancelToken::new(),
        }
    }

    /// Runs `cell` as a cell of its own on a new thread.
    fn spawn_thread(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let (reply, eventual) = reply(self.config.spin);
        let reactor = self.life.reactor();
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        self.life.spawn(&self.config.thread_name, move || {
            let _driving = reactor.enter();
            let ex = Rc::new(LocalExecutor::new());
            let scope = ExecutorScope::enter(&reactor, &ex);
            let origin = cell.origin();
            let fut = opts.guard(cell.into_local_future());
            let (task, eventual) = EventualResult::local_task(origin, fut, Some(&reactor));
            reply.send(eventual);
            smol::block_on(task.or(tick_forever_local(&ex)));
            drop(scope);
            drop(ex);
        })?;
        eventual.recv().ok_or_else(|| self.life.stopped())
    }
}

impl Runner for Fresh {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let ex = Rc::new(LocalExecutor::new());
        let reactor = self.life.reactor();
        let driving = reactor.enter();
        let scope = ExecutorScope::enter(&reactor, &ex);
        let out = block_on_cell_local(cell, opts, &ex);
        drop(scope);
        // The cell's tasks end here: their results become TaskDropped.
        drop(ex);
        drop(driving);
        out
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        match current_executor(&self.life.reactor()) {
            Some(ex) => Ok(spawn_on(&ex, &self.life.reactor(), cell)),
            None => self.spawn_thread(cell),
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        self.tasks.cancel();
        // Cancelled tasks end at their next poll; one stuck in blocking code cannot
        // be stopped and is left detached after the grace (as is the caller's own).
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_traits!(Fresh);
