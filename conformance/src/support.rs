//! What the checks share: a runner of their own, and futures that prove a point.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use autoawait_core::{RunError, Runner};

use crate::Subject;

/// A runner of its own for one check, shut down when dropped.
pub(crate) struct Fixture {
    pub(crate) runner: Arc<dyn Runner>,
}

impl Fixture {
    pub(crate) fn new(subject: &Subject) -> Self {
        let runner = subject
            .make()
            .unwrap_or_else(|e| panic!("cannot create runner `{}`: {e}", subject.name()));
        Fixture { runner }
    }

    /// `sync` polls once: everything that waits is `Unsupported` there.
    pub(crate) fn polls_once(&self) -> bool {
        self.runner.info().name == "sync"
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.runner.shutdown(Duration::from_secs(5));
    }
}

/// Sets a flag when dropped: proves a cell's future was dropped.
pub(crate) struct DropFlag(pub(crate) Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Returns `Pending` once (after waking itself), then `Ready`.
pub(crate) struct YieldOnce(pub(crate) bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// [`YieldOnce`] when asked; ready at once otherwise (`sync` accepts those).
pub(crate) struct YieldOnceIf(pub(crate) bool);

impl Future for YieldOnceIf {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !std::mem::replace(&mut self.0, false) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pub(crate) fn expect_unsupported<T: std::fmt::Debug>(result: Result<T, RunError>) {
    match result {
        Err(RunError::Unsupported { .. }) => {}
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
