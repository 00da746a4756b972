//! A callback reactor in the spirit of Twisted's: `call_later`, a timer heap, a
//! `mio::Waker` for wake-ups from other threads, tasks, and TCP through mio.
//!
//! Like Twisted's, it runs once per process: once it stopped, it cannot run again.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Token};

const WAKER: Token = Token(0);

thread_local! {
    /// The reactor this thread runs, if any.
    static ON_REACTOR: std::cell::Cell<*const Reactor> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Marks the thread as running a reactor until dropped.
struct OnReactor;

impl OnReactor {
    fn enter(reactor: &Reactor) -> Self {
        ON_REACTOR.with(|r| r.set(reactor));
        OnReactor
    }
}

impl Drop for OnReactor {
    fn drop(&mut self) {
        ON_REACTOR.with(|r| r.set(std::ptr::null()));
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Where the reactor is in its one life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Never ran.
    NotStarted,
    /// Claimed by a runner that is about to run it.
    Claimed {
        /// `true` when it will run on its own `twisted` thread.
        threaded: bool,
    },
    /// Running on a thread.
    Running {
        /// The thread running it.
        thread: ThreadId,
        /// `true` when it runs on its own `twisted` thread for the whole process.
        threaded: bool,
    },
    /// Driven by the host's loop (`twisted-host`), on no thread of its own.
    Hosted,
    /// Ran and stopped; it cannot run again.
    Stopped,
}

/// Rounds of ready work the loop runs before it polls sockets without waiting.
const IO_INTERVAL: u32 = 61;

/// The reactor. One per process: [`Reactor::global`].
pub struct Reactor {
    state: Mutex<State>,
    waker: mio::Waker,
    registry: mio::Registry,
    /// Held by whoever turns the loop, for one turn; `None` once stopped.
    driver: Mutex<Option<Driver>>,
    /// `true` while the host's loop drives the reactor (`Phase::Hosted`).
    hosted: AtomicBool,
    /// Wakes the reactor's own thread when the host gives the reactor back.
    handback: Condvar,
    /// The reactor's own thread (`twisted`), once it was started.
    thread: Mutex<Option<ThreadId>>,
    next_token: AtomicU64,
    /// `true` while the loop blocks in `poll` (set under the state lock): only then
    /// does new work need the `mio::Waker` (a syscall).
    parked: AtomicBool,
    /// Bumped by every push; the loop spins on it before parking.
    pushes: AtomicU64,
    /// How long the idle loop spins before it parks in `poll`.
    spin: Duration,
}

/// What one turn of the loop needs, owned by whoever turns it.
struct Driver {
    poll: mio::Poll,
    events: Events,
    /// The ready queue of the running round (swapped with `State::ready`).
    batch: VecDeque<Runnable>,
    rounds_without_io: u32,
}

struct State {
    phase: Phase,
    stop: bool,
    ready: VecDeque<Runnable>,
    timers: BinaryHeap<Timer>,
    seq: u64,
    io: HashMap<Token, Arc<IoState>>,
}

enum Runnable {
    Call(Job),
    /// A new future: polled once as it is; only if it waits does it become a task.
    First(BoxedFuture),
    Poll(Arc<TaskCell>),
}

type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Timer {
    at: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    /// Reversed: the heap's top is the earliest timer (ties: first scheduled).
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reactor {
    /// The reactor of this process, made on first use (not started).
    pub fn global() -> &'static Reactor {
        static REACTOR: OnceLock<Reactor> = OnceLock::new();
        REACTOR.get_or_init(|| Reactor::new().expect("cannot create the twisted reactor (mio)"))
    }

    /// A reactor of its own, leaked (for tests and embedders; the plugin's runners
    /// use [`Reactor::global`]).
    ///
    /// # Errors
    ///
    /// If mio cannot create a poller.
    pub fn leaked() -> io::Result<&'static Reactor> {
        Ok(Box::leak(Box::new(Reactor::new()?)))
    }

    fn new() -> io::Result<Self> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let registry = poll.registry().try_clone()?;
        Ok(Reactor {
            state: Mutex::new(State {
                phase: Phase::NotStarted,
                stop: false,
                ready: VecDeque::new(),
                timers: BinaryHeap::new(),
                seq: 0,
                io: HashMap::new(),
            }),
            waker,
            registry,
            driver: Mutex::new(Some(Driver {
                poll,
                events: Events::with_capacity(256),
                batch: VecDeque::new(),
                rounds_without_io: 0,
            })),
            hosted: AtomicBool::new(false),
            handback: Condvar::new(),
            thread: Mutex::new(None),
            next_token: AtomicU64::new(1),
            parked: AtomicBool::new(false),
            pushes: AtomicU64::new(0),
            spin: autoawait_core::kit::default_spin(),
        })
    }

    /// Where the reactor is in its life.
    pub fn phase(&self) -> Phase {
        lock(&self.state).phase
    }

    /// `true` while it runs, on a thread or on the host's loop, or is about to.
    pub fn is_running(&self) -> bool {
        matches!(
            self.phase(),
            Phase::Running { .. } | Phase::Claimed { .. } | Phase::Hosted
        )
    }

    /// Reserves the reactor's one run for a runner (`threaded`: on its own thread).
    ///
    /// # Errors
    ///
    /// The phase, if the reactor was claimed or ran before.
    /// A reactor the host's loop drives may be claimed for its own thread
    /// (`threaded`) if it never had one: the thread takes it over.
    pub fn claim(&self, threaded: bool) -> Result<(), Phase> {
        let mut state = lock(&self.state);
        match state.phase {
            Phase::NotStarted => {}
            Phase::Hosted if threaded && lock(&self.thread).is_none() => {
                self.hosted.store(false, Ordering::Release);
            }
            other => return Err(other),
        }
        state.phase = Phase::Claimed { threaded };
        Ok(())
    }

    /// `true` while the host's loop drives it.
    pub fn is_hosted(&self) -> bool {
        self.hosted.load(Ordering::Acquire)
    }

    /// `true` if this thread runs the reactor right now.
    pub fn is_reactor_thread(&self) -> bool {
        ON_REACTOR.with(|r| std::ptr::eq(r.get(), self))
    }

    fn wake(&self) {
        // A failed wake means the poller is gone; the loop is stopping anyway.
        let _ = self.waker.wake();
    }

    /// Calls `f` on the reactor thread after `delay` (Twisted's `callLater`). Works
    /// from any thread; before the reactor runs, calls wait for it.
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        let mut state = lock(&self.state);
        let at = Instant::now() + delay;
        let earliest = state.timers.peek().is_none_or(|t| at < t.at);
        state.seq += 1;
        let seq = state.seq;
        state.timers.push(Timer {
            at,
            seq,
            job: Box::new(f),
        });
        drop(state);
        self.pushes.fetch_add(1, Ordering::SeqCst);
        if earliest && self.parked.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Calls `f` on the reactor thread soon (Twisted's `callFromThread`).
    pub fn call_soon(&self, f: impl FnOnce() + Send + 'static) {
        self.push(Runnable::Call(Box::new(f)));
    }

    /// Waits at most `grace` until what is queued now has run: cancelled tasks were
    /// woken, so a call queued after them runs once they dropped their futures.
    pub fn drain(&self, grace: Duration) {
        let (done, drained) = std::sync::mpsc::channel();
        self.call_soon(move || {
            let _ = done.send(());
        });
        let _ = drained.recv_timeout(grace);
    }

    fn push(&self, runnable: Runnable) {
        let mut state = lock(&self.state);
        state.ready.push_back(runnable);
        drop(state);
        self.pushes.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Runs `fut` as a task on the reactor.
    pub fn spawn(&'static self, fut: impl Future<Output = ()> + Send + 'static) {
        self.push(Runnable::First(Box::pin(fut)));
    }

    /// Starts the reactor on this thread and runs it until [`stop`](Self::stop).
    /// With `threaded`, the thread is the reactor's own for the process: while the
    /// host's loop drives it ([`host`](Self::host)), the thread waits, and goes
    /// on when [`unhost`](Self::unhost) gives it back.
    ///
    /// # Errors
    ///
    /// If it ran before (or runs now): the reactor is not restartable.
    pub fn run(&'static self, threaded: bool) -> Result<(), Phase> {
        {
            let mut state = lock(&self.state);
            match state.phase {
                Phase::NotStarted => {}
                Phase::Claimed { threaded: t } if t == threaded => {}
                // Hosted since it was claimed: the thread waits for it.
                Phase::Hosted if threaded => {}
                other => return Err(other),
            }
            if state.phase != Phase::Hosted {
                state.phase = Phase::Running {
                    thread: thread::current().id(),
                    threaded,
                };
            }
            if threaded {
                *lock(&self.thread) = Some(thread::current().id());
            }
        }
        let _on_reactor = OnReactor::enter(self);
        loop {
            if self.hosted.load(Ordering::Acquire) {
                let mut state = lock(&self.state);
                while matches!(state.phase, Phase::Hosted) {
                    state = self.handback.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            }
            let mut driver = lock(&self.driver);
            let Some(d) = driver.as_mut() else {
                return Ok(());
            };
            if !self.turn(d, None) {
                *driver = None;
                return Ok(());
            }
        }
    }

    /// One round of the loop: what is ready, the timers that are due, then the
    /// sockets. With nothing ready it waits for events: until the next timer or a
    /// wake-up after a short spin (`max_wait` `None`, its own thread), or at most
    /// `max_wait` (a host's turn). Returns `false` once stopped: the reactor is gone.
    fn turn(&'static self, d: &mut Driver, max_wait: Option<Duration>) -> bool {
        self.run_ready(&mut d.batch);
        let (timeout, seen) = {
            let mut state = lock(&self.state);
            let seen = self.pushes.load(Ordering::SeqCst);
            if state.stop {
                state.phase = Phase::Stopped;
                self.hosted.store(false, Ordering::Release);
                // What never ran is dropped here (tasks see their loop go away).
                let ready = std::mem::take(&mut state.ready);
                let timers = std::mem::take(&mut state.timers);
                drop(state);
                drop(ready);
                drop(timers);
                return false;
            }
            // The clock is read only when a timer is due to be compared.
            let now = (!state.timers.is_empty()).then(Instant::now);
            if let Some(now) = now {
                while state.timers.peek().is_some_and(|t| t.at <= now) {
                    let timer = state.timers.pop().expect("peeked");
                    state.ready.push_back(Runnable::Call(timer.job));
                }
            }
            let timeout = if !state.ready.is_empty() {
                Some(Duration::ZERO)
            } else {
                now.and_then(|now| {
                    state
                        .timers
                        .peek()
                        .map(|t| t.at.saturating_duration_since(now))
                })
            };
            (timeout, seen)
        };
        // Idle on its own thread: spin a little for new work before paying for a
        // sleep and a wake-up. A host's loop spins for nobody.
        let work_waiting = timeout == Some(Duration::ZERO)
            || (max_wait.is_none() && self.spin_for_work(seen))
            || (max_wait.is_some() && self.pushes.load(Ordering::SeqCst) != seen);
        // With work waiting, run it first: sockets are polled every
        // `IO_INTERVAL` rounds (as tokio's `event_interval`), not in front of
        // every cell (a syscall on the hand-off path).
        if work_waiting && d.rounds_without_io < IO_INTERVAL {
            d.rounds_without_io += 1;
            return true;
        }
        d.rounds_without_io = 0;
        let timeout = match (timeout, max_wait) {
            _ if work_waiting => Some(Duration::ZERO),
            (Some(t), Some(max)) => Some(t.min(max)),
            (t, None) | (None, t) => t,
        };
        let timeout = if timeout == Some(Duration::ZERO) {
            timeout
        } else {
            let state = lock(&self.state);
            // Announce the sleep first, then check that nothing was pushed (no
            // ready work, no new timer) since `timeout` was computed. Pushers bump
            // `pushes`, then read `parked`: with both sides writing before they
            // read (all SeqCst), either we see their push or they see us parked
            // and wake us. Checking before announcing lost wake-ups (a cell
            // waited forever, about once in a million hand-offs).
            self.parked.store(true, Ordering::SeqCst);
            if self.pushes.load(Ordering::SeqCst) == seen && !state.stop {
                timeout
            } else {
                self.parked.store(false, Ordering::SeqCst);
                Some(Duration::ZERO)
            }
        };
        let polled = d.poll.poll(&mut d.events, timeout);
        self.parked.store(false, Ordering::SeqCst);
        if let Err(e) = polled {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("twisted reactor: poll failed: {e}");
            }
            return true;
        }
        for event in d.events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let io = lock(&self.state).io.get(&event.token()).cloned();
            if let Some(io) = io {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    io.ready(&io.read);
                }
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    io.ready(&io.write);
                }
            }
        }
        true
    }

    /// Moves the reactor onto the host's loop: from now on [`turn_hosted`]
    /// drives it. If it runs on its own thread, that thread finishes its turn and
    /// waits. Nothing queued is lost: timers, tasks and sockets stay where they are.
    ///
    /// # Errors
    ///
    /// The phase, if the reactor stopped or runs for a `twisted-per-cell` cell.
    ///
    /// [`turn_hosted`]: Self::turn_hosted
    pub fn host(&self) -> Result<(), Phase> {
        if self.hosted.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = lock(&self.state);
        match state.phase {
            Phase::NotStarted | Phase::Hosted => {}
            Phase::Running { threaded: true, .. } | Phase::Claimed { threaded: true } => {}
            other => return Err(other),
        }
        state.phase = Phase::Hosted;
        self.hosted.store(true, Ordering::Release);
        drop(state);
        // The thread may be asleep in `poll`: its turn ends, and it sees the host.
        self.wake();
        Ok(())
    }

    /// Gives the reactor back to its own thread (`twisted`), which goes on from
    /// where the host's loop left it. `false` if it has no thread yet: start one
    /// with [`claim`](Self::claim) and [`run`](Self::run).
    pub fn unhost(&self) -> bool {
        let mut state = lock(&self.state);
        if !matches!(state.phase, Phase::Hosted) {
            return matches!(state.phase, Phase::Running { threaded: true, .. });
        }
        let Some(thread) = *lock(&self.thread) else {
            return false;
        };
        state.phase = Phase::Running {
            thread,
            threaded: true,
        };
        self.hosted.store(false, Ordering::Release);
        drop(state);
        self.handback.notify_all();
        true
    }

    /// One turn for the host's loop, waiting at most `max_wait` for events (the
    /// host passes zero, and watches [`fd`](Self::fd) instead). `false` once the
    /// reactor is not hosted: its thread has it back, or it stopped.
    pub fn turn_hosted(&'static self, max_wait: Duration) -> bool {
        if !self.hosted.load(Ordering::Acquire) {
            return false;
        }
        // Waits for the turn of the thread it came from, or of another driver.
        let mut driver = lock(&self.driver);
        if !self.hosted.load(Ordering::Acquire) {
            return false;
        }
        let Some(d) = driver.as_mut() else {
            return false;
        };
        let _on_reactor = OnReactor::enter(self);
        if !self.turn(d, Some(max_wait)) {
            *driver = None;
            return false;
        }
        true
    }

    /// How long until the host must turn the reactor even if its descriptor stays
    /// quiet: zero with work ready, the next timer, or `None`. From here on, work
    /// pushed from anywhere wakes the descriptor.
    pub fn next_turn(&self) -> Option<Duration> {
        let state = lock(&self.state);
        if !state.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        // Under the lock: a push after this sees `parked` and wakes the descriptor.
        self.parked.store(true, Ordering::SeqCst);
        state
            .timers
            .peek()
            .map(|t| t.at.saturating_duration_since(Instant::now()))
    }

    /// A new descriptor that becomes readable when the reactor has work: its
    /// poller's (mio's epoll), where its waker is registered.
    ///
    /// # Errors
    ///
    /// As `dup(2)`.
    pub fn fd(&self) -> io::Result<OwnedFd> {
        autoawait_plugin::duplicate_fd(&self.registry)
    }

    /// Spins up to the spin budget; `true` if work was pushed since `seen`.
    fn spin_for_work(&self, seen: u64) -> bool {
        if self.spin.is_zero() {
            return self.pushes.load(Ordering::SeqCst) != seen;
        }
        // The clock is read after a first round of spins: work that follows at once
        // (the next cell) is seen without it.
        let mut deadline = None;
        loop {
            for _ in 0..64 {
                if self.pushes.load(Ordering::SeqCst) != seen {
                    return true;
                }
                std::hint::spin_loop();
            }
            let now = Instant::now();
            if now >= *deadline.get_or_insert(now + self.spin) {
                return false;
            }
        }
    }

    /// Runs what is queued now; what those queue runs in the next round. `batch` is
    /// empty, and swapped with the queue so that neither allocates again.
    fn run_ready(&'static self, batch: &mut VecDeque<Runnable>) {
        std::mem::swap(&mut lock(&self.state).ready, batch);
        while let Some(runnable) = batch.pop_front() {
            match runnable {
                Runnable::Call(job) => {
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
                        eprintln!(
                            "twisted reactor: Unhandled error in a callback: {}",
                            panic_text(payload.as_ref())
                        );
                    }
                }
                Runnable::First(fut) => self.first_poll(fut),
                Runnable::Poll(task) => task.run(),
            }
        }
    }

    /// Most cells finish in their first poll: run it without a task. One that waits
    /// becomes a task, polled again at once with its own waker (a wake-up meant for
    /// the first poll's waker would only repeat that poll).
    fn first_poll(&'static self, mut fut: BoxedFuture) {
        let mut cx = Context::from_waker(Waker::noop());
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(())) => {}
            Ok(Poll::Pending) => {
                let task = Arc::new(TaskCell {
                    reactor: self,
                    fut: Mutex::new(Some(fut)),
                    scheduled: AtomicBool::new(true),
                });
                lock(&self.state).ready.push_back(Runnable::Poll(task));
            }
            Err(payload) => eprintln!(
                "twisted reactor: Unhandled error in a task: {}",
                panic_text(payload.as_ref())
            ),
        }
    }

    /// Asks the loop to stop after the current round. It cannot run again.
    pub fn stop(&self) {
        lock(&self.state).stop = true;
        self.pushes.fetch_add(1, Ordering::SeqCst);
        self.wake();
    }

    fn register(&self, source: &mut impl mio::event::Source) -> io::Result<(Token, Arc<IoState>)> {
        let token = Token(self.next_token.fetch_add(1, Ordering::Relaxed) as usize);
        let io = Arc::new(IoState::default());
        lock(&self.state).io.insert(token, io.clone());
        self.registry
            .register(source, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok((token, io))
    }

    fn deregister(&self, token: Token, source: &mut impl mio::event::Source) {
        let _ = self.registry.deregister(source);
        lock(&self.state).io.remove(&token);
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic payload>".into())
}

/// A future spawned on the reactor.
struct TaskCell {
    reactor: &'static Reactor,
    fut: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    scheduled: AtomicBool,
}

impl TaskCell {
    fn run(self: Arc<Self>) {
        self.scheduled.store(false, Ordering::Release);
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut slot = lock(&self.fut);
        let Some(fut) = slot.as_mut() else { return };
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(())) => *slot = None,
            Err(payload) => {
                *slot = None;
                eprintln!(
                    "twisted reactor: Unhandled error in a task: {}",
                    panic_text(payload.as_ref())
                );
            }
        }
    }
}

