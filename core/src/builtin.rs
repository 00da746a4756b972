//! The two runners that need no reactor: `sync` and `inline`.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use crate::options::lock;
use crate::{
    BoxFuture, CancelToken, Cell, CellResult, EventualResult, Joiner, RunError, RunOptions, Runner,
    RunnerFactory, RunnerInfo, Services, Strategy,
};

/// Runs `fut` to completion on this thread, parking it between wake-ups
/// (pollster-style). Re-entrant: it may be called from inside a future it polls.
///
/// # Examples
///
/// ```
/// assert_eq!(autoawait_core::block_on_inline(async { 1 + 1 }), 2);
/// ```
pub fn block_on_inline<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    // One waker per call, never cached per thread: a nested call must not eat the
    // wake-up meant for the outer one.
    let signal = Arc::new(Signal {
        thread: thread::current(),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        while !signal.notified.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

struct Signal {
    thread: Thread,
    notified: AtomicBool,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

/// `inline`: polls the cell on the calling thread and parks between wake-ups.
struct Inline {
    info: RunnerInfo,
    stopped: AtomicBool,
    /// Cancels every background task at shutdown.
    tasks: CancelToken,
    threads: Mutex<Vec<Joiner>>,
}

const INLINE: RunnerInfo = RunnerInfo::new(
    "inline",
    "core",
    Strategy::Nested,
    "polls on the calling thread, no reactor (pollster); a thread per spawned task",
);

impl Inline {
    fn check(&self) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RunError::Stopped {
                runner: self.info.name.to_string(),
            });
        }
        Ok(())
    }
}

impl Runner for Inline {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.check()?;
        let fut = cell.into_local_future();
        if opts.is_empty() {
            block_on_inline(fut)
        } else {
            block_on_inline(opts.guard(fut))
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.check()?;
        let origin = cell.origin();
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        let (eventual, handle) = match cell.into_future() {
            Ok(fut) => {
                let (task, eventual) = EventualResult::task(origin, opts.guard(fut), None);
                let handle = Joiner::spawn("inline-task", move || block_on_inline(task));
                (eventual, handle)
            }
            Err(cell) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let handle = Joiner::spawn("inline-task", move || {
                    let fut = opts.guard(cell.into_local_future());
                    let (task, eventual) = EventualResult::local_task(fut, origin, None);
                    let _ = tx.send(eventual);
                    block_on_inline(task);
                });
                let eventual = handle.as_ref().ok().and_then(|_| rx.recv().ok());
                match eventual {
                    Some(eventual) => (eventual, handle),
                    None => return Err(spawn_failed()),
                }
            }
        };
        threads.push(handle.map_err(|_| spawn_failed())?);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        self.tasks.cancel();
        // A task stuck in blocking code cannot be stopped; it is left detached.
        Joiner::join_all(std::mem::take(&mut *lock(&self.threads)), grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(self)
    }
}

impl Services for Inline {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(crate::sleep(duration))
    }
}

fn spawn_failed() -> RunError {
    RunError::backend(std::io::Error::other("cannot spawn an inline-task thread"))
}

/// `sync`: IPython's pseudo-sync runner. Polls the cell once; a cell that suspends
/// fails with a clear error that a real loop is needed.
struct PseudoSync {
    info: RunnerInfo,
    stopped: AtomicBool,
}

const SYNC: RunnerInfo = RunnerInfo::new(
    "sync",
    "core",
    Strategy::Fresh,
    "polls the cell once (IPython's pseudo-sync runner); a cell that waits fails",
);

impl PseudoSync {
    fn poll_once(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RunError::Stopped {
                runner: self.info.name.to_string(),
            });
        }
        if opts.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Err(RunError::Cancelled);
        }
        let mut fut = pin!(cell.into_local_future());
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => Err(RunError::Unsupported {
                runner: self.info.name.to_string(),
                reason: "the cell waits for something that is not ready, and `sync` polls \
                         only once: it needs a real loop. Select one with `%autoawait tokio`, \
                         or `%autoawait inline` for futures that need no reactor"
                    .into(),
            }),
        }
    }
}

impl Runner for PseudoSync {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.poll_once(cell, opts)
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let origin = cell.origin();
        let result = self.poll_once(cell, &RunOptions::default());
        if let Err(err @ (RunError::Stopped { .. } | RunError::Unsupported { .. })) = result {
            return Err(err);
        }
        Ok(EventualResult::ready(origin, result))
    }

    fn shutdown(&self, _grace: Duration) {
        self.stopped.store(true, Ordering::Release);
    }
}

fn make_inline() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(Inline {
        info: INLINE,
        stopped: AtomicBool::new(false),
        tasks: CancelToken::new(),
        threads: Mutex::new(Vec::new()),
    }))
}

fn make_sync() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(PseudoSync {
        info: SYNC,
        stopped: AtomicBool::new(false),
    }))
}

inventory::submit! { RunnerFactory::new(INLINE, make_inline) }
inventory::submit! { RunnerFactory::new(SYNC, make_sync) }
