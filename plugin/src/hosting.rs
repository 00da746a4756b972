//! The host's side of a hosted plugin runner (ABI 1.2, `CAP_HOSTED`): the plugin's
//! reactor as a [`Hosted`] for the host's loop, and the one driver that turns it.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use autoawait_core::kit::lock;
use autoawait_core::{Hosted, RunError, Runner};

use crate::abi::RunnerHandle;
use crate::loader::{HostingFns, RunnerFns};

/// A new descriptor for the open one of `source` (`dup`), owned by the caller: what
/// a hosted runner's [`Hosted::fd`] returns for its poller (a `mio::Registry`, say).
///
/// # Errors
///
/// As `dup(2)`.
///
/// # Examples
///
/// ```
/// let poll = std::fs::File::open("/dev/null")?;
/// let copy = autoawait_plugin::duplicate_fd(&poll)?;
/// # use std::os::fd::AsRawFd;
/// assert_ne!(copy.as_raw_fd(), poll.as_raw_fd());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn duplicate_fd(source: &impl AsRawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: `source` is borrowed for the whole call, so the descriptor it owns
    // stays open while it is borrowed here and duplicated.
    let fd = unsafe { BorrowedFd::borrow_raw(source.as_raw_fd()) };
    fd.try_clone_to_owned()
}

/// A runner a plugin created, destroyed when the last of its users lets go (the
/// registry's runner, or the driver turning its reactor).
pub(crate) struct Instance {
    pub(crate) fns: RunnerFns,
    pub(crate) handle: RunnerHandle,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the runner was created by this plugin's `create`, and is destroyed
        // once, last: no one else holds the instance.
        unsafe { (self.fns.destroy)(self.handle) };
    }
}

/// A plugin's reactor, driven by the loop of `host` (`tokio-host`'s).
pub(crate) struct HostedReactor {
    instance: Arc<Instance>,
    fns: HostingFns,
    /// The runner whose loop drives the reactor and runs the cells.
    pub(crate) host: Arc<dyn Runner>,
    /// `true` from the start of a driver until it let go of the reactor.
    driving: Mutex<bool>,
    me: Weak<HostedReactor>,
}

impl HostedReactor {
    pub(crate) fn new(
        instance: Arc<Instance>,
        fns: HostingFns,
        host: Arc<dyn Runner>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| HostedReactor {
            instance,
            fns,
            host,
            driving: Mutex::new(false),
            me: me.clone(),
        })
    }

    /// Takes the reactor onto the host's loop, and starts a driver there unless
    /// one runs. Called before every cell and task of the runner.
    pub(crate) fn ensure_driven(&self) -> Result<(), RunError> {
        self.attach()?;
        let mut driving = lock(&self.driving);
        if *driving {
            return Ok(());
        }
        let host_loop = self.host.host_loop().ok_or_else(|| RunError::Failed {
            message: format!(
                "`{}` can no longer drive a hosted reactor",
                self.host.info().name
            ),
        })?;
        let me: Arc<dyn Hosted> = self.me.upgrade().expect("called through an Arc");
        host_loop.drive(me)?;
        *driving = true;
        Ok(())
    }

    fn ffi_turn(&self, max_wait: Duration) -> bool {
        let nanos = u64::try_from(max_wait.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: the instance is live (we hold it); one driver turns at a time.
        unsafe { (self.fns.turn)(self.instance.handle, nanos) != 0 }
    }
}

impl Hosted for HostedReactor {
    fn attach(&self) -> Result<(), RunError> {
        // SAFETY: the instance is live (we hold it).
        unsafe { (self.fns.attach)(self.instance.handle) }
            .into_result()
            .map(drop)
    }

    fn fd(&self) -> std::io::Result<OwnedFd> {
        // SAFETY: the instance is live (we hold it).
        let fd = unsafe { (self.fns.fd)(self.instance.handle) };
        if fd < 0 {
            return Err(std::io::Error::other(
                "the plugin gave no descriptor to watch for its reactor",
            ));
        }
        // SAFETY: the ABI says a descriptor from `hosted_fd` is a new one, open, whose
        // ownership passes to the host: nothing else closes it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn next_turn(&self) -> Option<Duration> {
        // SAFETY: the instance is live (we hold it).
        match unsafe { (self.fns.next)(self.instance.handle) } {
            u64::MAX => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn turn(&self, max_wait: Duration) -> bool {
        self.ffi_turn(max_wait)
    }

    fn release(&self) -> bool {
        let mut driving = lock(&self.driving);
        // Attached again since the turn that said no (a cell of this runner came):
        // the same driver goes on, since `ensure_driven` saw it running.
        if self.ffi_turn(Duration::ZERO) {
            return false;
        }
        *driving = false;
        true
    }

    fn detached(&self) {
        *lock(&self.driving) = false;
    }
}
