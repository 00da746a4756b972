//! `tokio`: a reactor thread that lives until shutdown.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use tokio::task::LocalSet;

use super::services::SERVICES;
use super::{current_thread, shut_down};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "tokio",
    "tokio",
    Strategy::Threaded,
    "a tokio runtime on its own thread; background tasks keep running between cells",
);

/// Work for the reactor thread, given the reactor loop's context. Returns `true`
/// if it left no task behind (a cell that finished in its first poll).
type Job = Box<dyn FnOnce(&mut Context<'_>) -> bool + Send>;

enum Msg {
    Job(Job),
    Stop(Duration),
}

/// `tokio`: a thread (named after the runner) owns a current_thread runtime and a
/// `LocalSet` until shutdown, as `reqwest::blocking` keeps one; cells are handed
/// over through a [`Mailbox`] and answered through a spin-then-park reply.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::tokio_runner::Threaded;
///
/// let tokio = Threaded::new(Config::new("tokio"))?;
/// assert_eq!(tokio.block_on(async { 6 * 7 })?, 42);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Threaded {
    life: Lifecycle,
    spin: Duration,
    mailbox: Arc<Mailbox<Msg>>,
}

impl Threaded {
    /// Starts the reactor thread.
    ///
    /// # Errors
    ///
    /// If the runtime cannot be built or the thread cannot start.
    pub fn new(config: Config) -> Result<Self, RunError> {
        let rt = current_thread(&format!("{}-blocking", config.thread_name))?;
        let life = Lifecycle::new(INFO, &config);
        let reactor = life.reactor();
        let mailbox: Arc<Mailbox<Msg>> = Arc::default();
        let jobs = mailbox.clone();
        let (spin, grace) = (config.spin, config.drop_grace);
        life.spawn(&config.thread_name, move || {
            let _driving = reactor.enter();
            let local = LocalSet::new();
            let grace = local.block_on(&rt, reactor_loop(&jobs, spin, grace));
            // Jobs still queued, the tasks and the cells in flight are dropped here:
            // their callers get `Stopped`, their results `TaskDropped`.
            drop(jobs.close());
            drop(local);
            shut_down(rt, grace);
        })?;
        Ok(Threaded {
            life,
            spin,
            mailbox,
        })
    }

    fn send(&self, job: Job) -> Result<(), RunError> {
        self.mailbox
            .push(Msg::Job(job))
            .map_err(|_| self.life.stopped())
    }
}

/// The reactor's loop: runs each job (which may spawn a task on the `LocalSet`);
/// when the mailbox is empty it spins through the scheduler (`yield_now`, so tasks
/// run) for the spin budget, so that a cell that follows is picked up without a
/// sleeping wake-up, then sleeps on the mailbox. Returns the shutdown grace.
async fn reactor_loop(mailbox: &Mailbox<Msg>, budget: Duration, grace: Duration) -> Duration {
    let mut jobs = VecDeque::new();
    let mut spin = Spin::new(budget);
    // After a cell that finished in one poll, the next cell is likely on its way:
    // wait for it in a tight loop first, as a trip through the scheduler polls the
    // I/O driver (a system call) before it comes back to the mailbox.
    let mut expect_cell = false;
    loop {
        if expect_cell {
            Spin::burst(|| mailbox.is_ready());
            expect_cell = false;
        }
        if mailbox.is_ready() {
            mailbox.take(&mut jobs);
            spin.reset();
            while let Some(msg) = jobs.pop_front() {
                match msg {
                    Msg::Job(job) => {
                        let mut job = Some(job);
                        let quick =
                            poll_fn(|cx| Poll::Ready(job.take().is_some_and(|job| job(cx)))).await;
                        expect_cell = quick && !budget.is_zero();
                    }
                    Msg::Stop(grace) => return grace,
                }
            }
        } else if spin.keep_spinning() {
            tokio::task::yield_now().await;
        } else {
            if !mailbox.wait().await {
                return grace;
            }
            spin.reset();
        }
    }
}

impl Runner for Threaded {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let (tx, rx) = reply(self.spin);
        let opts = opts.clone();
        self.send(Box::new(move |cx| {
            // Most cells finish in one poll: run that poll right here, and pay for a
            // task only if the cell waits. The task's first poll registers its own
            // waker; a wake-up meanwhile only wakes the reactor loop, harmlessly.
            let mut fut = opts.guard(cell.into_local_future());
            match Pin::new(&mut fut).poll(cx) {
                Poll::Ready(out) => {
                    tx.send(out);
                    true
                }
                Poll::Pending => {
                    tokio::task::spawn_local(async move { tx.send(fut.await) });
                    false
                }
            }
        }))?;
        // No reply: the runtime dropped the cell because the runner shut down.
        rx.recv().unwrap_or_else(|| Err(self.life.lost()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let origin = cell.origin();
        let reactor = self.life.reactor();
        match cell.into_future() {
            Ok(fut) => {
                let (task, eventual) = EventualResult::task(origin, fut, Some(&reactor));
                self.send(Box::new(move |_| {
                    tokio::task::spawn_local(task);
                    false
                }))?;
                Ok(eventual)
            }
            // A `!Send` cell is built on the reactor thread; from a cell that runs
            // there, at once (the `LocalSet` is current).
            Err(cell) if reactor.is_current() => {
                let fut = cell.into_local_future();
                let (task, eventual) = EventualResult::local_task(origin, fut, Some(&reactor));
                // Outside the `LocalSet` (a `tokio::spawn`ed task), tokio refuses.
                autoawait_core::kit::quietly(|| {
                    catch_unwind(AssertUnwindSafe(|| tokio::task::spawn_local(task)))
                })
                .map_err(|_| RunError::Unsupported {
                    runner: self.life.name().to_owned(),
                    reason: "a `!Send` cell can be spawned from a cell or from another \
                             thread, not from a task started with `tokio::spawn`"
                        .into(),
                    advice: Advice::default(),
                })?;
                Ok(eventual)
            }
            Err(cell) => {
                let (tx, rx) = reply(self.spin);
                self.send(Box::new(move |_| {
                    let fut = cell.into_local_future();
                    let (task, eventual) = EventualResult::local_task(origin, fut, Some(&reactor));
                    tokio::task::spawn_local(task);
                    tx.send(eventual);
                    false
                }))?;
                rx.recv().ok_or_else(|| self.life.stopped())
            }
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        let _ = self.mailbox.push(Msg::Stop(grace));
        // From a cell on the reactor thread, the thread ends after that cell and
        // cannot join itself: it is left detached.
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_traits!(Threaded);
