//! [`WaitError`]: a background result that cannot be had (yet).

use std::error::Error;
use std::fmt;
use std::time::Duration;

use crate::RunError;

/// Why [`EventualResult::wait`](crate::EventualResult::wait) (or `retrieve`) gave no
/// value: the task's own error, or a wait that could not finish.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::{Cell, Registry, WaitError};
///
/// let runner = Registry::global().get("inline")?;
/// let task = runner.spawn(Cell::new(std::future::pending::<()>()))?;
/// let err = task.wait(Some(Duration::from_millis(5))).unwrap_err();
/// assert!(matches!(err, WaitError::NotReady { .. }));
/// task.cancel();
/// assert!(task.wait(None).unwrap_err().is_cancelled());
/// # Ok::<(), autoawait_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WaitError {
    /// The task failed (panicked, was cancelled or dropped, ...), or waiting on this
    /// thread would deadlock ([`RunError::WouldDeadlock`]).
    Run(RunError),
    /// The wait timed out; the task goes on and its result stays retrievable.
    NotReady {
        /// How long the caller waited.
        waited: Duration,
    },
    /// The value of this result was already taken by an earlier `wait`.
    AlreadyTaken,
    /// No stashed result has this number: it was never stashed, or was already
    /// retrieved.
    NotStashed {
        /// The number passed to [`EventualResult::retrieve`](crate::EventualResult::retrieve).
        id: u64,
    },
}

impl WaitError {
    /// The task's own error, if that is what this is.
    pub fn as_run_error(&self) -> Option<&RunError> {
        match self {
            WaitError::Run(e) => Some(e),
            _ => None,
        }
    }

    /// `true` if the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.as_run_error().is_some_and(RunError::is_cancelled)
    }

    /// `true` if waiting on this thread would deadlock.
    pub fn is_would_deadlock(&self) -> bool {
        self.as_run_error().is_some_and(RunError::is_would_deadlock)
    }

    /// `true` if the task panicked.
    pub fn is_panicked(&self) -> bool {
        self.as_run_error().is_some_and(RunError::is_panicked)
    }
}

impl From<RunError> for WaitError {
    fn from(e: RunError) -> Self {
        WaitError::Run(e)
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Run(e) => e.fmt(f),
            WaitError::NotReady { waited } => write!(
                f,
                "the result is not ready after {waited:?}; the task goes on and can be \
                 waited for again"
            ),
            WaitError::AlreadyTaken => write!(
                f,
                "the value of this result was already taken by an earlier wait()"
            ),
            WaitError::NotStashed { id } => write!(
                f,
                "no stashed result with id {id}: it was never stashed or was already \
                 retrieved (each stashed result can be retrieved once)"
            ),
        }
    }
}

impl Error for WaitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WaitError::Run(e) => Some(e),
            _ => None,
        }
    }
}

/// Waiting inside a cell that passes errors on with `?`: the task's own error comes
/// back as it was; a wait that could not finish becomes [`RunError::Failed`] with
/// its message.
impl From<WaitError> for RunError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Run(e) => e,
            other => RunError::Failed {
                message: other.to_string(),
            },
        }
    }
}
