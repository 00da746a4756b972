//! smol runners: the smol executor (async-executor on async-io's reactor) in every
//! strategy of DESIGN.md.
//!
//! | runner | strategy | how |
//! |---|---|---|
//! | `smol` | threaded | a reactor thread named `smol` runs one executor until shutdown; cells are handed over through a mailbox that spins before it sleeps |
//! | `smol-per-cell` | per-cell | one executor, ticked by the calling thread only while a cell runs |
//! | `smol-fresh` | fresh | a new executor per cell, dropped with it (and its tasks) |
//! | `smol-host` | host | the executor is driven forever by one task on a host tokio runtime |
//! | `smol-nested` | nested | a re-entrant `block_on` that ticks the shared executor at every level; a thread named `smol-nested` ticks it between cells |
//!
//! Every runner offers the same [`Services`]: async-io timers and async-net sockets.
//! They run on async-io's process-wide reactor, so they work under any executor.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::hint;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use autoawait_core::handoff::{self, ReplySender};
use autoawait_core::{
    BoxFuture, ByteStream, CancelToken, Cell, CellResult, EventualResult, Joiner, Listener,
    ReactorId, RunError, RunOptions, Runner, RunnerFactory, RunnerInfo, Services, Strategy, Task,
};
use smol::future::{self as future, FutureExt as _};
use smol::{Executor, LocalExecutor, Timer};

// ---------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn stopped(info: &RunnerInfo) -> RunError {
    RunError::Stopped {
        runner: info.name.to_string(),
    }
}

fn spawn_failed(info: &RunnerInfo, err: io::Error) -> RunError {
    RunError::backend(io::Error::new(
        err.kind(),
        format!("cannot spawn a `{}` thread: {err}", info.name),
    ))
}

/// `now + grace`, saturating instead of overflowing for huge graces.
/// How long `shutdown` waits past its grace for a runner's thread to exit before
/// leaving it detached (a cell stuck in blocking code cannot be stopped).
const JOIN_MARGIN: Duration = Duration::from_secs(2);

fn deadline_after(grace: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(grace)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365))
}

/// Runs the tasks of `ex` forever, for a thread whose only work is the executor
/// (the `smol-nested` thread, the `smol-host` task); it yields every 200 tasks so
/// the future it is raced against with `or` is polled again.
async fn tick_forever<T>(ex: &Executor<'_>) -> T {
    loop {
        for _ in 0..200 {
            ex.tick().await;
        }
        future::yield_now().await;
    }
}

/// [`tick_forever`] for a [`LocalExecutor`].
async fn tick_forever_local<T>(ex: &LocalExecutor<'_>) -> T {
    loop {
        for _ in 0..200 {
            ex.tick().await;
        }
        future::yield_now().await;
    }
}

/// Polls a cell on this thread, running the tasks of a shared executor while it
/// waits.
///
/// Unlike racing the cell against `ex.run()` or `ex.tick()`, no ticker of this
/// level sleeps while the cell is polled. async-executor wakes one sleeping ticker
/// per scheduled task and no other until that one wakes up, so a level whose cell
/// blocks in a nested `run()` (or in blocking code) with its ticker asleep would
/// swallow the wake-ups of every later task, and a nested cell waiting for one of
/// them would hang.
struct Drive<'a, F> {
    cell: F,
    ex: &'a Executor<'static>,
    ticker: Option<Pin<Box<dyn Future<Output = ()> + 'a>>>,
}

impl<F: Future + Unpin> Future for Drive<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // Out of the sleepers before the cell runs (a notification it got is passed on).
        this.ticker = None;
        let mut budget = 200u32;
        loop {
            if let Poll::Ready(out) = Pin::new(&mut this.cell).poll(cx) {
                return Poll::Ready(out);
            }
            let mut ran = false;
            while budget > 0 && this.ex.try_tick() {
                ran = true;
                budget -= 1;
            }
            if !ran {
                // Nothing ready: sleep on a ticker until a task is scheduled.
                let mut ticker: Pin<Box<dyn Future<Output = ()> + '_>> = Box::pin(this.ex.tick());
                if ticker.as_mut().poll(cx).is_pending() {
                    this.ticker = Some(ticker);
                    return Poll::Pending;
                }
                budget = budget.saturating_sub(1);
            }
            if budget == 0 {
                // Let the caller's block_on look at I/O before going on.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // A task that ran may have woken the cell: poll it again.
        }
    }
}

