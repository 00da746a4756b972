//! tokio runners, one per strategy of DESIGN.md:
//!
//! | runner | strategy | how |
//! |---|---|---|
//! | `tokio` | threaded | a thread named `tokio` owns a current_thread runtime and a `LocalSet` until shutdown; cells are handed over through a spin-then-park mailbox |
//! | `tokio-per-cell` | per-cell | one current_thread runtime, driven by `block_on` on the caller's thread only while a cell runs |
//! | `tokio-fresh` | fresh | a new current_thread runtime per cell, shut down after it |
//! | `tokio-host` | host | the runtime the host runs: [`attach`]ed, or the one the calling thread is in, or else a multi_thread runtime of its own |
//! | `tokio-nested` | nested | a multi_thread runtime; `run` inside a cell uses `block_in_place` + `Handle::block_on` |
//!
//! Every runner offers tokio's timer and TCP to its cells as [`Services`], and
//! names every thread it starts after itself.
//!
//! The `tokio` hand-off spins before it sleeps, on both sides, for the budget of
//! `AUTOAWAIT_SPIN_US` (20 µs by default; `0` sleeps at once, for machines with
//! more busy threads than cores): about 1 µs per cell where a sleeping hand-off
//! costs 10 µs or more.
//!
//! A host that already runs tokio hands its runtime to `tokio-host`:
//!
//! ```
//! use autoawait_core::{Registry, RunnerExt};
//!
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .thread_name("host")
//!     .enable_all()
//!     .build()
//!     .unwrap();
//! autoawait_runners::tokio_runner::attach(rt.handle().clone());
//! let runner = Registry::global().get("tokio-host").unwrap();
//! // A task the cell spawns runs on the host's workers.
//! let worker = runner
//!     .block_on(async {
//!         let name = || std::thread::current().name().map(str::to_owned);
//!         tokio::spawn(async move { name() }).await.unwrap()
//!     })
//!     .unwrap();
//! assert_eq!(worker.as_deref(), Some("host"));
//! autoawait_runners::tokio_runner::detach();
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use autoawait_core::{
    handoff, BoxFuture, ByteStream, CancelToken, Cell, CellResult, EventualResult, Joiner,
    Listener, ReactorId, RunError, RunOptions, Runner, RunnerFactory, RunnerInfo, Services,
    Strategy,
};
use tokio::runtime::{Builder, Handle, Runtime, RuntimeFlavor};
use tokio::sync::Notify;
use tokio::task::LocalSet;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Grace given to blocking threads when a runner is dropped without a shutdown.
const DROP_GRACE: Duration = Duration::from_secs(1);
/// How long the `tokio` reactor spins on its mailbox before it also yields its
/// core to other threads at each turn (measured: ~0.7 µs per cell with free cores,
/// ~7 µs instead of ~25–46 µs when caller and reactor share one core).
const OS_YIELD_AFTER: Duration = Duration::from_micros(2);
/// Mailbox polls per spin burst of the `tokio` reactor (see `burst`).
const BURST_SPINS: u32 = 64;
/// How long `shutdown` waits past its grace for a thread to exit before leaving it
/// detached (a cell stuck in blocking code cannot be stopped).
const JOIN_MARGIN: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------
// Shared pieces

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn stopped(info: &RunnerInfo) -> RunError {
    RunError::Stopped {
        runner: info.name.to_string(),
    }
}

fn backend(err: io::Error) -> RunError {
    RunError::backend(err)
}

/// `run` on a thread that is inside a tokio runtime, where tokio refuses to block.
fn inside_runtime(runner: &str) -> RunError {
    RunError::WouldDeadlock {
        runner: runner.into(),
        advice: "run() on a thread that drives a tokio runtime: tokio cannot block it to \
                 run another runtime. Await the future, spawn it, or select the re-entrant \
                 runner with `%autoawait tokio-nested`"
            .into(),
    }
}

/// A current_thread runtime with every driver, its blocking threads named `name`.
fn current_thread(name: &str) -> Result<Runtime, RunError> {
    Builder::new_current_thread()
        .enable_all()
        .thread_name(name)
        .build()
        .map_err(backend)
}

