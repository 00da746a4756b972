//! [`ErrorInfo`] and [`ErrorKind`]: why a cell failed, in the shell's words.
//!
//! The libraries' errors carry data (the runner that would work); this module says
//! it the way a cell's user types it: `%autoawait tokio-nested`.

use std::fmt;

use autoawait_core::{Advice, LookupError, RunError, SelectError, WaitError};

use autoawait_plugin::PluginError;

/// What kind of error a cell met: the `ename` a notebook shows.
///
/// # Examples
///
/// ```
/// use autoawait_shell::ErrorKind;
///
/// assert_eq!(ErrorKind::WouldDeadlock.to_string(), "WouldDeadlock");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The cell does not parse.
    SyntaxError,
    /// The cell raised a Lua error.
    LuaError,
    /// A magic or builtin was used wrongly (an unknown runner, a bad argument).
    UsageError,
    /// The cell was interrupted (Ctrl-C, a kernel interrupt).
    Cancelled,
    /// The cell ran past its timeout.
    TimedOut,
    /// Waiting here would never finish.
    WouldDeadlock,
    /// Blocking here would freeze a loop this thread drives.
    WouldBlock,
    /// An awaitable needs another runtime than the one running the cell.
    WrongRuntime,
    /// Rust code under the cell panicked.
    Panicked,
    /// The runner was shut down.
    Stopped,
    /// The runner's loop cannot start again.
    NotRestartable,
    /// The runner cannot do what the cell asked.
    Unsupported,
    /// A task's loop went away before it finished.
    TaskDropped,
    /// A task's result is not there yet.
    NotReady,
    /// A background task failed and nobody looked at its result.
    TaskError,
    /// A plugin could not be loaded.
    PluginError,
    /// Any other failure of a runner or backend.
    RunError,
}

