//! Core's clock: one thread (`autoawait-timer`) that wakes wakers at deadlines, and
//! [`sleep`] on it, so that timeouts and sleeps work under any executor.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::kit::lock;

/// A deadline registered with the timer thread.
pub(crate) type TimerKey = (Instant, u64);

/// One thread that wakes wakers at deadlines: the reactor-free clock of core.
pub(crate) struct Timer {
    next: AtomicU64,
    entries: Mutex<BTreeMap<TimerKey, Waker>>,
    changed: Condvar,
}

pub(crate) fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            next: AtomicU64::new(0),
            entries: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("autoawait-timer".into())
            .spawn(move || timer.run())
            .expect("cannot spawn the autoawait-timer thread");
        timer
    })
}

impl Timer {
    pub(crate) fn insert(&self, at: Instant, waker: Waker) -> TimerKey {
        let key = (at, self.next.fetch_add(1, Ordering::Relaxed));
        let mut entries = lock(&self.entries);
        let earliest = entries.keys().next().is_none_or(|first| key < *first);
        entries.insert(key, waker);
        if earliest {
            self.changed.notify_one();
        }
        key
    }

    pub(crate) fn update(&self, key: TimerKey, waker: &Waker) {
        if let Some(old) = lock(&self.entries).get_mut(&key) {
            if !old.will_wake(waker) {
                *old = waker.clone();
            }
        }
    }

    pub(crate) fn remove(&self, key: TimerKey) {
        lock(&self.entries).remove(&key);
    }

    fn run(&self) {
        let mut entries = lock(&self.entries);
        let mut due = Vec::new();
        loop {
            let now = Instant::now();
            while let Some(entry) = entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                // Wake outside the lock: a waker may come straight back to the timer.
                drop(entries);
                due.drain(..).for_each(Waker::wake);
                entries = lock(&self.entries);
                continue;
            }
            entries = match entries.keys().next() {
                Some(&(at, _)) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    self.changed
                        .wait_timeout(entries, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self
                    .changed
                    .wait(entries)
                    .unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// Waits until `duration` has passed, under any executor (the `autoawait-timer`
/// thread wakes it). Runtime-agnostic, so it works under every runner, plugins included.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// autoawait_core::block_on_inline(autoawait_core::sleep(Duration::from_millis(5)));
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        at: Instant::now() + duration,
        key: None,
    }
}

/// The future of [`sleep`].
#[derive(Debug)]
pub struct Sleep {
    at: Instant,
    key: Option<TimerKey>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            if let Some(key) = self.key.take() {
                timer().remove(key);
            }
            return Poll::Ready(());
        }
        match self.key {
            Some(key) => timer().update(key, cx.waker()),
            None => self.key = Some(timer().insert(self.at, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            timer().remove(key);
        }
    }
}
