//! The two runners that need no reactor: `inline` and `sync`.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use crate::kit::{Config, Lifecycle};
use crate::{
    Advice, BoxFuture, CancelToken, Cell, CellResult, EventualResult, RunError, RunOptions, Runner,
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

const INLINE: RunnerInfo = RunnerInfo::new(
    "inline",
    "core",
    Strategy::Nested,
    "polls on the calling thread, no reactor (pollster); a thread per spawned task",
);

/// `inline`: polls the cell on the calling thread and parks between wake-ups; a
/// spawned task gets a thread of its own.
struct Inline {
    life: Lifecycle,
    /// Cancels every background task at shutdown.
    tasks: CancelToken,
}

impl Runner for Inline {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        // `inline` nests, so `run` from inside one of its cells is fine; blocking a
        // thread that drives another loop (a tokio current_thread runtime, the
        // `tokio` runner's thread) is not: what the cell awaits may need that loop.
        self.life.check_block()?;
        // Marks the thread, so that errors name this runner.
        let _driving = self.life.reactor().enter();
        block_on_inline(opts.guard(cell.into_local_future()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let origin = cell.origin();
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let reactor = self.life.reactor();
        match cell.into_future() {
            Ok(fut) => {
                let (task, eventual) = EventualResult::task(origin, opts.guard(fut), None);
                self.life.spawn("inline-task", move || {
                    let _driving = reactor.enter();
                    block_on_inline(task);
                })?;
                Ok(eventual)
            }
            Err(cell) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                self.life.spawn("inline-task", move || {
                    let _driving = reactor.enter();
                    let fut = opts.guard(cell.into_local_future());
                    let (task, eventual) = EventualResult::local_task(origin, fut, None);
                    let _ = tx.send(eventual);
                    block_on_inline(task);
                })?;
                rx.recv().map_err(|_| self.life.task_dropped())
            }
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        self.tasks.cancel();
        // A task stuck in blocking code cannot be stopped; it is left detached.
        self.life.join(grace);
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

const SYNC: RunnerInfo = RunnerInfo::new(
    "sync",
    "core",
    Strategy::Fresh,
    "polls the cell once (IPython's pseudo-sync runner); a cell that waits fails",
);

/// `sync`: IPython's pseudo-sync runner. Polls the cell once; a cell that suspends
/// fails with a clear error that a real loop is needed.
struct PseudoSync {
    life: Lifecycle,
}

impl PseudoSync {
    fn poll_once(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check()?;
        if opts.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Err(RunError::Cancelled);
        }
        let _driving = self.life.reactor().enter();
        let mut fut = pin!(cell.into_local_future());
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => Err(RunError::Unsupported {
                runner: SYNC.name.to_string(),
                reason: "the cell waits for something that is not ready, and `sync` polls \
                         only once: it needs a real loop"
                    .into(),
                advice: Advice::runners("a runner with a loop", ["tokio", "inline"]),
            }),
        }
    }
}

impl Runner for PseudoSync {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
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
        self.life.stop();
    }
}

fn make_inline() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(Inline {
        life: Lifecycle::new(INLINE, &Config::new("inline")),
        tasks: CancelToken::new(),
    }))
}

fn make_sync() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(PseudoSync {
        life: Lifecycle::new(SYNC, &Config::new("sync")),
    }))
}

inventory::submit! { RunnerFactory::new(INLINE, make_inline) }
inventory::submit! { RunnerFactory::new(SYNC, make_sync) }
