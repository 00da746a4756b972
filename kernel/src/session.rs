//! [`Session`]: what the kernel asks of a language engine, and the values it trades.

use autoawait_core::{CancelToken, CellId};

use crate::KernelOutput;

/// A language engine the kernel drives (the autoawait shell's Lua engine is one).
///
/// The kernel calls every method on one thread (the thread that called
/// [`Kernel::serve`](crate::Kernel::serve)), one request at a time, in the order the
/// shell channel delivered them; a subshell's session (see
/// [`subshell`](Self::subshell)) is called likewise on its subshell's thread. Output goes through the [`KernelOutput`] handed to
/// the engine (usable from any thread, also after a cell finished); the value and the
/// error of the cell itself are returned from [`execute`](Self::execute).
///
/// # Examples
///
/// ```
/// use autoawait_kernel::{Completeness, ExecuteContext, ExecuteOutcome, KernelInfo, MimeBundle, Session};
///
/// struct Echo;
///
/// impl Session for Echo {
///     fn info(&self) -> KernelInfo { KernelInfo::default() }
///     fn execute(&mut self, code: &str, ctx: &ExecuteContext) -> ExecuteOutcome {
///         ctx.output.stdout(Some(ctx.cell), &format!("{code}\n"));
///         Ok(Some(MimeBundle::text(code)))
///     }
///
///     fn is_complete(&mut self, _code: &str) -> Completeness {
///         Completeness::Complete
///     }
/// }
/// ```
pub trait Session: Send {
    /// What `kernel_info_reply` says about the language. Asked once, at start.
    fn info(&self) -> KernelInfo;

    /// Runs one cell; blocks until it is done.
    ///
    /// Run the cell with origin `ctx.cell` (or call
    /// [`KernelOutput::cell_started`] with the id you use), so that output of the cell and
    /// of the tasks it starts reaches this request's cell in the notebook. Stop promptly
    /// when `ctx.cancel` fires (a kernel interrupt or SIGINT); the kernel reports the
    /// error of an interrupted cell as `KeyboardInterrupt`.
    ///
    /// # Errors
    ///
    /// The cell's error (`ename`, `evalue`, `traceback`); the kernel publishes it and
    /// replies `status: error`.
    fn execute(&mut self, code: &str, ctx: &ExecuteContext) -> ExecuteOutcome;

    /// Is `code` a complete cell, one that needs more lines, or invalid?
    fn is_complete(&mut self, code: &str) -> Completeness;

    /// Completions at byte offset `cursor` of `code`.
    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        let _ = code;
        Completions::none(cursor)
    }

    /// Help for the name at byte offset `cursor` (`detail_level` 0 or 1), if any.
    fn inspect(&mut self, code: &str, cursor: usize, detail_level: u8) -> Option<MimeBundle> {
        let _ = (code, cursor, detail_level);
        None
    }

    /// The value of `expression`, for the `user_expressions` of an execute request
    /// (evaluated after the cell ran without error). By default: unsupported.
    ///
    /// # Errors
    ///
    /// The expression's error, reported under its name in the execute reply.
    fn evaluate(&mut self, expression: &str) -> Result<MimeBundle, ErrorReport> {
        let _ = expression;
        Err(ErrorReport::new(
            "NotImplementedError",
            "this kernel does not evaluate user_expressions",
        ))
    }

    /// A session for a new kernel subshell (JEP 91), sharing this session's state,
    /// whose [`execute`](Self::execute) may run on another thread at the same time
    /// as this one's; `None` (the default) if the engine cannot run cells
    /// concurrently, and then the kernel does not advertise subshells.
    ///
    /// The kernel calls it once when it starts serving, and then on the result of
    /// that call (never on the main session) each time a front end creates a
    /// subshell, from the control thread while cells run: it must return at once,
    /// without waiting for a running cell.
    fn subshell(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// The kernel shuts down (or restarts, if `restart`): shut runners down cleanly.
    fn shutdown(&mut self, restart: bool) {
        let _ = restart;
    }
}

/// What a cell gives back: its value to show as `Out[n]` (if any), or its error.
pub type ExecuteOutcome = Result<Option<MimeBundle>, ErrorReport>;

/// What the kernel tells [`Session::execute`] about the request.
#[derive(Debug)]
pub struct ExecuteContext {
    /// The cell identity of this request; output tagged with it goes to this cell.
    pub cell: CellId,
    /// The execution count (`In[n]`); not incremented by silent or no-history requests.
    pub execution_count: u64,
    /// `silent`: no `execute_input`, no `execute_result`, no history.
    pub silent: bool,
    /// `store_history`: the cell counts (`In[n]`) and lands in the history.
    pub store_history: bool,
    /// The front end can answer `input()` requests for this cell.
    pub allow_stdin: bool,
    /// Fires on `interrupt_request` or SIGINT; pass it to the runner (`RunOptions::cancel`).
    pub cancel: CancelToken,
    /// Where output goes (the same handle [`Kernel::output`](crate::Kernel::output) gives).
    pub output: KernelOutput,
}

