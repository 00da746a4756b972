//! [`Engine`]: runs cells (Lua and magics) through the selected runner.

use std::cell::Cell as StdCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use autoawait_core::{
    current_cell, current_runner_name, CancelToken, Cell, CellId, CellResult, LookupError,
    Registry, RunError, RunOptions, Runner, Selector,
};
use mlua::{Function, HookTriggers, Lua, MultiValue, Table, Value, VmState};

use crate::builtins::{self, RichValue};
use crate::cells::compile;
use crate::errors::lua_error;
use crate::magics;
use crate::output::{show_values, Output, Rich, Sink};
use crate::{Completeness, ErrorInfo, ErrorKind};

/// What running one cell gave: its number, its value (`Out[n]`), or why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellOutcome {
    /// The execution count of the cell (`n` in `In[n]`); `0` for a blank cell.
    pub count: u64,
    /// The value of its final expression, if any and if it did not fail.
    pub value: Option<Rich>,
    /// Why the cell failed, if it did.
    pub error: Option<ErrorInfo>,
}

impl CellOutcome {
    /// `true` if the cell did not fail.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A cell the engine runs now (one per shell: a kernel's subshells run cells at the
/// same time): what the instruction hook watches, so that an interrupt or a timeout
/// stops its Lua code too, not only its awaits.
struct Running {
    id: CellId,
    cancel: Option<CancelToken>,
    deadline: Option<(Instant, Duration)>,
}

/// A `timeout(s, x)` being awaited: the instruction hook stops the Lua code of
/// `cell` once `at` has passed, so that a CPU-bound `x` ends too.
struct TimeoutScope {
    id: u64,
    cell: Option<CellId>,
    at: Instant,
    after: Duration,
}

/// What the hook raises when a [`TimeoutScope`] expires; the `timeout` that owns
/// the scope turns it into [`RunError::TimedOut`].
#[derive(Debug)]
pub(crate) struct ScopeExpired {
    pub(crate) scope: u64,
    pub(crate) after: Duration,
}

impl std::fmt::Display for ScopeExpired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timeout: not finished within {:?}", self.after)
    }
}

impl std::error::Error for ScopeExpired {}

/// Removes its scope when the `timeout` that made it ends or is dropped.
pub(crate) struct ScopeGuard {
    shared: Arc<Shared>,
    pub(crate) id: u64,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let mut scopes = self.shared.timeouts();
        scopes.retain(|s| s.id != self.id);
        self.shared
            .any_timeouts
            .store(!scopes.is_empty(), Ordering::Release);
    }
}

/// State shared by the engine and the Lua builtins (which may run on any thread).
pub(crate) struct Shared {
    pub(crate) sink: Arc<dyn Sink>,
    selector: Mutex<Selector<'static>>,
    /// The execution count of the last cell (nested cells take the next).
    count: AtomicU64,
    /// The id of the last cell started: where output of no cell goes.
    last: AtomicU64,
    running: Mutex<Vec<Running>>,
    /// Make a cancel token per cell (set once an [`Interrupter`] exists).
    interruptible: AtomicBool,
    /// The `timeout(s, x)` scopes being awaited, and whether there are any (the
    /// hook's fast path).
    timeouts: Mutex<Vec<TimeoutScope>>,
    any_timeouts: AtomicBool,
    /// The background tasks of the cells, for `%tasks` and `%cancel`.
    pub(crate) tasks: builtins::Tasks,
    /// The latest cells' sources by number, for the lines a traceback shows.
    sources: Mutex<std::collections::VecDeque<(u64, String)>>,
}

