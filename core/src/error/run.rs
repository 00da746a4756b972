//! [`RunError`]: a cell's fate, and a runner's state.

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{panic_text, Advice};
use crate::PanicTranslator;

/// Why a cell (or a task) did not give its value: its own fate (it panicked, timed
/// out, was cancelled, failed), or the runner's refusal (it would deadlock or block
/// a loop, it was shut down, it cannot do that, the awaitable needs another runtime).
///
/// Messages say what happened and what to do, in a Rust caller's words; the advice
/// is data ([`advice`](Self::advice)), so a front end can say it in its own. Errors
/// are cheap to clone, so that an [`EventualResult`] can hand the same failure to
/// every waiter. Finding a runner, waiting for a result and loading a plugin fail
/// with errors of their own ([`LookupError`], [`WaitError`], and the plugin crate's).
///
/// [`EventualResult`]: crate::EventualResult
/// [`LookupError`]: crate::LookupError
/// [`WaitError`]: crate::WaitError
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, RunnerExt};
///
/// let inline = Registry::global().get("inline")?;
/// let err = inline.block_on(async { panic!("boom") }).unwrap_err();
/// assert!(err.is_panicked());
/// assert_eq!(err.to_string(), "the cell panicked: boom");
/// # Ok::<(), autoawait_core::Error>(())
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
        /// What was refused (`"run() from inside a cell of this runner"`).
        what: Cow<'static, str>,
        /// What would work instead.
        advice: Advice,
    },
    /// Blocking this thread would freeze an async loop that it drives (a tokio
    /// current_thread runtime, a `block_on` of another executor): its other tasks,
    /// timers and sockets would stop for as long as the cell runs.
    WouldBlock {
        /// The runner that refused.
        runner: String,
        /// What this thread drives (`"a tokio current_thread runtime"`).
        what: Cow<'static, str>,
        /// What would work instead.
        advice: Advice,
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
        /// Why not.
        reason: String,
        /// What would work instead.
        advice: Advice,
    },
    /// The runner cannot do what was asked (a `!Send` cell, a cell that suspends
    /// under `sync`, ...).
    Unsupported {
        /// The runner that refused.
        runner: String,
        /// What it cannot do.
        reason: String,
        /// What would work instead.
        advice: Advice,
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
    /// The task was dropped before it finished: its loop went away (a `fresh` runner
    /// ends its tasks with each cell, a runner that shut down ends all of them).
    TaskDropped {
        /// The runner that ran the task.
        runner: String,
    },
    /// The cell itself failed with an error of its own (a Lua error, a plugin
    /// function's error).
    Failed {
        /// The cell's error message, traceback included.
        message: String,
    },
    /// The backend failed (a runtime that could not be built, a thread that could
    /// not start, ...).
    Backend(Arc<dyn Error + Send + Sync>),
}

