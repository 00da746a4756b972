//! [`RunError`]: the one error type of autoawait.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a cell, a task or a registry request failed.
///
/// Every message says what happened and what to do about it. The enum is
/// `#[non_exhaustive]`; match on the `is_*` predicates where you only need the
/// category. Errors are cheap to clone so that an [`EventualResult`] can hand the
/// same failure to every waiter.
///
/// [`EventualResult`]: crate::EventualResult
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, RunnerExt};
///
/// let inline = Registry::global().get("inline").unwrap();
/// let err = inline.block_on(async { panic!("boom") }).unwrap_err();
/// assert!(err.is_panicked());
/// assert_eq!(err.to_string(), "the cell panicked: boom");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum RunError {
    /// The cell (or task) panicked; the payload's message is kept.
    Panicked {
        /// The panic message (`"<non-string panic payload>"` if it was not a string).
        message: String,
    },
    /// The cell did not finish within the timeout of its [`RunOptions`](crate::RunOptions).
    /// Its future was dropped.
    TimedOut {
        /// The timeout that expired.
        after: Duration,
    },
    /// The cell was cancelled through its [`CancelToken`](crate::CancelToken), or the
    /// task through [`EventualResult::cancel`](crate::EventualResult::cancel).
    Cancelled,
    /// Waiting here would never finish: the calling thread is the one that must drive
    /// the work (the runner's reactor thread, or a cell of a runner that cannot nest).
    WouldDeadlock {
        /// The runner that refused.
        runner: String,
        /// What to do instead.
        advice: String,
    },
    /// The runner was shut down.
    Stopped {
        /// The runner that was shut down.
        runner: String,
    },
    /// The runner's loop ran once and cannot be started again (Twisted's reactor).
    NotRestartable {
        /// The runner that refused.
        runner: String,
        /// What to do instead.
        advice: String,
    },
    /// The runner cannot do what was asked (a `!Send` cell, a service it lacks, a cell
    /// that suspends under `sync`, ...).
    Unsupported {
        /// The runner that refused.
        runner: String,
        /// What it cannot do, and what to use instead.
        reason: String,
    },
    /// An awaitable that needs another backend was polled under this one
    /// (`tokio::time::sleep` under smol, say).
    WrongRuntime {
        /// The backend the awaitable needs (`"tokio"`).
        needs: String,
        /// The runner that was running the cell.
        runner: String,
        /// The original message of the backend, if any.
        detail: String,
    },
    /// No runner of that name is registered.
    UnknownRunner {
        /// The name that was asked for.
        name: String,
        /// The closest registered name, if one is close.
        closest: Option<String>,
        /// Every registered name.
        available: Vec<String>,
    },
    /// The runner is known but was not compiled into this build.
    Unavailable {
        /// The runner's name.
        name: String,
        /// Why, and how to enable it.
        reason: String,
    },
    /// A runner of that name is already registered.
    DuplicateName {
        /// The name in use.
        name: String,
    },
    /// No stashed result with this id: it was never stashed, or was already retrieved.
    NotStashed {
        /// The id passed to [`EventualResult::retrieve`](crate::EventualResult::retrieve).
        id: u64,
    },
    /// The value of this result was already taken by an earlier `wait`.
    AlreadyTaken,
    /// [`EventualResult::wait`](crate::EventualResult::wait) timed out; the task goes
    /// on and its result stays retrievable.
    NotReady {
        /// How long the caller waited.
        waited: Duration,
    },
    /// The task was dropped before it finished: its loop went away (a `fresh` runner
    /// ends its tasks with each cell, a runner that shut down ends all of them).
    TaskDropped {
        /// The runner that ran the task.
        runner: String,
    },
    /// A front-end command got an argument it cannot take.
    InvalidArgument {
        /// What was wrong, and what is accepted.
        message: String,
    },
    /// The cell itself failed with an error of its own (a Lua error, say).
    Failed {
        /// The cell's error message, traceback included.
        message: String,
    },
    /// A plugin library could not be loaded; the registry was left as it was.
    Plugin {
        /// The file (or the name) that was asked for.
        path: std::path::PathBuf,
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// The backend failed (a runtime that could not be built, a plugin error, ...).
    Backend(Arc<dyn Error + Send + Sync>),
}

