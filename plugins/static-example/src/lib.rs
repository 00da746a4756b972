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
//! # Ok::<(), autoawait_core::Error>(())
//! ```

use std::cell::RefCell;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoawait_core::kit::{lock, Config, Lifecycle};
use autoawait_core::{
    Cell, CellResult, EventualResult, ReactorId, RunError, RunOptions, Runner, RunnerFactory,
    RunnerInfo, Strategy,
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
    /// What the runner is, its loop's identity, its thread, whether it was shut down.
    life: Lifecycle,
    commands: Mutex<Option<Sender<Command>>>,
}

impl FuturesLocal {
    fn send(&self, command: Command) -> Result<(), RunError> {
        let commands = lock(&self.commands);
        let sender = commands.as_ref().ok_or_else(|| self.life.stopped())?;
        sender.send(command).map_err(|_| self.life.stopped())
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
                let result = pool.run_until(opts.guard(cell.into_local_future()));
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
    let (task, eventual) = EventualResult::local_task(origin, cell.into_local_future(), Some(id));
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
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        // `run()` from one of our cells, or after shutdown, is refused here.
        self.life.check_run()?;
        let (reply, result) = mpsc::channel();
        self.send(Command::Run(cell, opts.clone(), reply))?;
        result.recv().map_err(|_| self.life.stopped())?
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let id = self.life.reactor();
        if id.is_current() {
            return Ok(spawn_here(&id, cell));
        }
        let (reply, eventual) = mpsc::channel();
        self.send(Command::Spawn(cell, reply))?;
        eventual.recv().map_err(|_| self.life.stopped())
    }

    fn shutdown(&self, grace: Duration) {
        if !self.life.stop() {
            return;
        }
        drop(lock(&self.commands).take());
        // A cell stuck in blocking code cannot be stopped: left detached.
        self.life.join(grace);
    }
}

impl Drop for FuturesLocal {
    fn drop(&mut self) {
        self.shutdown(self.life.drop_grace());
    }
}

fn make() -> Result<Arc<dyn Runner>, RunError> {
    let config = Config::new("futures-local");
    let life = Lifecycle::new(FUTURES_LOCAL, &config);
    let id = life.reactor();
    let (commands, receiver) = mpsc::channel();
    life.spawn(&config.thread_name, move || pool_thread(id, receiver))?;
    Ok(Arc::new(FuturesLocal {
        life,
        commands: Mutex::new(Some(commands)),
    }))
}

inventory::submit! { RunnerFactory::new(FUTURES_LOCAL, make) }