/// Catches a panic that escapes a cell anyway (a task that panics, a destructor
/// that panics when a timeout drops the cell), so that it stays a value.
fn caught(run: impl FnOnce() -> CellResult) -> CellResult {
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|payload| Err(RunError::from_panic(payload)))
}

/// Runs `cell` on this thread with smol's `block_on`, running the tasks of `ex`
/// whenever it waits. A ready cell never touches the executor.
fn block_on_cell(cell: Cell, opts: &RunOptions, ex: &Executor<'static>) -> CellResult {
    let fut = cell.into_local_future();
    caught(|| {
        if opts.is_empty() {
            smol::block_on(Drive {
                cell: fut,
                ex,
                ticker: None,
            })
        } else {
            smol::block_on(Drive {
                cell: opts.guard(fut),
                ex,
                ticker: None,
            })
        }
    })
}

/// [`block_on_cell`] for a cell alone with its own local executor (no other level
/// ticks it, so racing the cell against the executor is enough).
fn block_on_cell_local(cell: Cell, opts: &RunOptions, ex: &LocalExecutor<'static>) -> CellResult {
    let fut = cell.into_local_future();
    caught(|| {
        if opts.is_empty() {
            smol::block_on(fut.or(tick_forever_local(ex)))
        } else {
            smol::block_on(opts.guard(fut).or(tick_forever_local(ex)))
        }
    })
}

/// A cell's future under `opts`, for the task that runs it while its caller waits:
/// a panic that escapes the cell (a destructor that panics when the timeout drops
/// it) is the caller's `Panicked`, not a dead task.
async fn guarded<F>(fut: F, opts: RunOptions) -> CellResult
where
    F: Future<Output = CellResult> + Unpin,
{
    AssertUnwindSafe(opts.guard(fut))
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(RunError::from_panic(payload)))
}

/// `ex.try_tick()`, surviving a task that panics out of its poll (its result is
/// then `TaskDropped`): the thread driving a runner must not die of one task.
fn try_tick(ex: &LocalExecutor<'_>) -> bool {
    catch_unwind(AssertUnwindSafe(|| ex.try_tick())).unwrap_or(true)
}

/// `smol::block_on(fut)` on a runner's own thread, surviving a task that panics.
fn block_on_surviving(fut: impl Future<Output = ()>) {
    let _ = catch_unwind(AssertUnwindSafe(|| smol::block_on(fut)));
}

thread_local! {
    /// The local executors this thread drives, innermost last, with the runner they
    /// belong to: a cell spawns its tasks into its runner's executor on its thread.
    static EXECUTORS: RefCell<Vec<(ReactorId, Rc<LocalExecutor<'static>>)>> =
        const { RefCell::new(Vec::new()) };
}

/// Makes `ex` the executor of `reactor` on this thread until dropped.
struct ExecutorScope;

impl ExecutorScope {
    fn enter(reactor: &ReactorId, ex: &Rc<LocalExecutor<'static>>) -> Self {
        EXECUTORS.with(|e| e.borrow_mut().push((*reactor, ex.clone())));
        ExecutorScope
    }
}

impl Drop for ExecutorScope {
    fn drop(&mut self) {
        let entry = EXECUTORS.with(|e| e.borrow_mut().pop());
        drop(entry);
    }
}

/// The executor of `reactor` that this thread drives, if any.
fn current_executor(reactor: &ReactorId) -> Option<Rc<LocalExecutor<'static>>> {
    EXECUTORS.with(|e| {
        e.borrow()
            .iter()
            .rev()
            .find(|(r, _)| r == reactor)
            .map(|(_, ex)| ex.clone())
    })
}

/// Spawns `cell` as a background task of `ex`, on this thread.
fn spawn_on(ex: &LocalExecutor<'static>, reactor: &ReactorId, cell: Cell) -> EventualResult {
    let origin = cell.origin();
    match cell.into_future() {
        Ok(fut) => {
            let (task, eventual) = EventualResult::task(origin, fut, Some(reactor));
            ex.spawn(task).detach();
            eventual
        }
        Err(cell) => {
            let fut = cell.into_local_future();
            let (task, eventual) = EventualResult::local_task(fut, origin, Some(reactor));
            ex.spawn(task).detach();
            eventual
        }
    }
}