impl Wake for TaskCell {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.reactor.push(Runnable::Poll(self.clone()));
        }
    }
}

/// A future that completes after `delay`, on the reactor's timer heap.
pub fn sleep(reactor: &'static Reactor, delay: Duration) -> Deferred<()> {
    let d = Deferred::new();
    let fire = d.clone();
    reactor.call_later(delay, move || {
        let _ = fire.callback(());
    });
    d
}

/// Twisted's `Deferred`, cut down: fired once with a value or an error; awaiting it
/// suspends until it is fired. Clones share the one result.
pub struct Deferred<T>(Arc<Mutex<DeferredState<T>>>);

struct DeferredState<T> {
    result: Option<Result<T, String>>,
    fired: bool,
    waiters: Vec<Waker>,
}

impl<T> Clone for Deferred<T> {
    fn clone(&self) -> Self {
        Deferred(self.0.clone())
    }
}

impl<T> Default for Deferred<T> {
    fn default() -> Self {
        Deferred::new()
    }
}

/// Firing a [`Deferred`] a second time (Twisted's `AlreadyCalledError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyCalled;

impl std::fmt::Display for AlreadyCalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlreadyCalledError: this deferred was already fired")
    }
}

impl<T> Deferred<T> {
    /// A deferred that has not fired.
    pub fn new() -> Self {
        Deferred(Arc::new(Mutex::new(DeferredState {
            result: None,
            fired: false,
            waiters: Vec::new(),
        })))
    }

