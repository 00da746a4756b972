//! [`EventualResult`]: crochet's handle on work running in the background.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{OnceLock, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{lock, Arc, Condvar, Mutex};
use crate::{BoxFuture, CellId, CellOutput, CellResult, ReactorId, RunError, WaitError};

mod halves;

pub(crate) use halves::CancelOnDrop;
pub use halves::{Completer, LocalTask, Task};

/// What waiting for a background result gives: its value, or why there is none.
pub type WaitResult = Result<CellOutput, WaitError>;
#[cfg(doc)]
use crate::{CellFuture, LocalCellFuture};

/// The result of a cell started in the background, available later.
///
/// This is crochet's `EventualResult`: [`wait`](Self::wait) with a timeout (a timeout
/// keeps the result retrievable), [`try_result`](Self::try_result),
/// [`is_done`](Self::is_done), [`cancel`](Self::cancel) (drops the task's future),
/// and [`stash`](Self::stash) / [`retrieve`](Self::retrieve) to keep it across cells
/// by number. It is also a future, for async hosts.
///
/// Waiting on the thread that must complete the task is refused with
/// [`RunError::WouldDeadlock`] instead of hanging. A failed result that nobody looked
/// at is reported when its handle is dropped (see [`set_error_hook`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::{Cell, Registry};
///
/// let runner = Registry::global().get("inline")?;
/// let task = runner.spawn(Cell::new(async { 6 * 7 }))?;
/// let out = task.wait(Some(Duration::from_secs(5)))?;
/// assert_eq!(*out.downcast::<i32>().unwrap(), 42);
/// # Ok::<(), autoawait_core::Error>(())
/// ```
pub struct EventualResult {
    shared: Arc<Shared>,
    reactor: Option<ReactorId>,
}

struct Shared {
    origin: CellId,
    state: Mutex<State>,
    ready: Condvar,
    /// The task's future, for `Send` tasks: `cancel` drops it from any thread.
    fut: Mutex<Option<BoxFuture<'static, CellResult>>>,
    cancelled: AtomicBool,
    task_waker: Mutex<Option<Waker>>,
    /// The handle was dropped while the task was running.
    abandoned: AtomicBool,
    runner: String,
}

enum State {
    Pending(Option<Waker>),
    Ready { result: CellResult, observed: bool },
    Taken,
}

impl Shared {
    fn new(origin: CellId, reactor: Option<&ReactorId>) -> Arc<Self> {
        Arc::new(Shared {
            origin,
            state: Mutex::new(State::Pending(None)),
            ready: Condvar::new(),
            fut: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            task_waker: Mutex::new(None),
            abandoned: AtomicBool::new(false),
            runner: reactor.map_or_else(|| "its runner".into(), |r| r.name().to_owned()),
        })
    }