/// Spawns a `Send` cell on a shared executor; a local cell is refused with `why`.
fn spawn_send(
    ex: &Executor<'static>,
    reactor: &ReactorId,
    info: &RunnerInfo,
    cell: Cell,
    why: &str,
) -> Result<EventualResult, RunError> {
    let origin = cell.origin();
    let fut = cell.into_future().map_err(|_| RunError::Unsupported {
        runner: info.name.to_string(),
        reason: why.to_owned(),
    })?;
    let (task, eventual) = EventualResult::task(origin, fut, Some(reactor));
    ex.spawn(task).detach();
    Ok(eventual)
}

/// A shared executor that shutdown can take away: its tasks are dropped with the
/// last clone, so work handed to a runner that is shutting down ends instead of
/// waiting forever.
struct Shared(RwLock<Option<Arc<Executor<'static>>>>);

impl Shared {
    fn new(ex: Arc<Executor<'static>>) -> Self {
        Shared(RwLock::new(Some(ex)))
    }

    fn get(&self, info: &RunnerInfo) -> Result<Arc<Executor<'static>>, RunError> {
        let ex = self.0.read().unwrap_or_else(PoisonError::into_inner);
        ex.clone().ok_or_else(|| stopped(info))
    }

    fn take(&self) -> Option<Arc<Executor<'static>>> {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The services of every smol runner: async-io timers and async-net TCP.
struct SmolServices;

impl Services for SmolServices {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            Timer::after(duration).await;
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn ByteStream>>> {
        Box::pin(async move {
            let stream = smol::net::TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = smol::net::TcpListener::bind(addr).await?;
            Ok(Box::new(SmolListener(listener)) as Box<dyn Listener>)
        })
    }
}

struct SmolListener(smol::net::TcpListener);

impl Listener for SmolListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> BoxFuture<'static, io::Result<(Box<dyn ByteStream>, SocketAddr)>> {
        let listener = self.0.clone();
        Box::pin(async move {
            let (stream, peer) = listener.accept().await?;
            Ok((Box::new(stream) as Box<dyn ByteStream>, peer))
        })
    }
}

// ---------------------------------------------------------------------------
// `smol`: a reactor thread and a spin-then-park mailbox
// ---------------------------------------------------------------------------

const SMOL: RunnerInfo = RunnerInfo::new(
    "smol",
    "smol",
    Strategy::Threaded,
    "a smol executor on its own thread (crochet-style); background tasks keep running",
);

/// Work handed to the reactor thread of `smol`.
enum Job {
    /// Run a cell and send its result back.
    Run {
        cell: Cell,
        opts: Option<RunOptions>,
        reply: ReplySender<CellResult>,
    },
    /// Run a task in the background.
    Spawn(Task),
    /// Build the task of a `!Send` cell on the reactor thread; send its handle back.
    SpawnLocal {
        cell: Cell,
        reply: ReplySender<EventualResult>,
    },
}

/// The request side of the hand-off: a queue the reactor thread checks while it
/// spins, and awaits (registering a waker) once it has spun for its budget.
#[derive(Default)]
struct Mailbox {
    inbox: Mutex<Inbox>,
    /// Set when there are jobs or a stop request: the reactor spins on this alone.
    ready: AtomicBool,
}

#[derive(Default)]
struct Inbox {
    jobs: VecDeque<Job>,
    stop: Option<Instant>,
    closed: bool,
    waker: Option<Waker>,
}

