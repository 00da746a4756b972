//! [`Lifecycle`]: a runner's identity, its threads, and whether it was shut down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::{lock, thread_error, Config, Joiner, JOIN_MARGIN};
use crate::{
    Advice, CancelToken, Cell, EventualResult, ReactorId, RunError, RunOptions, RunnerInfo, Task,
};

/// What every runner tracks the same way: what it is ([`RunnerInfo`], named as its
/// [`Config`] says), the identity of its loop (the threads that drive it are marked
/// with it), the threads it started, and whether it was shut down.
///
/// [`check_run`](Self::check_run) is the check at the top of every blocking `run`:
/// refused with [`RunError::WouldDeadlock`] on a thread that drives this loop (a cell
/// of this runner calling `run`), with [`RunError::WouldBlock`] on a thread that
/// drives another backend's loop, with [`RunError::Stopped`] after shutdown.
/// [`join`](Self::join) joins every thread the runner started within one grace.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::kit::{Config, Lifecycle};
/// use autoawait_core::{RunnerInfo, Strategy};
///
/// const INFO: RunnerInfo = RunnerInfo::new("my-loop", "mine", Strategy::Threaded, "mine");
/// let life = Lifecycle::new(INFO, &Config::new("my-loop"));
/// assert!(life.check_run().is_ok());
/// {
///     let _driving = life.reactor().enter();
///     assert!(life.check_run().unwrap_err().is_would_deadlock());
/// }
/// life.spawn("my-loop", || std::thread::sleep(Duration::from_millis(1)))?;
/// assert!(life.stop(), "the first stop");
/// assert!(!life.stop(), "shutdown is idempotent");
/// assert!(life.check().unwrap_err().is_stopped());
/// life.join(Duration::from_secs(5));
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
#[derive(Debug)]
pub struct Lifecycle {
    info: RunnerInfo,
    reactor: ReactorId,
    stopped: AtomicBool,
    threads: Mutex<Vec<Joiner>>,
    drop_grace: Duration,
}

impl Lifecycle {
    /// A running runner: `info` named as `config` says, a new loop identity.
    pub fn new(info: RunnerInfo, config: &Config) -> Self {
        Lifecycle::with_reactor(info, config, ReactorId::new(&config.name))
    }

    /// A running runner whose loop is `reactor` (shared by several instances, say).
    pub fn with_reactor(info: RunnerInfo, config: &Config, reactor: ReactorId) -> Self {
        Lifecycle {
            info: RunnerInfo {
                name: config.name.clone(),
                ..info
            },
            reactor,
            stopped: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            drop_grace: config.drop_grace,
        }
    }

    /// What the runner is: [`Runner::info`](crate::Runner::info).
    pub fn info(&self) -> &RunnerInfo {
        &self.info
    }

    /// The runner's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The identity of the runner's loop: enter it on the threads that drive it.
    pub fn reactor(&self) -> ReactorId {
        self.reactor
    }

    /// How long a runner dropped without a shutdown gives its threads.
    pub fn drop_grace(&self) -> Duration {
        self.drop_grace
    }

    /// `Ok` unless the runner was shut down.
    ///
    /// # Errors
    ///
    /// [`RunError::Stopped`] after [`stop`](Self::stop).
    pub fn check(&self) -> Result<(), RunError> {
        if self.is_stopped() {
            return Err(self.stopped());
        }
        Ok(())
    }

    /// [`check`](Self::check), and refuses a blocking `run` on a thread that drives
    /// this runner's loop, or a loop of another backend that blocking would freeze
    /// (see [`BlockingProbe`](crate::BlockingProbe)).
    ///
    /// # Errors
    ///
    /// [`RunError::WouldDeadlock`] on a thread of this runner's loop;
    /// [`RunError::WouldBlock`] on a thread that drives a tokio current_thread
    /// runtime, say; [`RunError::Stopped`] after [`stop`](Self::stop).
    pub fn check_run(&self) -> Result<(), RunError> {
        if self.reactor.is_current() {
            return Err(self.would_deadlock("run() from inside a cell of this runner"));
        }
        self.check_block()
    }

