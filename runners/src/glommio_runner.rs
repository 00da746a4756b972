//! `glommio`: one persistent glommio `LocalExecutor` (io_uring) on a thread named
//! `glommio`, for the life of the runner.
//!
//! glommio executors are thread-local, so every cell is rebuilt on the executor
//! thread: `!Send` cells (`Cell::local`) are the natural form. Only the threaded
//! strategy is offered: a fresh executor per cell costs about 0.2 ms and leaks an
//! eventfd upstream, so a per-cell glommio runner would exhaust file descriptors.
//! glommio's sockets are `!Send`, so this runner's [`Services`] offer timers only.
//!
//! # Examples
//!
//! ```no_run
//! use autoawait_core::kit::Config;
//! use autoawait_core::RunnerExt;
//! use autoawait_runners::glommio_runner::Glommio;
//!
//! // Needs io_uring and a locked-memory limit of about 1.6 MiB (`ulimit -l`).
//! let runner = Glommio::new(Config::new("glommio"))?;
//! assert_eq!(runner.block_on(async { 6 * 7 })?, 42);
//! # Ok::<(), autoawait_core::RunError>(())
//! ```

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use autoawait_core::{CancelToken, Capabilities, RunnerFactory};
use glommio::{LocalExecutorBuilder, Placement};

const INFO: RunnerInfo = RunnerInfo::new(
    "glommio",
    "glommio",
    Strategy::Threaded,
    "one io_uring executor on its own thread; timers only (glommio sockets are !Send)",
)
.with_capabilities(Capabilities {
    nests: false,
    keeps_tasks: true,
    local_cells: true,
});

/// Memory registered with io_uring for the executor: small, because an unprivileged
/// process has 8 MiB of locked memory at most.
const IO_MEMORY: usize = 512 * 1024;

/// Work for the executor thread: spawns a cell there.
type Job = Box<dyn FnOnce() + Send>;

/// `glommio`: see the [module docs](self).
pub struct Glommio {
    life: Lifecycle,
    config: Config,
    mailbox: Arc<Mailbox<Job>>,
    /// Guards the background tasks; cancelled at shutdown, so that they are dropped
    /// (glommio would keep a detached task that waits forever).
    tasks: CancelToken,
}

impl Glommio {
    /// Starts the executor on its own thread.
    ///
    /// # Errors
    ///
    /// If the thread cannot start, or glommio cannot set up io_uring (the message
    /// says which limit to raise).
    pub fn new(config: Config) -> Result<Self, RunError> {
        let life = Lifecycle::new(INFO, &config);
        let reactor = life.reactor();
        let mailbox: Arc<Mailbox<Job>> = Arc::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), RunError>>(1);
        let jobs = mailbox.clone();
        let name = config.thread_name.to_string();
        life.spawn(&config.thread_name, move || {
            let executor = match LocalExecutorBuilder::new(Placement::Unbound)
                .name(&name)
                .io_memory(IO_MEMORY)
                .make()
            {
                Ok(executor) => executor,
                Err(err) => {
                    let _ = ready_tx.send(Err(explain(err)));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let _driving = reactor.enter();
            executor.run(async move {
                let mut queue = VecDeque::new();
                while jobs.wait().await {
                    jobs.take(&mut queue);
                    queue.drain(..).for_each(|job: Job| job());
                }
                // Shutdown cancelled the tasks before it closed the mailbox: let
                // them see it and end before the executor goes.
                yield_now().await;
            });
        })?;
        let started = match ready_rx.recv() {
            Ok(started) => started,
            Err(_) => Err(RunError::backend(io::Error::other(
                "the glommio thread died while starting its executor",
            ))),
        };
        if let Err(err) = started {
            life.join(Duration::from_secs(5));
            return Err(err);
        }
        Ok(Glommio {
            life,
            config,
            mailbox,
            tasks: CancelToken::new(),
        })
    }

    /// Runs `job` on the executor thread.
    fn submit(&self, job: Job) -> Result<(), RunError> {
        self.life.check()?;
        self.mailbox.push(job).map_err(|_| self.life.stopped())
    }
}

/// Spawns the cell on the executor and replies with its result.
fn spawn_cell(cell: Cell, opts: RunOptions, reply: ReplySender<CellResult>) {
    let fut = opts.guard(cell.into_local_future());
    glommio::spawn_local(async move { reply.send(fut.await) }).detach();
}

/// Spawns a background task on the executor (call on its thread), dropped when
/// `tasks` is cancelled.
fn spawn_task(cell: Cell, reactor: &ReactorId, tasks: CancelToken) -> EventualResult {
    let origin = cell.origin();
    let fut = RunOptions::default()
        .cancel_token(tasks)
        .guard(cell.into_local_future());
    let (task, eventual) = EventualResult::local_task(origin, fut, Some(reactor));
    glommio::spawn_local(task).detach();
    eventual
}

/// Returns `Pending` once, after waking itself: every task woken before runs first.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

impl Runner for Glommio {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let (tx, rx) = reply(self.config.spin);
        let opts = opts.clone();
        self.submit(Box::new(move || spawn_cell(cell, opts, tx)))?;
        rx.recv().unwrap_or_else(|| Err(self.life.lost()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let reactor = self.life.reactor();
        if reactor.is_current() {
            return Ok(spawn_task(cell, &reactor, self.tasks.clone()));
        }
        let (tx, rx) = reply(self.config.spin);
        let tasks = self.tasks.clone();
        self.submit(Box::new(move || tx.send(spawn_task(cell, &reactor, tasks))))?;
        rx.recv().ok_or_else(|| self.life.lost())
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        self.tasks.cancel();
        drop(self.mailbox.close());
        // From a cell the thread cannot join itself, and a cell stuck in blocking
        // code cannot be stopped: either is left detached.
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(self)
    }
}

impl Services for Glommio {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // glommio's timer is thread-local and `!Send`; core's timer works anywhere.
        Box::pin(autoawait_core::sleep(duration))
    }
}

/// Turns glommio's start-up errors into advice.
fn explain(err: glommio::GlommioError<()>) -> RunError {
    let text = err.to_string();
    if text.contains("MemLock") || text.contains("Cannot allocate memory") {
        return RunError::backend(io::Error::other(format!(
            "glommio cannot lock the {IO_MEMORY}-byte io_uring buffers it needs ({text}); \
             raise the locked-memory limit (`ulimit -l`, at least {} KiB) or run as a user \
             with CAP_IPC_LOCK",
            IO_MEMORY * 3 / 1024 + 64
        )));
    }
    RunError::backend(io::Error::other(format!("glommio cannot start: {text}")))
}

runner_traits!(Glommio);

inventory::submit! {
    RunnerFactory::new(INFO, || Ok(Arc::new(Glommio::new(Config::new("glommio"))?)))
}
