//! The synchronisation primitives of the hand-off mailbox, the reply slot and
//! [`EventualResult`](crate::EventualResult): std's, or loom's under `--cfg loom`,
//! so that `cargo test --cfg loom` model-checks the very code that ships.

#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic, sync::Arc, sync::Condvar, sync::Mutex, sync::MutexGuard, thread,
};

#[cfg(loom)]
pub(crate) use loom::{
    sync::atomic, sync::Arc, sync::Condvar, sync::Mutex, sync::MutexGuard, thread,
};

/// Locks a mutex, ignoring poisoning (see [`kit::lock`](crate::kit::lock)).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