impl Mailbox {
    /// Queues `job`; gives it back if the reactor has stopped.
    fn push(&self, job: Job) -> Result<(), Job> {
        let mut inbox = lock(&self.inbox);
        if inbox.closed || inbox.stop.is_some() {
            return Err(job);
        }
        inbox.jobs.push_back(job);
        self.ready.store(true, Ordering::Release);
        let waker = inbox.waker.take();
        drop(inbox);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Asks the reactor to stop, running its tasks until `deadline` at most.
    fn stop(&self, deadline: Instant) {
        let mut inbox = lock(&self.inbox);
        inbox.stop.get_or_insert(deadline);
        self.ready.store(true, Ordering::Release);
        let waker = inbox.waker.take();
        drop(inbox);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Swaps the queued jobs into `jobs` (empty); also returns the stop deadline
    /// once asked to stop (jobs queued before that still start).
    fn take(&self, jobs: &mut VecDeque<Job>) -> Option<Instant> {
        let mut inbox = lock(&self.inbox);
        self.ready.store(false, Ordering::Relaxed);
        std::mem::swap(jobs, &mut inbox.jobs);
        inbox.stop
    }

    /// Refuses every later job and returns the ones still queued (to be dropped,
    /// which tells their callers the runner stopped).
    fn close(&self) -> VecDeque<Job> {
        let mut inbox = lock(&self.inbox);
        inbox.closed = true;
        std::mem::take(&mut inbox.jobs)
    }

    /// Resolves once there are jobs or a stop request.
    async fn wait(&self) {
        future::poll_fn(|cx| {
            let mut inbox = lock(&self.inbox);
            if !inbox.jobs.is_empty() || inbox.stop.is_some() {
                return Poll::Ready(());
            }
            match &inbox.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inbox.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

/// `smol`: a reactor thread that lives until shutdown.
struct Threaded {
    reactor: ReactorId,
    stopped: AtomicBool,
    mailbox: Arc<Mailbox>,
    thread: Mutex<Option<Joiner>>,
    spin: Duration,
}

fn make_threaded() -> Result<Arc<dyn Runner>, RunError> {
    let reactor = ReactorId::new(&SMOL.name);
    let mailbox = Arc::new(Mailbox::default());
    let spin = handoff::default_spin();
    let thread = Joiner::spawn(&SMOL.name, {
        let mailbox = mailbox.clone();
        move || reactor_thread(&reactor, &mailbox, spin)
    })
    .map_err(|e| spawn_failed(&SMOL, e))?;
    Ok(Arc::new(Threaded {
        reactor,
        stopped: AtomicBool::new(false),
        mailbox,
        thread: Mutex::new(Some(thread)),
        spin,
    }))
}

/// The body of the `smol` thread: runs jobs and tasks until asked to stop, then
/// gives the remaining tasks until the deadline and drops them.
fn reactor_thread(reactor: &ReactorId, mailbox: &Mailbox, spin: Duration) {
    // Whatever happens to this thread, callers must not wait for it forever.
    let _close = CloseOnExit(mailbox);
    let _driving = reactor.enter();
    let ex = Rc::new(LocalExecutor::new());
    let scope = ExecutorScope::enter(reactor, &ex);
    let mut jobs = VecDeque::new();
    let deadline = loop {
        if let Some(deadline) = run_until_idle(&ex, reactor, mailbox, &mut jobs, spin) {
            break deadline;
        }
        // Idle for the whole spin budget: sleep until a job, a task or I/O.
        block_on_surviving(ex.tick().or(mailbox.wait()));
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
struct CloseOnExit<'a>(&'a Mailbox);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        drop(self.0.close());
    }
}

/// Runs jobs and ready tasks, spinning for `spin` once there is nothing to do.
/// Returns when idle for the whole budget (`None`) or asked to stop (the deadline).
fn run_until_idle(
    ex: &LocalExecutor<'static>,
    reactor: &ReactorId,
    mailbox: &Mailbox,
    jobs: &mut VecDeque<Job>,
    spin: Duration,
) -> Option<Instant> {
    let mut idle_since: Option<Instant> = None;
    let mut spins = 0u32;
    loop {
        if mailbox.ready.load(Ordering::Acquire) {
            let stop = mailbox.take(jobs);
            for job in jobs.drain(..) {
                start(ex, reactor, job);
            }
            if stop.is_some() {
                return stop;
            }
        } else if !try_tick(ex) {
            if spin.is_zero() {
                return None;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                if since.elapsed() >= spin {
                    return None;
                }
                // On an oversubscribed machine the thread we wait for may need this
                // core: give it up now and then (measured: ~25 µs instead of ~50-100
                // µs per cell under load, no change on an idle machine).
                thread::yield_now();
            }
            hint::spin_loop();
            continue;
        }
        idle_since = None;
    }
}

/// Starts a job on the reactor thread.
fn start(ex: &LocalExecutor<'static>, reactor: &ReactorId, job: Job) {
    match job {
        Job::Run { cell, opts, reply } => {
            let fut = cell.into_local_future();
            let task = match opts {
                None => ex.spawn(async move { reply.send(fut.await) }),
                Some(opts) => ex.spawn(async move { reply.send(guarded(fut, opts).await) }),
            };
            task.detach();
        }
        Job::Spawn(task) => ex.spawn(task).detach(),
        Job::SpawnLocal { cell, reply } => reply.send(spawn_on(ex, reactor, cell)),
    }
}

impl Threaded {
    fn check(&self) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&SMOL));
        }
        Ok(())
    }

    /// Why a job was dropped before it replied.
    fn lost(&self) -> RunError {
        if self.stopped.load(Ordering::Acquire) {
            stopped(&SMOL)
        } else {
            RunError::TaskDropped {
                runner: SMOL.name.to_string(),
            }
        }
    }
}

impl Runner for Threaded {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = SMOL;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                &SMOL.name,
                "run() from inside a cell of this runner",
            ));
        }
        self.check()?;
        let (reply, result) = handoff::reply(self.spin);
        let opts = (!opts.is_empty()).then(|| opts.clone());
        self.mailbox
            .push(Job::Run { cell, opts, reply })
            .map_err(|_| stopped(&SMOL))?;
        result.recv().unwrap_or_else(|| Err(self.lost()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.check()?;
        if let Some(ex) = current_executor(&self.reactor) {
            // From a cell on the reactor thread: straight into the executor.
            return Ok(spawn_on(&ex, &self.reactor, cell));
        }
        let origin = cell.origin();
        match cell.into_future() {
            Ok(fut) => {
                let (task, eventual) = EventualResult::task(origin, fut, Some(&self.reactor));
                self.mailbox
                    .push(Job::Spawn(task))
                    .map_err(|_| stopped(&SMOL))?;
                Ok(eventual)
            }
            Err(cell) => {
                let (reply, eventual) = handoff::reply(self.spin);
                self.mailbox
                    .push(Job::SpawnLocal { cell, reply })
                    .map_err(|_| stopped(&SMOL))?;
                eventual.recv().ok_or_else(|| self.lost())
            }
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        self.mailbox.stop(deadline_after(grace));
        if self.reactor.is_current() {
            // Called from a cell: the thread cannot join itself; it ends after this cell.
            return;
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            thread.join_within(grace.saturating_add(JOIN_MARGIN));
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SmolServices)
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

// ---------------------------------------------------------------------------
// `smol-per-cell`: one executor, ticked only while a cell runs
// ---------------------------------------------------------------------------

const SMOL_PER_CELL: RunnerInfo = RunnerInfo::new(
    "smol-per-cell",
    "smol",
    Strategy::PerCell,
    "one smol executor driven by the calling thread during cells (IPython terminal)",
);

/// `smol-per-cell`: `block_on` on the calling thread, ticking one executor kept
/// across cells. Background tasks are suspended between cells.
struct PerCell {
    reactor: ReactorId,
    executor: Shared,
}

fn make_per_cell() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(PerCell {
        reactor: ReactorId::new(&SMOL_PER_CELL.name),
        executor: Shared::new(Arc::new(Executor::new())),
    }))
}

impl Runner for PerCell {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = SMOL_PER_CELL;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                &SMOL_PER_CELL.name,
                "run() from inside a cell of this runner",
            ));
        }
        let ex = self.executor.get(&SMOL_PER_CELL)?;
        let _driving = self.reactor.enter();
        block_on_cell(cell, opts, &ex)
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let ex = self.executor.get(&SMOL_PER_CELL)?;
        spawn_send(
            &ex,
            &self.reactor,
            &SMOL_PER_CELL,
            cell,
            "its background tasks run on whichever thread runs the next cell, and a \
             `!Send` task cannot move; spawn a `Send` future, or use `smol`",
        )
    }

    fn shutdown(&self, _grace: Duration) {
        // Tasks are suspended between cells: dropping the executor drops them.
        drop(self.executor.take());
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SmolServices)
    }
}