    fn fire(&self, result: Result<T, String>) -> Result<(), AlreadyCalled> {
        let mut state = lock(&self.0);
        if state.fired {
            return Err(AlreadyCalled);
        }
        state.fired = true;
        state.result = Some(result);
        let waiters = std::mem::take(&mut state.waiters);
        drop(state);
        waiters.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Fires it with a value.
    ///
    /// # Errors
    ///
    /// [`AlreadyCalled`] if it was fired before.
    pub fn callback(&self, value: T) -> Result<(), AlreadyCalled> {
        self.fire(Ok(value))
    }

    /// Fires it with an error.
    ///
    /// # Errors
    ///
    /// [`AlreadyCalled`] if it was fired before.
    pub fn errback(&self, message: impl Into<String>) -> Result<(), AlreadyCalled> {
        self.fire(Err(message.into()))
    }

    /// `true` once fired.
    pub fn is_fired(&self) -> bool {
        lock(&self.0).fired
    }
}

impl<T: Clone> Future for Deferred<T> {
    type Output = Result<T, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.0);
        if let Some(result) = &state.result {
            return Poll::Ready(result.clone());
        }
        if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Readiness of one socket: a counter per direction (bumped by events) and the
/// waker of whoever waits.
#[derive(Default)]
struct IoState {
    read: Direction,
    write: Direction,
}

#[derive(Default)]
struct Direction {
    ticks: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

impl IoState {
    fn ready(&self, dir: &Direction) {
        dir.ticks.fetch_add(1, Ordering::AcqRel);
        if let Some(w) = lock(&dir.waker).take() {
            w.wake();
        }
    }
}

/// Tries `op`; on `WouldBlock`, waits for the next readiness event of `dir`.
fn poll_io<T>(
    dir: &Direction,
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        let ticks = dir.ticks.load(Ordering::Acquire);
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *lock(&dir.waker) = Some(cx.waker().clone());
                // An event between `op` and storing the waker would be lost: retry.
                if dir.ticks.load(Ordering::Acquire) == ticks {
                    return Poll::Pending;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return Poll::Ready(other),
        }
    }
}

/// A TCP listener on the reactor.
pub struct TcpListener {
    reactor: &'static Reactor,
    inner: mio::net::TcpListener,
    token: Token,
    io: Arc<IoState>,
}

impl TcpListener {
    /// Listens on `addr` (port 0 picks one).
    ///
    /// # Errors
    ///
    /// The bind or registration error.
    pub fn bind(reactor: &'static Reactor, addr: SocketAddr) -> io::Result<Self> {
        let mut inner = mio::net::TcpListener::bind(addr)?;
        let (token, io) = reactor.register(&mut inner)?;
        Ok(TcpListener {
            reactor,
            inner,
            token,
            io,
        })
    }

    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts one connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) =
            std::future::poll_fn(|cx| poll_io(&self.io.read, cx, || self.inner.accept())).await?;
        Ok((TcpStream::from_mio(self.reactor, stream)?, peer))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.reactor.deregister(self.token, &mut self.inner);
    }
}