/// A multi_thread runtime of two workers named `name`.
fn multi_thread(name: &str) -> Result<Runtime, RunError> {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name(name)
        .build()
        .map_err(backend)
}

/// Shuts `rt` down, joining its threads within `grace`; inside a runtime (where
/// tokio may not block) it is shut down in the background instead of panicking.
fn shut_down(rt: Runtime, grace: Duration) {
    if Handle::try_current().is_ok() {
        rt.shutdown_background();
    } else {
        rt.shutdown_timeout(grace);
    }
}

/// `block_in_place(f)`, or `WouldDeadlock` where tokio forbids blocking this thread
/// (a `LocalSet` or a current_thread runtime inside a multi_thread one).
fn block_in_place<R>(runner: &str, f: impl FnOnce() -> R) -> Result<R, RunError> {
    match catch_unwind(AssertUnwindSafe(|| tokio::task::block_in_place(f))) {
        Ok(out) => Ok(out),
        Err(payload) => {
            let message = (payload.downcast_ref::<String>().map(String::as_str))
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            let refused = message.contains("can call blocking only");
            if !refused {
                resume_unwind(payload);
            }
            Err(inside_runtime(runner))
        }
    }
}

/// The [`Services`] of every tokio runner: tokio's timer and TCP, created on first
/// poll so that they bind to the runtime that polls them.
struct TokioServices;

static SERVICES: TokioServices = TokioServices;

impl Services for TokioServices {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // tokio's timer ticks every millisecond, so `sleep(0)` would wait for the next
        // tick; like asyncio's `sleep(0)`, zero means "let the others run once".
        if duration.is_zero() {
            return Box::pin(tokio::task::yield_now());
        }
        Box::pin(async move { tokio::time::sleep(duration).await })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn ByteStream>>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream.compat()) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TokioListener(Arc::new(listener))) as Box<dyn Listener>)
        })
    }
}

struct TokioListener(Arc<tokio::net::TcpListener>);

impl Listener for TokioListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> BoxFuture<'static, io::Result<(Box<dyn ByteStream>, SocketAddr)>> {
        let listener = self.0.clone();
        Box::pin(async move {
            let (stream, peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            Ok((Box::new(stream.compat()) as Box<dyn ByteStream>, peer))
        })
    }
}

/// Runs a cell's future with its options, skipping the guard when there are none.
async fn guarded<F: std::future::Future<Output = CellResult> + Unpin>(
    fut: F,
    opts: Option<RunOptions>,
) -> CellResult {
    match opts {
        None => fut.await,
        Some(opts) => opts.guard(fut).await,
    }
}

fn options(opts: &RunOptions) -> Option<RunOptions> {
    (!opts.is_empty()).then(|| opts.clone())
}

/// `Unsupported` for a `!Send` cell handed to `spawn` of a runner whose tasks may
/// move between threads.
fn local_spawn_unsupported(runner: &str) -> RunError {
    RunError::Unsupported {
        runner: runner.into(),
        reason: "its background tasks must be `Send`, so it cannot spawn a cell built with \
                 `Cell::local`; run it with `run`, or spawn it under `%autoawait tokio`"
            .into(),
    }
}

// ---------------------------------------------------------------------------
// `tokio`: a reactor thread

