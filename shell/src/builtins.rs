//! The Lua globals a cell sees: `await`, `gather`, `spawn`, `sleep`, `timeout`,
//! `tcp`, `display`, `markdown`, `html`, `print`, `run_cell`, backend modules.

use std::future::{poll_fn, Future};
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use autoawait_core::{
    current_cell, BoxFuture, ByteStream, Cell, CellId, EventualResult, Listener, Registry,
    RunError, RunOptions, Runner, WaitError, WaitResult,
};
use futures::future::{join_all, select, Either};
use futures_io::{AsyncRead, AsyncWrite};
use mlua::{
    Function, IntoLuaMulti, Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value, Variadic,
};

use crate::engine::{self, in_sync_cell, Shared};
use crate::errors::{external, lua_error};
use crate::output::{show_value, Output, Rich};
use crate::{ErrorInfo, ErrorKind};

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

/// A rich value (`markdown(s)`, `html(s)`): shown as its plain text in a terminal.
pub(crate) struct RichValue(pub(crate) Rich);

impl UserData for RichValue {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| Ok(this.0.plain.clone()));
    }
}

/// Wakes every waiter of a task: an [`EventualResult`] keeps one waker, and a task
/// may be awaited by the cell and by other tasks at once.
#[derive(Default)]
struct FanOut(Mutex<Vec<Waker>>);

impl Wake for FanOut {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for waker in std::mem::take(&mut *lock(&self.0)) {
            waker.wake();
        }
    }
}

/// What a background task left: its result, cached so every call sees the same.
pub(crate) struct TaskState {
    origin: CellId,
    waiters: Arc<FanOut>,
    eventual: Mutex<EventualResult>,
    cache: Mutex<Option<mlua::Result<MultiValue>>>,
    observed: AtomicBool,
    abandoned: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

fn task_result(result: WaitResult) -> mlua::Result<MultiValue> {
    match result {
        Ok(out) => match out.downcast::<mlua::Result<MultiValue>>() {
            Ok(values) => *values,
            Err(_) => Err(lua_err("the task returned a value that is not Lua's")),
        },
        Err(err) => Err(external(&err)),
    }
}

impl TaskState {
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<mlua::Result<MultiValue>> {
        let mut cache = lock(&self.cache);
        if cache.is_none() {
            {
                let mut waiters = lock(&self.waiters.0);
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
            }
            let fan_out = Waker::from(self.waiters.clone());
            let mut eventual = lock(&self.eventual);
            match Pin::new(&mut *eventual).poll(&mut Context::from_waker(&fan_out)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => *cache = Some(task_result(result)),
            }
        }
        self.observed.store(true, Ordering::Relaxed);
        Poll::Ready(cache.clone().expect("the result is cached"))
    }

    fn try_result(&self) -> Option<mlua::Result<MultiValue>> {
        let mut cache = lock(&self.cache);
        if cache.is_none() {
            *cache = Some(task_result(lock(&self.eventual).try_result()?));
        }
        cache.clone()
    }

    fn is_done(&self) -> bool {
        lock(&self.cache).is_some() || lock(&self.eventual).is_done()
    }

    fn future(self: &Arc<Self>) -> AwaitFuture {
        let this = self.clone();
        Box::pin(async move {
            let values = poll_fn(|cx| this.poll_result(cx)).await?;
            Ok(self::values(values))
        })
    }
}

impl Drop for TaskState {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::Release);
        if self.observed.load(Ordering::Relaxed) {
            return;
        }
        if let Some(Err(err)) = self.try_result() {
            report_task_error(&self.shared, self.origin, &err);
        }
    }
}

fn report_task_error(shared: &Shared, origin: CellId, err: &mlua::Error) {
    let mut info = lua_error(err);
    if info.kind == ErrorKind::Cancelled {
        return;
    }
    info.message = format!(
        "unhandled error in a task of In[{origin}]: {}",
        info.message
    );
    shared.sink.emit(origin, Output::Error(info));
}

/// The Lua side of a background task: `spawn(fn)` and `%%run_in_reactor` return it.
pub(crate) struct TaskUd(Arc<TaskState>);

