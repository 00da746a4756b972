//! The Lua globals a cell sees: `await`, `gather`, `spawn`, `sleep`, `timeout`,
//! `tcp`, `http`, `json`, `display`, `markdown`, `html`, `print`, `run_cell`, backend
//! modules. This module holds what every builtin shares (the [`Awaitable`], how Lua
//! values become futures) and the core ones; the rest live in a module each.

mod display;
mod http;
mod json;
mod net;
mod tasks;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use autoawait_core::{BoxFuture, Cell, CellId, Registry, RunError, RunOptions, Runner};
use futures::future::{join_all, select, Either};
use mlua::{Function, Lua, MultiValue, UserData, UserDataMethods, Value, Variadic};

use crate::engine::{self, in_sync_cell, Shared};
use crate::errors::external;
use crate::output::{show_value, Output};
use crate::ErrorInfo;

pub(crate) use display::RichValue;
use tasks::TaskUd;
pub(crate) use tasks::{is_detached, spawn_task, Tasks};

/// Turns what an awaited future produced into Lua values (run with the Lua state).
pub(crate) type Convert = Box<dyn FnOnce(&Lua) -> mlua::Result<MultiValue> + Send>;
pub(crate) type AwaitFuture = BoxFuture<'static, mlua::Result<Convert>>;

fn values(v: MultiValue) -> Convert {
    Box::new(move |_| Ok(v))
}

fn nothing() -> Convert {
    Box::new(|_| Ok(MultiValue::new()))
}

fn lua_err(message: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(message.into())
}

/// An un-polled future: what `sleep(s)`, `timeout`, `gather`, TCP calls return.
/// `await(x)` runs it; each awaitable can be awaited once.
pub(crate) struct Awaitable {
    what: String,
    /// The backend whose loop must poll it (`tokio`), if it is tied to one.
    needs: Option<(String, Arc<Shared>)>,
    fut: Mutex<Option<AwaitFuture>>,
}

impl Awaitable {
    pub(crate) fn new(
        what: impl Into<String>,
        needs: Option<(String, Arc<Shared>)>,
        fut: AwaitFuture,
    ) -> Self {
        Awaitable {
            what: what.into(),
            needs,
            fut: Mutex::new(Some(fut)),
        }
    }

    /// An awaitable of `runner`'s services (its sockets, its timer): polled by
    /// another backend's loop it is `WrongRuntime`, not a hang or a panic.
    pub(crate) fn on(
        what: impl Into<String>,
        runner: &Arc<dyn Runner>,
        shared: &Arc<Shared>,
        fut: AwaitFuture,
    ) -> Self {
        let backend = runner.info().backend.to_string();
        let needs = (backend != "core").then(|| (backend, shared.clone()));
        Awaitable::new(what, needs, fut)
    }

    fn take(&self) -> mlua::Result<AwaitFuture> {
        if let Some((needs, shared)) = &self.needs {
            check_backend(shared, needs)?;
        }
        lock(&self.fut).take().ok_or_else(|| {
            lua_err(format!(
                "{} was already awaited: an awaitable runs once; make a new one, or spawn() \
                 the work to share its result",
                self.what
            ))
        })
    }
}

impl UserData for Awaitable {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| {
            let state = if lock(&this.fut).is_some() {
                "not awaited"
            } else {
                "awaited"
            };
            Ok(format!("<awaitable {} ({state})>", this.what))
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn seconds(secs: f64) -> mlua::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| lua_err(format!("expected a number of seconds >= 0, got {secs}")))
}

/// The backend of the loop polling this thread (else of the selected runner), and
/// that runner's name.
fn active_backend(shared: &Shared) -> (String, String) {
    let name = autoawait_core::current_runner_name()
        .unwrap_or_else(|| shared.selector().name().to_owned());
    let backend = Registry::global()
        .info(&name)
        .map(|i| i.backend.to_string())
        .unwrap_or_default();
    (backend, name)
}

fn check_backend(shared: &Shared, needs: &str) -> mlua::Result<()> {
    let (backend, runner) = active_backend(shared);
    if backend == needs {
        return Ok(());
    }
    Err(external(&RunError::WrongRuntime {
        needs: needs.into(),
        runner,
        detail: String::new(),
    }))
}

/// Whether `err` is the hook stopping the Lua code of `timeout` scope `scope`.
fn expired_in(err: &mlua::Error, scope: u64) -> bool {
    match err {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            expired_in(cause, scope)
        }
        mlua::Error::ExternalError(e) => e
            .downcast_ref::<engine::ScopeExpired>()
            .is_some_and(|x| x.scope == scope),
        _ => false,
    }
}

