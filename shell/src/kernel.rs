//! `autoawait kernel`: the engine as a Jupyter kernel ([`autoawait_kernel::Session`]).
//!
//! The kernel crate speaks the protocol and knows no Lua; this module adapts the
//! [`Engine`]: each request runs as the cell the kernel made for it
//! ([`Engine::run_cell_as`]: one id, one number), its [`Sink`] becomes the kernel's
//! output handle (so output of a cell and of every task it spawned goes out with the
//! parent header of the request that ran that cell), the cell's value and error
//! become the execute reply, and an interrupt fires the request's cancel token,
//! which stops awaits and CPU-bound Lua alike.
//! `autoawait kernel -f FILE` and `autoawait kernel install` live in main.rs.

use std::sync::Arc;
use std::time::Duration;

use autoawait_core::{current_cell, CellId, Registry, RunOptions};
use autoawait_kernel::{
    Completeness, Completions, ErrorReport, ExecuteContext, ExecuteOutcome, Kernel, KernelInfo,
    KernelOutput, MimeBundle, Session,
};

use crate::assist;
use crate::{Completeness as LuaCompleteness, Engine, ErrorInfo, ErrorKind, Output, Rich, Sink};

/// The engine's outputs, sent through the kernel as they come: a cell's own value
/// and error come back from [`Engine::run_cell_as`] instead, for the reply.
struct KernelSink(KernelOutput);

impl Sink for KernelSink {
    fn emit(&self, cell: CellId, output: Output) {
        let out = &self.0;
        match output {
            Output::Stdout(text) => out.stdout(Some(cell), &text),
            Output::Stderr(text) => out.stderr(Some(cell), &text),
            Output::Display { value, id: None } => out.display(Some(cell), &bundle(&value)),
            Output::Display {
                value,
                id: Some(id),
            } => out.display_with_id(Some(cell), &bundle(&value), &id),
            Output::UpdateDisplay { id, value } => {
                out.update_display(Some(cell), &bundle(&value), &id);
            }
            // A nested cell's value, a task's error: output of the cell that ran them.
            Output::Result { count, value } => {
                out.execute_result(Some(cell), count, &bundle(&value))
            }
            Output::Error(err) => out.error(Some(cell), &report(&err)),
        }
    }

    fn cell_started(&self, cell: CellId) {
        // A nested cell (`run_cell`) is output of the request of the cell it runs in.
        self.0.cell_started(cell, current_cell());
    }
}

/// The Lua engine as a kernel session.
pub struct LuaSession {
    engine: Engine,
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
        let engine = Engine::new(Arc::new(KernelSink(out.clone())))?;
        // `%autoawait tokio-host`: cells run on a tokio runtime the kernel owns, polled
        // by the thread that runs them; it is not the runtime serving the sockets.
        autoawait_runners::tokio_runner::attach(kernel.cell_runtime());
        if let Some(name) = runner {
            engine
                .selector()
                .handle(name)
                .map_err(|e| ErrorInfo::from(&e))?;
        }
        install_kernel_builtins(&engine, out)?;
        // fd 1 is a pipe in a kernel: unbuffered, `io.write` reaches the cell at once.
        engine
            .lua()
            .load("io.stdout:setvbuf('no')")
            .exec()
            .map_err(|e| ErrorInfo::new(ErrorKind::LuaError, e.to_string()))?;
        Ok(LuaSession { engine })
    }
}

/// What `kernel_info_reply` says: Lua 5.4 cells, implementation `autoawait`.
pub fn kernel_info() -> KernelInfo {
    KernelInfo {
        implementation: "autoawait".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language: "lua".into(),
        language_version: "5.4".into(),
        mimetype: "text/x-lua".into(),
        file_extension: ".lua".into(),
        banner: format!(
            "autoawait {}: Lua 5.4 cells that await, on the runner of your choice (%autoawait --list)",
            env!("CARGO_PKG_VERSION")
        ),
        help_links: vec![(
            "Lua 5.4 manual".into(),
            "https://www.lua.org/manual/5.4/".into(),
        )],
    }
}

/// `clear_output([wait])`, `input([prompt])` and `exit()` / `quit()`: what only a
/// notebook offers.
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
    let o = out.clone();
    let input = lua
        .create_function(move |_, prompt: Option<String>| {
            o.input(current_cell(), prompt.as_deref().unwrap_or(""), false)
                .map_err(mlua::Error::external)
        })
        .map_err(failed)?;
    engine.set_builtin("input", input)?;
    for name in ["exit", "quit"] {
        let o = out.clone();
        let ask = lua
            .create_function(move |_, ()| {
                o.ask_exit(current_cell());
                Ok(())
            })
            .map_err(failed)?;
        engine.set_builtin(name, ask)?;
    }
    Ok(())
}

impl Session for LuaSession {
    fn info(&self) -> KernelInfo {
        kernel_info()
    }

    fn execute(&mut self, code: &str, ctx: &ExecuteContext) -> ExecuteOutcome {
        if assist::is_exit(code) {
            ctx.output.ask_exit(Some(ctx.cell));
            return Ok(None);
        }
        if let Some(name) = assist::help_query(code) {
            return match self.inspect(name, name.len(), 0) {
                Some(help) => {
                    ctx.output.page(Some(ctx.cell), &help);
                    Ok(None)
                }
                None => Err(ErrorReport::new(
                    "NameError",
                    format!("no help on `{name}`: it is not a global, a builtin or a magic"),
                )),
            };
        }
        let opts = RunOptions::default().cancel_token(ctx.cancel.clone());
        let outcome = self
            .engine
            .run_cell_as(ctx.cell, ctx.execution_count, code, &opts);
        match outcome.error {
            Some(err) => Err(self::report(&err)),
            None => Ok(outcome.value.as_ref().map(bundle)),
        }
    }

    fn is_complete(&mut self, code: &str) -> Completeness {
        match crate::completeness(code) {
            LuaCompleteness::Complete => Completeness::Complete,
            LuaCompleteness::Incomplete => Completeness::Incomplete {
                indent: String::new(),
            },
            LuaCompleteness::Invalid => Completeness::Invalid,
        }
    }

    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        let (cursor_start, matches) = assist::complete(self.engine.lua(), code, cursor);
        Completions {
            matches,
            cursor_start,
            cursor_end: cursor,
        }
    }

    fn inspect(&mut self, code: &str, cursor: usize, _detail_level: u8) -> Option<MimeBundle> {
        let (start, end) = assist::word_at(code, cursor);
        assist::help(self.engine.lua(), &code[start..end]).map(MimeBundle::text)
    }

    fn evaluate(&mut self, expression: &str) -> Result<MimeBundle, ErrorReport> {
        match self.engine.evaluate(expression) {
            Ok(value) => Ok(value
                .as_ref()
                .map_or_else(|| MimeBundle::text("nil"), bundle)),
            Err(err) => Err(report(&err)),
        }
    }

    /// A session on the same engine (see [`Engine::subshell`]): a subshell cell runs
    /// while the main cell awaits.
    fn subshell(&self) -> Option<Self> {
        Some(LuaSession {
            engine: self.engine.subshell(),
        })
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
