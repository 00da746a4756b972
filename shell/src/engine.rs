//! [`Engine`]: runs cells (Lua and magics) through the selected runner.

use std::cell::Cell as StdCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use autoawait_core::{
    current_cell, current_runner_name, CancelToken, Cell, CellId, CellResult, LookupError,
    Registry, RunError, RunOptions, Runner, Selector,
};
use mlua::{Function, HookTriggers, Lua, MultiValue, Table, Value, VmState};

use crate::builtins::{self, RichValue};
use crate::errors::lua_error;
use crate::magics;
use crate::output::{show_values, Output, Rich, Sink};
use crate::{ErrorInfo, ErrorKind};

/// What running one cell gave: its number and whether it failed.
///
/// The outputs themselves (stream text, `Out[n]`, the error) went to the [`Sink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellReport {
    /// The execution count of the cell (`n` in `In[n]`); `0` for a blank cell.
    pub count: u64,
    /// Why the cell failed, if it did (also sent to the sink as [`Output::Error`]).
    pub error: Option<ErrorInfo>,
}

impl CellReport {
    /// `true` if the cell did not fail.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Whether some source is a complete cell yet (for multi-line input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Run it.
    Complete,
    /// Lua wants more lines (an open `function`, `do`, string, ...).
    Incomplete,
}

/// State shared by the engine and the Lua builtins (which may run on any thread).
pub(crate) struct Shared {
    pub(crate) sink: Arc<dyn Sink>,
    selector: Mutex<Selector<'static>>,
    count: AtomicU64,
    /// The cell the engine is running (0: none).
    running: AtomicU64,
    /// The cell an interrupt was asked for: the instruction hook stops its Lua code.
    interrupted: AtomicU64,
    /// Make a cancel token per cell (set once an [`Interrupter`] exists).
    interruptible: AtomicBool,
    token: Mutex<Option<CancelToken>>,
}

impl Shared {
    pub(crate) fn selector(&self) -> MutexGuard<'_, Selector<'static>> {
        self.selector.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next execution count.
    pub(crate) fn next_count(&self) -> u64 {
        self.count.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The cell output belongs to: the one being polled, else the one the engine
    /// runs, else the last one (a plugin's reactor thread calling back into Lua).
    pub(crate) fn output_cell(&self) -> CellId {
        current_cell().unwrap_or_else(|| match self.running.load(Ordering::Relaxed) {
            0 => CellId::new(self.count.load(Ordering::Relaxed)),
            running => CellId::new(running),
        })
    }

    /// The runner whose loop drives this thread, else the selected one.
    pub(crate) fn active_runner(&self) -> Result<Arc<dyn Runner>, LookupError> {
        if let Some(name) = current_runner_name() {
            if let Ok(runner) = Registry::global().get(&name) {
                return Ok(runner);
            }
        }
        self.selector().runner()
    }
}

thread_local! {
    /// Set while a cell runs with autoawait off: `await` refuses.
    static SYNC_CELL: StdCell<bool> = const { StdCell::new(false) };
}

/// `true` while this thread polls a cell that runs with autoawait off.
pub(crate) fn in_sync_cell() -> bool {
    SYNC_CELL.with(StdCell::get)
}

/// Polls a cell's future with [`in_sync_cell`] set.
pub(crate) struct SyncMode<F>(Pin<Box<F>>);

/// Wraps a cell's future so that it runs as a synchronous cell (`await` refused).
pub(crate) fn sync_mode<F: Future>(fut: F) -> SyncMode<F> {
    SyncMode(Box::pin(fut))
}

impl<F: Future> Future for SyncMode<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let prev = SYNC_CELL.with(|s| s.replace(true));
        let out = self.0.as_mut().poll(cx);
        SYNC_CELL.with(|s| s.set(prev));
        out
    }
}

/// Interrupts the running cell from another thread (a Ctrl-C handler, a kernel's
/// interrupt request): its future is dropped and its Lua code stopped.
#[derive(Clone)]
pub struct Interrupter(Arc<Shared>);