    /// [`check_run`](Self::check_run) for a re-entrant runner: `run` from inside one
    /// of its own cells is fine, blocking another backend's loop is not.
    ///
    /// # Errors
    ///
    /// [`RunError::WouldBlock`]; [`RunError::Stopped`].
    pub fn check_block(&self) -> Result<(), RunError> {
        if let Some(what) = crate::hooks::drives_a_loop() {
            return Err(self.would_block(what));
        }
        self.check()
    }

    /// Marks the runner shut down; `true` the first time.
    pub fn stop(&self) -> bool {
        !self.stopped.swap(true, Ordering::AcqRel)
    }

    /// `true` once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Starts a thread named `name` that the runner owns: [`join`](Self::join)ed
    /// at shutdown. Threads that ended are forgotten as new ones start.
    ///
    /// # Errors
    ///
    /// If the thread cannot start (see [`thread_error`]).
    pub fn spawn(&self, name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), RunError> {
        let thread = Joiner::spawn(name, body).map_err(|e| thread_error(name, e))?;
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
        Ok(())
    }

    /// Joins every thread the runner started, all within `grace` plus a margin;
    /// those still running after it (a cell stuck in blocking code), and a thread
    /// that calls this on itself, are left detached.
    pub fn join(&self, grace: Duration) {
        let threads = std::mem::take(&mut *lock(&self.threads));
        Joiner::join_all(threads, grace.saturating_add(JOIN_MARGIN));
    }

    /// [`RunError::Stopped`] for this runner.
    pub fn stopped(&self) -> RunError {
        RunError::Stopped {
            runner: self.name().to_owned(),
        }
    }

    /// [`RunError::WouldDeadlock`] for this runner, refusing `what`.
    pub fn would_deadlock(&self, what: &'static str) -> RunError {
        RunError::would_deadlock(self.name(), what)
    }

    /// [`RunError::WouldBlock`] for this runner, on a thread that drives `what`.
    pub fn would_block(&self, what: &'static str) -> RunError {
        RunError::WouldBlock {
            runner: self.name().to_owned(),
            what: what.into(),
            advice: Advice::text(
                "await the cell on that loop (`Runner::run_async`), or call run() from \
                 a thread that drives no loop (tokio's `spawn_blocking`)",
            ),
        }
    }

    /// [`RunError::TaskDropped`] for this runner: a task (or a cell handed over) was
    /// dropped before it replied, because the loop went away.
    pub fn task_dropped(&self) -> RunError {
        RunError::TaskDropped {
            runner: self.name().to_owned(),
        }
    }

    /// Why a job handed to the loop was dropped before it replied: [`stopped`]
    /// after shutdown, else [`task_dropped`].
    ///
    /// [`stopped`]: Self::stopped
    /// [`task_dropped`]: Self::task_dropped
    pub fn lost(&self) -> RunError {
        if self.is_stopped() {
            self.stopped()
        } else {
            self.task_dropped()
        }
    }

    /// A background task for a `Send` cell and the handle on its result, for a
    /// runner whose tasks may move between threads: guarded by `tasks` if given
    /// (cancel it at shutdown), waited on as the loop `driver` (waiting on one of its
    /// threads is `WouldDeadlock`). Spawn the [`Task`] on the executor.
    ///
    /// # Errors
    ///
    /// [`RunError::Unsupported`] for a `!Send` cell ([`Cell::local`]).
    pub fn send_task(
        &self,
        cell: Cell,
        tasks: Option<&CancelToken>,
        driver: ReactorId,
    ) -> Result<(Task, EventualResult), RunError> {
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| self.local_spawn_unsupported())?;
        let opts = RunOptions {
            cancel: tasks.cloned(),
            timeout: None,
        };
        Ok(EventualResult::task(origin, opts.guard(fut), Some(&driver)))
    }

    /// [`RunError::local_spawn_unsupported`] for this runner.
    pub fn local_spawn_unsupported(&self) -> RunError {
        RunError::local_spawn_unsupported(self.name())
    }
}