impl UserData for TaskUd {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("wait", |_, this, timeout: Option<f64>| {
            let state = this.0.clone();
            async move {
                let wait = poll_fn(|cx| state.poll_result(cx));
                let Some(secs) = timeout else {
                    return wait.await;
                };
                let limit = seconds(secs)?;
                match select(Box::pin(wait), Box::pin(autoawait_core::sleep(limit))).await {
                    Either::Left((result, _)) => result,
                    Either::Right(_) => Err(external(&WaitError::NotReady { waited: limit })),
                }
            }
        });
        methods.add_method("result", |_, this, ()| match this.0.try_result() {
            Some(result) => {
                this.0.observed.store(true, Ordering::Relaxed);
                result
            }
            None => Err(lua_err(
                "the task is still running: wait for it with task:wait([timeout]) or await(task)",
            )),
        });
        methods.add_method("done", |_, this, ()| Ok(this.0.is_done()));
        methods.add_method("cancel", |_, this, ()| {
            lock(&this.0.eventual).cancel();
            Ok(())
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            let state = match this.0.try_result() {
                None => "running",
                Some(Ok(_)) => "done",
                Some(Err(_)) => "failed",
            };
            Ok(format!("<Task of In[{}]: {state}>", this.0.origin))
        });
    }
}

/// The origin of a detached task: a fresh id that belongs to no cell, so its output
/// goes where the user is now (the latest cell in a notebook, `[bg]` in the REPL)
/// instead of to the cell that started it.
pub(crate) fn detached() -> CellId {
    CellId::next()
}

/// `true` for an origin made by [`detached`]: hosts number their cells from 1, and
/// fresh ids start far above any execution count.
pub(crate) fn is_detached(cell: CellId) -> bool {
    cell.get() >= 1 << 32
}

/// Starts `func(args...)` in the background on `runner`, as part of cell `origin`.
pub(crate) fn spawn_task(
    shared: &Arc<Shared>,
    runner: &Arc<dyn Runner>,
    func: Function,
    args: MultiValue,
    origin: CellId,
) -> Result<TaskUd, RunError> {
    let abandoned = Arc::new(AtomicBool::new(false));
    let call = func.call_async::<MultiValue>(args);
    let (flag, task_shared) = (abandoned.clone(), shared.clone());
    let fut = async move {
        let result = call.await;
        if let Err(err) = &result {
            if flag.load(Ordering::Acquire) {
                let origin = current_cell().unwrap_or(origin);
                report_task_error(&task_shared, origin, err);
            }
        }
        result
    };
    let eventual = runner.spawn(Cell::with_origin(origin, fut))?;
    Ok(TaskUd(Arc::new(TaskState {
        origin,
        waiters: Arc::default(),
        eventual: Mutex::new(eventual),
        cache: Mutex::new(None),
        observed: AtomicBool::new(false),
        abandoned,
        shared: shared.clone(),
    })))
}

/// A byte stream from `tcp.connect` or `listener:accept()`.
struct StreamUd {
    slot: Arc<Mutex<Option<Box<dyn ByteStream>>>>,
    peer: String,
}

/// Lends the stream out of its slot for one operation; gives it back when dropped.
struct Lease {
    slot: Arc<Mutex<Option<Box<dyn ByteStream>>>>,
    stream: Option<Box<dyn ByteStream>>,
}

impl Lease {
    fn take(slot: &Arc<Mutex<Option<Box<dyn ByteStream>>>>) -> mlua::Result<Lease> {
        let stream = lock(slot)
            .take()
            .ok_or_else(|| lua_err("the stream is closed, or busy with another read or write"))?;
        Ok(Lease {
            slot: slot.clone(),
            stream: Some(stream),
        })
    }

