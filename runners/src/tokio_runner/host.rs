//! `tokio-host`: cells run on the host's tokio runtime.

use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use autoawait_core::{CancelToken, HostLoop, Hosted};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use super::services::SERVICES;
use super::{block_in_place, multi_thread, shut_down};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "tokio-host",
    "tokio",
    Strategy::Host,
    "cells run on the host's tokio runtime (attached, current, or a multi_thread one of its own)",
);

static ATTACHED: RwLock<Option<Handle>> = RwLock::new(None);

/// Makes `tokio-host` run cells on the runtime of `handle` (a runtime the host
/// already runs), in every registry. Returns the handle attached before, if any.
///
/// Without an attached runtime, `tokio-host` uses the runtime the calling thread is
/// in (`Handle::try_current`), or else a multi_thread runtime of its own, with
/// workers named `<name>-worker`, started on first use and stopped by `shutdown`.
/// An attached runtime is never shut down by the runner; tasks it spawned there are
/// cancelled by its `shutdown`.
///
/// # Examples
///
/// ```
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// autoawait_runners::tokio_runner::attach(rt.handle().clone());
/// assert!(autoawait_runners::tokio_runner::detach().is_some());
/// ```
pub fn attach(handle: Handle) -> Option<Handle> {
    ATTACHED
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .replace(handle)
}

/// Undoes [`attach`]: `tokio-host` goes back to detecting the runtime. Returns the
/// handle that was attached, if any.
///
/// # Examples
///
/// ```
/// assert!(autoawait_runners::tokio_runner::detach().is_none());
/// ```
pub fn detach() -> Option<Handle> {
    ATTACHED.write().unwrap_or_else(|e| e.into_inner()).take()
}

fn attached() -> Option<Handle> {
    ATTACHED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `tokio-host`: cells run on the tokio runtime the host runs (ipykernel's way).
///
/// Async hosts await [`Runner::run_async`], which is the cell itself, polled on the
/// host's loop with no thread blocked. A blocking `run` polls the cell on the
/// calling thread while the workers of a multi_thread host drive timers and
/// sockets, or hands the cell to a current_thread host and waits.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::tokio_runner::Host;
///
/// let runner = Host::new(Config::new("tokio-host"));
/// assert_eq!(runner.block_on(async { tokio::task::yield_now().await; 3 })?, 3);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Host {
    life: Lifecycle,
    config: Config,
    /// Cancels the tasks this runner spawned, at shutdown.
    tasks: CancelToken,
    owned: OnceLock<Handle>,
    runtime: Mutex<Option<Runtime>>,
}

impl Host {
    /// A runner that finds its runtime on first use.
    pub fn new(config: Config) -> Self {
        Host {
            life: Lifecycle::new(INFO, &config),
            config,
            tasks: CancelToken::new(),
            owned: OnceLock::new(),
            runtime: Mutex::new(None),
        }
    }

    /// The runtime cells go to: attached, else current, else our own.
    fn target(&self, current: Option<&Handle>) -> Result<Handle, RunError> {
        if let Some(handle) = attached().or_else(|| current.cloned()) {
            return Ok(handle);
        }
        if let Some(handle) = self.owned.get() {
            return Ok(handle.clone());
        }
        let mut runtime = lock(&self.runtime);
        self.life.check()?;
        if let Some(handle) = self.owned.get() {
            return Ok(handle.clone());
        }
        let name = format!("{}-worker", self.config.thread_name);
        let rt = multi_thread(&self.config, &name)?;
        let handle = rt.handle().clone();
        let _ = self.owned.set(handle.clone());
        *runtime = Some(rt);
        Ok(handle)
    }

    /// Runs the cell on `target` from a thread that may block.
    fn run_on(&self, target: &Handle, cell: Cell, opts: &RunOptions) -> CellResult {
        if target.runtime_flavor() == RuntimeFlavor::MultiThread {
            // Polled here; the workers drive timers, sockets and tasks.
            let _driving = self.life.reactor().enter();
            return target.block_on(opts.guard(cell.into_local_future()));
        }
        // A current_thread runtime driven by another thread: hand the cell over.
        let fut = cell
            .into_future()
            .map_err(|_| self.life.local_spawn_unsupported())?;
        if !opts.is_empty() {
            // Timeout and cancel apply on this side too, so that they work even if
            // nothing drives the host runtime; giving up aborts the task.
            let task = target.spawn(fut);
            let _abort = AbortOnDrop(task.abort_handle());
            let lost = self.life.task_dropped();
            let joined = async move { task.await.unwrap_or(Err(lost)) };
            return autoawait_core::block_on_inline(opts.guard(Box::pin(joined)));
        }
        let (tx, rx) = reply(self.config.spin);
        target.spawn(async move { tx.send(fut.await) });
        rx.recv().unwrap_or_else(|| Err(self.life.task_dropped()))
    }
}

/// Aborts a task handed to a host runtime when its caller stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Runner for Host {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.life.reactor().is_current() {
            return Err(self
                .life
                .would_deadlock("run() from inside a cell of this runner"));
        }
        self.life.check()?;
        let current = Handle::try_current().ok();
        let target = self.target(current.as_ref())?;
        match current {
            None => self.run_on(&target, cell, opts),
            Some(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
                block_in_place(self.life.name(), || self.run_on(&target, cell, opts))?
            }
            Some(_) => Err(RunError::WouldDeadlock {
                runner: self.life.name().to_owned(),
                what: "run() on the thread of the host's current_thread tokio runtime, \
                       which cannot run the cell while it waits for it"
                    .into(),
                advice: Advice::text(
                    "await `Runner::run_async` on the host's loop, spawn the cell, or run \
                     the host on a multi_thread runtime",
                ),
            }),
        }
    }

    /// Awaits the cell on the host's own loop: the future returned is the cell
    /// itself, polled by whoever awaits it, without blocking a thread.
    fn run_async(&self, cell: Cell, opts: &RunOptions) -> BoxFuture<'static, CellResult> {
        if let Err(err) = self.life.check() {
            return Box::pin(std::future::ready(Err(err)));
        }
        match cell.into_future() {
            Ok(fut) => Box::pin(opts.guard(fut)),
            Err(_) => Box::pin(std::future::ready(Err(RunError::Unsupported {
                runner: self.life.name().to_owned(),
                reason: "run_async returns a `Send` future, so it cannot take a cell built \
                         with `Cell::local`"
                    .into(),
                advice: Advice::text("use run() for it"),
            }))),
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let (task, eventual) = self
            .life
            .send_task(cell, Some(&self.tasks), self.life.reactor())?;
        self.target(Handle::try_current().ok().as_ref())?
            .spawn(task);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        let rt = {
            let mut runtime = lock(&self.runtime);
            self.life.stop();
            runtime.take()
        };
        self.tasks.cancel();
        if let Some(rt) = rt {
            shut_down(rt, grace);
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }

    fn host_loop(&self) -> Option<&dyn HostLoop> {
        Some(self)
    }
}

/// A hosted reactor (`twisted-host`'s) is turned by a task on the runtime cells
/// go to: the attached one (the kernel's), else the runner's own.
impl HostLoop for Host {
    fn drive(&self, reactor: Arc<dyn Hosted>) -> Result<(), RunError> {
        self.life.check()?;
        let target = self.target(None)?;
        super::drive::drive(&target, reactor)
    }
}

runner_traits!(Host);
