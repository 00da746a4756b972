//! What a cell produces ([`Output`]), where it goes ([`Sink`]), and how Lua values
//! are shown.

use std::sync::Mutex;

use autoawait_core::CellId;

use crate::ErrorInfo;

/// A value to show, as a MIME bundle: `text/plain` always, richer forms maybe.
///
/// A terminal shows [`plain`](Self::plain); a notebook kernel picks the richest form.
///
/// # Examples
///
/// ```
/// use autoawait_shell::Rich;
///
/// let md = Rich::markdown("**hi**");
/// assert_eq!(md.plain, "**hi**");
/// assert_eq!(md.get("text/markdown"), Some("**hi**"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rich {
    /// The `text/plain` form.
    pub plain: String,
    /// Other forms, as `(mime type, data)`.
    pub mime: Vec<(String, String)>,
}

impl Rich {
    /// Plain text only.
    pub fn text(plain: impl Into<String>) -> Self {
        Rich {
            plain: plain.into(),
            mime: Vec::new(),
        }
    }

    /// Markdown: shown as its source in a terminal.
    pub fn markdown(source: impl Into<String>) -> Self {
        let source = source.into();
        Rich {
            plain: source.clone(),
            mime: vec![("text/markdown".into(), source)],
        }
    }

    /// HTML: shown as its source in a terminal.
    pub fn html(source: impl Into<String>) -> Self {
        let source = source.into();
        Rich {
            plain: source.clone(),
            mime: vec![("text/html".into(), source)],
        }
    }

    /// The data for `mime`, `text/plain` included.
    pub fn get(&self, mime: &str) -> Option<&str> {
        if mime == "text/plain" {
            return Some(&self.plain);
        }
        self.mime
            .iter()
            .find(|(m, _)| m == mime)
            .map(|(_, d)| d.as_str())
    }
}

/// One piece of output of a cell (or of a task a cell started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Text for standard output (`print`, `io.write`); includes its newline.
    Stdout(String),
    /// Text for standard error; includes its newline.
    Stderr(String),
    /// The value of the cell's final expression: `Out[count]`.
    Result {
        /// The execution count (`n` in `Out[n]`).
        count: u64,
        /// The value.
        value: Rich,
    },
    /// A value shown with `display(v)`, or with `display_handle(v)`: then it has an
    /// `id`, and later [`UpdateDisplay`](Output::UpdateDisplay)s replace it.
    Display {
        /// The value.
        value: Rich,
        /// The display id of a handle's value.
        id: Option<String>,
    },
    /// `handle:update(v)`: what display `id` shows becomes `value`, wherever it is.
    UpdateDisplay {
        /// The display id.
        id: String,
        /// The new value.
        value: Rich,
    },
    /// The cell failed, or a task it started failed and nobody looked at the result.
    Error(ErrorInfo),
}

/// Where outputs go: a terminal, a notebook kernel, a test.
///
/// Outputs arrive from any thread: the cell's, a runner's reactor thread, a task's.
/// `cell` is the cell the output belongs to ([`autoawait_core::current_cell`] where
/// it was produced), which may be a cell that already finished.
///
/// # Examples
///
/// ```
/// use autoawait_shell::{Engine, Output, VecSink};
/// use std::sync::Arc;
///
/// let sink = Arc::new(VecSink::default());
/// let mut engine = Engine::new(sink.clone()).unwrap();
/// engine.run_cell("print('hi')");
/// assert_eq!(sink.take()[0].1, Output::Stdout("hi\n".into()));
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Delivers one output of cell `cell`.
    fn emit(&self, cell: CellId, output: Output);

    /// Cell `cell` starts running: output for other cells is now "late".
    ///
    /// A nested cell (`run_cell(src)` inside a cell) is announced here too, without a
    /// matching [`cell_finished`](Self::cell_finished): when it ends, the outer cell is
    /// announced again.
    fn cell_started(&self, cell: CellId) {
        let _ = cell;
    }

    /// Cell `cell` finished: its tasks' output is now late output.
    fn cell_finished(&self, cell: CellId) {
        let _ = cell;
    }
}

/// A [`Sink`] that keeps everything, for tests and embedders.
#[derive(Debug, Default)]
pub struct VecSink {
    outputs: Mutex<Vec<(CellId, Output)>>,
}

impl VecSink {
    /// Takes every output collected so far.
    pub fn take(&self) -> Vec<(CellId, Output)> {
        std::mem::take(&mut *self.outputs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Sink for VecSink {
    fn emit(&self, cell: CellId, output: Output) {
        self.outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((cell, output));
    }
}

pub(crate) use crate::show::{show_value, show_values};