    /// Stores the result, unless one is there already. Wakes every waiter.
    fn complete(&self, result: CellResult) {
        let mut state = lock(&self.state);
        let State::Pending(listener) = &mut *state else {
            return;
        };
        let listener = listener.take();
        if self.abandoned.load(Ordering::Acquire) {
            if let Err(err) = &result {
                report(self.origin, err);
            }
            *state = State::Taken;
        } else {
            *state = State::Ready {
                result,
                observed: false,
            };
        }
        drop(state);
        self.ready.notify_all();
        if let Some(waker) = listener {
            waker.wake();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

impl EventualResult {
    /// A task that runs the `Send` future `fut` and the handle on its result.
    ///
    /// Runners spawn the [`Task`] on their executor. `reactor` is the loop that polls
    /// the task: waiting on its thread is [`RunError::WouldDeadlock`].
    /// `fut` is usually a [`CellFuture`], maybe [guarded](crate::RunOptions::guard).
    ///
    /// [`Task`] shows one run by an executor of one's own.
    pub fn task<F>(origin: CellId, fut: F, reactor: Option<&ReactorId>) -> (Task, EventualResult)
    where
        F: Future<Output = CellResult> + Send + 'static,
    {
        let shared = Shared::new(origin, reactor);
        *lock(&shared.fut) = Some(Box::pin(fut));
        let task = Task {
            shared: shared.clone(),
        };
        (task, EventualResult::from_shared(shared, reactor))
    }

    /// [`EventualResult::task`] for a `!Send` future, polled on the thread that built it.
    ///
    /// `fut` is usually a [`LocalCellFuture`], maybe [guarded](crate::RunOptions::guard).
    pub fn local_task<F>(
        origin: CellId,
        fut: F,
        reactor: Option<&ReactorId>,
    ) -> (LocalTask, EventualResult)
    where
        F: Future<Output = CellResult> + 'static,
    {
        let shared = Shared::new(origin, reactor);
        let task = LocalTask {
            shared: shared.clone(),
            fut: Some(Box::pin(fut)),
        };
        (task, EventualResult::from_shared(shared, reactor))
    }

    /// A result that some other mechanism completes (a plugin, a callback), and the
    /// [`Completer`] that completes it.
    pub fn completer(origin: CellId, reactor: Option<&ReactorId>) -> (Completer, EventualResult) {
        let shared = Shared::new(origin, reactor);
        let completer = Completer {
            shared: Some(shared.clone()),
        };
        (completer, EventualResult::from_shared(shared, reactor))
    }

    /// A result that is already there.
    pub fn ready(origin: CellId, result: CellResult) -> EventualResult {
        let (completer, eventual) = EventualResult::completer(origin, None);
        completer.complete(result);
        eventual
    }

    fn from_shared(shared: Arc<Shared>, reactor: Option<&ReactorId>) -> Self {
        EventualResult {
            shared,
            reactor: reactor.cloned(),
        }
    }

    /// The cell that started this work.
    pub fn origin(&self) -> CellId {
        self.shared.origin
    }

    /// `true` once the task finished (with a value, an error, or cancelled).
    pub fn is_done(&self) -> bool {
        !matches!(*lock(&self.shared.state), State::Pending(_))
    }

    /// Waits for the result, at most `timeout` (`None`: as long as it takes).
    ///
    /// The value is moved out on success; errors stay, so every later call sees the
    /// same error.
    ///
    /// # Errors
    ///
    /// - [`WaitError::Run`] with the task's own error (message kept), with
    ///   [`RunError::Cancelled`], or with [`RunError::WouldDeadlock`] if this thread is
    ///   the one that must complete the task;
    /// - [`WaitError::NotReady`] if the timeout expired: the result stays retrievable;
    /// - [`WaitError::AlreadyTaken`] if an earlier call took the value.
    pub fn wait(&self, timeout: Option<Duration>) -> WaitResult {
        let mut state = lock(&self.shared.state);
        if matches!(*state, State::Pending(_)) {
            if let Some(reactor) = self.reactor.as_ref().filter(|r| r.is_current()) {
                return Err(WaitError::Run(RunError::would_deadlock(
                    reactor.name(),
                    "EventualResult::wait() from the loop that runs the task",
                )));
            }
            let deadline = timeout.map(|t| Instant::now() + t);
            while matches!(*state, State::Pending(_)) {
                state = match deadline {
                    None => self
                        .shared
                        .ready
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner()),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(WaitError::NotReady {
                                waited: timeout.unwrap_or_default(),
                            });
                        }
                        self.shared
                            .ready
                            .wait_timeout(state, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                };
            }
        }
        take(&mut state).expect("the state is not pending")
    }

    /// The result if it is there, without waiting; as [`wait`](Self::wait) otherwise.
    pub fn try_result(&self) -> Option<WaitResult> {
        take(&mut lock(&self.shared.state))
    }

    /// Cancels the task: its future is dropped (at once if no thread is polling it
    /// right now, otherwise as soon as that poll returns) and the result becomes
    /// [`RunError::Cancelled`]. Does nothing if the task already finished.
    pub fn cancel(&self) {
        let shared = &self.shared;
        if self.is_done() {
            return;
        }
        // The result first: a task that sees the flag and ends must not report
        // itself dropped instead.
        shared.complete(Err(RunError::Cancelled));
        shared.cancelled.store(true, Ordering::Release);
        let dropped = match shared.fut.try_lock() {
            Ok(mut slot) => slot.take(),
            Err(_) => None,
        };
        drop(dropped);
        if let Some(waker) = lock(&shared.task_waker).take() {
            waker.wake();
        }
    }

    /// Keeps this result in a process-wide table and returns its number (from 1), so
    /// that a later cell can [`retrieve`](Self::retrieve) it.
    pub fn stash(self) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        kit_lock(stash_table()).insert(id, self);
        id
    }

    /// Takes a stashed result back out of the table.
    ///
    /// # Errors
    ///
    /// [`WaitError::NotStashed`] if no result has this number: each stashed result
    /// can be retrieved once.
    pub fn retrieve(id: u64) -> Result<EventualResult, WaitError> {
        kit_lock(stash_table())
            .remove(&id)
            .ok_or(WaitError::NotStashed { id })
    }
}

fn stash_table() -> &'static std::sync::Mutex<HashMap<u64, EventualResult>> {
    static TABLE: OnceLock<std::sync::Mutex<HashMap<u64, EventualResult>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// Takes the value out of a finished state (errors are cloned and stay).
fn take(state: &mut State) -> Option<WaitResult> {
    match state {
        State::Pending(_) => None,
        State::Taken => Some(Err(WaitError::AlreadyTaken)),
        State::Ready {
            result: Err(err),
            observed,
        } => {
            *observed = true;
            Some(Err(WaitError::Run(err.clone())))
        }
        State::Ready { result: Ok(_), .. } => match std::mem::replace(state, State::Taken) {
            State::Ready { result, .. } => Some(result.map_err(WaitError::Run)),
            _ => unreachable!(),
        },
    }
}

impl Future for EventualResult {
    type Output = WaitResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WaitResult> {
        let mut state = lock(&self.shared.state);
        if let State::Pending(listener) = &mut *state {
            match listener {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *listener = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        Poll::Ready(take(&mut state).expect("the state is not pending"))
    }
}

impl Drop for EventualResult {
    fn drop(&mut self) {
        let state = lock(&self.shared.state);
        match &*state {
            State::Pending(_) => self.shared.abandoned.store(true, Ordering::Release),
            State::Ready {
                result: Err(err),
                observed: false,
            } => report(self.shared.origin, err),
            _ => {}
        }
    }
}

impl fmt::Debug for EventualResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventualResult")
            .field("origin", &self.shared.origin)
            .field("done", &self.is_done())
            .finish()
    }
}

type ErrorHook = Box<dyn Fn(CellId, &RunError) + Send + Sync>;

fn kit_lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    crate::kit::lock(m)
}

fn hook() -> &'static RwLock<Option<ErrorHook>> {
    static HOOK: RwLock<Option<ErrorHook>> = RwLock::new(None);
    &HOOK
}

/// Sets what happens to a failed background result that nobody looked at: it is
/// called with the origin cell and the error when the last handle goes away.
/// The default prints to stderr. Cancellations, and tasks dropped with their loop
/// (a runner that shut down, a fresh runner's cell that ended), are not reported.
///
/// # Examples
///
/// ```
/// autoawait_core::set_error_hook(|cell, err| eprintln!("[In {cell}] unhandled: {err}"));
/// ```
pub fn set_error_hook(hook_fn: impl Fn(CellId, &RunError) + Send + Sync + 'static) {
    *hook().write().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook_fn));
}

fn report(origin: CellId, err: &RunError) {
    // Cancelled on purpose, or ended with its loop: no news about the task itself.
    if err.is_cancelled() || err.is_task_dropped() {
        return;
    }
    match &*hook().read().unwrap_or_else(|e| e.into_inner()) {
        Some(hook_fn) => hook_fn(origin, err),
        None => eprintln!("autoawait: unhandled error in a task of cell {origin}: {err}"),
    }
}