    fn stream(&mut self) -> Pin<&mut Box<dyn ByteStream>> {
        Pin::new(self.stream.as_mut().expect("leased"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *lock(&self.slot) = self.stream.take();
    }
}

impl UserData for StreamUd {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("read", |_, this, max: Option<usize>| {
            let mut lease = Lease::take(&this.slot)?;
            let max = max.unwrap_or(65536).max(1);
            let fut: AwaitFuture = Box::pin(async move {
                let mut buf = vec![0; max];
                let n = poll_fn(|cx| lease.stream().poll_read(cx, &mut buf))
                    .await
                    .map_err(io_err)?;
                buf.truncate(n);
                Ok(Box::new(move |lua: &Lua| {
                    if n == 0 {
                        Ok(MultiValue::from_vec(vec![Value::Nil]))
                    } else {
                        lua.create_string(&buf)?.into_lua_multi(lua)
                    }
                }) as Convert)
            });
            Ok(Awaitable::new("stream:read()", None, fut))
        });
        methods.add_method("write", |_, this, data: mlua::LuaString| {
            let mut lease = Lease::take(&this.slot)?;
            let data = data.as_bytes().to_vec();
            let fut: AwaitFuture = Box::pin(async move {
                let mut written = 0;
                while written < data.len() {
                    let n = poll_fn(|cx| lease.stream().poll_write(cx, &data[written..]))
                        .await
                        .map_err(io_err)?;
                    if n == 0 {
                        return Err(lua_err("the connection was closed while writing"));
                    }
                    written += n;
                }
                poll_fn(|cx| lease.stream().poll_flush(cx))
                    .await
                    .map_err(io_err)?;
                Ok(Box::new(move |lua: &Lua| written.into_lua_multi(lua)) as Convert)
            });
            Ok(Awaitable::new("stream:write()", None, fut))
        });
        methods.add_method("close", |_, this, ()| {
            drop(lock(&this.slot).take());
            Ok(())
        });
        methods.add_method("peer", |_, this, ()| Ok(this.peer.clone()));
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("<tcp stream to {}>", this.peer))
        });
    }
}

/// A listening socket from `tcp.listen`.
struct ListenerUd(Arc<dyn Listener>);

impl UserData for ListenerUd {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("accept", |_, this, ()| {
            let accept = this.0.accept();
            let fut: AwaitFuture = Box::pin(async move {
                let (stream, peer) = accept.await.map_err(io_err)?;
                Ok(Box::new(move |lua: &Lua| {
                    let peer = peer.to_string();
                    let ud = lua.create_userdata(StreamUd {
                        slot: Arc::new(Mutex::new(Some(stream))),
                        peer: peer.clone(),
                    })?;
                    (ud, peer).into_lua_multi(lua)
                }) as Convert)
            });
            Ok(Awaitable::new("listener:accept()", None, fut))
        });
        methods.add_method("addr", |_, this, ()| {
            this.0.local_addr().map(|a| a.to_string()).map_err(io_err)
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            let addr = this
                .0
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            Ok(format!("<tcp listener on {addr}>"))
        });
    }
}

fn io_err(err: std::io::Error) -> mlua::Error {
    lua_err(err.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn seconds(secs: f64) -> mlua::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| lua_err(format!("expected a number of seconds >= 0, got {secs}")))
}

fn parse_addr(addr: &str) -> mlua::Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| lua_err(format!("bad address `{addr}`: {e} (use host:port)")))?
        .next()
        .ok_or_else(|| lua_err(format!("address `{addr}` resolves to nothing")))
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

/// Emits `text` on stdout for the cell being polled.
/// How `display` shows a value: rich values as they are, others as text.
fn rich_of(v: &Value) -> Rich {
    match v {
        Value::UserData(ud) => match ud.borrow::<RichValue>() {
            Ok(rich) => rich.0.clone(),
            Err(_) => Rich::text(show_value(v)),
        },
        _ => Rich::text(show_value(v)),
    }
}

/// What `display_handle(v)` returns: `handle:update(v)` replaces the value shown,
/// `handle:display(v)` shows it again in the current cell (both update together).
struct DisplayHandle {
    id: String,
    shared: Arc<Shared>,
}

impl UserData for DisplayHandle {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("id", |_, this| Ok(this.id.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("update", |_, this, v: Value| {
            let (id, value) = (this.id.clone(), rich_of(&v));
            emit(&this.shared, Output::UpdateDisplay { id, value });
            Ok(())
        });
        methods.add_method("display", |_, this, v: Value| {
            let (id, value) = (Some(this.id.clone()), rich_of(&v));
            emit(&this.shared, Output::Display { value, id });
            Ok(())
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("<DisplayHandle {}>", this.id))
        });
    }
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