impl Shared {
    pub(crate) fn selector(&self) -> MutexGuard<'_, Selector<'static>> {
        self.selector.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps cell `count`'s source for the tracebacks that point into it.
    pub(crate) fn remember(&self, count: u64, source: &str) {
        const KEPT: usize = 500;
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if sources.len() == KEPT {
            sources.pop_front();
        }
        sources.push_back((count, source.to_owned()));
    }

    /// `err` with the lines of the cells its traceback points into.
    pub(crate) fn annotate(&self, err: ErrorInfo) -> ErrorInfo {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        crate::errors::with_context(err, &|count| {
            sources
                .iter()
                .rev()
                .find(|(n, _)| *n == count)
                .map(|(_, s)| s.clone())
        })
    }

    fn timeouts(&self) -> MutexGuard<'_, Vec<TimeoutScope>> {
        self.timeouts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a `timeout(s, x)` scope for the cell polling this thread.
    pub(crate) fn timeout_scope(self: &Arc<Self>, after: Duration) -> ScopeGuard {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut scopes = self.timeouts();
        scopes.push(TimeoutScope {
            id,
            cell: current_cell(),
            at: Instant::now() + after,
            after,
        });
        self.any_timeouts.store(true, Ordering::Release);
        ScopeGuard {
            shared: self.clone(),
            id,
        }
    }

    /// The expired `timeout` scope of the code running now, if any.
    fn expired_scope(&self) -> Option<ScopeExpired> {
        if !self.any_timeouts.load(Ordering::Acquire) {
            return None;
        }
        let cell = current_cell();
        let now = Instant::now();
        self.timeouts()
            .iter()
            .filter(|s| s.cell == cell && s.at <= now)
            .min_by_key(|s| s.at)
            .map(|s| ScopeExpired {
                scope: s.id,
                after: s.after,
            })
    }

    /// The next execution count.
    pub(crate) fn next_count(&self) -> u64 {
        self.count.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The cell output belongs to: the one being polled, else the one the engine
    /// started last of those it runs, else the last one (a plugin's reactor thread
    /// calling back into Lua).
    pub(crate) fn output_cell(&self) -> CellId {
        current_cell().unwrap_or_else(|| match self.running().last() {
            Some(running) => running.id,
            None => CellId::new(self.last.load(Ordering::Relaxed)),
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

    /// What the instruction hook says about the Lua code running now: stop it if
    /// it belongs to the running cell and that cell was cancelled or timed out.
    fn check_running(&self) -> Result<(), RunError> {
        let Some(cell) = current_cell() else {
            return Ok(());
        };
        let running = self.running();
        let Some(running) = running.iter().find(|r| r.id == cell) else {
            return Ok(());
        };
        if running
            .cancel
            .as_ref()
            .is_some_and(CancelToken::is_cancelled)
        {
            return Err(RunError::Cancelled);
        }
        match running.deadline {
            Some((at, after)) if Instant::now() >= at => Err(RunError::TimedOut { after }),
            _ => Ok(()),
        }
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

/// Interrupts the running cell from another thread (a Ctrl-C handler): its
/// cancel token fires, so its future is dropped and its Lua code stopped.
#[derive(Clone)]
pub struct Interrupter(Arc<Shared>);

impl Interrupter {
    /// Cancels the cells that are running now (every shell's), if any; `false` if
    /// none was. The next cell is not affected.
    pub fn interrupt(&self) -> bool {
        let running = self.0.running();
        for token in running.iter().filter_map(|r| r.cancel.as_ref()) {
            token.cancel();
        }
        !running.is_empty()
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
            last: AtomicU64::new(0),
            running: Mutex::new(Vec::new()),
            interruptible: AtomicBool::new(false),
            timeouts: Mutex::new(Vec::new()),
            any_timeouts: AtomicBool::new(false),
            tasks: builtins::Tasks::default(),
            sources: Mutex::new(std::collections::VecDeque::new()),
        });
        builtins::install(&lua, &shared).map_err(|e| lua_error(&e))?;
        let hook_shared = shared.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(10_000),
            move |_, _| {
                if let Err(err) = hook_shared.check_running() {
                    return Err(mlua::Error::external(err));
                }
                match hook_shared.expired_scope() {
                    Some(expired) => Err(mlua::Error::external(expired)),
                    None => Ok(VmState::Continue),
                }
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

    /// Another engine on the same Lua state, globals, runner and output: a kernel
    /// subshell runs its cells with it, on its own thread, while this engine runs
    /// cells too. Cheap, and it never waits for a running cell.
    ///
    /// Both engines share one Lua state, which runs Lua code for one thread at a
    /// time: a cell of either runs whenever the state is free, i.e. while the
    /// other's cell awaits (a sleep, a download, a task), between its cells, or once
    /// it ends. A cell that computes without awaiting, or that waits in `input()`,
    /// holds the state until it awaits or ends; an interrupt stops both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use autoawait_shell::{Engine, VecSink};
    ///
    /// let mut engine = Engine::new(Arc::new(VecSink::default())).unwrap();
    /// engine.run_cell("shared_x = 41");
    /// let mut other = engine.subshell();
    /// let t = std::thread::spawn(move || other.run_cell("return shared_x + 1"));
    /// assert_eq!(t.join().unwrap().value.unwrap().plain, "42");
    /// ```
    pub fn subshell(&self) -> Engine {
        Engine {
            lua: self.lua.clone(),
            shared: self.shared.clone(),
            pristine: self.pristine.clone(),
        }
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

    /// The `%autoawait` state: which runner, on or off.
    pub fn selector(&self) -> MutexGuard<'_, Selector<'static>> {
        self.shared.selector()
    }

    /// A handle that interrupts the running cell from another thread. From the first
    /// call on, each cell runs with a cancel token of its own unless it has one.
    pub fn interrupter(&self) -> Interrupter {
        self.shared.interruptible.store(true, Ordering::SeqCst);
        Interrupter(self.shared.clone())
    }

    /// Whether `source` is a complete cell ([`completeness`](crate::completeness)).
    pub fn is_complete(&self, source: &str) -> Completeness {
        crate::completeness(source)
    }

    /// Runs one cell: Lua source, `%line` magics on their own lines, or a `%%cell`
    /// magic on the first line, numbered `In[n]` after the last. Its value and error
    /// go to the [`Sink`] too. A blank cell does nothing and takes no number.
    pub fn run_cell(&mut self, source: &str) -> CellOutcome {
        self.run_cell_with(source, &RunOptions::default())
    }

    /// [`run_cell`](Self::run_cell) with a timeout or cancel token of your own. Both
    /// stop CPU-bound Lua too (the VM's instruction hook watches them).
    pub fn run_cell_with(&mut self, source: &str, opts: &RunOptions) -> CellOutcome {
        if source.trim().is_empty() {
            return CellOutcome {
                count: 0,
                value: None,
                error: None,
            };
        }
        let count = self.shared.next_count();
        self.run(CellId::new(count), count, source, opts, true)
    }

    /// Runs one cell as cell `id`, numbered `count`, for a front end that numbers
    /// its cells itself (a kernel: its requests carry their own ids): the value and
    /// the error come back in the [`CellOutcome`] only, for the front end to show.
    /// Later cells of [`run_cell`](Self::run_cell) are numbered after `count`.
    pub fn run_cell_as(
        &mut self,
        id: CellId,
        count: u64,
        source: &str,
        opts: &RunOptions,
    ) -> CellOutcome {
        self.shared.count.store(count, Ordering::Relaxed);
        self.run(id, count, source, opts, false)
    }

    fn run(
        &mut self,
        id: CellId,
        count: u64,
        source: &str,
        opts: &RunOptions,
        emit: bool,
    ) -> CellOutcome {
        let mut opts = opts.clone();
        if opts.cancel.is_none() && self.shared.interruptible.load(Ordering::Relaxed) {
            opts.cancel = Some(CancelToken::new());
        }
        self.shared.running().push(Running {
            id,
            cancel: opts.cancel.clone(),
            deadline: opts.timeout.map(|after| (Instant::now() + after, after)),
        });
        self.shared.last.store(id.get(), Ordering::Relaxed);
        self.shared.tasks.cell_started();
        self.shared.sink.cell_started(id);
        self.shared.remember(count, source);
        let result = self
            .dispatch(source, id, count, &opts)
            .map_err(|err| self.shared.annotate(err));
        if emit {
            match &result {
                Ok(Some(value)) => self.shared.sink.emit(
                    id,
                    Output::Result {
                        count,
                        value: value.clone(),
                    },
                ),
                Ok(None) => {}
                Err(err) => self.shared.sink.emit(id, Output::Error(err.clone())),
            }
        }
        self.shared.sink.cell_finished(id);
        self.shared.running().retain(|r| r.id != id);
        match result {
            Ok(value) => CellOutcome {
                count,
                value,
                error: None,
            },
            Err(err) => CellOutcome {
                count,
                value: None,
                error: Some(err),
            },
        }
    }

    fn dispatch(
        &mut self,
        source: &str,
        id: CellId,
        count: u64,
        opts: &RunOptions,
    ) -> Result<Option<Rich>, ErrorInfo> {
        let trimmed = source.trim_start();
        if let Some(rest) = trimmed.strip_prefix("%%") {
            let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
            let (name, args) = line
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((line.trim(), ""));
            return magics::run_cell_magic(self, name, args.trim(), body, id, count, opts);
        }
        if !source.lines().any(|l| l.trim_start().starts_with('%')) {
            return self.run_lua(source, id, count, opts);
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
                    self.run_lua(&lua_src, id, count, opts)?;
                    has_lua = false;
                }
                lua_src = lua_src.lines().map(|_| "\n").collect();
                lua_src.push('\n');
                let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                last = magics::run_line_magic(self, name, args.trim(), id, count, opts)?;
            } else {
                has_lua |= !t.is_empty();
                lua_src.push_str(line);
                lua_src.push('\n');
            }
        }
        if has_lua {
            last = self.run_lua(&lua_src, id, count, opts)?;
        }
        Ok(last)
    }

    /// Compiles and runs Lua source as cell `id`; the value of its final expression.
    pub(crate) fn run_lua(
        &self,
        source: &str,
        id: CellId,
        count: u64,
        opts: &RunOptions,
    ) -> Result<Option<Rich>, ErrorInfo> {
        let func = compile(&self.lua, source, count).map_err(|e| lua_error(&e))?;
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