/// A value to show: a MIME bundle with `text/plain` and maybe richer forms.
///
/// # Examples
///
/// ```
/// use autoawait_kernel::MimeBundle;
///
/// let b = MimeBundle::text("3").with("text/html", "<b>3</b>");
/// assert_eq!(b.get("text/plain"), Some("3"));
/// assert_eq!(b.get("text/html"), Some("<b>3</b>"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MimeBundle {
    /// `(mime type, data)` pairs; `text/plain` first.
    pub data: Vec<(String, String)>,
}

impl MimeBundle {
    /// Plain text only.
    pub fn text(plain: impl Into<String>) -> Self {
        MimeBundle {
            data: vec![("text/plain".into(), plain.into())],
        }
    }

    /// Adds (or replaces) the form for `mime`.
    pub fn with(mut self, mime: impl Into<String>, data: impl Into<String>) -> Self {
        let mime = mime.into();
        let data = data.into();
        match self.data.iter_mut().find(|(m, _)| *m == mime) {
            Some(slot) => slot.1 = data,
            None => self.data.push((mime, data)),
        }
        self
    }

    /// The data for `mime`.
    pub fn get(&self, mime: &str) -> Option<&str> {
        self.data
            .iter()
            .find(|(m, _)| m == mime)
            .map(|(_, d)| d.as_str())
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (mime, data) in &self.data {
            let value = if mime == "application/json" || mime.ends_with("+json") {
                serde_json::from_str(data).unwrap_or_else(|_| data.clone().into())
            } else {
                data.clone().into()
            };
            map.insert(mime.clone(), value);
        }
        serde_json::Value::Object(map)
    }
}

/// A cell's error, in the shape a notebook shows.
///
/// # Examples
///
/// ```
/// use autoawait_kernel::ErrorReport;
///
/// let e = ErrorReport::new("LuaError", "boom").traceback(["stack traceback:", "\t[C]: in ?"]);
/// assert_eq!(e.traceback.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorReport {
    /// The kind (`LuaError`, `SyntaxError`, `KeyboardInterrupt`, ...).
    pub ename: String,
    /// The message.
    pub evalue: String,
    /// Lines to show (may hold ANSI colours). Empty: the kernel shows `ename: evalue`.
    pub traceback: Vec<String>,
}

impl ErrorReport {
    /// An error without traceback.
    pub fn new(ename: impl Into<String>, evalue: impl Into<String>) -> Self {
        ErrorReport {
            ename: ename.into(),
            evalue: evalue.into(),
            traceback: Vec::new(),
        }
    }

    /// Sets the traceback lines.
    pub fn traceback<I, S>(mut self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.traceback = lines.into_iter().map(Into::into).collect();
        self
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let traceback = if self.traceback.is_empty() {
            vec![format!("{}: {}", self.ename, self.evalue)]
        } else {
            self.traceback.clone()
        };
        serde_json::json!({
            "ename": self.ename,
            "evalue": self.evalue,
            "traceback": traceback,
        })
    }
}

/// The answer to `is_complete_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Ready to run.
    Complete,
    /// Needs more lines; `indent` is the suggested indentation of the next line.
    Incomplete {
        /// Suggested indentation.
        indent: String,
    },
    /// Cannot become valid by adding lines.
    Invalid,
    /// The engine cannot tell.
    Unknown,
}

/// The answer to `complete_request`: matches for the text in `cursor_start..cursor_end`
/// (byte offsets into the code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completions {
    /// The candidates, each replacing `cursor_start..cursor_end`.
    pub matches: Vec<String>,
    /// Start of the replaced text (byte offset).
    pub cursor_start: usize,
    /// End of the replaced text (byte offset).
    pub cursor_end: usize,
}

impl Completions {
    /// No completions at `cursor`.
    pub fn none(cursor: usize) -> Self {
        Completions {
            matches: Vec::new(),
            cursor_start: cursor,
            cursor_end: cursor,
        }
    }
}

/// What `kernel_info_reply` says: the implementation and its language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelInfo {
    /// `implementation` (`autoawait`).
    pub implementation: String,
    /// `implementation_version`.
    pub implementation_version: String,
    /// `language_info.name`.
    pub language: String,
    /// `language_info.version`.
    pub language_version: String,
    /// `language_info.mimetype`.
    pub mimetype: String,
    /// `language_info.file_extension`, with its dot.
    pub file_extension: String,
    /// `banner`, shown by consoles.
    pub banner: String,
    /// `help_links`, as `(text, url)`.
    pub help_links: Vec<(String, String)>,
}