/// Turns what `await`/`gather`/`timeout` accept into a future.
fn to_future(value: Value) -> mlua::Result<AwaitFuture> {
    match &value {
        Value::UserData(ud) => {
            if let Ok(awaitable) = ud.borrow::<Awaitable>() {
                return awaitable.take();
            }
            if let Ok(task) = ud.borrow::<TaskUd>() {
                return Ok(task.0.future());
            }
            if let Some(fut) = crate::plugins::wait_handle(ud) {
                return fut;
            }
            Err(not_awaitable(&value))
        }
        Value::Function(f) => {
            let call = f.call_async::<MultiValue>(());
            Ok(Box::pin(async move { Ok(values(call.await?)) }))
        }
        _ => Err(not_awaitable(&value)),
    }
}

fn not_awaitable(value: &Value) -> mlua::Error {
    lua_err(format!(
        "await() takes an awaitable (sleep(s), timeout(s, x), gather(...), a tcp call), \
         a Task (spawn(fn)) or a function to run; got {}",
        show_value(value)
    ))
}

fn refuse_in_sync_cell(what: &str) -> mlua::Result<()> {
    if in_sync_cell() {
        return Err(lua_err(format!(
            "{what} needs autoawait, which is off: this cell runs synchronously. \
             Run `%autoawait on` (or `%autoawait <runner>`), or start the work in the \
             background with spawn(fn)"
        )));
    }
    Ok(())
}

fn emit(shared: &Shared, output: Output) {
    shared.sink.emit(shared.output_cell(), output);
}

fn join_values(values: &Variadic<Value>, sep: &str) -> mlua::Result<String> {
    let mut text = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            text.push_str(sep);
        }
        match v {
            Value::String(s) => text.push_str(&s.to_string_lossy()),
            // As Lua's `tostring`: `3.0`, `1e+300`; `__tostring` and `__name` respected.
            Value::Number(n) => text.push_str(&crate::show::lua_float(*n)),
            other => text.push_str(&other.to_string()?),
        }
    }
    Ok(text)
}

fn service_sleep(shared: &Arc<Shared>, secs: f64, module: Option<&str>) -> mlua::Result<Awaitable> {
    let duration = seconds(secs)?;
    if let Some(needs) = module {
        check_backend(shared, needs)?;
    }
    let runner = shared.active_runner().map_err(|e| external(&e))?;
    let backend = runner.info().backend.to_string();
    let (fut, needs): (BoxFuture<'static, ()>, _) = match runner.services() {
        Some(services) if backend != "core" => {
            (services.sleep(duration), Some((backend, shared.clone())))
        }
        Some(services) => (services.sleep(duration), None),
        None => (Box::pin(autoawait_core::sleep(duration)), None),
    };
    let what = match module {
        Some(m) => format!("{m}.sleep({secs})"),
        None => format!("sleep({secs})"),
    };
    if duration.is_zero() {
        // asyncio.sleep(0): yield to the loop once, no timer (timers round up to a tick).
        return Ok(Awaitable::new(
            what,
            None,
            Box::pin(async {
                YieldOnce(false).await;
                Ok(nothing())
            }),
        ));
    }
    Ok(Awaitable::new(
        what,
        needs,
        Box::pin(async move {
            fut.await;
            Ok(nothing())
        }),
    ))
}

/// Returns `Pending` once (waking itself), then `Ready`.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The builtins whose errors are raised as Lua's are: a message string with the
/// caller's position (`In[3]:1: json.decode: bad JSON at ...`), so that `pcall`
/// gives what `error("...")` would. Errors that stop the cell (an interrupt, a
/// timeout, a runner's refusal) stay objects that keep their kind.
const CLEAN_ERRORS: &[&str] = &[
    "await",
    "gather",
    "timeout",
    "sleep",
    "spawn",
    "detach",
    "run_cell",
    "display",
    "display_handle",
    "markdown",
    "html",
    "eprint",
    "tcp",
    "json",
    "http",
];

