//! [`RunOptions`] and [`CancelToken`]: how long a cell may run, and how to stop it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::kit::lock;
use crate::timer::{timer, TimerKey};
use crate::RunError;

/// A cancellation switch that another thread (a Ctrl-C handler, a kernel's
/// interrupt request) can trigger while a cell runs.
///
/// Cancelling is sticky: a cancelled token cancels every cell that runs with it,
/// so hosts make a new token per cell (or per interrupt).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::{CancelToken, Cell, Registry, RunOptions};
///
/// let runner = Registry::global().get("inline").unwrap();
/// let token = CancelToken::new();
/// let trigger = token.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(20));
///     trigger.cancel();
/// });
/// let opts = RunOptions::default().cancel_token(token);
/// let err = runner.run(Cell::new(std::future::pending::<()>()), &opts).unwrap_err();
/// assert!(err.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancelToken(Arc<TokenInner>);

#[derive(Default)]
struct TokenInner {
    cancelled: AtomicBool,
    next_key: AtomicU64,
    waiters: Mutex<HashMap<u64, Waker>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Cancels every cell running with this token; they finish with
    /// [`RunError::Cancelled`] and their futures are dropped. Idempotent.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let waiters = std::mem::take(&mut *lock(&self.0.waiters));
        for waker in waiters.into_values() {
            waker.wake();
        }
    }

    /// `true` once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    fn register(&self, key: &mut Option<u64>, waker: &Waker) {
        let key = *key.get_or_insert_with(|| self.0.next_key.fetch_add(1, Ordering::Relaxed));
        let mut waiters = lock(&self.0.waiters);
        match waiters.get_mut(&key) {
            Some(old) if old.will_wake(waker) => {}
            _ => {
                waiters.insert(key, waker.clone());
            }
        }
    }

    fn unregister(&self, key: u64) {
        lock(&self.0.waiters).remove(&key);
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// How a cell is run: an optional timeout and an optional [`CancelToken`].
///
/// On timeout or cancellation the cell's future is dropped and the run ends with
/// [`RunError::TimedOut`] or [`RunError::Cancelled`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::{Cell, Registry, RunOptions};
///
/// let runner = Registry::global().get("inline").unwrap();
/// let opts = RunOptions::default().timeout(Duration::from_millis(10));
/// let err = runner.run(Cell::new(std::future::pending::<()>()), &opts).unwrap_err();
/// assert!(err.is_timed_out());
/// ```
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Give up (and drop the cell) after this long.
    pub timeout: Option<Duration>,
    /// Give up (and drop the cell) when this token is cancelled.
    pub cancel: Option<CancelToken>,
}

impl RunOptions {
    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the cancel token.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// `true` if neither a timeout nor a token is set: [`guard`](Self::guard) adds
    /// nothing then.
    pub fn is_empty(&self) -> bool {
        self.timeout.is_none() && self.cancel.is_none()
    }

    /// Wraps a cell's future so that it honours these options: it resolves to
    /// `Err(TimedOut)` or `Err(Cancelled)` as soon as either fires, dropping `fut`.
    ///
    /// Runners call this on the thread that polls the cell, whatever the options:
    /// without any, the guard only polls `fut` (one branch), so there is one type
    /// and no `if opts.is_empty()` at the call site. Timeouts are driven by one
    /// shared timer thread (`autoawait-timer`), so this works under any executor.
    pub fn guard<F, T>(&self, fut: F) -> Guarded<F>
    where
        F: Future<Output = Result<T, RunError>>,
    {
        Guarded {
            inner: Some(fut),
            cancel: self.cancel.clone(),
            cancel_key: None,
            deadline: self.timeout.map(|after| Deadline {
                at: Instant::now() + after,
                after,
                key: None,
            }),
        }
    }
}

struct Deadline {
    at: Instant,
    after: Duration,
    key: Option<TimerKey>,
}

/// A future wrapped by [`RunOptions::guard`].
pub struct Guarded<F> {
    inner: Option<F>,
    cancel: Option<CancelToken>,
    cancel_key: Option<u64>,
    deadline: Option<Deadline>,
}

impl<F> Guarded<F> {
    fn finish<T>(&mut self, err: RunError) -> Poll<Result<T, RunError>> {
        self.inner = None;
        self.release();
        Poll::Ready(Err(err))
    }

    fn release(&mut self) {
        if let (Some(token), Some(key)) = (&self.cancel, self.cancel_key.take()) {
            token.unregister(key);
        }
        if let Some(key) = self.deadline.as_mut().and_then(|d| d.key.take()) {
            timer().remove(key);
        }
    }
}

impl<F: Unpin> Unpin for Guarded<F> {}

impl<F, T> Future for Guarded<F>
where
    F: Future<Output = Result<T, RunError>> + Unpin,
{
    type Output = Result<T, RunError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.cancel.is_none() && this.deadline.is_none() {
            // No options: the cell itself, nothing to check or register.
            return match this.inner.as_mut() {
                Some(inner) => Pin::new(inner).poll(cx),
                None => Poll::Pending,
            };
        }
        if this.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            return this.finish(RunError::Cancelled);
        }
        if let Some(d) = &this.deadline {
            if Instant::now() >= d.at {
                let after = d.after;
                return this.finish(RunError::TimedOut { after });
            }
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Pending;
        };
        if let Poll::Ready(out) = Pin::new(inner).poll(cx) {
            this.inner = None;
            this.release();
            return Poll::Ready(out);
        }
        if let Some(token) = &this.cancel {
            token.register(&mut this.cancel_key, cx.waker());
            if token.is_cancelled() {
                return this.finish(RunError::Cancelled);
            }
        }
        if let Some(d) = &mut this.deadline {
            if d.key.is_none() {
                d.key = Some(timer().insert(d.at, cx.waker().clone()));
            } else if let Some(key) = d.key {
                timer().update(key, cx.waker());
            }
        }
        Poll::Pending
    }
}

impl<F> Drop for Guarded<F> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<F> fmt::Debug for Guarded<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("done", &self.inner.is_none())
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}