const THREADED: RunnerInfo = RunnerInfo::new(
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

struct Threaded {
    reactor: ReactorId,
    spin: Duration,
    mailbox: Mailbox,
    stopped: AtomicBool,
    thread: Mutex<Option<Joiner>>,
}

/// Cells for the reactor: a queue that never blocks either side (tokio's mpsc
/// `try_recv` may park the reactor while a send is half done), and a `Notify`
/// that wakes the reactor once it stopped spinning.
struct Mailbox {
    queue: std_mpsc::Sender<Msg>,
    wake: Arc<Notify>,
}

impl Mailbox {
    fn send(&self, msg: Msg) -> Result<(), RunError> {
        self.queue.send(msg).map_err(|_| stopped(&THREADED))?;
        // Without a waiter this only stores a permit: no system call.
        self.wake.notify_one();
        Ok(())
    }
}

fn make_threaded() -> Result<Arc<dyn Runner>, RunError> {
    let rt = current_thread("tokio-blocking")?;
    let reactor = ReactorId::new("tokio");
    let spin = handoff::default_spin();
    let (queue, rx) = std_mpsc::channel();
    let wake = Arc::new(Notify::new());
    let woken = wake.clone();
    let thread = Joiner::spawn("tokio", move || {
        let _driving = reactor.enter();
        let local = LocalSet::new();
        let grace = local.block_on(&rt, reactor_loop(rx, woken, spin));
        // Tasks (and the cells in flight) are dropped here: their callers get
        // `Stopped`, their results `TaskDropped`.
        drop(local);
        shut_down(rt, grace);
    })
    .map_err(backend)?;
    Ok(Arc::new(Threaded {
        reactor,
        spin,
        mailbox: Mailbox { queue, wake },
        stopped: AtomicBool::new(false),
        thread: Mutex::new(Some(thread)),
    }))
}

/// The reactor's loop: runs each job (which spawns a task on the `LocalSet`);
/// when the mailbox is empty it spins with `yield_now` for up to `spin`, so a
/// cell that follows is picked up without a sleeping wake-up, then sleeps on the
/// `Notify`. Spawned tasks run whenever the loop yields or sleeps. Returns the
/// shutdown grace.
async fn reactor_loop(rx: std_mpsc::Receiver<Msg>, wake: Arc<Notify>, spin: Duration) -> Duration {
    let mut idle_since = None;
    // After a cell that finished in one poll, the next cell is likely on its way:
    // wait for it in a tight loop first, as a trip through the scheduler polls
    // the I/O driver (a system call) before it comes back to the mailbox.
    let mut expect_cell = false;
    loop {
        let next = match rx.try_recv() {
            Err(std_mpsc::TryRecvError::Empty) if expect_cell => burst(&rx),
            next => next,
        };
        expect_cell = false;
        match next {
            Ok(Msg::Job(job)) => {
                idle_since = None;
                let mut job = Some(job);
                expect_cell = std::future::poll_fn(|cx| {
                    Poll::Ready(job.take().is_some_and(|job| job(cx)) && !spin.is_zero())
                })
                .await;
            }
            Ok(Msg::Stop(grace)) => return grace,
            Err(std_mpsc::TryRecvError::Disconnected) => return DROP_GRACE,
            Err(std_mpsc::TryRecvError::Empty) => {
                let idle = idle_since.get_or_insert_with(Instant::now).elapsed();
                if idle < spin {
                    tokio::task::yield_now().await;
                    if idle >= OS_YIELD_AFTER {
                        // Let the caller run if it shares this core (more runnable
                        // threads than cores): spinning alone would hold it off for
                        // the whole budget.
                        thread::yield_now();
                    }
                } else {
                    // A send after the `try_recv` above left a permit: no lost wake-up.
                    wake.notified().await;
                    idle_since = None;
                }
            }
        }
    }
}

/// Polls the mailbox in a tight loop for a moment (a microsecond or two).
fn burst<T>(rx: &std_mpsc::Receiver<T>) -> Result<T, std_mpsc::TryRecvError> {
    for _ in 0..BURST_SPINS {
        std::hint::spin_loop();
        match rx.try_recv() {
            Err(std_mpsc::TryRecvError::Empty) => {}
            next => return next,
        }
    }
    Err(std_mpsc::TryRecvError::Empty)
}

impl Threaded {
    fn check(&self) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&THREADED));
        }
        Ok(())
    }

    fn send(&self, job: Job) -> Result<(), RunError> {
        self.mailbox.send(Msg::Job(job))
    }
}