impl Interrupter {
    /// Cancels the cell that is running now, if any; `false` if none was. The next
    /// cell is not affected.
    pub fn interrupt(&self) -> bool {
        let running = self.0.running.load(Ordering::SeqCst);
        if running == 0 {
            return false;
        }
        self.0.interrupted.store(running, Ordering::SeqCst);
        if let Some(token) = &*self.0.token.lock().unwrap_or_else(|e| e.into_inner()) {
            token.cancel();
        }
        true
    }
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupter").finish_non_exhaustive()
    }
}

/// Runs cells: Lua 5.4 source whose globals persist, and magics (`%autoawait`,
/// `%timeit`, ...), through the runner picked with `%autoawait`.
///
/// Outputs go to a [`Sink`], attributed to the cell they belong to, also when a
/// background task prints after its cell finished. No terminal is needed: the REPL,
/// the cell-file runner, a notebook kernel and the benches all drive an `Engine`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use autoawait_shell::{Engine, Output, VecSink};
///
/// let sink = Arc::new(VecSink::default());
/// let mut engine = Engine::new(sink.clone()).unwrap();
/// engine.run_cell("%autoawait inline");
/// engine.run_cell("x = 40");
/// let report = engine.run_cell("await(sleep(0.001)); return x + 2");
/// assert!(report.is_ok());
/// let outputs = sink.take();
/// let (_, last) = outputs.last().unwrap();
/// assert!(matches!(last, Output::Result { count: 3, value } if value.plain == "42"));
/// ```
pub struct Engine {
    lua: Lua,
    shared: Arc<Shared>,
    /// The globals right after start-up, for `%reset`.
    pristine: Table,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("count", &self.execution_count())
            .field("selector", &*self.shared.selector())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A new engine writing to `sink`, with the default runner selected and autoawait on.
    ///
    /// # Errors
    ///
    /// If the Lua state cannot be set up (out of memory).
    pub fn new(sink: Arc<dyn Sink>) -> Result<Engine, ErrorInfo> {
        let lua = Lua::new();
        let shared = Arc::new(Shared {
            sink,
            selector: Mutex::new(Selector::new(Registry::global())),
            count: AtomicU64::new(0),
            running: AtomicU64::new(0),
            interrupted: AtomicU64::new(0),
            interruptible: AtomicBool::new(false),
            token: Mutex::new(None),
        });
        builtins::install(&lua, &shared).map_err(|e| lua_error(&e))?;
        let hook_shared = shared.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(10_000),
            move |_, _| {
                let stop = hook_shared.interrupted.load(Ordering::Relaxed);
                if stop != 0 && current_cell().map(CellId::get) == Some(stop) {
                    return Err(mlua::Error::external(RunError::Cancelled));
                }
                Ok(VmState::Continue)
            },
        )
        .map_err(|e| lua_error(&e))?;
        let pristine = lua.create_table().map_err(|e| lua_error(&e))?;
        for pair in lua.globals().pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| lua_error(&e))?;
            pristine.raw_set(k, v).map_err(|e| lua_error(&e))?;
        }
        Ok(Engine {
            lua,
            shared,
            pristine,
        })
    }

    /// The Lua state, to add globals of your own.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Sets the global `name` to `value` as a builtin: `%reset` restores it, as it
    /// restores `print` and `await`. For front ends that add functions of their own
    /// (the kernel's `input`, say).
    ///
    /// # Errors
    ///
    /// If the value cannot be stored (out of memory).
    pub fn set_builtin(&self, name: &str, value: impl mlua::IntoLua) -> Result<(), ErrorInfo> {
        self.lua
            .globals()
            .raw_set(name, value)
            .map_err(|e| lua_error(&e))?;
        self.keep_on_reset(name)
    }

    /// Makes the global `name`, as it is now, one that `%reset` restores.
    pub(crate) fn keep_on_reset(&self, name: &str) -> Result<(), ErrorInfo> {
        let value: Value = self
            .lua
            .globals()
            .raw_get(name)
            .map_err(|e| lua_error(&e))?;
        self.pristine
            .raw_set(name, value)
            .map_err(|e| lua_error(&e))
    }

    /// The value of a Lua expression, shown as a cell's `Out[n]` would be (`None`
    /// for nil), evaluated on this thread outside any cell: the kernel's
    /// `user_expressions`. An expression that awaits fails.
    ///
    /// # Errors
    ///
    /// The expression's syntax or run-time error.
    pub fn evaluate(&self, expression: &str) -> Result<Option<Rich>, ErrorInfo> {
        let values = self
            .lua
            .load(format!("return {expression}"))
            .set_name("=user_expression")
            .eval::<MultiValue>()
            .map_err(|e| lua_error(&e))?;
        Ok(to_rich(&values))
    }

    /// The number of the last cell run (IPython's execution count).
    pub fn execution_count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Makes `count` the number of the last cell run: the next is `In[count + 1]`.
    /// For a front end that numbers cells itself (a kernel, whose silent requests
    /// take no number).
    pub fn set_execution_count(&self, count: u64) {
        self.shared.count.store(count, Ordering::Relaxed);
    }

    /// The `%autoawait` state: which runner, on or off.
    pub fn selector(&self) -> MutexGuard<'_, Selector<'static>> {
        self.shared.selector()
    }

    /// A handle that interrupts the running cell from another thread. From the first
    /// call on, each cell runs with a cancel token.
    pub fn interrupter(&self) -> Interrupter {
        self.shared.interruptible.store(true, Ordering::SeqCst);
        Interrupter(self.shared.clone())
    }

    /// Whether `source` is a complete cell: magics always are; Lua is once it parses
    /// (or fails for another reason than a missing end).
    pub fn is_complete(&self, source: &str) -> Completeness {
        is_complete(&self.lua, source)
    }

    /// Runs one cell: Lua source, `%line` magics on their own lines, or a `%%cell`
    /// magic on the first line. A blank cell does nothing and takes no number.
    pub fn run_cell(&mut self, source: &str) -> CellReport {
        self.run_cell_with(source, &RunOptions::default())
    }

    /// [`run_cell`](Self::run_cell) with a timeout or cancel token of your own.
    pub fn run_cell_with(&mut self, source: &str, opts: &RunOptions) -> CellReport {
        if source.trim().is_empty() {
            return CellReport {
                count: 0,
                error: None,
            };
        }
        let count = self.shared.next_count();
        let id = CellId::new(count);
        let mut opts_own;
        let mut opts = opts;
        if self.shared.interruptible.load(Ordering::Relaxed) {
            let token = opts.cancel.clone().unwrap_or_default();
            *self.shared.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
            opts_own = opts.clone();
            opts_own.cancel = Some(token);
            opts = &opts_own;
        }
        self.shared.running.store(count, Ordering::SeqCst);
        self.shared.interrupted.store(0, Ordering::SeqCst);
        self.shared.sink.cell_started(id);
        let result = self.dispatch(source, id, opts);
        let error = match result {
            Ok(Some(value)) => {
                self.shared.sink.emit(id, Output::Result { count, value });
                None
            }
            Ok(None) => None,
            Err(err) => {
                self.shared.sink.emit(id, Output::Error(err.clone()));
                Some(err)
            }
        };
        self.shared.sink.cell_finished(id);
        self.shared.running.store(0, Ordering::SeqCst);
        *self.shared.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        CellReport { count, error }
    }

    fn dispatch(
        &mut self,
        source: &str,
        id: CellId,
        opts: &RunOptions,
    ) -> Result<Option<Rich>, ErrorInfo> {
        let trimmed = source.trim_start();
        if let Some(rest) = trimmed.strip_prefix("%%") {
            let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
            let (name, args) = line
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((line.trim(), ""));
            return magics::run_cell_magic(self, name, args.trim(), body, id, opts);
        }
        if !source.lines().any(|l| l.trim_start().starts_with('%')) {
            return self.run_lua(source, id, opts);
        }
        // Lua with `%magic` lines: run in order; magic lines become blank lines of the
        // Lua source so that error line numbers stay those of the cell.
        let mut lua_src = String::new();
        let mut has_lua = false;
        let mut last = None;
        for line in source.lines() {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix('%') {
                if has_lua {
                    self.run_lua(&lua_src, id, opts)?;
                    has_lua = false;
                }
                lua_src = lua_src.lines().map(|_| "\n").collect();
                lua_src.push('\n');
                let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                last = magics::run_line_magic(self, name, args.trim(), id, opts)?;
            } else {
                has_lua |= !t.is_empty();
                lua_src.push_str(line);
                lua_src.push('\n');
            }
        }
        if has_lua {
            last = self.run_lua(&lua_src, id, opts)?;
        }
        Ok(last)
    }

    /// Compiles and runs Lua source as cell `id`; the value of its final expression.
    pub(crate) fn run_lua(
        &self,
        source: &str,
        id: CellId,
        opts: &RunOptions,
    ) -> Result<Option<Rich>, ErrorInfo> {
        let func = compile(&self.lua, source, id).map_err(|e| lua_error(&e))?;
        let values = self.execute(func, id, opts)?;
        Ok(to_rich(&values))
    }

    /// Runs a compiled cell: through the selected runner with autoawait on, on this
    /// thread (and `await` refused) with autoawait off.
    pub(crate) fn execute(
        &self,
        func: Function,
        id: CellId,
        opts: &RunOptions,
    ) -> Result<MultiValue, ErrorInfo> {
        let runner = {
            let mut selector = self.shared.selector();
            selector.is_on().then(|| selector.runner())
        };
        let result = match runner {
            Some(runner) => {
                let runner = runner.map_err(|e| ErrorInfo::from(&e))?;
                let fut = func.call_async::<MultiValue>(());
                runner.run(Cell::with_origin(id, fut), opts)
            }
            None => run_sync(
                Cell::with_origin(id, sync_mode(func.call_async::<MultiValue>(()))),
                opts,
            ),
        };
        cell_values(result)
    }

    /// `%reset`: removes every global a cell made, and restores the builtins.
    /// Returns how many names were removed.
    pub(crate) fn reset(&self) -> Result<usize, ErrorInfo> {
        let globals = self.lua.globals();
        let keys: Vec<Value> = globals
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect();
        let mut removed = 0;
        for k in keys {
            if !self.pristine.contains_key(k.clone()).unwrap_or(true) {
                removed += 1;
            }
            globals.raw_set(k, Value::Nil).map_err(|e| lua_error(&e))?;
        }
        for pair in self.pristine.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| lua_error(&e))?;
            globals.raw_set(k, v).map_err(|e| lua_error(&e))?;
        }
        Ok(removed)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// Runs a cell on this thread with the `inline` runner (autoawait off).