impl RunError {
    /// Turns a panic payload (from [`std::panic::catch_unwind`]) into
    /// [`RunError::Panicked`], or into what a linked backend says it means: the tokio
    /// runners translate tokio's "no reactor running" into [`RunError::WrongRuntime`]
    /// (see [`PanicTranslator`]).
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = panic_text(payload.as_ref());
        for translator in inventory::iter::<PanicTranslator> {
            if let Some(err) = (translator.0)(&message) {
                return err;
            }
        }
        RunError::Panicked { message }
    }

    /// A backend error from anything that implements [`Error`].
    pub fn backend(err: impl Error + Send + Sync + 'static) -> Self {
        RunError::Backend(Arc::new(err))
    }

    /// `WouldDeadlock` for `runner`, refusing `what` on a thread that drives its loop.
    pub fn would_deadlock(runner: &str, what: impl Into<Cow<'static, str>>) -> Self {
        RunError::WouldDeadlock {
            runner: runner.into(),
            what: what.into(),
            advice: Advice::runners("a re-entrant runner", ["tokio-nested", "smol-nested"])
                .or("await the future, or spawn it")
                .without(runner),
        }
    }

    /// `Unsupported` for a runner that cannot take `!Send` cells.
    pub fn local_unsupported(runner: &str) -> Self {
        RunError::Unsupported {
            runner: runner.into(),
            reason: "it cannot run cells built from a `!Send` future factory (`Cell::local`)"
                .into(),
            advice: Advice::runners("a runner that accepts them", ["tokio", "smol", "inline"])
                .without(runner),
        }
    }

    /// `Unsupported` for a runner whose background tasks may move between threads,
    /// asked to spawn a `!Send` cell.
    pub fn local_spawn_unsupported(runner: &str) -> Self {
        RunError::Unsupported {
            runner: runner.into(),
            reason: "its background tasks may move between threads, so it cannot spawn a \
                     cell built with `Cell::local`"
                .into(),
            advice: Advice::runners("a runner whose tasks stay on one thread", ["tokio", "smol"])
                .or("run the cell with run() instead of spawning it")
                .without(runner),
        }
    }

    /// What to do instead, if the error has advice.
    pub fn advice(&self) -> Option<Advice> {
        let advice = match self {
            RunError::WouldDeadlock { advice, .. }
            | RunError::WouldBlock { advice, .. }
            | RunError::NotRestartable { advice, .. }
            | RunError::Unsupported { advice, .. } => advice.clone(),
            RunError::TimedOut { .. } => {
                Advice::text("raise the timeout, or run the work in the background")
            }
            RunError::Stopped { .. } => Advice::text(
                "get it again from the registry (`Registry::get` starts a built-in \
                 runner anew), or use another runner",
            ),
            RunError::WrongRuntime { needs, .. } => {
                Advice::runners(format!("a {needs} runner"), [needs.clone()])
            }
            RunError::TaskDropped { .. } => {
                Advice::runners("a runner whose tasks outlive the cell", ["tokio"])
            }
            _ => return None,
        };
        (!advice.is_empty()).then_some(advice)
    }

    /// What happened, without the advice: what a front end shows before its own
    /// rendering of [`advice`](Self::advice).
    pub fn message(&self) -> String {
        match self {
            RunError::Panicked { message } => format!("the cell panicked: {message}"),
            RunError::TimedOut { after } => {
                format!("the cell did not finish within {after:?} and was dropped")
            }
            RunError::Cancelled => "the cell was cancelled (KeyboardInterrupt)".into(),
            RunError::WouldDeadlock { runner, what, .. } => format!(
                "runner `{runner}` would deadlock: {what}: this thread drives `{runner}`'s \
                 loop, so it would wait for itself"
            ),
            RunError::WouldBlock { runner, what, .. } => format!(
                "runner `{runner}` would block {what}: this thread drives it, and its other \
                 tasks, timers and sockets would stop while the cell runs"
            ),
            RunError::Stopped { runner } => format!("runner `{runner}` was shut down"),
            RunError::NotRestartable { runner, reason, .. } => {
                format!("runner `{runner}` cannot be restarted: {reason}")
            }
            RunError::Unsupported { runner, reason, .. } => {
                format!("runner `{runner}` cannot do this: {reason}")
            }
            RunError::WrongRuntime {
                needs,
                runner,
                detail,
            } => {
                let mut text =
                    format!("this awaitable needs a {needs} runtime but runs under `{runner}`");
                if !detail.is_empty() {
                    text.push_str(&format!(" ({detail})"));
                }
                text
            }
            RunError::TaskDropped { runner } => format!(
                "the task was dropped before it finished, because the loop of `{runner}` \
                 went away"
            ),
            RunError::Failed { message } => message.clone(),
            RunError::Backend(source) => format!("backend error: {source}"),
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
    /// `true` for [`RunError::WouldBlock`].
    pub fn is_would_block(&self) -> bool {
        matches!(self, RunError::WouldBlock { .. })
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
    /// `true` for [`RunError::WrongRuntime`].
    pub fn is_wrong_runtime(&self) -> bool {
        matches!(self, RunError::WrongRuntime { .. })
    }
    /// `true` for [`RunError::TaskDropped`].
    pub fn is_task_dropped(&self) -> bool {
        matches!(self, RunError::TaskDropped { .. })
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        match self.advice() {
            Some(advice) => write!(f, ". Instead, {advice}"),
            None => Ok(()),
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