impl ErrorKind {
    /// The name a notebook shows (`ename`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::SyntaxError => "SyntaxError",
            ErrorKind::LuaError => "LuaError",
            ErrorKind::UsageError => "UsageError",
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::TimedOut => "TimedOut",
            ErrorKind::WouldDeadlock => "WouldDeadlock",
            ErrorKind::WouldBlock => "WouldBlock",
            ErrorKind::WrongRuntime => "WrongRuntime",
            ErrorKind::Panicked => "Panicked",
            ErrorKind::Stopped => "Stopped",
            ErrorKind::NotRestartable => "NotRestartable",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::TaskDropped => "TaskDropped",
            ErrorKind::NotReady => "NotReady",
            ErrorKind::TaskError => "TaskError",
            ErrorKind::PluginError => "PluginError",
            ErrorKind::RunError => "RunError",
        }
    }

    /// The kind of a runner's error.
    pub fn of(err: &RunError) -> Self {
        match err {
            RunError::Cancelled => ErrorKind::Cancelled,
            RunError::TimedOut { .. } => ErrorKind::TimedOut,
            RunError::WouldDeadlock { .. } => ErrorKind::WouldDeadlock,
            RunError::WouldBlock { .. } => ErrorKind::WouldBlock,
            RunError::WrongRuntime { .. } => ErrorKind::WrongRuntime,
            RunError::Panicked { .. } => ErrorKind::Panicked,
            RunError::Stopped { .. } => ErrorKind::Stopped,
            RunError::NotRestartable { .. } => ErrorKind::NotRestartable,
            RunError::Unsupported { .. } => ErrorKind::Unsupported,
            RunError::TaskDropped { .. } => ErrorKind::TaskDropped,
            RunError::Failed { .. } => ErrorKind::LuaError,
            _ => ErrorKind::RunError,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a cell failed, in the shape a notebook wants it (`ename`, `evalue`, `traceback`).
///
/// # Examples
///
/// ```
/// use autoawait_core::RunError;
/// use autoawait_shell::{ErrorInfo, ErrorKind};
///
/// let info = ErrorInfo::from(&RunError::would_deadlock("tokio", "run() inside a cell"));
/// assert_eq!(info.kind, ErrorKind::WouldDeadlock);
/// assert!(info.message.contains("`%autoawait tokio-nested`"), "{}", info.message);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The kind of error.
    pub kind: ErrorKind,
    /// The message (the first line a user reads).
    pub message: String,
    /// The Lua stack traceback, one frame a line (may be empty).
    pub traceback: Vec<String>,
}

impl ErrorInfo {
    /// An error with no traceback.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorInfo {
            kind,
            message: message.into(),
            traceback: Vec::new(),
        }
    }

    /// A usage error: a magic or builtin used wrongly.
    pub fn usage(message: impl Into<String>) -> Self {
        ErrorInfo::new(ErrorKind::UsageError, message)
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        for line in &self.traceback {
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorInfo {}

/// A library error raised into Lua: in the shell's words (what `pcall` shows), its
/// kind kept for the cell's error.
pub(crate) fn external<E>(err: &E) -> mlua::Error
where
    for<'a> ErrorInfo: From<&'a E>,
{
    mlua::Error::external(ErrorInfo::from(err))
}

/// Advice as a cell's user acts on it: `select a re-entrant runner: `%autoawait
/// tokio-nested``.
pub(crate) fn advise(advice: &Advice) -> String {
    let mut text = String::new();
    let _ = advice.write_with(&mut text, "select", &|r| format!("`%autoawait {r}`"));
    text
}

/// A runner's error in the shell's words.
pub(crate) fn describe(err: &RunError) -> String {
    let message = err.message();
    match err {
        RunError::TimedOut { .. } => format!(
            "{message}; raise the timeout or spawn it in the background with %%run_in_reactor"
        ),
        RunError::Stopped { .. } => {
            format!("{message}; select another runner with %autoawait")
        }
        _ => match err.advice() {
            Some(advice) => format!("{message}. Instead, {}", advise(&advice)),
            None => message,
        },
    }
}

impl From<&RunError> for ErrorInfo {
    fn from(err: &RunError) -> Self {
        ErrorInfo::new(ErrorKind::of(err), describe(err))
    }
}

impl From<&LookupError> for ErrorInfo {
    fn from(err: &LookupError) -> Self {
        match err {
            LookupError::CannotCreate { name, source } => ErrorInfo::new(
                ErrorKind::of(source),
                format!("runner `{name}` cannot start: {}", describe(source)),
            ),
            LookupError::UnknownRunner { .. } => ErrorInfo::usage(format!(
                "{err} (see %autoawait --list). A plugin's runners (twisted, ...) appear \
                 once it is loaded: %load_ext NAME"
            )),
            other => ErrorInfo::usage(other.to_string()),
        }
    }
}

impl From<&SelectError> for ErrorInfo {
    fn from(err: &SelectError) -> Self {
        match err {
            SelectError::Lookup(e) => ErrorInfo::from(e),
            other => ErrorInfo::usage(other.to_string()),
        }
    }
}

impl From<&WaitError> for ErrorInfo {
    fn from(err: &WaitError) -> Self {
        match err {
            WaitError::Run(e) => ErrorInfo::from(e),
            WaitError::NotReady { .. } => ErrorInfo::new(ErrorKind::NotReady, err.to_string()),
            other => ErrorInfo::usage(other.to_string()),
        }
    }
}

impl From<&PluginError> for ErrorInfo {
    fn from(err: &PluginError) -> Self {
        ErrorInfo::new(ErrorKind::PluginError, err.to_string())
    }
}

/// A Lua error as an [`ErrorInfo`]: the innermost message, its kind, the traceback.
pub(crate) fn lua_error(err: &mlua::Error) -> ErrorInfo {
    let mut traceback = Vec::new();
    let mut context = Vec::new();
    let mut err = err;
    loop {
        match err {
            mlua::Error::CallbackError {
                traceback: tb,
                cause,
            } => {
                if traceback.is_empty() {
                    traceback = split_traceback(tb).1;
                }
                err = cause;
            }
            mlua::Error::WithContext { context: c, cause } => {
                context.push(c.clone());
                err = cause;
            }
            _ => break,
        }
    }
    let (kind, message) = match err {
        mlua::Error::SyntaxError { message, .. } => (ErrorKind::SyntaxError, message.clone()),
        mlua::Error::RuntimeError(text) => {
            let (message, tb) = split_traceback(text);
            if traceback.is_empty() {
                traceback = tb;
            }
            (ErrorKind::LuaError, message)
        }
        mlua::Error::ExternalError(e) => {
            let info = if let Some(run) = e.downcast_ref::<RunError>() {
                ErrorInfo::from(run)
            } else if let Some(wait) = e.downcast_ref::<WaitError>() {
                ErrorInfo::from(wait)
            } else if let Some(lookup) = e.downcast_ref::<LookupError>() {
                ErrorInfo::from(lookup)
            } else if let Some(info) = e.downcast_ref::<ErrorInfo>() {
                info.clone()
            } else if let Some(expired) = e.downcast_ref::<crate::engine::ScopeExpired>() {
                ErrorInfo::from(&RunError::TimedOut {
                    after: expired.after,
                })
            } else {
                ErrorInfo::new(ErrorKind::LuaError, e.to_string())
            };
            (info.kind, info.message)
        }
        other => (ErrorKind::LuaError, other.to_string()),
    };
    let mut message = message;
    for c in context.iter().rev() {
        message = format!("{c}: {message}");
    }
    ErrorInfo {
        kind,
        message,
        traceback,
    }
}

/// One frame of a Lua traceback that points into a cell: `In[3]:2: in function 'f'`.
struct CellFrame {
    count: u64,
    line: usize,
    what: String,
}

fn cell_frame(text: &str) -> Option<CellFrame> {
    let rest = text.trim().strip_prefix("In[")?;
    let (count, rest) = rest.split_once("]:")?;
    let (line, what) = rest.split_once(':')?;
    Some(CellFrame {
        count: count.parse().ok()?,
        line: line.parse().ok()?,
        what: what.trim().trim_start_matches("in ").to_owned(),
    })
}

/// Frames that are the machinery's, not the user's: the `error` call itself, the
/// builtins' wrappers, mlua's async glue.
fn is_noise(frame: &str) -> bool {
    let frame = frame.trim();
    frame.starts_with("[C]: in ?")
        || frame.starts_with("[C]: in function 'error'")
        || frame.starts_with("[C]: in function 'pcall'")
        || frame.starts_with("[C]: in upvalue")
        || frame.starts_with("builtins:")
        || frame.starts_with("__mlua")
        || frame == "stack traceback:"
}

/// The traceback as IPython shows one: each frame in a cell with its line and the
/// lines around it (`---->` marks the failing one), the machinery's frames left
/// out. `source` gives a cell's source by its number.
pub(crate) fn with_context(
    mut info: ErrorInfo,
    source: &dyn Fn(u64) -> Option<String>,
) -> ErrorInfo {
    let mut frames: Vec<String> = info
        .traceback
        .iter()
        .filter(|l| !is_noise(l))
        .cloned()
        .collect();
    // No traceback (a syntax error): the message says where.
    if frames.is_empty() {
        if let Some(at) = info.message.split_once(": ").map(|(at, _)| at) {
            if cell_frame(&format!("{at}: in main chunk")).is_some() {
                frames.push(format!("{at}: in main chunk"));
            }
        }
    }
    let mut lines = Vec::new();
    for frame in frames {
        let Some(cell) = cell_frame(&frame) else {
            lines.push(format!("  {}", frame.trim()));
            continue;
        };
        lines.push(format!(
            "  In[{}], line {}, in {}",
            cell.count, cell.line, cell.what
        ));
        let Some(text) = source(cell.count) else {
            continue;
        };
        let src: Vec<&str> = text.lines().collect();
        let first = cell.line.saturating_sub(2).max(1);
        let last = (cell.line + 1).min(src.len());
        for n in first..=last {
            let marker = if n == cell.line { "---->" } else { "     " };
            lines.push(format!("  {marker} {n} | {}", src[n - 1]));
        }
    }
    info.traceback = lines;
    info
}

fn split_traceback(text: &str) -> (String, Vec<String>) {
    match text.split_once("\nstack traceback:\n") {
        Some((message, tb)) => {
            let mut lines = vec!["stack traceback:".to_owned()];
            lines.extend(
                tb.lines()
                    .map(|l| format!("  {}", l.trim()))
                    .filter(|l| !l.contains("[C]: in ?")),
            );
            (message.to_owned(), lines)
        }
        None => (text.to_owned(), Vec::new()),
    }
}