pub(crate) fn run_sync(cell: Cell, opts: &RunOptions) -> CellResult {
    static INLINE: std::sync::OnceLock<Arc<dyn Runner>> = std::sync::OnceLock::new();
    // Core's own runner: always linked.
    let inline = INLINE.get_or_init(|| Registry::global().get("inline").expect("core's runner"));
    inline.run(cell, opts)
}

/// Unpacks what a Lua cell's future returned.
pub(crate) fn cell_values(result: CellResult) -> Result<MultiValue, ErrorInfo> {
    match result {
        Ok(out) => match out.downcast::<mlua::Result<MultiValue>>() {
            Ok(values) => values.map_err(|e| lua_error(&e)),
            Err(_) => Err(ErrorInfo::new(
                ErrorKind::RunError,
                "the runner returned another cell's output",
            )),
        },
        Err(err) => Err(ErrorInfo::from(&err)),
    }
}

/// What a cell's values show as `Out[n]`: nothing for no values or a lone nil.
pub(crate) fn to_rich(values: &MultiValue) -> Option<Rich> {
    match values.len() {
        0 => None,
        1 => match &values[0] {
            Value::Nil => None,
            Value::UserData(ud) => match ud.borrow::<RichValue>() {
                Ok(rich) => Some(rich.0.clone()),
                Err(_) => Some(Rich::text(show_values(values))),
            },
            _ => Some(Rich::text(show_values(values))),
        },
        _ => Some(Rich::text(show_values(values))),
    }
}

