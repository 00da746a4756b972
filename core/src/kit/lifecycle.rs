//! [`Lifecycle`]: a runner's name, its loop, and whether it was shut down.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Advice, ReactorId, RunError};

/// What every runner tracks the same way: its name, the identity of its loop (the
/// threads that drive it are marked with it), and whether it was shut down.
///
/// [`check_run`](Self::check_run) is the check at the top of every blocking `run`:
/// refused with [`RunError::WouldDeadlock`] on a thread that drives this loop (a cell
/// of this runner calling `run`), with [`RunError::Stopped`] after shutdown.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Lifecycle;
///
/// let life = Lifecycle::new("my-loop");
/// assert!(life.check_run().is_ok());
/// {
///     let _driving = life.reactor().enter();
///     assert!(life.check_run().unwrap_err().is_would_deadlock());
/// }
/// assert!(life.stop(), "the first stop");
/// assert!(!life.stop(), "shutdown is idempotent");
/// assert!(life.check().unwrap_err().is_stopped());
/// ```
#[derive(Debug)]
pub struct Lifecycle {
    reactor: ReactorId,
    stopped: AtomicBool,
}

impl Lifecycle {
    /// A running runner called `name`, with a new loop identity.
    pub fn new(name: &str) -> Self {
        Lifecycle::with_reactor(ReactorId::new(name))
    }

    /// A running runner whose loop is `reactor` (shared by several instances, say).
    pub fn with_reactor(reactor: ReactorId) -> Self {
        Lifecycle {
            reactor,
            stopped: AtomicBool::new(false),
        }
    }

    /// The runner's name.
    pub fn name(&self) -> &str {
        self.reactor.name()
    }

    /// The identity of the runner's loop: enter it on the threads that drive it.
    pub fn reactor(&self) -> ReactorId {
        self.reactor
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

    /// Marks the runner shut down; `true` the first time.
    pub fn stop(&self) -> bool {
        !self.stopped.swap(true, Ordering::AcqRel)
    }

    /// `true` once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
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
}