impl Runner for Threaded {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = THREADED;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                "tokio",
                "run() from inside a cell of this runner",
            ));
        }
        self.check()?;
        let (tx, rx) = handoff::reply(self.spin);
        let opts = options(opts);
        self.send(Box::new(move |cx| {
            // Most cells finish in one poll: run that poll right here, and pay for a
            // task only if the cell waits. The task's first poll registers its own
            // waker; a wake-up meanwhile only wakes the reactor loop, harmlessly.
            let mut fut = Box::pin(guarded(cell.into_local_future(), opts));
            match fut.as_mut().poll(cx) {
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
        rx.recv().unwrap_or_else(|| Err(stopped(&THREADED)))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.check()?;
        let origin = cell.origin();
        let reactor = self.reactor;
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
                let (task, eventual) = EventualResult::local_task(fut, origin, Some(&reactor));
                // Outside the `LocalSet` (a `tokio::spawn`ed task), tokio refuses.
                catch_unwind(AssertUnwindSafe(|| tokio::task::spawn_local(task))).map_err(
                    |_| RunError::Unsupported {
                        runner: "tokio".into(),
                        reason: "a `!Send` cell can be spawned from a cell or from another \
                                 thread, not from a task started with `tokio::spawn`"
                            .into(),
                    },
                )?;
                Ok(eventual)
            }
            Err(cell) => {
                let (tx, rx) = handoff::reply(self.spin);
                self.send(Box::new(move |_| {
                    let fut = cell.into_local_future();
                    let (task, eventual) = EventualResult::local_task(fut, origin, Some(&reactor));
                    tokio::task::spawn_local(task);
                    tx.send(eventual);
                    false
                }))?;
                rx.recv().ok_or_else(|| stopped(&THREADED))
            }
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        let _ = self.mailbox.send(Msg::Stop(grace));
        // From a cell on the reactor thread, the thread ends after that cell and
        // cannot join itself: `Joiner::join_within` leaves it detached.
        if let Some(thread) = lock(&self.thread).take() {
            thread.join_within(grace.saturating_add(JOIN_MARGIN));
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        self.shutdown(DROP_GRACE);
    }
}

// ---------------------------------------------------------------------------
// `tokio-per-cell`: one runtime, driven only during cells

const PER_CELL: RunnerInfo = RunnerInfo::new(
    "tokio-per-cell",
    "tokio",
    Strategy::PerCell,
    "one tokio runtime driven on the caller's thread during cells; tasks pause in between",
);

struct PerCell {
    reactor: ReactorId,
    stopped: AtomicBool,
    /// Spawns without driving the runtime (tasks wait for the next cell).
    handle: Handle,
    /// Read-locked while a cell runs; taken by shutdown.
    rt: RwLock<Option<Runtime>>,
}

fn make_per_cell() -> Result<Arc<dyn Runner>, RunError> {
    let rt = current_thread("tokio-per-cell")?;
    Ok(Arc::new(PerCell {
        reactor: ReactorId::new("tokio-per-cell"),
        stopped: AtomicBool::new(false),
        handle: rt.handle().clone(),
        rt: RwLock::new(Some(rt)),
    }))
}

impl PerCell {
    /// Takes the runtime out and shuts it down, unless a cell is running: then the
    /// last cell to finish does it.
    fn finish_shutdown(&self, grace: Duration) {
        let rt = match self.rt.try_write() {
            Ok(mut rt) => rt.take(),
            Err(_) => None,
        };
        if let Some(rt) = rt {
            shut_down(rt, grace);
        }
    }
}

impl Runner for PerCell {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = PER_CELL;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                "tokio-per-cell",
                "run() from inside a cell of this runner",
            ));
        }
        if Handle::try_current().is_ok() {
            return Err(inside_runtime("tokio-per-cell"));
        }
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&PER_CELL));
        }
        let out = {
            let rt = self.rt.read().unwrap_or_else(|e| e.into_inner());
            let Some(rt) = rt.as_ref() else {
                return Err(stopped(&PER_CELL));
            };
            let _driving = self.reactor.enter();
            let fut = cell.into_local_future();
            if opts.is_empty() {
                rt.block_on(fut)
            } else {
                rt.block_on(opts.guard(fut))
            }
        };
        if self.stopped.load(Ordering::Acquire) {
            self.finish_shutdown(DROP_GRACE);
        }
        out
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&PER_CELL));
        }
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| local_spawn_unsupported("tokio-per-cell"))?;
        let (task, eventual) = EventualResult::task(origin, fut, Some(&self.reactor));
        self.handle.spawn(task);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        if self.reactor.is_current() {
            // Called from one of our cells: the runtime goes when that cell ends.
            return;
        }
        // Cells in flight keep the runtime until they end (the last one shuts it
        // down); wait for them a little.
        let deadline = Instant::now() + grace.min(JOIN_MARGIN);
        loop {
            if let Ok(mut guard) = self.rt.try_write() {
                let rt = guard.take();
                drop(guard);
                if let Some(rt) = rt {
                    shut_down(rt, grace);
                }
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

impl Drop for PerCell {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        let rt = self.rt.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(rt) = rt {
            shut_down(rt, DROP_GRACE);
        }
    }
}

// ---------------------------------------------------------------------------
// `tokio-fresh`: a runtime per cell

const FRESH: RunnerInfo = RunnerInfo::new(
    "tokio-fresh",
    "tokio",
    Strategy::Fresh,
    "a new tokio runtime per cell (like trio.run); tasks end with their cell",
);

struct Fresh {
    reactor: ReactorId,
    stopped: AtomicBool,
    /// Cancels the tasks spawned from outside any cell, at shutdown.
    tasks: CancelToken,
    /// The threads of those tasks (`tokio-fresh-task`).
    threads: Mutex<Vec<Joiner>>,
}

fn make_fresh() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(Fresh {
        reactor: ReactorId::new("tokio-fresh"),
        stopped: AtomicBool::new(false),
        tasks: CancelToken::new(),
        threads: Mutex::new(Vec::new()),
    }))
}

