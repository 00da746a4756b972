//! The halves of an [`EventualResult`] that produce its result: [`Task`] and
//! [`LocalTask`] run a future, [`Completer`] is completed by hand.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{EventualResult, Shared};
use crate::sync::{lock, Arc};
use crate::{CellResult, RunError};

/// The background half of an [`EventualResult`] for a `Send` future: spawn it on
/// an executor. Completes the result when the future finishes; if it is dropped
/// before that (its executor went away), the result becomes
/// [`RunError::TaskDropped`].
///
/// # Examples
///
/// An executor of one's own (here, a thread) runs the task; the caller awaits
/// the result, or waits for it:
///
/// ```
/// use autoawait_core::{block_on_inline, downcast, CellId, EventualResult};
///
/// let work = async { Ok(Box::new(6u8 * 7) as autoawait_core::CellOutput) };
/// let (task, eventual) = EventualResult::task(CellId::new(1), work, None);
/// std::thread::spawn(move || block_on_inline(task));
/// assert_eq!(downcast::<u8>(block_on_inline(eventual)?), 42);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Task {
    pub(super) shared: Arc<Shared>,
}

impl Future for Task {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shared = &self.shared;
        if shared.is_cancelled() {
            drop(lock(&shared.fut).take());
            return Poll::Ready(());
        }
        {
            let mut waker = lock(&shared.task_waker);
            match &*waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        let mut slot = lock(&shared.fut);
        let Some(fut) = slot.as_mut() else {
            return Poll::Ready(());
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(result) => {
                let fut = slot.take();
                drop(slot);
                drop(fut);
                shared.complete(result);
                Poll::Ready(())
            }
            Poll::Pending if shared.is_cancelled() => {
                let fut = slot.take();
                drop(slot);
                drop(fut);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let fut = lock(&self.shared.fut).take();
        drop(fut);
        self.shared.complete(Err(RunError::TaskDropped {
            runner: self.shared.runner.clone(),
        }));
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("origin", &self.shared.origin)
            .finish_non_exhaustive()
    }
}

/// The background half of an [`EventualResult`] for a `!Send` future.
pub struct LocalTask {
    pub(super) shared: Arc<Shared>,
    pub(super) fut: Option<Pin<Box<dyn Future<Output = CellResult>>>>,
}

impl Future for LocalTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.is_cancelled() {
            self.fut = None;
            return Poll::Ready(());
        }
        *lock(&self.shared.task_waker) = Some(cx.waker().clone());
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(());
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(result) => {
                self.fut = None;
                self.shared.complete(result);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for LocalTask {
    fn drop(&mut self) {
        self.fut = None;
        self.shared.complete(Err(RunError::TaskDropped {
            runner: self.shared.runner.clone(),
        }));
    }
}

impl fmt::Debug for LocalTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTask")
            .field("origin", &self.shared.origin)
            .finish_non_exhaustive()
    }
}

/// Completes an [`EventualResult`] made by [`EventualResult::completer`]. Dropped
/// without completing, the result becomes [`RunError::TaskDropped`].
pub struct Completer {
    pub(super) shared: Option<Arc<Shared>>,
}

impl Completer {
    /// Stores the result and wakes every waiter.
    pub fn complete(mut self, result: CellResult) {
        if let Some(shared) = self.shared.take() {
            shared.complete(result);
        }
    }

    /// `true` if the result was cancelled: the work may stop.
    pub fn is_cancelled(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.is_cancelled())
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let runner = shared.runner.clone();
            shared.complete(Err(RunError::TaskDropped { runner }));
        }
    }
}

impl fmt::Debug for Completer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer").finish_non_exhaustive()
    }
}

/// Cancels the task when dropped before it finished (used by [`Runner::run_async`]).
///
/// [`Runner::run_async`]: crate::Runner::run_async
pub(crate) struct CancelOnDrop(pub(crate) EventualResult);

impl Future for CancelOnDrop {
    type Output = CellResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CellResult> {
        // The handle is ours alone, so its value cannot have been taken.
        Pin::new(&mut self.0).poll(cx).map_err(RunError::from)
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