/// The message of an error a builtin raised, if it is a plain one (a usage
/// mistake, an I/O failure, bad JSON); `None` for the errors that keep their kind.
fn plain_message(err: &mlua::Error) -> Option<String> {
    let mut err = err;
    while let mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } =
        err
    {
        err = cause;
    }
    match err {
        mlua::Error::RuntimeError(text) => Some(
            text.split_once("\nstack traceback:")
                .map_or(text.as_str(), |(m, _)| m)
                .to_owned(),
        ),
        mlua::Error::ExternalError(e) => match e.downcast_ref::<ErrorInfo>() {
            Some(info)
                if matches!(
                    info.kind,
                    crate::ErrorKind::LuaError | crate::ErrorKind::UsageError
                ) =>
            {
                Some(info.message.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

/// Wraps each function of [`CLEAN_ERRORS`] (and each function of those that are
/// modules) so that its plain errors are raised with `error(message, 2)`.
fn clean_errors(lua: &Lua) -> mlua::Result<()> {
    let clean = lua.create_function(|lua, err: Value| match &err {
        Value::Error(e) => match plain_message(e) {
            Some(message) => Ok(Value::String(lua.create_string(message)?)),
            None => Ok(err),
        },
        _ => Ok(err),
    })?;
    let wrap: Function = lua
        .load(
            "local clean = ...
             local pack, unpack, pcall, error = table.pack, table.unpack, pcall, error
             return function(f)
               return function(...)
                 local r = pack(pcall(f, ...))
                 if r[1] then return unpack(r, 2, r.n) end
                 error(clean(r[2]), 2)
               end
             end",
        )
        .set_name("=builtins")
        .call(clean)?;
    let g = lua.globals();
    for name in CLEAN_ERRORS {
        match g.get::<Value>(*name)? {
            Value::Function(f) => g.set(*name, wrap.call::<Function>(f)?)?,
            Value::Table(module) => {
                for pair in module.clone().pairs::<Value, Value>() {
                    if let (k, Value::Function(f)) = pair? {
                        module.set(k, wrap.call::<Function>(f)?)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `err` is the hook stopping Lua code (an interrupt, the cell's timeout, an
/// expired `timeout` scope): what `pcall` must not swallow.
fn is_control(err: &mlua::Error) -> bool {
    match err {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_control(cause)
        }
        mlua::Error::ExternalError(e) => {
            e.downcast_ref::<engine::ScopeExpired>().is_some()
                || matches!(
                    e.downcast_ref::<RunError>(),
                    Some(RunError::Cancelled | RunError::TimedOut { .. })
                )
        }
        _ => false,
    }
}

/// `pcall` and `xpcall` that let an interrupt or a timeout through, as Python's
/// `except Exception` lets `KeyboardInterrupt` through: a loop of `pcall`s still
/// stops when the user presses Ctrl-C or the deadline passes.
fn uncatchable_control(lua: &Lua) -> mlua::Result<()> {
    let control =
        lua.create_function(|_, err: Value| Ok(matches!(&err, Value::Error(e) if is_control(e))))?;
    lua.load(
        "local is_control = ...
         local pack, unpack, error = table.pack, table.unpack, error
         local raw_pcall, raw_xpcall = pcall, xpcall
         pcall = function(f, ...)
           local r = pack(raw_pcall(f, ...))
           if not r[1] and is_control(r[2]) then error(r[2], 0) end
           return unpack(r, 1, r.n)
         end
         xpcall = function(f, handler, ...)
           local stopped
           local r = pack(raw_xpcall(f, function(e)
             if is_control(e) then stopped = e return e end
             return handler(e)
           end, ...))
           if stopped ~= nil then error(stopped, 0) end
           return unpack(r, 1, r.n)
         end",
    )
    .set_name("=builtins")
    .call::<()>(control)
}

/// Installs every builtin into `lua`'s globals.
pub(crate) fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let g = lua.globals();

    g.set(
        crate::cells::SHOW,
        lua.load("return function(...) return ... end")
            .eval::<Function>()?,
    )?;
    let s = shared.clone();
    g.set(
        "print",
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut text = join_values(&args, "\t")?;
            text.push('\n');
            emit(&s, Output::Stdout(text));
            Ok(())
        })?,
    )?;
    let s = shared.clone();
    g.set(
        "eprint",
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut text = join_values(&args, "\t")?;
            text.push('\n');
            emit(&s, Output::Stderr(text));
            Ok(())
        })?,
    )?;
    if let Ok(io) = g.get::<mlua::Table>("io") {
        let s = shared.clone();
        io.set(
            "write",
            lua.create_function(move |_, args: Variadic<Value>| {
                emit(&s, Output::Stdout(join_values(&args, "")?));
                Ok(())
            })?,
        )?;
    }

    g.set(
        "await",
        lua.create_async_function(|lua, value: Value| async move {
            refuse_in_sync_cell("await()")?;
            let convert = to_future(value)?.await?;
            convert(&lua)
        })?,
    )?;

    g.set(
        "gather",
        lua.create_function(|_, items: Variadic<Value>| {
            let what = format!("gather({} awaitables)", items.len());
            let futures = items
                .into_iter()
                .map(to_future)
                .collect::<mlua::Result<Vec<_>>>()?;
            let fut: AwaitFuture = Box::pin(async move {
                let mut converts = Vec::with_capacity(futures.len());
                for result in join_all(futures).await {
                    converts.push(result?);
                }
                Ok(Box::new(move |lua: &Lua| {
                    let mut out = Vec::with_capacity(converts.len());
                    for convert in converts {
                        out.push(convert(lua)?.into_iter().next().unwrap_or(Value::Nil));
                    }
                    Ok(MultiValue::from_vec(out))
                }) as Convert)
            });
            Ok(Awaitable::new(what, None, fut))
        })?,
    )?;

    let s = shared.clone();
    g.set(
        "timeout",
        lua.create_function(move |_, (secs, value): (f64, Value)| {
            let limit = seconds(secs)?;
            let inner = to_future(value)?;
            let shared = s.clone();
            let fut: AwaitFuture = Box::pin(async move {
                // The scope starts when awaited, for the cell awaiting it: the hook
                // stops CPU-bound Lua under it; the timer stops an awaiting one.
                let scope = shared.timeout_scope(limit);
                let timed_out = || {
                    mlua::Error::external(ErrorInfo::new(
                        crate::ErrorKind::TimedOut,
                        format!("timeout: not finished within {secs} s (the work was dropped)"),
                    ))
                };
                match select(inner, Box::pin(autoawait_core::sleep(limit))).await {
                    Either::Left((Err(e), _)) if expired_in(&e, scope.id) => Err(timed_out()),
                    Either::Left((result, _)) => result,
                    Either::Right(_) => Err(timed_out()),
                }
            });
            Ok(Awaitable::new(format!("timeout({secs}, ...)"), None, fut))
        })?,
    )?;

    let s = shared.clone();
    g.set(
        "sleep",
        lua.create_function(move |_, secs: f64| service_sleep(&s, secs, None))?,
    )?;

    tasks::install(lua, shared)?;
    display::install(lua, shared)?;
    net::install(lua, shared)?;
    json::install(lua)?;
    http::install(lua, shared)?;
    let s = shared.clone();
    g.set(
        "run_cell",
        lua.create_function(move |lua, source: String| run_nested(lua, &s, &source))?,
    )?;

    // Backend modules: `tokio.sleep(s)` works under a tokio runner only.
    let mut backends: Vec<String> = Registry::global()
        .list()
        .into_iter()
        .map(|l| l.info.backend.to_string())
        .filter(|b| b != "core" && !b.is_empty())
        .collect();
    backends.sort();
    backends.dedup();
    for backend in backends {
        if g.contains_key(backend.as_str())? {
            continue;
        }
        let module = lua.create_table()?;
        let (s, name) = (shared.clone(), backend.clone());
        module.set(
            "sleep",
            lua.create_function(move |_, secs: f64| service_sleep(&s, secs, Some(&name)))?,
        )?;
        g.set(backend, module)?;
    }
    clean_errors(lua)?;
    uncatchable_control(lua)
}

/// The active runner, if it has sockets to offer (the `tcp` and `http` modules).
pub(crate) fn runner_with_sockets(shared: &Shared) -> mlua::Result<Arc<dyn Runner>> {
    let runner = shared.active_runner().map_err(|e| external(&e))?;
    if runner.services().is_none() {
        return Err(lua_err(format!(
            "runner `{}` has no sockets (its cells can sleep, not connect); select one \
             that has, like `%autoawait tokio` or `%autoawait smol`",
            runner.info().name
        )));
    }
    Ok(runner)
}

/// The services of a runner [`runner_with_sockets`] returned.
pub(crate) fn services(runner: &Arc<dyn Runner>) -> &dyn autoawait_core::Services {
    runner.services().expect("checked by runner_with_sockets")
}

/// `run_cell(src)`: runs `src` as a cell of its own, synchronously, from inside a cell.
fn run_nested(lua: &Lua, shared: &Arc<Shared>, source: &str) -> mlua::Result<MultiValue> {
    let sync = in_sync_cell();
    let runner = if sync {
        None
    } else {
        let runner = shared.active_runner().map_err(|e| external(&e))?;
        if !runner.info().capabilities.nests {
            return Err(external(&RunError::would_deadlock(
                &runner.info().name,
                "run_cell() from inside a cell",
            )));
        }
        Some(runner)
    };
    let count = shared.next_count();
    let id = CellId::new(count);
    shared.remember(count, source);
    let outer = shared.output_cell();
    let func = crate::cells::compile(lua, source, count)?;
    // The nested cell's output is the running cell's, not late output.
    shared.sink.cell_started(id);
    let call = func.call_async::<MultiValue>(());
    let result = match runner {
        None => engine::run_sync(
            Cell::with_origin(id, engine::sync_mode(call)),
            &RunOptions::default(),
        ),
        Some(runner) => runner.run(Cell::with_origin(id, call), &RunOptions::default()),
    };
    let result = engine::cell_values(result).map_err(|info: ErrorInfo| {
        mlua::Error::external(ErrorInfo {
            message: format!("in the nested cell In[{count}]: {}", info.message),
            ..info
        })
    });
    if let Ok(values) = &result {
        if let Some(value) = engine::to_rich(values) {
            shared.sink.emit(id, Output::Result { count, value });
        }
    }
    shared.sink.cell_started(outer);
    result
}