impl Runner for Fresh {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = FRESH;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                "tokio-fresh",
                "run() from inside a cell of this runner",
            ));
        }
        if Handle::try_current().is_ok() {
            return Err(inside_runtime("tokio-fresh"));
        }
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&FRESH));
        }
        let rt = current_thread("tokio-fresh")?;
        let out = {
            let _driving = self.reactor.enter();
            let fut = cell.into_local_future();
            if opts.is_empty() {
                rt.block_on(fut)
            } else {
                rt.block_on(opts.guard(fut))
            }
        };
        // The cell's tasks are dropped here (their results become `TaskDropped`);
        // timers and sockets made in it fail from now on.
        rt.shutdown_timeout(DROP_GRACE);
        out
    }

    /// From inside a cell, the task runs on that cell's runtime and is dropped with
    /// it. From outside any cell, it gets a runtime of its own on a thread named
    /// `tokio-fresh-task`, for as long as it runs.
    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&FRESH));
        }
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| local_spawn_unsupported("tokio-fresh"))?;
        if self.reactor.is_current() {
            if let Ok(handle) = Handle::try_current() {
                let (task, eventual) = EventualResult::task(origin, fut, Some(&self.reactor));
                handle.spawn(task);
                return Ok(eventual);
            }
        }
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let (task, eventual) = EventualResult::task(origin, opts.guard(fut), Some(&self.reactor));
        let rt = current_thread("tokio-fresh-task")?;
        let reactor = self.reactor;
        let thread = Joiner::spawn("tokio-fresh-task", move || {
            let _driving = reactor.enter();
            rt.block_on(task);
            rt.shutdown_timeout(DROP_GRACE);
        })
        .map_err(backend)?;
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        self.tasks.cancel();
        let threads = std::mem::take(&mut *lock(&self.threads));
        Joiner::join_all(threads, grace.saturating_add(JOIN_MARGIN));
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        self.shutdown(DROP_GRACE);
    }
}

// ---------------------------------------------------------------------------
// `tokio-host`: the host's runtime

const HOST: RunnerInfo = RunnerInfo::new(
    "tokio-host",
    "tokio",
    Strategy::Host,
    "cells run on the host's tokio runtime (attached, current, or a multi_thread one of its own)",
);

static ATTACHED: RwLock<Option<Handle>> = RwLock::new(None);

/// Makes `tokio-host` run cells on the runtime of `handle` (a runtime the host
/// already runs), in every registry. Returns the handle attached before, if any.
///
/// Without an attached runtime, `tokio-host` uses the runtime the calling thread is
/// in (`Handle::try_current`), or else a multi_thread runtime of its own, with two
/// workers named `tokio-host-worker`, started on first use and stopped by
/// `shutdown`. An attached runtime is never shut down by the runner; tasks it spawned
/// there are cancelled by its `shutdown`.
///
/// # Examples
///
/// ```
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// autoawait_runners::tokio_runner::attach(rt.handle().clone());
/// assert!(autoawait_runners::tokio_runner::detach().is_some());
/// ```
pub fn attach(handle: Handle) -> Option<Handle> {
    ATTACHED
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .replace(handle)
}

