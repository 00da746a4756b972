//! A third-party runner linked statically: `futures-local`, over
//! [`futures::executor::LocalPool`].
//!
//! This is the static plugin route: the crate registers its runner with
//! `inventory::submit!`, and any binary that links it (`use
//! autoawait_static_example as _;`) finds the runner in
//! [`Registry`](autoawait_core::Registry) by name. Nothing crosses an ABI: the
//! runner is ordinary Rust sharing the host's copy of `autoawait-core`, tokio and
//! everything else.
//!
//! `futures-local` is a per-cell runner: one `LocalPool` lives on a thread named
//! `futures-local`, driven only while a cell runs. Tasks spawned by a cell pause
//! between cells and resume in the next. It takes `!Send` cells ([`Cell::local`]).
//!
//! ```
//! use autoawait_core::{Registry, RunnerExt};
//! use autoawait_static_example as _; // links the crate, so its runner registers
//!
//! let runner = Registry::global().get("futures-local")?;
//! assert_eq!(runner.block_on(async { 6 * 7 })?, 42);
//! # Ok::<(), autoawait_core::RunError>(())
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use autoawait_core::{
    Cell, CellResult, EventualResult, Joiner, ReactorId, RunError, RunOptions, Runner,
    RunnerFactory, RunnerInfo, Strategy,
};
use futures::executor::{LocalPool, LocalSpawner};
use futures::task::LocalSpawnExt;

/// The runner's info.
pub const FUTURES_LOCAL: RunnerInfo = RunnerInfo::new(
    "futures-local",
    "futures",
    Strategy::PerCell,
    "futures' LocalPool on its own thread, driven only while a cell runs (static plugin example)",
);

enum Command {
    Run(Cell, RunOptions, Sender<CellResult>),
    Spawn(Cell, Sender<EventualResult>),
}

thread_local! {
    /// The pool's spawner, on the pool thread.
    static SPAWNER: RefCell<Option<LocalSpawner>> = const { RefCell::new(None) };
}

struct FuturesLocal {
    info: RunnerInfo,
    id: ReactorId,
    commands: Mutex<Option<Sender<Command>>>,
    thread: Mutex<Option<Joiner>>,
    stopped: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FuturesLocal {
    fn stopped(&self) -> RunError {
        RunError::Stopped {
            runner: FUTURES_LOCAL.name.to_string(),
        }
    }

    fn send(&self, command: Command) -> Result<(), RunError> {
        let commands = lock(&self.commands);
        let sender = commands.as_ref().ok_or_else(|| self.stopped())?;
        sender.send(command).map_err(|_| self.stopped())
    }
}

/// The pool thread: runs each cell to completion with the pool, which also drives
/// the tasks spawned so far.
fn pool_thread(id: ReactorId, commands: Receiver<Command>) {
    let _driving = id.enter();
    let mut pool = LocalPool::new();
    SPAWNER.with(|s| *s.borrow_mut() = Some(pool.spawner()));
    for command in commands {
        match command {
            Command::Run(cell, opts, reply) => {
                let fut = cell.into_local_future();
                let result = if opts.is_empty() {
                    pool.run_until(fut)
                } else {
                    pool.run_until(opts.guard(fut))
                };
                let _ = reply.send(result);
            }
            Command::Spawn(cell, reply) => {
                let _ = reply.send(spawn_here(&id, cell));
            }
        }
    }
    // Dropping the pool drops the tasks: their results become `TaskDropped`.
    SPAWNER.with(|s| s.borrow_mut().take());
}

/// Spawns `cell` into the pool of this (pool) thread.
fn spawn_here(id: &ReactorId, cell: Cell) -> EventualResult {
    let origin = cell.origin();
    let (task, eventual) = EventualResult::local_task(cell.into_local_future(), origin, Some(id));
    SPAWNER.with(|s| {
        if let Some(spawner) = &*s.borrow() {
            // A failed spawn drops the task: the result says `TaskDropped`.
            let _ = spawner.spawn_local(task);
        }
    });
    eventual
}

impl Runner for FuturesLocal {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.id.is_current() {
            return Err(RunError::would_deadlock(
                &FUTURES_LOCAL.name,
                "run() from inside a cell of this runner",
            ));
        }
        let (reply, result) = mpsc::channel();
        self.send(Command::Run(cell, opts.clone(), reply))?;
        result.recv().map_err(|_| self.stopped())?
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(self.stopped());
        }
        if self.id.is_current() {
            return Ok(spawn_here(&self.id, cell));
        }
        let (reply, eventual) = mpsc::channel();
        self.send(Command::Spawn(cell, reply))?;
        eventual.recv().map_err(|_| self.stopped())
    }

    fn shutdown(&self, grace: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(lock(&self.commands).take());
        if let Some(handle) = lock(&self.thread).take() {
            // A cell stuck in blocking code cannot be stopped: left detached.
            handle.join_within(grace);
        }
    }
}

impl Drop for FuturesLocal {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(1));
    }
}

fn make() -> Result<Arc<dyn Runner>, RunError> {
    let id = ReactorId::new(&FUTURES_LOCAL.name);
    let (commands, receiver) = mpsc::channel();
    let thread =
        Joiner::spawn("futures-local", move || pool_thread(id, receiver)).map_err(|e| {
            RunError::backend(std::io::Error::other(format!(
                "cannot spawn the futures-local thread: {e}"
            )))
        })?;
    Ok(Arc::new(FuturesLocal {
        info: FUTURES_LOCAL,
        id,
        commands: Mutex::new(Some(commands)),
        thread: Mutex::new(Some(thread)),
        stopped: AtomicBool::new(false),
    }))
}

inventory::submit! { RunnerFactory::new(FUTURES_LOCAL, make) }