/// The identity function the value of a cell's final expression goes through.
pub(crate) const SHOW: &str = "__autoawait_show";

/// The chunk name of cell `id`: errors read `In[3]:2: ...`.
pub(crate) fn chunk_name(id: CellId) -> String {
    format!("=In[{id}]")
}

/// Compiles a cell the way the Lua REPL does: as an expression first (its value is
/// shown), then as statements; a cell whose last lines are an expression after
/// statements shows that expression.
pub(crate) fn compile(lua: &Lua, source: &str, id: CellId) -> mlua::Result<Function> {
    let name = chunk_name(id);
    let load = |src: String| lua.load(src).set_name(name.as_str()).into_function();
    // `return f()` would be a tail call, losing the cell's frame from tracebacks: the
    // values go through an identity function instead.
    if looks_like_statement(source) {
        // The hot path (`x = 1`): one compile instead of a failed expression first.
        if let Ok(f) = load(source.to_owned()) {
            return Ok(f);
        }
    }
    let lines: Vec<&str> = source.trim_end().lines().collect();
    if lines.len() > 1 {
        // Statements, then an expression: show it (IPython's rule). Tried before the
        // whole cell as one expression, because Lua reads `f()\n"s"` as `f()("s")`.
        for split in (lines.len().saturating_sub(8).max(1)..lines.len()).rev() {
            let (head, tail) = lines.split_at(split);
            if head.iter().all(|l| l.trim().is_empty()) {
                break;
            }
            let src = format!("{}\nreturn {SHOW}({}\n)", head.join("\n"), tail.join("\n"));
            if let Ok(f) = load(src) {
                return Ok(f);
            }
        }
    }
    if let Ok(f) = load(format!("return {SHOW}({source}\n)")) {
        return Ok(f);
    }
    load(source.to_owned())
}