    g.set(
        "timeout",
        lua.create_function(|_, (secs, value): (f64, Value)| {
            let limit = seconds(secs)?;
            let inner = to_future(value)?;
            let fut: AwaitFuture = Box::pin(async move {
                match select(inner, Box::pin(autoawait_core::sleep(limit))).await {
                    Either::Left((result, _)) => result,
                    Either::Right(_) => Err(lua_err(format!(
                        "timeout: not finished within {secs} s (the work was dropped)"
                    ))),
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

    let s = shared.clone();
    g.set(
        "spawn",
        lua.create_function(move |_, (func, args): (Function, MultiValue)| {
            let runner = s.active_runner().map_err(|e| external(&e))?;
            spawn_task(&s, &runner, func, args, s.output_cell()).map_err(|e| external(&e))
        })?,
    )?;

    let s = shared.clone();
    g.set(
        "detach",
        lua.create_function(move |_, (func, args): (Function, MultiValue)| {
            let runner = s.active_runner().map_err(|e| external(&e))?;
            spawn_task(&s, &runner, func, args, detached()).map_err(|e| external(&e))
        })?,
    )?;

    let s = shared.clone();
    g.set(
        "display",
        lua.create_function(move |_, args: Variadic<Value>| {
            for v in args.iter() {
                let value = rich_of(v);
                emit(&s, Output::Display { value, id: None });
            }
            Ok(())
        })?,
    )?;
    let s = shared.clone();
    g.set(
        "display_handle",
        lua.create_function(move |_, value: Option<Value>| {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let id = format!(
                "autoawait-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            if let Some(v) = value {
                let value = rich_of(&v);
                let id = Some(id.clone());
                emit(&s, Output::Display { value, id });
            }
            Ok(DisplayHandle {
                id,
                shared: s.clone(),
            })
        })?,
    )?;
    g.set(
        "markdown",
        lua.create_function(|_, text: String| Ok(RichValue(Rich::markdown(text))))?,
    )?;
    g.set(
        "html",
        lua.create_function(|_, text: String| Ok(RichValue(Rich::html(text))))?,
    )?;

    let tcp = lua.create_table()?;
    let s = shared.clone();
    tcp.set(
        "connect",
        lua.create_function(move |_, addr: String| {
            let target = parse_addr(&addr)?;
            let runner = s.active_runner().map_err(|e| external(&e))?;
            let services = runner
                .services()
                .ok_or_else(|| lua_err(no_services(&*runner)))?;
            let connect = services.connect(target);
            let fut: AwaitFuture = Box::pin(async move {
                let stream = connect.await.map_err(io_err)?;
                Ok(Box::new(move |lua: &Lua| {
                    lua.create_userdata(StreamUd {
                        slot: Arc::new(Mutex::new(Some(stream))),
                        peer: addr,
                    })?
                    .into_lua_multi(lua)
                }) as Convert)
            });
            Ok(Awaitable::new(
                format!("tcp.connect({target})"),
                Some(runner.info().backend.to_string())
                    .filter(|b| b != "core")
                    .map(|b| (b, s.clone())),
                fut,
            ))
        })?,
    )?;
    let s = shared.clone();
    tcp.set(
        "listen",
        lua.create_function(move |_, addr: String| {
            let target = parse_addr(&addr)?;
            let runner = s.active_runner().map_err(|e| external(&e))?;
            let services = runner
                .services()
                .ok_or_else(|| lua_err(no_services(&*runner)))?;
            let listen = services.listen(target);
            let fut: AwaitFuture = Box::pin(async move {
                let listener: Arc<dyn Listener> = Arc::from(listen.await.map_err(io_err)?);
                Ok(Box::new(move |lua: &Lua| {
                    lua.create_userdata(ListenerUd(listener))?
                        .into_lua_multi(lua)
                }) as Convert)
            });
            Ok(Awaitable::new(
                format!("tcp.listen({target})"),
                Some(runner.info().backend.to_string())
                    .filter(|b| b != "core")
                    .map(|b| (b, s.clone())),
                fut,
            ))
        })?,
    )?;
    g.set("tcp", tcp)?;

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
    Ok(())
}

fn no_services(runner: &dyn Runner) -> String {
    format!(
        "runner `{}` offers no timers or sockets; select one that does, like `tokio` or `smol`",
        runner.info().name
    )
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