// ---------------------------------------------------------------------------
// `smol-fresh`: a new executor per cell
// ---------------------------------------------------------------------------

const SMOL_FRESH: RunnerInfo = RunnerInfo::new(
    "smol-fresh",
    "smol",
    Strategy::Fresh,
    "a new smol executor per cell, dropped with its tasks after the cell (trio.run)",
);

/// `smol-fresh`: every cell gets a new executor, dropped after it with its tasks.
/// A cell spawned from outside any cell is a cell of its own, on a thread named
/// `smol-fresh` that ends with it.
struct Fresh {
    reactor: ReactorId,
    stopped: AtomicBool,
    /// Cancels the background cells at shutdown.
    tasks: CancelToken,
    threads: Mutex<Vec<Joiner>>,
    spin: Duration,
}

fn make_fresh() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(Fresh {
        reactor: ReactorId::new(&SMOL_FRESH.name),
        stopped: AtomicBool::new(false),
        tasks: CancelToken::new(),
        threads: Mutex::new(Vec::new()),
        spin: handoff::default_spin(),
    }))
}

impl Fresh {
    fn check(&self) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped(&SMOL_FRESH));
        }
        Ok(())
    }

    /// Runs `cell` as a cell of its own on a new `smol-fresh` thread.
    fn spawn_thread(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let (reply, eventual) = handoff::reply(self.spin);
        let reactor = self.reactor;
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        let thread = Joiner::spawn(&SMOL_FRESH.name, move || {
            let _driving = reactor.enter();
            let ex = Rc::new(LocalExecutor::new());
            let scope = ExecutorScope::enter(&reactor, &ex);
            let origin = cell.origin();
            let fut = opts.guard(cell.into_local_future());
            let (task, eventual) = EventualResult::local_task(fut, origin, Some(&reactor));
            reply.send(eventual);
            smol::block_on(task.or(tick_forever_local(&ex)));
            drop(scope);
            drop(ex);
        })
        .map_err(|e| spawn_failed(&SMOL_FRESH, e))?;
        threads.push(thread);
        drop(threads);
        eventual.recv().ok_or_else(|| stopped(&SMOL_FRESH))
    }
}

