//! [`Mailbox`]: jobs for a reactor thread.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{lock, Mutex};

/// Jobs for a reactor thread, from any number of callers.
///
/// The reactor spins on one flag ([`is_ready`](Self::is_ready): a load, no lock),
/// takes every queued job at once ([`take`](Self::take)), and once it has spun for
/// its budget sleeps on [`wait`](Self::wait), which registers its waker: a
/// [`push`](Self::push) wakes it. [`close`](Self::close) refuses every later job and
/// hands back the queued ones, so that dropping them tells their callers the
/// reactor is gone.
///
/// # Examples
///
/// ```
/// use std::collections::VecDeque;
/// use autoawait_core::kit::Mailbox;
///
/// let mailbox = Mailbox::default();
/// mailbox.push("a").unwrap();
/// mailbox.push("b").unwrap();
/// assert!(mailbox.is_ready());
/// let mut jobs = VecDeque::new();
/// mailbox.take(&mut jobs);
/// assert_eq!(jobs, ["a", "b"]);
/// assert!(!mailbox.is_ready());
/// mailbox.push("c").unwrap();
/// assert_eq!(mailbox.close(), ["c"]);
/// assert_eq!(mailbox.push("d"), Err("d"));
/// ```
pub struct Mailbox<J> {
    inbox: Mutex<Inbox<J>>,
    /// Set while there are jobs (or the mailbox closed): what the reactor spins on.
    ready: AtomicBool,
}

struct Inbox<J> {
    jobs: VecDeque<J>,
    closed: bool,
    waker: Option<Waker>,
}

impl<J> Default for Mailbox<J> {
    fn default() -> Self {
        Mailbox {
            inbox: Mutex::new(Inbox {
                jobs: VecDeque::new(),
                closed: false,
                waker: None,
            }),
            ready: AtomicBool::new(false),
        }
    }
}

impl<J> Mailbox<J> {
    /// Queues `job` and wakes the reactor if it sleeps.
    ///
    /// # Errors
    ///
    /// The job back, if the mailbox is closed.
    pub fn push(&self, job: J) -> Result<(), J> {
        let mut inbox = lock(&self.inbox);
        if inbox.closed {
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

    /// `true` if there are jobs to take, or the mailbox closed. Lock-free: spin on it.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Moves every queued job to the end of `jobs`.
    pub fn take(&self, jobs: &mut VecDeque<J>) {
        let mut inbox = lock(&self.inbox);
        if !inbox.closed {
            self.ready.store(false, Ordering::Relaxed);
        }
        if jobs.is_empty() {
            std::mem::swap(jobs, &mut inbox.jobs);
        } else {
            jobs.append(&mut inbox.jobs);
        }
    }

    /// Refuses every later job and returns the queued ones; wakes a sleeping reactor.
    pub fn close(&self) -> VecDeque<J> {
        let mut inbox = lock(&self.inbox);
        inbox.closed = true;
        self.ready.store(true, Ordering::Release);
        let jobs = std::mem::take(&mut inbox.jobs);
        let waker = inbox.waker.take();
        drop(inbox);
        if let Some(waker) = waker {
            waker.wake();
        }
        jobs
    }

    /// `true` once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.inbox).closed
    }

    /// Resolves once there are jobs (`true`) or the mailbox closed with none left
    /// (`false`).
    pub fn wait(&self) -> Wait<'_, J> {
        Wait(self)
    }
}

impl<J> fmt::Debug for Mailbox<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// The future of [`Mailbox::wait`].
pub struct Wait<'a, J>(&'a Mailbox<J>);

impl<J> fmt::Debug for Wait<'_, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Wait").field(self.0).finish()
    }
}

impl<J> Future for Wait<'_, J> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut inbox = lock(&self.0.inbox);
        if !inbox.jobs.is_empty() {
            return Poll::Ready(true);
        }
        if inbox.closed {
            return Poll::Ready(false);
        }
        match &inbox.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inbox.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