/// Undoes [`attach`]: `tokio-host` goes back to detecting the runtime. Returns the
/// handle that was attached, if any.
///
/// # Examples
///
/// ```
/// assert!(autoawait_runners::tokio_runner::detach().is_none());
/// ```
pub fn detach() -> Option<Handle> {
    ATTACHED.write().unwrap_or_else(|e| e.into_inner()).take()
}

fn attached() -> Option<Handle> {
    ATTACHED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

struct Host {
    reactor: ReactorId,
    spin: Duration,
    stopped: AtomicBool,
    /// Cancels the tasks this runner spawned, at shutdown.
    tasks: CancelToken,
    owned: OnceLock<Handle>,
    runtime: Mutex<Option<Runtime>>,
}

fn make_host() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(Host {
        reactor: ReactorId::new("tokio-host"),
        spin: handoff::default_spin(),
        stopped: AtomicBool::new(false),
        tasks: CancelToken::new(),
        owned: OnceLock::new(),
        runtime: Mutex::new(None),
    }))
}

impl Host {
    fn check(&self) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&HOST));
        }
        Ok(())
    }

    /// The runtime cells go to: attached, else current, else our own.
    fn target(&self, current: Option<&Handle>) -> Result<Handle, RunError> {
        if let Some(handle) = attached().or_else(|| current.cloned()) {
            return Ok(handle);
        }
        if let Some(handle) = self.owned.get() {
            return Ok(handle.clone());
        }
        let mut runtime = lock(&self.runtime);
        self.check()?;
        if let Some(handle) = self.owned.get() {
            return Ok(handle.clone());
        }
        let rt = multi_thread("tokio-host-worker")?;
        let handle = rt.handle().clone();
        let _ = self.owned.set(handle.clone());
        *runtime = Some(rt);
        Ok(handle)
    }

    /// Runs the cell on `target` from a thread that may block.
    fn run_on(&self, target: &Handle, cell: Cell, opts: &RunOptions) -> CellResult {
        if target.runtime_flavor() == RuntimeFlavor::MultiThread {
            // Polled here; the workers drive timers, sockets and tasks.
            let _driving = self.reactor.enter();
            let fut = cell.into_local_future();
            return if opts.is_empty() {
                target.block_on(fut)
            } else {
                target.block_on(opts.guard(fut))
            };
        }
        // A current_thread runtime driven by another thread: hand the cell over.
        let fut = cell
            .into_future()
            .map_err(|_| local_spawn_unsupported("tokio-host"))?;
        if !opts.is_empty() {
            // Timeout and cancel apply on this side too, so that they work even if
            // nothing drives the host runtime; giving up aborts the task.
            let task = target.spawn(fut);
            let _abort = AbortOnDrop(task.abort_handle());
            let joined = async move {
                task.await.unwrap_or_else(|_| {
                    Err(RunError::TaskDropped {
                        runner: "tokio-host".into(),
                    })
                })
            };
            return autoawait_core::block_on_inline(opts.guard(Box::pin(joined)));
        }
        let (tx, rx) = handoff::reply(self.spin);
        let opts = options(opts);
        target.spawn(async move { tx.send(guarded(fut, opts).await) });
        rx.recv().unwrap_or_else(|| {
            Err(RunError::TaskDropped {
                runner: "tokio-host".into(),
            })
        })
    }
}