/// A TCP connection on the reactor.
pub struct TcpStream {
    reactor: &'static Reactor,
    inner: mio::net::TcpStream,
    token: Token,
    io: Arc<IoState>,
}

impl TcpStream {
    fn from_mio(reactor: &'static Reactor, mut inner: mio::net::TcpStream) -> io::Result<Self> {
        let (token, io) = reactor.register(&mut inner)?;
        Ok(TcpStream {
            reactor,
            inner,
            token,
            io,
        })
    }

    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// The connect error.
    pub async fn connect(reactor: &'static Reactor, addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::from_mio(reactor, mio::net::TcpStream::connect(addr)?)?;
        // Connected once writable and `peer_addr` succeeds (mio's documented recipe).
        std::future::poll_fn(|cx| {
            poll_io(&stream.io.write, cx, || {
                if let Some(e) = stream.inner.take_error()? {
                    return Err(e);
                }
                match stream.inner.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .await?;
        Ok(stream)
    }

    /// Reads some bytes into `buf`; 0 at end of stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (io, inner) = (&self.io, &mut self.inner);
        std::future::poll_fn(|cx| poll_io(&io.read, cx, || inner.read(buf))).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let (io, inner) = (&self.io, &mut self.inner);
            let n = std::future::poll_fn(|cx| poll_io(&io.write, cx, || inner.write(buf))).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.reactor.deregister(self.token, &mut self.inner);
    }
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("phase", &self.phase())
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("fired", &self.is_fired())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.inner.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("peer_addr", &self.inner.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let (io, inner) = (&this.io, &mut this.inner);
        poll_io(&io.read, cx, || inner.read(buf))
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let (io, inner) = (&this.io, &mut this.inner);
        poll_io(&io.write, cx, || inner.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown(std::net::Shutdown::Write))
    }
}
