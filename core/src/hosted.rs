//! A loop that lets its host drive it, and a host loop that drives such loops: how
//! a reactor of a plugin runs on the host's own loop with no thread of its own
//! (Twisted's `asyncioreactor`, the other way round).
//!
//! A [`Hosted`] reactor says which file descriptor becomes readable when it has
//! work and when its next timer is due, and turns once on request. A [`HostLoop`]
//! (`tokio-host`'s) watches that descriptor and that deadline and turns the reactor
//! when either fires, between the other tasks of its loop.
//!
//! Threading rules, for both sides:
//! - [`Hosted::attach`] and [`Hosted::fd`] may be called from any thread; attach
//!   moves the reactor onto the host's loop, from a thread of its own if it ran
//!   there (its next turn then waits for that thread's current turn to end).
//! - [`Hosted::turn`] and [`Hosted::next_turn`] are called by one driver at a time
//!   (a second caller waits for the first's turn to end), from any thread.
//! - A turn runs the reactor's callbacks and tasks on the calling thread: the host
//!   never calls it from inside a cell.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use crate::RunError;

/// A reactor that its host's loop can drive (ABI 1.2's `CAP_HOSTED` for plugins).
///
/// Returned by [`Runner::hosted`](crate::Runner::hosted) of a runner of strategy
/// host whose loop is its own (a plugin's), not the host's.
pub trait Hosted: Send + Sync {
    /// Takes the reactor onto the host's loop, from a thread of its own if it ran
    /// there. Cheap when it is hosted already: hosts call it before every cell.
    ///
    /// # Errors
    ///
    /// If the reactor cannot be hosted: it stopped for good, say.
    fn attach(&self) -> Result<(), RunError>;

    /// A new descriptor, owned by the caller, that becomes readable when the
    /// reactor has work: its epoll descriptor, say (duplicated), with a waker
    /// registered in it for calls from other threads.
    ///
    /// # Errors
    ///
    /// If it cannot be duplicated.
    fn fd(&self) -> std::io::Result<OwnedFd>;

    /// How long until the reactor needs a turn even if its descriptor stays quiet:
    /// zero when it has work ready now, `None` when only the descriptor can bring
    /// it work. From this call on, work pushed from any thread makes the
    /// descriptor readable.
    fn next_turn(&self) -> Option<Duration>;

    /// Runs what is ready, the timers that are due, and the events of its
    /// descriptor, waiting at most `max_wait` for them (a host loop passes zero).
    /// Returns `false` once the reactor is no longer hosted (it went back to a
    /// thread of its own, or stopped): the driver then stops.
    fn turn(&self, max_wait: Duration) -> bool;

    /// The driver heard `false` from [`turn`](Self::turn) and stopped watching the
    /// descriptor. Returns `true` to let it end; `false` if the reactor was attached
    /// to the host again meanwhile, and the same driver goes on.
    fn release(&self) -> bool {
        true
    }

    /// The driver was dropped without hearing `false` (its runtime shut down):
    /// nothing drives the reactor now.
    fn detached(&self) {}
}

/// A loop that can drive [`Hosted`] reactors among its own tasks.
///
/// Returned by [`Runner::host_loop`](crate::Runner::host_loop): `tokio-host`'s.
pub trait HostLoop: Send + Sync {
    /// Drives `reactor` on this loop from now on, until its [`Hosted::turn`]
    /// returns `false`: watches the descriptor of [`Hosted::fd`] and the deadline
    /// of [`Hosted::next_turn`], and turns the reactor when either fires.
    ///
    /// # Errors
    ///
    /// If the loop cannot watch the descriptor, or has stopped.
    fn drive(&self, reactor: Arc<dyn Hosted>) -> Result<(), RunError>;
}