impl RunError {
    /// Turns a panic payload (from [`std::panic::catch_unwind`]) into [`RunError::Panicked`].
    ///
    /// The tokio message "there is no reactor running" becomes
    /// [`RunError::WrongRuntime`] instead: a tokio awaitable polled under another runner;
    /// so does "it is being shutdown": a tokio awaitable whose runtime is gone.
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = panic_message(payload.as_ref());
        if message.contains("must be called from the context of a Tokio") {
            return RunError::WrongRuntime {
                needs: "tokio".into(),
                runner: crate::current_runner_name().unwrap_or_else(|| "this runner".into()),
                detail: message,
            };
        }
        if message.contains("A Tokio 1.x context was found, but it is being shutdown") {
            // A timer or socket made on a tokio runtime that is gone (a fresh runner's
            // earlier cell, a runner that was shut down).
            return RunError::WrongRuntime {
                needs: "tokio".into(),
                runner: crate::current_runner_name().unwrap_or_else(|| "this runner".into()),
                detail: format!(
                    "{message} The tokio runtime this awaitable was made on was shut down, \
                     as a fresh runner does after each cell: make it in the cell that \
                     awaits it, or use a runner that keeps its runtime"
                ),
            };
        }
        RunError::Panicked { message }
    }

    /// A backend error from anything that implements [`Error`].
    pub fn backend(err: impl Error + Send + Sync + 'static) -> Self {
        RunError::Backend(Arc::new(err))
    }

    /// A `WouldDeadlock` with the standard advice for runner `runner`.
    pub fn would_deadlock(runner: &str, what: &str) -> Self {
        RunError::WouldDeadlock {
            runner: runner.into(),
            advice: format!(
                "{what}: this thread drives `{runner}`'s loop, so it would wait for itself. \
                 Await the future instead, spawn it, or select a re-entrant runner with \
                 `%autoawait tokio-nested` or `%autoawait smol-nested`"
            ),
        }
    }

    /// `Unsupported` for a runner that cannot take `!Send` cells.
    pub fn local_unsupported(runner: &str) -> Self {
        RunError::Unsupported {
            runner: runner.into(),
            reason: "it cannot run cells built from a `!Send` future factory (`Cell::local`); \
                     use a runner that accepts them, such as `tokio`, `smol` or `inline`"
                .into(),
        }
    }

    /// `true` for [`RunError::Panicked`].
    pub fn is_panicked(&self) -> bool {
        matches!(self, RunError::Panicked { .. })
    }
    /// `true` for [`RunError::TimedOut`].
    pub fn is_timed_out(&self) -> bool {
        matches!(self, RunError::TimedOut { .. })
    }
    /// `true` for [`RunError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RunError::Cancelled)
    }
    /// `true` for [`RunError::WouldDeadlock`].
    pub fn is_would_deadlock(&self) -> bool {
        matches!(self, RunError::WouldDeadlock { .. })
    }
    /// `true` for [`RunError::Stopped`].
    pub fn is_stopped(&self) -> bool {
        matches!(self, RunError::Stopped { .. })
    }
    /// `true` for [`RunError::NotRestartable`].
    pub fn is_not_restartable(&self) -> bool {
        matches!(self, RunError::NotRestartable { .. })
    }
    /// `true` for [`RunError::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, RunError::Unsupported { .. })
    }
    /// `true` for [`RunError::Plugin`].
    pub fn is_plugin(&self) -> bool {
        matches!(self, RunError::Plugin { .. })
    }
    /// `true` for [`RunError::WrongRuntime`].
    pub fn is_wrong_runtime(&self) -> bool {
        matches!(self, RunError::WrongRuntime { .. })
    }
}

/// The message of a panic payload: its `&str` or `String`, or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(e) = payload.downcast_ref::<RunError>() {
        e.to_string()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Panicked { message } => write!(f, "the cell panicked: {message}"),
            RunError::TimedOut { after } => write!(
                f,
                "the cell did not finish within {after:?} and was dropped; \
                 raise the timeout or spawn it in the background with %%run_in_reactor"
            ),
            RunError::Cancelled => write!(f, "the cell was cancelled (KeyboardInterrupt)"),
            RunError::WouldDeadlock { runner, advice } => {
                write!(f, "runner `{runner}` would deadlock: {advice}")
            }
            RunError::Stopped { runner } => write!(
                f,
                "runner `{runner}` was shut down; select another runner with %autoawait"
            ),
            RunError::NotRestartable { runner, advice } => {
                write!(f, "runner `{runner}` cannot be restarted: {advice}")
            }
            RunError::Unsupported { runner, reason } => {
                write!(f, "runner `{runner}` cannot do this: {reason}")
            }
            RunError::WrongRuntime {
                needs,
                runner,
                detail,
            } => {
                write!(
                    f,
                    "this awaitable needs a {needs} runtime but runs under `{runner}`; \
                     select a {needs} runner with `%autoawait {needs}`"
                )?;
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            RunError::UnknownRunner {
                name,
                closest,
                available,
            } => {
                write!(f, "no runner named `{name}`")?;
                match closest {
                    Some(closest) => write!(f, "; did you mean `{closest}`?")?,
                    None => write!(f, ".")?,
                }
                write!(f, " The runners are: ")?;
                for (i, n) in available.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "`{n}`")?;
                }
                write!(f, " (see %autoawait --list)")
            }
            RunError::Unavailable { name, reason } => {
                write!(f, "runner `{name}` is not available: {reason}")
            }
            RunError::DuplicateName { name } => write!(
                f,
                "a runner named `{name}` is already registered; pick another name"
            ),
            RunError::NotStashed { id } => write!(
                f,
                "no stashed result with id {id}: it was never stashed or was already \
                 retrieved (each stashed result can be retrieved once)"
            ),
            RunError::AlreadyTaken => write!(
                f,
                "the value of this result was already taken by an earlier wait()"
            ),
            RunError::NotReady { waited } => write!(
                f,
                "the result is not ready after {waited:?}; the task goes on and can be \
                 waited for again"
            ),
            RunError::TaskDropped { runner } => write!(
                f,
                "the task was dropped before it finished, because the loop of `{runner}` \
                 went away; select a runner whose tasks outlive the cell, like `tokio`"
            ),
            RunError::InvalidArgument { message } => f.write_str(message),
            RunError::Failed { message } => f.write_str(message),
            RunError::Plugin { path, reason } => {
                write!(f, "cannot load plugin {}: {reason}", path.display())
            }
            RunError::Backend(source) => write!(f, "backend error: {source}"),
        }
    }
}

impl Error for RunError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RunError::Backend(source) => Some(source.as_ref()),
            _ => None,
        }
    }
}
