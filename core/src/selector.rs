//! [`Selector`]: the `%autoawait` magic, shared by every front end.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::{LookupError, Registry, Runner};

/// Why `%autoawait` refused its argument; the selector's state is unchanged.
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, SelectError, Selector};
///
/// let mut selector = Selector::new(Registry::global());
/// assert!(matches!(selector.handle("on off"), Err(SelectError::Usage(_))));
/// assert!(matches!(selector.handle("tokoi"), Err(SelectError::Lookup(_))));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SelectError {
    /// The argument is not one `%autoawait` takes; the message says which are.
    Usage(String),
    /// The runner cannot be had.
    Lookup(LookupError),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::Usage(message) => f.write_str(message),
            SelectError::Lookup(e) => e.fmt(f),
        }
    }
}

impl Error for SelectError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SelectError::Usage(_) => None,
            SelectError::Lookup(e) => Some(e),
        }
    }
}

impl From<LookupError> for SelectError {
    fn from(e: LookupError) -> Self {
        SelectError::Lookup(e)
    }
}

/// The `%autoawait` state machine: is autoawait on, and which runner cells use.
///
/// It prints nothing: [`handle`](Self::handle) returns the text to show, or an error
/// that leaves the previous state intact.
///
/// | argument | effect |
/// |---|---|
/// | (none) | the status line |
/// | `on`, `off`, `true`, `false`, `1`, `0` (any case) | toggle; the runner is kept |
/// | a runner name (any case) | select it and turn autoawait on |
/// | `--list` | a table of every runner |
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, Selector};
///
/// let mut selector = Selector::new(Registry::global());
/// selector.handle("inline").unwrap();
/// assert_eq!(
///     selector.handle("").unwrap(),
///     "autoawait is `on`, and set to use `inline` (nested: re-entrant: cells may run cells)"
/// );
/// selector.handle("OFF").unwrap();
/// assert!(!selector.is_on());
/// let err = selector.handle("inlnie").unwrap_err();
/// assert!(err.to_string().contains("did you mean `inline`?"));
/// assert_eq!(selector.name(), "inline");
/// ```
pub struct Selector<'r> {
    registry: &'r Registry,
    on: bool,
    name: String,
    runner: Option<Arc<dyn Runner>>,
}

/// The runner a new [`Selector`] uses: `tokio` when it is built in, else `inline`.
pub fn default_runner_name(registry: &Registry) -> &'static str {
    let tokio_built = registry
        .list()
        .iter()
        .any(|l| l.info.name == "tokio" && l.unavailable.is_none());
    if tokio_built {
        "tokio"
    } else {
        "inline"
    }
}

impl<'r> Selector<'r> {
    /// A selector over `registry`, on, with the [default runner](default_runner_name)
    /// (created on first use).
    pub fn new(registry: &'r Registry) -> Self {
        Selector {
            registry,
            on: true,
            name: default_runner_name(registry).to_owned(),
            runner: None,
        }
    }

    /// `true` if cells run through the runner; `false` if they run synchronously.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Turns autoawait on or off; the runner is kept.
    pub fn set_on(&mut self, on: bool) {
        self.on = on;
    }

    /// The name of the selected runner.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry the selector picks from.
    pub fn registry(&self) -> &'r Registry {
        self.registry
    }

    /// The selected runner, created on first use.
    ///
    /// # Errors
    ///
    /// If the runner cannot be created (see [`Registry::get`]).
    pub fn runner(&mut self) -> Result<Arc<dyn Runner>, LookupError> {
        if let Some(runner) = &self.runner {
            return Ok(runner.clone());
        }
        let runner = self.registry.get(&self.name)?;
        self.runner = Some(runner.clone());
        Ok(runner)
    }

    /// Selects runner `name` (any case) and turns autoawait on.
    ///
    /// # Errors
    ///
    /// As [`Registry::get`]; the previous state is kept.
    pub fn select(&mut self, name: &str) -> Result<(), LookupError> {
        let runner = self.registry.get(name)?;
        self.name = runner.info().name.to_string();
        self.runner = Some(runner);
        self.on = true;
        Ok(())
    }

    /// The status line: ``autoawait is `on`, and set to use `tokio` (threaded: ...)``.
    pub fn status(&self) -> String {
        let state = if self.on { "on" } else { "off" };
        let mut line = format!("autoawait is `{state}`, and set to use `{}`", self.name);
        if let Some(info) = self.registry.info(&self.name) {
            let _ = write!(
                line,
                " ({}: {})",
                info.strategy,
                info.strategy.between_cells()
            );
        }
        line
    }

    /// Handles the argument of `%autoawait` and returns what to show.
    ///
    /// # Errors
    ///
    /// [`SelectError::Usage`] for more than one argument or an unknown flag;
    /// [`SelectError::Lookup`] for a name that cannot be selected. The state is
    /// unchanged on error.
    pub fn handle(&mut self, arg: &str) -> Result<String, SelectError> {
        let arg = arg.trim();
        if arg.is_empty() {
            return Ok(self.status());
        }
        if arg.split_whitespace().nth(1).is_some() {
            return Err(SelectError::Usage(format!(
                "%autoawait takes one argument (on, off, a runner name or --list), not `{arg}`"
            )));
        }
        match arg.to_lowercase().as_str() {
            "on" | "true" | "1" => self.on = true,
            "off" | "false" | "0" => self.on = false,
            "--list" | "-l" => return Ok(self.table()),
            flag if flag.starts_with('-') => {
                return Err(SelectError::Usage(format!(
                    "%autoawait has no option `{arg}`; its only option is --list"
                )))
            }
            _ => self.select(arg)?,
        }
        Ok(self.status())
    }

    /// The `--list` table: name, backend, strategy, source, summary; `*` marks the
    /// selected runner.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .registry
            .list()
            .into_iter()
            .map(|l| {
                let mark = if l.info.name == self.name { "* " } else { "  " };
                let source = match &l.unavailable {
                    Some(_) => "not built".to_owned(),
                    None => l.source.to_string(),
                };
                let summary = match &l.unavailable {
                    Some(reason) => reason.clone(),
                    None => l.info.summary.to_string(),
                };
                [
                    format!("{mark}{}", l.info.name),
                    l.info.backend.to_string(),
                    l.info.strategy.to_string(),
                    source,
                    summary,
                ]
            })
            .collect();
        let header = ["  name", "backend", "strategy", "source", "summary"].map(String::from);
        let mut widths = [0; 4];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            for (i, cell) in row.iter().enumerate() {
                if i < 4 {
                    let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
                } else {
                    out.push_str(cell);
                }
            }
            out.push('\n');
        }
        out.pop();
        out
    }
}

impl std::fmt::Debug for Selector<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector")
            .field("on", &self.on)
            .field("name", &self.name)
            .finish()
    }
}
