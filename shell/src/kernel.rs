//! `autoawait kernel`: the engine as a Jupyter kernel ([`autoawait_kernel::Session`]).
//!
//! The kernel crate speaks the protocol; this module adapts the [`Engine`]: its
//! [`Sink`] becomes the kernel's output handle (so output of a cell and of every task
//! it spawned goes out with the parent header of the request that ran that cell), the
//! cell's value and error become the execute reply, an interrupt cancels the cell's
//! token and stops CPU-bound Lua through the engine's [`Interrupter`](crate::Interrupter).
//! `autoawait kernel -f FILE` and `autoawait kernel install` live in main.rs.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use autoawait_core::{current_cell, CellId, Registry, RunOptions};
use autoawait_kernel::{
    Completeness, Completions, ErrorReport, ExecuteContext, ExecuteOutcome, Kernel, KernelOutput,
    MimeBundle, Session,
};
use mlua::{Lua, Table, Value};

use crate::{
    Completeness as LuaCompleteness, Engine, ErrorInfo, ErrorKind, Output, Rich, Sink, BUILTINS,
    MAGICS,
};

/// The engine's outputs, sent through the kernel. The running cell's value and error
/// are kept for the execute reply instead (the kernel publishes them itself).
struct KernelSink {
    out: KernelOutput,
    running: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    cell: Option<CellId>,
    value: Option<Rich>,
    errors: Vec<ErrorInfo>,
}

impl KernelSink {
    fn running(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink for KernelSink {
    fn emit(&self, cell: CellId, output: Output) {
        match output {
            Output::Stdout(text) => self.out.stdout(Some(cell), &text),
            Output::Stderr(text) => self.out.stderr(Some(cell), &text),
            Output::Display { value, id: None } => self.out.display(Some(cell), &bundle(&value)),
            Output::Display {
                value,
                id: Some(id),
            } => self.out.display_with_id(Some(cell), &bundle(&value), &id),
            Output::UpdateDisplay { id, value } => {
                self.out.update_display(Some(cell), &bundle(&value), &id);
            }
            Output::Result { count, value } => {
                let mut running = self.running();
                if running.cell == Some(cell) {
                    running.value = Some(value);
                } else {
                    drop(running);
                    self.out.execute_result(Some(cell), count, &bundle(&value));
                }
            }
            Output::Error(err) => {
                let mut running = self.running();
                if running.cell == Some(cell) {
                    running.errors.push(err);
                } else {
                    drop(running);
                    self.out.error(Some(cell), &report(&err));
                }
            }
        }
    }

    fn cell_started(&self, cell: CellId) {
        // The engine numbers cells itself: route its id to the running request.
        self.out.cell_started(cell);
        *self.running() = Running {
            cell: Some(cell),
            ..Running::default()
        };
    }
}

/// The Lua engine as a kernel session.
pub struct LuaSession {
    engine: Engine,
    sink: Arc<KernelSink>,
}

impl std::fmt::Debug for LuaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaSession").finish_non_exhaustive()
    }
}

impl LuaSession {
    /// An engine whose output goes through `kernel`, with `runner` selected if given.
    ///
    /// # Errors
    ///
    /// If the Lua state cannot be set up, or `runner` is unknown.
    pub fn new(kernel: &Kernel, runner: Option<&str>) -> Result<Self, ErrorInfo> {
        let out = kernel.output();
        let sink = Arc::new(KernelSink {
            out: out.clone(),
            running: Mutex::new(Running::default()),
        });
        let engine = Engine::new(sink.clone())?;
        let interrupter = engine.interrupter();
        kernel.on_interrupt(move || {
            interrupter.interrupt();
        });
        // `%autoawait tokio-host`: cells run on the kernel's own loop (ipykernel's way).
        autoawait_runners::tokio_runner::attach(kernel.runtime_handle());
        if let Some(name) = runner {
            engine
                .selector()
                .handle(name)
                .map_err(|e| ErrorInfo::from(&e))?;
        }
        install_kernel_builtins(&engine, out)?;
        Ok(LuaSession { engine, sink })
    }
}

