//! [`ReactorId`]: which loop a thread drives, so that blocking on it is refused.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::kit::lock;

/// The identity of a loop: the thread driving it is marked with it, so that a
/// blocking call on that thread is refused with
/// [`RunError::WouldDeadlock`](crate::RunError::WouldDeadlock).
///
/// # Examples
///
/// ```
/// use autoawait_core::ReactorId;
///
/// let reactor = ReactorId::new("my-loop");
/// assert!(!reactor.is_current());
/// let guard = reactor.enter();
/// assert!(reactor.is_current());
/// assert_eq!(autoawait_core::current_runner_name().as_deref(), Some("my-loop"));
/// drop(guard);
/// assert!(!reactor.is_current());
/// ```
///
/// A plain value (`Copy`): entering it on every poll, or moving it into every cell,
/// touches no reference count that the caller's thread and the loop's thread would
/// pass back and forth.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReactorId {
    id: u64,
    name: &'static str,
}

thread_local! {
    static DRIVING: RefCell<Vec<ReactorId>> = const { RefCell::new(Vec::new()) };
}

impl ReactorId {
    /// A new identity for the loop of runner `name`.
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ReactorId {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            name: intern(name),
        }
    }

    /// The runner's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Marks this thread as driving the loop until the guard is dropped.
    pub fn enter(&self) -> ReactorGuard {
        DRIVING.with(|d| d.borrow_mut().push(*self));
        ReactorGuard(())
    }

    /// `true` if this thread is driving the loop right now.
    pub fn is_current(&self) -> bool {
        DRIVING.with(|d| d.borrow().contains(self))
    }
}

/// `name` with a static lifetime: each distinct runner name is stored once for the
/// life of the process (there are a handful).
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = lock(&NAMES);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.into());
    names.insert(leaked);
    leaked
}

impl fmt::Debug for ReactorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReactorId({}, {:?})", self.id, self.name)
    }
}

/// Returned by [`ReactorId::enter`]; unmarks the thread when dropped.
#[derive(Debug)]
pub struct ReactorGuard(());

impl Drop for ReactorGuard {
    fn drop(&mut self) {
        DRIVING.with(|d| d.borrow_mut().pop());
    }
}

/// The name of the runner whose loop this thread drives right now (the innermost,
/// when runners nest), if any.
pub fn current_runner_name() -> Option<String> {
    DRIVING.with(|d| d.borrow().last().map(|r| r.name.to_owned()))
}