/// Aborts a task handed to a host runtime when its caller stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Runner for Host {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = HOST;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                "tokio-host",
                "run() from inside a cell of this runner",
            ));
        }
        self.check()?;
        let current = Handle::try_current().ok();
        let target = self.target(current.as_ref())?;
        match current {
            None => self.run_on(&target, cell, opts),
            Some(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
                block_in_place("tokio-host", || self.run_on(&target, cell, opts))?
            }
            Some(_) => Err(RunError::WouldDeadlock {
                runner: "tokio-host".into(),
                advice: "this thread runs the host's current_thread tokio runtime, which \
                         cannot run the cell while it waits for it. Await \
                         `Runner::run_async` on the host's loop instead, spawn the cell, or \
                         run the host on a multi_thread runtime"
                    .into(),
            }),
        }
    }

    /// Awaits the cell on the host's own loop: the future returned is the cell
    /// itself, polled by whoever awaits it, without blocking a thread.
    fn run_async(&self, cell: Cell, opts: &RunOptions) -> BoxFuture<'static, CellResult> {
        if let Err(err) = self.check() {
            return Box::pin(std::future::ready(Err(err)));
        }
        match cell.into_future() {
            Ok(fut) if opts.is_empty() => Box::pin(fut),
            Ok(fut) => Box::pin(opts.guard(fut)),
            Err(_) => Box::pin(std::future::ready(Err(RunError::Unsupported {
                runner: "tokio-host".into(),
                reason: "run_async returns a `Send` future, so it cannot take a cell built \
                         with `Cell::local`; use `run` for it"
                    .into(),
            }))),
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.check()?;
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| local_spawn_unsupported("tokio-host"))?;
        let target = self.target(Handle::try_current().ok().as_ref())?;
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let (task, eventual) = EventualResult::task(origin, opts.guard(fut), Some(&self.reactor));
        target.spawn(task);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        let rt = {
            let mut runtime = lock(&self.runtime);
            self.stopped.store(true, Ordering::Release);
            runtime.take()
        };
        self.tasks.cancel();
        if let Some(rt) = rt {
            shut_down(rt, grace);
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.shutdown(DROP_GRACE);
    }
}

// ---------------------------------------------------------------------------
// `tokio-nested`: re-entrant

const NESTED: RunnerInfo = RunnerInfo::new(
    "tokio-nested",
    "tokio",
    Strategy::Nested,
    "a multi_thread tokio runtime; run() works inside cells, to any depth (nest_asyncio)",
);

struct Nested {
    /// Marks the threads polling our cells (for error messages).
    reactor: ReactorId,
    /// Names the runner in task results; never entered, since waiting for a task
    /// from a cell is fine here (workers run it).
    tasks_of: ReactorId,
    stopped: AtomicBool,
    handle: Handle,
    runtime: Mutex<Option<Runtime>>,
}

fn make_nested() -> Result<Arc<dyn Runner>, RunError> {
    let rt = multi_thread("tokio-nested-worker")?;
    Ok(Arc::new(Nested {
        reactor: ReactorId::new("tokio-nested"),
        tasks_of: ReactorId::new("tokio-nested"),
        stopped: AtomicBool::new(false),
        handle: rt.handle().clone(),
        runtime: Mutex::new(Some(rt)),
    }))
}

impl Nested {
    fn block_on(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        let _driving = self.reactor.enter();
        let fut = cell.into_local_future();
        if opts.is_empty() {
            self.handle.block_on(fut)
        } else {
            self.handle.block_on(opts.guard(fut))
        }
    }
}

impl Runner for Nested {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = NESTED;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&NESTED));
        }
        match Handle::try_current() {
            Err(_) => self.block_on(cell, opts),
            // Inside a multi_thread runtime (ours, nested; or another): give the
            // worker's duties to another thread, then block this one.
            Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
                block_in_place("tokio-nested", || self.block_on(cell, opts))?
            }
            Ok(_) => Err(inside_runtime("tokio-nested")),
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&NESTED));
        }
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| local_spawn_unsupported("tokio-nested"))?;
        let (task, eventual) = EventualResult::task(origin, fut, Some(&self.tasks_of));
        self.handle.spawn(task);
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        let rt = {
            let mut runtime = lock(&self.runtime);
            self.stopped.store(true, Ordering::Release);
            runtime.take()
        };
        if let Some(rt) = rt {
            shut_down(rt, grace);
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        self.shutdown(DROP_GRACE);
    }
}

inventory::submit! { RunnerFactory::new(THREADED, make_threaded) }
inventory::submit! { RunnerFactory::new(PER_CELL, make_per_cell) }
inventory::submit! { RunnerFactory::new(FRESH, make_fresh) }
inventory::submit! { RunnerFactory::new(HOST, make_host) }
inventory::submit! { RunnerFactory::new(NESTED, make_nested) }