impl Runner for Fresh {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = SMOL_FRESH;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() {
            return Err(RunError::would_deadlock(
                &SMOL_FRESH.name,
                "run() from inside a cell of this runner",
            ));
        }
        self.check()?;
        let ex = Rc::new(LocalExecutor::new());
        let driving = self.reactor.enter();
        let scope = ExecutorScope::enter(&self.reactor, &ex);
        let out = block_on_cell_local(cell, opts, &ex);
        drop(scope);
        // The cell's tasks end here: their results become TaskDropped.
        drop(ex);
        drop(driving);
        out
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.check()?;
        match current_executor(&self.reactor) {
            Some(ex) => Ok(spawn_on(&ex, &self.reactor, cell)),
            None => self.spawn_thread(cell),
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        self.tasks.cancel();
        // Cancelled tasks end at their next poll; one stuck in blocking code cannot
        // be stopped and is left detached after the grace (as is the caller's own).
        Joiner::join_all(std::mem::take(&mut *lock(&self.threads)), grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SmolServices)
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

// ---------------------------------------------------------------------------
// `smol-nested`: re-entrant block_on on a shared executor
// ---------------------------------------------------------------------------

const SMOL_NESTED: RunnerInfo = RunnerInfo::new(
    "smol-nested",
    "smol",
    Strategy::Nested,
    "re-entrant smol block_on (nest_asyncio): cells may run cells; tasks keep running",
);

/// `smol-nested`: every `run` is a `block_on` on the calling thread that ticks the
/// shared executor, so a cell may run cells to any depth and an inner future may
/// wait for a task an outer cell spawned. A thread named `smol-nested` ticks the
/// executor between cells, so background tasks keep running.
struct Nested {
    /// Entered by threads running cells: names the runner for `WrongRuntime`.
    cells: ReactorId,
    /// Entered by the `smol-nested` thread: waiting for a task there would deadlock.
    driver: ReactorId,
    executor: Shared,
    stop: smol::channel::Sender<()>,
    thread: Mutex<Option<Joiner>>,
}

fn make_nested() -> Result<Arc<dyn Runner>, RunError> {
    let ex = Arc::new(Executor::new());
    let driver = ReactorId::new(&SMOL_NESTED.name);
    let (stop, stopped_rx) = smol::channel::bounded::<()>(1);
    let thread = Joiner::spawn(&SMOL_NESTED.name, {
        let ex = ex.clone();
        move || {
            let _driving = driver.enter();
            // Ticks, like the cells do: every driver takes tasks from the one
            // shared queue, so a task never waits in the local queue of a thread
            // that is blocked in a nested run().
            let mut stop = pin!(stopped_rx.recv());
            // A task that panics out of its poll must not end the thread.
            while catch_unwind(AssertUnwindSafe(|| {
                smol::block_on(stop.as_mut().or(tick_forever(&ex)))
            }))
            .is_err()
            {}
        }
    })
    .map_err(|e| spawn_failed(&SMOL_NESTED, e))?;
    Ok(Arc::new(Nested {
        cells: ReactorId::new(&SMOL_NESTED.name),
        driver,
        executor: Shared::new(ex),
        stop,
        thread: Mutex::new(Some(thread)),
    }))
}

impl Runner for Nested {
    fn info(&self) -> &RunnerInfo {
        static INFO: RunnerInfo = SMOL_NESTED;
        &INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        let ex = self.executor.get(&SMOL_NESTED)?;
        let _driving = self.cells.enter();
        block_on_cell(cell, opts, &ex)
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let ex = self.executor.get(&SMOL_NESTED)?;
        spawn_send(
            &ex,
            &self.driver,
            &SMOL_NESTED,
            cell,
            "its background tasks run on whichever thread ticks the executor, and a \
             `!Send` task cannot move; spawn a `Send` future, or use `smol`",
        )
    }

    fn shutdown(&self, grace: Duration) {
        self.stop.close();
        // Tasks are dropped with the last clone of the executor: this one, or the
        // thread's, or that of a cell still running.
        drop(self.executor.take());
        if self.driver.is_current() {
            return;
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            thread.join_within(grace.saturating_add(JOIN_MARGIN));
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SmolServices)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

// ---------------------------------------------------------------------------
// `smol-host`: the smol executor driven by a task on a host tokio runtime
// ---------------------------------------------------------------------------

const SMOL_HOST_SUMMARY: &str =
    "a smol executor driven by a task on the host's tokio runtime: tokio and smol together";

#[cfg(feature = "tokio")]
mod host {
    //! `smol-host`: coexistence with a tokio host.
    //!
    //! At creation the runner looks for the host's tokio runtime with
    //! `Handle::try_current()`. It spawns one task there that drives a smol executor
    //! until shutdown; cells and background tasks run on that executor, inside the
    //! tokio task, so a cell may use tokio and smol awaitables side by side. Created
    //! outside any runtime, the runner starts its own tokio runtime on a thread named
    //! `smol-host` to play the host.
    //!
    //! `run` hands the cell over and blocks the caller: on a tokio multi-thread
    //! worker through `block_in_place`, so the host keeps going. It is
    //! `WouldDeadlock` from inside a cell of the runner (the driving task) and, when
    //! the host is a current_thread runtime, from a thread of a current_thread
    //! runtime (it may be the host, which would have to drive the task it waits
    //! for); async hosts await [`Runner::run_async`] instead. `!Send` cells
    //! are `Unsupported`: a multi-thread host moves the driving task between threads.

    use super::*;
    use autoawait_core::Capabilities;
    use tokio::runtime::{Handle, RuntimeFlavor};

    pub(super) const SMOL_HOST: RunnerInfo =
        RunnerInfo::new("smol-host", "smol", Strategy::Host, SMOL_HOST_SUMMARY).with_capabilities(
            Capabilities {
                local_cells: false,
                ..Capabilities::of(Strategy::Host)
            },
        );

    const LOCAL_REASON: &str = "the host's tokio runtime may move the task that drives the \
        smol executor between threads, so it cannot run `!Send` cells; use `smol`";

    /// `smol-host`.
    struct Host {
        reactor: ReactorId,
        executor: Arc<Shared>,
        stop: smol::channel::Sender<()>,
        /// The `smol-host` thread, when the runner plays the host itself.
        thread: Mutex<Option<Joiner>>,
        /// The host is a current_thread runtime of someone else's: blocking a thread
        /// of a current_thread runtime may block the host.
        host_is_current_thread: bool,
        spin: Duration,
    }

    pub(super) fn make_host() -> Result<Arc<dyn Runner>, RunError> {
        let reactor = ReactorId::new(&SMOL_HOST.name);
        let ex = Arc::new(Executor::new());
        let executor = Arc::new(Shared::new(ex.clone()));
        let (stop, stop_rx) = smol::channel::bounded::<()>(1);
        let driver = Driving {
            reactor,
            fut: drive(ex.clone(), stop_rx.clone()),
            ex,
            stop: stop_rx,
            release: executor.clone(),
        };
        let mut host_is_current_thread = false;
        let thread = match Handle::try_current() {
            Ok(host) => {
                host_is_current_thread = host.runtime_flavor() == RuntimeFlavor::CurrentThread;
                drop(host.spawn(driver));
                None
            }
            Err(_) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name(SMOL_HOST.name.to_string())
                    .build()
                    .map_err(RunError::backend)?;
                let thread = Joiner::spawn(&SMOL_HOST.name, move || {
                    let _ = rt.block_on(rt.spawn(driver));
                })
                .map_err(|e| spawn_failed(&SMOL_HOST, e))?;
                Some(thread)
            }
        };
        Ok(Arc::new(Host {
            reactor,
            executor,
            stop,
            thread: Mutex::new(thread),
            host_is_current_thread,
            spin: handoff::default_spin(),
        }))
    }

    type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Ticks `ex` until `stop` closes.
    fn drive(ex: Arc<Executor<'static>>, stop: smol::channel::Receiver<()>) -> Drive {
        Box::pin(async move {
            let _ = stop.recv().or(tick_forever(&ex)).await;
        })
    }

    /// The driving task: marks its thread as driving `smol-host` while it is polled,
    /// survives a smol task that panics out of its poll, and releases the executor
    /// when it ends (also when the host runtime drops it), so that nothing waits for
    /// an executor nobody drives.
    struct Driving {
        reactor: ReactorId,
        fut: Drive,
        ex: Arc<Executor<'static>>,
        stop: smol::channel::Receiver<()>,
        release: Arc<Shared>,
    }

    // No field is pinned through `Driving`: `fut` is boxed, and `stop` is only cloned.
    impl Unpin for Driving {}

    impl Future for Driving {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = &mut *self;
            let _driving = this.reactor.enter();
            loop {
                match catch_unwind(AssertUnwindSafe(|| this.fut.as_mut().poll(cx))) {
                    Ok(poll) => return poll,
                    // The panicking task is closed; tick the others with a new future.
                    Err(_) => this.fut = drive(this.ex.clone(), this.stop.clone()),
                }
            }
        }
    }

    impl Drop for Driving {
        fn drop(&mut self) {
            drop(self.release.take());
        }
    }

    impl Host {
        /// Whether this thread may block on a cell: `Ok(true)` on a tokio multi-thread
        /// worker (block through `block_in_place`), `Ok(false)` elsewhere.
        fn may_block(&self) -> Result<bool, RunError> {
            if self.reactor.is_current() {
                return Err(RunError::would_deadlock(
                    &SMOL_HOST.name,
                    "run() from inside a cell of this runner",
                ));
            }
            match Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(RuntimeFlavor::MultiThread) => Ok(true),
                Ok(_) if self.host_is_current_thread => Err(RunError::WouldDeadlock {
                    runner: SMOL_HOST.name.to_string(),
                    advice: "run() from a thread of a current_thread tokio runtime, which \
                             may be the host that drives the cell: await `run_async` \
                             instead, or call run() from another thread"
                        .into(),
                }),
                _ => Ok(false),
            }
        }
    }

    impl Runner for Host {
        fn info(&self) -> &RunnerInfo {
            static INFO: RunnerInfo = SMOL_HOST;
            &INFO
        }

        fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
            let in_worker = self.may_block()?;
            let fut = cell.into_future().map_err(|_| RunError::Unsupported {
                runner: SMOL_HOST.name.to_string(),
                reason: LOCAL_REASON.into(),
            })?;
            let ex = self.executor.get(&SMOL_HOST)?;
            let (reply, result) = handoff::reply(self.spin);
            if opts.is_empty() {
                ex.spawn(async move { reply.send(fut.await) }).detach();
            } else {
                let opts = opts.clone();
                ex.spawn(async move { reply.send(guarded(fut, opts).await) })
                    .detach();
            }
            drop(ex);
            let result = if in_worker {
                tokio::task::block_in_place(|| result.recv())
            } else {
                result.recv()
            };
            result.unwrap_or_else(|| Err(stopped(&SMOL_HOST)))
        }

        fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
            let ex = self.executor.get(&SMOL_HOST)?;
            spawn_send(&ex, &self.reactor, &SMOL_HOST, cell, LOCAL_REASON)
        }