/// `clear_output([wait])` and `input([prompt])`: what only a notebook offers.
fn install_kernel_builtins(engine: &Engine, out: KernelOutput) -> Result<(), ErrorInfo> {
    let lua = engine.lua();
    let failed = |e: mlua::Error| ErrorInfo::new(ErrorKind::LuaError, e.to_string());
    let o = out.clone();
    let clear_output = lua
        .create_function(move |_, wait: Option<bool>| {
            o.clear_output(current_cell(), wait.unwrap_or(false));
            Ok(())
        })
        .map_err(failed)?;
    engine.set_builtin("clear_output", clear_output)?;
    let input = lua
        .create_function(move |_, prompt: Option<String>| {
            out.input(prompt.as_deref().unwrap_or(""), false)
                .map_err(mlua::Error::external)
        })
        .map_err(failed)?;
    engine.set_builtin("input", input)
}

/// `name?` or `?name` (IPython's help in the pager): the name.
fn help_query(code: &str) -> Option<&str> {
    let code = code.trim();
    let name = code
        .strip_suffix('?')
        .or_else(|| code.strip_prefix('?'))?
        .trim();
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '%');
    (!name.is_empty() && name.chars().all(is_name)).then_some(name)
}

impl Session for LuaSession {
    fn execute(&mut self, code: &str, ctx: &ExecuteContext) -> ExecuteOutcome {
        if let Some(name) = help_query(code) {
            return match self.inspect(name, name.len(), 0) {
                Some(help) => {
                    ctx.output.page(&help);
                    Ok(None)
                }
                None => Err(ErrorReport::new(
                    "NameError",
                    format!("no help on `{name}`: it is not a global, a builtin or a magic"),
                )),
            };
        }
        let opts = RunOptions::default().cancel_token(ctx.cancel.clone());
        if ctx.store_history {
            // The notebook's number for this cell, also in tracebacks and task names.
            self.engine
                .set_execution_count(ctx.execution_count.saturating_sub(1));
        }
        let report = self.engine.run_cell_with(code, &opts);
        let running = std::mem::take(&mut *self.sink.running());
        // Errors of the cell's own tasks that were not the cell's error: show them.
        for err in running
            .errors
            .iter()
            .filter(|e| Some(*e) != report.error.as_ref())
        {
            self.sink.out.error(running.cell, &self::report(err));
        }
        match report.error {
            Some(err) => Err(self::report(&err)),
            None => Ok(running.value.as_ref().map(bundle)),
        }
    }

    fn is_complete(&mut self, code: &str) -> Completeness {
        if code.trim_start().starts_with('%') {
            return Completeness::Complete;
        }
        match self.engine.is_complete(code) {
            LuaCompleteness::Incomplete => Completeness::Incomplete {
                indent: String::new(),
            },
            LuaCompleteness::Complete => {
                let lua = self.engine.lua();
                let parses = |src: &str| lua.load(src).into_function().is_ok();
                if parses(&format!("return {code}")) || parses(code) {
                    Completeness::Complete
                } else {
                    Completeness::Invalid
                }
            }
        }
    }

    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        complete(self.engine.lua(), code, cursor)
    }

    fn inspect(&mut self, code: &str, cursor: usize, _detail_level: u8) -> Option<MimeBundle> {
        let (start, end) = word_at(code, cursor);
        let name = &code[start..end];
        if let Some((_, usage, help)) = BUILTINS.iter().find(|(n, _, _)| *n == name) {
            return Some(MimeBundle::text(format!("{usage}\n  {help}")));
        }
        if let Some(m) = MAGICS
            .iter()
            .find(|m| name.strip_prefix('%') == Some(m.name))
        {
            return Some(MimeBundle::text(format!("{}\n  {}", m.usage, m.help)));
        }
        let value = resolve(self.engine.lua(), name)?;
        let text = match &value {
            Value::Function(f) => {
                let info = f.info();
                match info.what {
                    "C" => format!("{name}: a built-in function"),
                    _ => format!(
                        "{name}: a Lua function defined at {}:{}",
                        info.short_src.as_deref().unwrap_or("?"),
                        info.line_defined.unwrap_or(0)
                    ),
                }
            }
            Value::Nil => return None,
            other => format!("{name}: {}", other.type_name()),
        };
        Some(MimeBundle::text(text))
    }

    fn evaluate(&mut self, expression: &str) -> Result<MimeBundle, ErrorReport> {
        match self.engine.evaluate(expression) {
            Ok(value) => Ok(value
                .as_ref()
                .map_or_else(|| MimeBundle::text("nil"), bundle)),
            Err(err) => Err(report(&err)),
        }
    }

    fn shutdown(&mut self, _restart: bool) {
        Registry::global().shutdown_all(Duration::from_secs(2));
    }
}