/// `true` if a one-line cell cannot be an expression: it starts with a statement
/// keyword or assigns at the top level (an `=` outside brackets, strings and comments).
fn looks_like_statement(source: &str) -> bool {
    let src = source.trim();
    if src.contains('\n') {
        return false;
    }
    const KEYWORDS: &[&str] = &[
        "local", "function", "for", "while", "if", "repeat", "do", "return", "goto",
    ];
    let first = src
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    if KEYWORDS.contains(&first) {
        return true;
    }
    let bytes = src.as_bytes();
    let (mut depth, mut i) = (0i32, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => return false,
            b'=' if depth == 0 => {
                let prev = if i > 0 { bytes[i - 1] } else { b' ' };
                let next = bytes.get(i + 1).copied().unwrap_or(b' ');
                return next != b'=' && !matches!(prev, b'=' | b'<' | b'>' | b'~');
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// See [`Engine::is_complete`].
pub(crate) fn is_complete(lua: &Lua, source: &str) -> Completeness {
    let trimmed = source.trim_start();
    if trimmed.starts_with("%%") {
        // A cell magic ends with an empty line.
        return if source.ends_with('\n') {
            Completeness::Complete
        } else {
            Completeness::Incomplete
        };
    }
    let lua_only: String = source
        .lines()
        .map(|l| {
            if l.trim_start().starts_with('%') {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if lua_only.trim().is_empty() {
        return Completeness::Complete;
    }
    match lua
        .load(lua_only.as_str())
        .set_name("=cell")
        .into_function()
    {
        Err(mlua::Error::SyntaxError {
            incomplete_input: true,
            ..
        }) => {
            if lua
                .load(format!("return {lua_only}"))
                .into_function()
                .is_ok()
            {
                Completeness::Complete
            } else {
                Completeness::Incomplete
            }
        }
        _ => Completeness::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_statement;

    #[test]
    fn statements_are_told_from_expressions() {
        for s in [
            "x = 1",
            "t[1] = 2",
            "s = 'a=b'",
            "a, b = 1, 2",
            "local x",
            "return 1",
        ] {
            assert!(looks_like_statement(s), "{s}");
        }
        for s in [
            "x == 1",
            "{a = 1}",
            "'a=b'",
            "a >= b",
            "a ~= b",
            "x -- = y",
            "functional(1)",
            "f(function() x = 1 end)",
            "x = 1\ny",
        ] {
            assert!(!looks_like_statement(s), "{s}");
        }
    }
}
