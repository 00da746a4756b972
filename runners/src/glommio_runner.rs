//! `glommio`: one persistent glommio `LocalExecutor` (io_uring) on a thread named
//! `glommio`, for the life of the runner.
//!
//! glommio executors are thread-local, so every cell is rebuilt on the executor
//! thread: `!Send` cells (`Cell::local`) are the natural form. Only the threaded
//! strategy is offered: a fresh executor per cell costs about 0.2 ms and leaks an
//! eventfd upstream, so a per-cell glommio runner would exhaust file descriptors.
//! glommio's sockets are `!Send`, so this runner's [`Services`] offer timers only.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use autoawait_core::handoff::{self, ReplySender};
use autoawait_core::{
    BoxFuture, CancelToken, Capabilities, Cell, CellResult, EventualResult, Joiner, ReactorId,
    RunError, RunOptions, Runner, RunnerFactory, RunnerInfo, Services, Strategy,
};
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
static STATIC_INFO: RunnerInfo = INFO;

/// Memory registered with io_uring for the executor: small, because an unprivileged
/// process has 8 MiB of locked memory at most.
const IO_MEMORY: usize = 512 * 1024;

/// Work for the executor thread: spawns a cell there.
type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Inbox {
    jobs: Mutex<(VecDeque<Job>, Option<Waker>, bool)>,
}

impl Inbox {
    /// Queues `job`; `false` if the executor has stopped.
    fn push(&self, job: Job) -> bool {
        let mut inbox = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if inbox.2 {
            return false;
        }
        inbox.0.push_back(job);
        let waker = inbox.1.take();
        drop(inbox);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    fn close(&self) {
        let mut inbox = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        inbox.2 = true;
        let waker = inbox.1.take();
        drop(inbox);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The next job, or `None` once the inbox is closed and drained.
struct NextJob<'a>(&'a Inbox);

impl Future for NextJob<'_> {
    type Output = Option<Job>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Job>> {
        let mut inbox = self.0.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = inbox.0.pop_front() {
            return Poll::Ready(Some(job));
        }
        if inbox.2 {
            return Poll::Ready(None);
        }
        inbox.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct Glommio {
    reactor: ReactorId,
    inbox: Arc<Inbox>,
    /// Guards the background tasks; cancelled at shutdown, so that they are dropped
    /// (glommio would keep a detached task that waits forever).
    tasks: CancelToken,
    thread: Mutex<Option<Joiner>>,
    stopped: AtomicBool,
}

impl Glommio {
    fn start() -> Result<Self, RunError> {
        let inbox = Arc::new(Inbox::default());
        let reactor = ReactorId::new(&INFO.name);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), RunError>>(1);
        let thread_inbox = inbox.clone();
        let thread = Joiner::spawn("glommio", move || {
            let executor = match LocalExecutorBuilder::new(Placement::Unbound)
                .name("glommio")
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
                while let Some(job) = NextJob(&thread_inbox).await {
                    job();
                }
                // Shutdown cancelled the tasks before it closed the inbox: let them
                // see it and end before the executor goes.
                yield_now().await;
            });
        })
        .map_err(RunError::backend)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Glommio {
                reactor,
                inbox,
                tasks: CancelToken::new(),
                thread: Mutex::new(Some(thread)),
                stopped: AtomicBool::new(false),
            }),
            Ok(Err(err)) => {
                thread.join_within(Duration::from_secs(5));
                Err(err)
            }
            Err(_) => {
                thread.join_within(Duration::from_secs(5));
                Err(RunError::backend(io::Error::other(
                    "the glommio thread died while starting its executor",
                )))
            }
        }
    }

    fn stopped(&self) -> RunError {
        RunError::Stopped {
            runner: INFO.name.to_string(),
        }
    }

    /// Runs `job` on the executor thread.
    fn submit(&self, job: Job) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) || !self.inbox.push(job) {
            return Err(self.stopped());
        }
        Ok(())
    }
}

/// Spawns the cell on the executor and replies with its result.
fn spawn_cell(cell: Cell, opts: RunOptions, reply: ReplySender<CellResult>) {
    let fut = cell.into_local_future();
    glommio::spawn_local(async move {
        let out = if opts.is_empty() {
            fut.await
        } else {
            opts.guard(fut).await
        };
        reply.send(out);
    })
    .detach();
}

/// Spawns a background task on the executor (call on its thread), dropped when
/// `tasks` is cancelled.
fn spawn_task(cell: Cell, reactor: &ReactorId, tasks: CancelToken) -> EventualResult {
    let origin = cell.origin();
    let fut = RunOptions::default()
        .cancel_token(tasks)
        .guard(cell.into_local_future());
    let (task, eventual) = EventualResult::local_task(fut, origin, Some(reactor));
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
        &STATIC_INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                &INFO.name,
                "run() from inside a cell of this runner",
            ));
        }
        let (tx, rx) = handoff::reply(handoff::default_spin());
        let opts = opts.clone();
        self.submit(Box::new(move || spawn_cell(cell, opts, tx)))?;
        rx.recv().unwrap_or_else(|| Err(self.stopped()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(self.stopped());
        }
        if self.reactor.is_current() {
            return Ok(spawn_task(cell, &self.reactor, self.tasks.clone()));
        }
        let (tx, rx) = handoff::reply(handoff::default_spin());
        let (reactor, tasks) = (self.reactor, self.tasks.clone());
        self.submit(Box::new(move || tx.send(spawn_task(cell, &reactor, tasks))))?;
        rx.recv().ok_or_else(|| self.stopped())
    }

    fn shutdown(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        self.tasks.cancel();
        self.inbox.close();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            if self.reactor.is_current() {
                return; // shutdown from a cell: the thread ends when the cell returns
            }
            // A cell stuck in blocking code cannot be stopped: left detached.
            thread.join_within(grace);
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(self)
    }
}

impl Drop for Glommio {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(1));
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

fn make() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(Glommio::start()?))
}

inventory::submit! { RunnerFactory::new(INFO, make) }