fn bundle(value: &Rich) -> MimeBundle {
    value
        .mime
        .iter()
        .fold(MimeBundle::text(value.plain.clone()), |b, (m, d)| {
            b.with(m.clone(), d.clone())
        })
}

fn report(err: &ErrorInfo) -> ErrorReport {
    let mut lines = vec![format!("{}: {}", err.kind, err.message)];
    lines.extend(err.traceback.iter().cloned());
    ErrorReport::new(err.kind.as_str(), err.message.clone()).traceback(lines)
}

/// The dotted name around byte `cursor` (`string.up|` gives `string.up`).
fn word_at(code: &str, cursor: usize) -> (usize, usize) {
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '%');
    let start = code[..cursor]
        .rfind(|c: char| !is_name(c))
        .map_or(0, |i| i + 1);
    let end = code[cursor..]
        .find(|c: char| !is_name(c))
        .map_or(code.len(), |i| cursor + i);
    (start, end)
}

/// The value of a dotted global name (`string.upper`), if it exists.
fn resolve(lua: &Lua, path: &str) -> Option<Value> {
    let mut value = Value::Table(lua.globals());
    for part in path.split(['.', ':']) {
        let Value::Table(t) = value else { return None };
        value = t.get::<Value>(part).ok()?;
    }
    Some(value)
}

/// Completions of globals, fields (`string.up`), methods (`s:up` via the string
/// metatable is not attempted) and magics (`%auto`).
fn complete(lua: &Lua, code: &str, cursor: usize) -> Completions {
    let (start, _) = word_at(code, cursor);
    let word = &code[start..cursor];
    let mut matches = Vec::new();
    if let Some(magic) = word.strip_prefix('%') {
        let magic = magic.trim_start_matches('%');
        matches = MAGICS
            .iter()
            .filter(|m| m.name.starts_with(magic))
            .map(|m| format!("%{}", m.name))
            .collect();
    } else {
        let (base, sep, prefix) = match word.rfind(['.', ':']) {
            Some(i) => (&word[..i], &word[i..=i], &word[i + 1..]),
            None => ("", "", word),
        };
        let table = if base.is_empty() {
            Some(lua.globals())
        } else {
            match resolve(lua, base) {
                Some(Value::Table(t)) => Some(t),
                _ => None,
            }
        };
        if let Some(t) = table {
            collect_keys(&t, prefix, &mut |key| {
                matches.push(format!("{base}{sep}{key}"))
            });
        }
        matches.sort();
        matches.dedup();
    }
    Completions {
        matches,
        cursor_start: start,
        cursor_end: cursor,
    }
}

fn collect_keys(t: &Table, prefix: &str, push: &mut dyn FnMut(String)) {
    for (k, _) in t.clone().pairs::<Value, Value>().flatten() {
        if let Value::String(s) = k {
            let key = s.to_string_lossy();
            if key.starts_with(prefix) && !key.starts_with("__") {
                push(key.to_string());
            }
        }
    }
}
