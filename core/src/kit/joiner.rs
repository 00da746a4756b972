//! [`Joiner`]: a runner's thread, joined within a time limit at shutdown.

use std::io;
use std::sync::mpsc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// A thread a runner owns (its reactor, a task's), joined within a time limit at
/// shutdown: a cell stuck in blocking code cannot be stopped, so its thread is
/// left detached rather than hang [`Runner::shutdown`](crate::Runner::shutdown).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::kit::Joiner;
///
/// let quick = Joiner::spawn("quick", || {}).unwrap();
/// assert!(quick.join_within(Duration::from_secs(5)));
///
/// let stuck = Joiner::spawn("stuck", || std::thread::sleep(Duration::from_secs(2))).unwrap();
/// assert!(!stuck.join_within(Duration::from_millis(10)), "left detached");
/// ```
#[derive(Debug)]
pub struct Joiner {
    handle: JoinHandle<()>,
    /// Disconnects when the thread's body returns or unwinds.
    exited: mpsc::Receiver<()>,
}

impl Joiner {
    /// Spawns a thread named `name` that runs `body`.
    ///
    /// # Errors
    ///
    /// If the operating system cannot create the thread.
    pub fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<Joiner> {
        let (tx, exited) = mpsc::channel::<()>();
        let handle = thread::Builder::new().name(name.into()).spawn(move || {
            let _exited = tx;
            body();
        })?;
        Ok(Joiner { handle, exited })
    }

    /// The thread.
    pub fn thread(&self) -> &Thread {
        self.handle.thread()
    }

    /// Whether the thread's body has returned.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Joins the thread if it ends within `within`, and says whether it did.
    /// Otherwise, or when called on the thread itself, the thread is left detached.
    pub fn join_within(self, within: Duration) -> bool {
        if self.handle.thread().id() == thread::current().id() {
            return false;
        }
        match self.exited.recv_timeout(within) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = self.handle.join();
                true
            }
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }

    /// Joins each of `threads` within one `grace` for them all; those still
    /// running after it are left detached.
    pub fn join_all(threads: impl IntoIterator<Item = Joiner>, grace: Duration) {
        let start = Instant::now();
        for thread in threads {
            thread.join_within(grace.saturating_sub(start.elapsed()));
        }
    }
}