        fn shutdown(&self, grace: Duration) {
            self.stop.close();
            drop(self.executor.take());
            if self.reactor.is_current() {
                return;
            }
            let thread = lock(&self.thread).take();
            if let Some(thread) = thread {
                thread.join_within(grace.saturating_add(JOIN_MARGIN));
            }
        }

        fn services(&self) -> Option<&dyn Services> {
            Some(&SmolServices)
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            self.shutdown(Duration::ZERO);
        }
    }
}

inventory::submit! { RunnerFactory::new(SMOL, make_threaded) }
inventory::submit! { RunnerFactory::new(SMOL_PER_CELL, make_per_cell) }
inventory::submit! { RunnerFactory::new(SMOL_FRESH, make_fresh) }
inventory::submit! { RunnerFactory::new(SMOL_NESTED, make_nested) }
#[cfg(feature = "tokio")]
inventory::submit! { RunnerFactory::new(host::SMOL_HOST, host::make_host) }
#[cfg(not(feature = "tokio"))]
inventory::submit! {
    RunnerFactory::unavailable(
        RunnerInfo::new("smol-host", "smol", Strategy::Host, SMOL_HOST_SUMMARY),
        "runner `smol-host` drives smol from a tokio runtime: enable the `tokio` feature \
         of autoawait-runners as well as `smol`",
    )
}
