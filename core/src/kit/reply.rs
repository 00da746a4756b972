//! [`reply`]: a fast cross-thread reply: spin briefly, then park.
//!
//! The spin budget is configurable because spinning steals the peer's core on an
//! oversubscribed machine: `AUTOAWAIT_SPIN_US=0` parks at once (see [`Spin`]).

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use super::Spin;
use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::{lock, Arc, Mutex};

const EMPTY: u8 = 0;
const FULL: u8 = 1;
const CLOSED: u8 = 2;

/// The spin budget from `AUTOAWAIT_SPIN_US` (microseconds), read once; 20 µs if
/// unset or unreadable. `0` means park at once.
pub fn default_spin() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = std::env::var("AUTOAWAIT_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(20);
        Duration::from_micros(us)
    })
}

/// A one-shot reply slot: the receiver spins up to `spin`, then parks.
///
/// Create it on the thread that will call [`ReplyReceiver::recv`].
///
/// # Examples
///
/// ```
/// use autoawait_core::kit;
///
/// let (tx, rx) = kit::reply(kit::default_spin());
/// std::thread::spawn(move || tx.send(42));
/// assert_eq!(rx.recv(), Some(42));
/// ```
pub fn reply<T>(spin: Duration) -> (ReplySender<T>, ReplyReceiver<T>) {
    let slot = Arc::new(Slot {
        state: AtomicU8::new(EMPTY),
        value: Mutex::new(None),
        receiver: thread::current(),
    });
    (
        ReplySender {
            slot: Some(slot.clone()),
        },
        ReplyReceiver { slot, spin },
    )
}

struct Slot<T> {
    state: AtomicU8,
    value: Mutex<Option<T>>,
    receiver: Thread,
}

impl<T> Slot<T> {
    fn close(&self, value: Option<T>) {
        let state = if value.is_some() { FULL } else { CLOSED };
        if value.is_some() {
            *lock(&self.value) = value;
        }
        self.state.store(state, Ordering::Release);
        self.receiver.unpark();
    }
}

/// Sends the reply. Dropped without sending, the receiver gets `None`.
pub struct ReplySender<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> ReplySender<T> {
    /// Hands `value` to the receiver and wakes it.
    pub fn send(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            slot.close(Some(value));
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.close(None);
        }
    }
}

impl<T> fmt::Debug for ReplySender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplySender").finish_non_exhaustive()
    }
}

/// Waits for the reply; see [`reply`].
pub struct ReplyReceiver<T> {
    slot: Arc<Slot<T>>,
    spin: Duration,
}

impl<T> ReplyReceiver<T> {
    /// Waits for the value: spins up to the budget, then parks. `None` if the
    /// sender was dropped without sending.
    ///
    /// # Panics
    ///
    /// If called on another thread than the one that created the slot: it would
    /// never be woken.
    #[track_caller]
    pub fn recv(self) -> Option<T> {
        assert_eq!(
            thread::current().id(),
            self.slot.receiver.id(),
            "ReplyReceiver::recv must run on the thread that created the reply slot"
        );
        let state = &self.slot.state;
        let mut spin = Spin::new(self.spin);
        while state.load(Ordering::Acquire) == EMPTY && spin.keep_spinning() {}
        while state.load(Ordering::Acquire) == EMPTY {
            thread::park();
        }
        lock(&self.slot.value).take()
    }
}

impl<T> fmt::Debug for ReplyReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyReceiver")
            .field("spin", &self.spin)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn a_reply_crosses_threads_with_and_without_spinning() {
        for spin in [Duration::ZERO, Duration::from_micros(50)] {
            for _ in 0..1000 {
                let (tx, rx) = reply(spin);
                let t = thread::spawn(move || tx.send(String::from("hi")));
                assert_eq!(rx.recv().as_deref(), Some("hi"));
                t.join().unwrap();
            }
        }
    }

    #[test]
    fn a_dropped_sender_gives_none() {
        let (tx, rx) = reply::<u32>(Duration::from_micros(5));
        thread::spawn(move || drop(tx));
        assert_eq!(rx.recv(), None);
    }

    #[test]
    fn a_reply_sent_before_recv_is_kept() {
        let (tx, rx) = reply(Duration::ZERO);
        tx.send(7);
        assert_eq!(rx.recv(), Some(7));
    }
}
