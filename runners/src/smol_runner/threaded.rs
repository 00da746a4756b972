//! `smol`: a reactor thread and a spin-then-park mailbox.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoawait_core::kit::prelude::*;
use autoawait_core::kit::JOIN_MARGIN;
use autoawait_core::Task;
use smol::future::FutureExt as _;
use smol::{LocalExecutor, Timer};

use super::services::SERVICES;
use super::{block_on_surviving, current_executor, guarded, spawn_on, try_tick, ExecutorScope};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "smol",
    "smol",
    Strategy::Threaded,
    "a smol executor on its own thread (crochet-style); background tasks keep running",
);

/// Work handed to the reactor thread.
enum Job {
    /// Run a cell and send its result back.
    Run {
        cell: Cell,
        opts: RunOptions,
        reply: ReplySender<CellResult>,
    },
    /// Run a task in the background.
    Spawn(Task),
    /// Build the task of a `!Send` cell on the reactor thread; send its handle back.
    SpawnLocal {
        cell: Cell,
        reply: ReplySender<EventualResult>,
    },
    /// Stop, giving the tasks until this deadline; jobs queued before still start.
    Stop(Instant),
}

/// `smol`: a thread (named after the runner) runs one `LocalExecutor` until
/// shutdown, crochet-style: background tasks keep running between cells. Cells
/// arrive through a [`Mailbox`] the thread spins on before it sleeps.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::smol_runner::Threaded;
///
/// let smol = Threaded::new(Config::new("smol"))?;
/// assert_eq!(smol.block_on(async { 6 * 7 })?, 42);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Threaded {
    life: Lifecycle,
    spin: Duration,
    mailbox: Arc<Mailbox<Job>>,
}

impl Threaded {
    /// Starts the reactor thread.
    ///
    /// # Errors
    ///
    /// If the thread cannot start.
    pub fn new(config: Config) -> Result<Self, RunError> {
        let life = Lifecycle::new(INFO, &config);
        let reactor = life.reactor();
        let mailbox: Arc<Mailbox<Job>> = Arc::default();
        let jobs = mailbox.clone();
        let spin = config.spin;
        life.spawn(&config.thread_name, move || {
            reactor_thread(reactor, &jobs, spin)
        })?;
        Ok(Threaded {
            life,
            spin,
            mailbox,
        })
    }

    fn push(&self, job: Job) -> Result<(), RunError> {
        self.mailbox.push(job).map_err(|_| self.life.stopped())
    }
}

/// The body of the reactor thread: runs jobs and tasks until asked to stop, then
/// gives the remaining tasks until the deadline and drops them.
fn reactor_thread(reactor: ReactorId, mailbox: &Mailbox<Job>, spin: Duration) {
    // Whatever happens to this thread, callers must not wait for it forever.
    let _close = CloseOnExit(mailbox);
    let _driving = reactor.enter();
    let ex = Rc::new(LocalExecutor::new());
    let scope = ExecutorScope::enter(&reactor, &ex);
    let mut jobs = VecDeque::new();
    let deadline = loop {
        if let Some(deadline) = run_until_idle(&ex, &reactor, mailbox, &mut jobs, spin) {
            break deadline;
        }
        // Idle for the whole spin budget: sleep until a job, a task or I/O.
        block_on_surviving(ex.tick().or(async {
            mailbox.wait().await;
        }));
    };
    drop(mailbox.close());
    while !ex.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        block_on_surviving(ex.tick().or(async {
            Timer::after(left).await;
        }));
    }
    drop(scope);
    // Tasks that did not finish are dropped here: their results become TaskDropped.
    drop(ex);
}

/// Closes the mailbox when the reactor thread ends, even by unwinding: queued jobs
/// are dropped (their callers get `Stopped`) and later ones refused.
struct CloseOnExit<'a>(&'a Mailbox<Job>);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        drop(self.0.close());
    }
}

/// Runs jobs and ready tasks, spinning for `budget` once there is nothing to do.
/// Returns when idle for the whole budget (`None`) or asked to stop (the deadline).
fn run_until_idle(
    ex: &LocalExecutor<'static>,
    reactor: &ReactorId,
    mailbox: &Mailbox<Job>,
    jobs: &mut VecDeque<Job>,
    budget: Duration,
) -> Option<Instant> {
    let mut spin = Spin::new(budget);
    loop {
        if mailbox.is_ready() {
            mailbox.take(jobs);
            for job in jobs.drain(..) {
                match job {
                    // Jobs queued after the stop are dropped with the drain.
                    Job::Stop(deadline) => return Some(deadline),
                    job => start(ex, reactor, job),
                }
            }
            spin.reset();
        } else if try_tick(ex) {
            spin.reset();
        } else if !spin.keep_spinning() {
            return None;
        }
    }
}

/// Starts a job on the reactor thread.
fn start(ex: &LocalExecutor<'static>, reactor: &ReactorId, job: Job) {
    match job {
        Job::Run { cell, opts, reply } => {
            let fut = cell.into_local_future();
            ex.spawn(async move { reply.send(guarded(fut, opts).await) })
                .detach();
        }
        Job::Spawn(task) => ex.spawn(task).detach(),
        Job::SpawnLocal { cell, reply } => reply.send(spawn_on(ex, reactor, cell)),
        Job::Stop(_) => {}
    }
}

impl Runner for Threaded {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let (reply, result) = reply(self.spin);
        let opts = opts.clone();
        self.push(Job::Run { cell, opts, reply })?;
        result.recv().unwrap_or_else(|| Err(self.life.lost()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let reactor = self.life.reactor();
        if let Some(ex) = current_executor(&reactor) {
            // From a cell on the reactor thread: straight into the executor.
            return Ok(spawn_on(&ex, &reactor, cell));
        }
        let origin = cell.origin();
        match cell.into_future() {
            Ok(fut) => {
                let (task, eventual) = EventualResult::task(origin, fut, Some(&reactor));
                self.push(Job::Spawn(task))?;
                Ok(eventual)
            }
            Err(cell) => {
                let (reply, eventual) = reply(self.spin);
                self.push(Job::SpawnLocal { cell, reply })?;
                eventual.recv().ok_or_else(|| self.life.lost())
            }
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        let now = Instant::now();
        let deadline = now.checked_add(grace).unwrap_or(now + JOIN_MARGIN * 1000);
        let _ = self.mailbox.push(Job::Stop(deadline));
        // From a cell, the thread cannot join itself: it ends after this cell.
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_traits!(Threaded);
