//! Background tasks: `spawn(fn, ...)`, `spawn{name = ..., fn, ...}`, `detach(fn, ...)`,
//! the Task a cell holds, and the list `%tasks` shows and `%cancel` acts on.

use std::fmt::Write as _;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use autoawait_core::{
    current_cell, CancelToken, Cell, CellId, EventualResult, RunError, RunOptions, Runner,
    Strategy, WaitError, WaitResult,
};
use futures::future::{select, Either};
use mlua::{Function, Lua, MultiValue, UserData, UserDataMethods, Value};

use super::{lock, lua_err, seconds, values, AwaitFuture};
use crate::engine::Shared;
use crate::errors::{external, lua_error};
use crate::output::Output;
use crate::ErrorKind;

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
    /// Its result was read: `%tasks` lists it no more.
    observed: Arc<AtomicBool>,
    abandoned: Arc<AtomicBool>,
    cancel: CancelToken,
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

    pub(super) fn future(self: &Arc<Self>) -> AwaitFuture {
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
    shared
        .sink
        .emit(origin, Output::Error(shared.annotate(info)));
}

/// The Lua side of a background task: `spawn(fn)` and `%%run_in_reactor` return it.
pub(crate) struct TaskUd(pub(super) Arc<TaskState>);

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
            this.0.cancel.cancel();
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

/// Starts `func(args...)` in the background on `runner`, as part of cell `origin`,
/// and lists it for `%tasks` (under `name`, if given).
pub(crate) fn spawn_task(
    shared: &Arc<Shared>,
    runner: &Arc<dyn Runner>,
    func: Function,
    args: MultiValue,
    origin: CellId,
    name: Option<String>,
) -> Result<TaskUd, RunError> {
    let abandoned = Arc::new(AtomicBool::new(false));
    let call = func.call_async::<MultiValue>(args);
    let (flag, task_shared) = (abandoned.clone(), shared.clone());
    let cancel = CancelToken::new();
    let status = Arc::new(AtomicU8::new(RUNNING));
    let ended = EndGuard(status.clone());
    let guarded = RunOptions::default()
        .cancel_token(cancel.clone())
        .guard(Box::pin(async move {
            Ok(Box::new(call.await) as autoawait_core::CellOutput)
        }));
    let fut = async move {
        let ended = ended;
        let result = match guarded.await {
            Ok(out) => *out
                .downcast::<mlua::Result<MultiValue>>()
                .expect("the task's own output"),
            Err(err) => Err(external(&err)),
        };
        ended.set(match &result {
            Ok(_) => DONE,
            Err(e) if lua_error(e).kind == ErrorKind::Cancelled => CANCELLED,
            Err(_) => FAILED,
        });
        if let Err(err) = &result {
            if flag.load(Ordering::Acquire) {
                let origin = current_cell().unwrap_or(origin);
                report_task_error(&task_shared, origin, err);
            }
        }
        result
    };
    let eventual = runner.spawn(Cell::with_origin(origin, fut))?;
    let observed = Arc::new(AtomicBool::new(false));
    shared.tasks.add(Entry {
        id: 0,
        name,
        origin,
        runner: runner.info().name.to_string(),
        strategy: runner.info().strategy,
        started: Instant::now(),
        status,
        observed: observed.clone(),
        cancel: cancel.clone(),
        noted: false,
    });
    Ok(TaskUd(Arc::new(TaskState {
        origin,
        waiters: Arc::default(),
        eventual: Mutex::new(eventual),
        cache: Mutex::new(None),
        observed,
        abandoned,
        cancel,
        shared: shared.clone(),
    })))
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;
const CANCELLED: u8 = 3;
/// Its loop dropped it (a fresh runner's cell ended, the runner shut down).
const DROPPED: u8 = 4;

/// Marks a task dropped if its future goes away before it finished.
struct EndGuard(Arc<AtomicU8>);

impl EndGuard {
    fn set(&self, status: u8) {
        self.0.store(status, Ordering::Release);
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, DROPPED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// One task in `%tasks`.
struct Entry {
    id: u64,
    name: Option<String>,
    origin: CellId,
    runner: String,
    strategy: Strategy,
    started: Instant,
    status: Arc<AtomicU8>,
    observed: Arc<AtomicBool>,
    cancel: CancelToken,
    /// It had finished when a cell started: the next cell start removes it.
    noted: bool,
}

impl Entry {
    fn status(&self) -> u8 {
        self.status.load(Ordering::Acquire)
    }

    fn state(&self) -> &'static str {
        match self.status() {
            RUNNING => "running",
            DONE => "done",
            FAILED => "failed",
            CANCELLED => "cancelled",
            _ => "dropped",
        }
    }
}

/// The background tasks of an engine's cells.
#[derive(Default)]
pub(crate) struct Tasks {
    entries: Mutex<Vec<Entry>>,
    next: AtomicU64,
}

impl Tasks {
    fn add(&self, mut entry: Entry) {
        entry.id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.entries).push(entry);
    }

    /// A cell starts: finished tasks whose result was read leave the list, and
    /// those that finished before the last cell started.
    pub(crate) fn cell_started(&self) {
        lock(&self.entries).retain_mut(|e| {
            if e.status() == RUNNING {
                return true;
            }
            let keep = !e.noted && !e.observed.load(Ordering::Relaxed);
            e.noted = true;
            keep
        });
    }

    /// The `%tasks` table.
    pub(crate) fn table(&self) -> String {
        let entries = lock(&self.entries);
        if entries.is_empty() {
            return "no background tasks (spawn(fn) starts one)".into();
        }
        let mut out = format!(
            "{:>4}  {:<9} {:<16} {:<9} {:>8}  name\n",
            "id", "cell", "runner", "state", "age"
        );
        for e in entries.iter() {
            let cell = if is_detached(e.origin) {
                "detached".to_owned()
            } else {
                format!("In [{}]", e.origin)
            };
            let _ = writeln!(
                out,
                "{:>4}  {cell:<9} {:<16} {:<9} {:>7.1}s  {}",
                e.id,
                e.runner,
                e.state(),
                e.started.elapsed().as_secs_f64(),
                e.name.as_deref().unwrap_or("")
            );
        }
        out.pop();
        out
    }

    /// `%cancel ID|all`: cancels, waits a moment for the tasks to end, and says
    /// what happened; `selected` is the runner cells use now (a paused runner's
    /// tasks end when it runs again).
    pub(crate) fn cancel(&self, which: &str, selected: &str) -> Result<String, String> {
        let targets: Vec<(u64, Arc<AtomicU8>, bool)> = {
            let entries = lock(&self.entries);
            let chosen: Vec<&Entry> = if which == "all" {
                entries.iter().filter(|e| e.status() == RUNNING).collect()
            } else {
                let id: u64 = which.parse().map_err(|_| {
                    format!("usage: %cancel ID|all (the ids are in %tasks), not `{which}`")
                })?;
                let entry = entries
                    .iter()
                    .find(|e| e.id == id)
                    .ok_or_else(|| format!("no task {id}: %tasks lists them"))?;
                if entry.status() != RUNNING {
                    return Err(format!("task {id} is not running: it is {}", entry.state()));
                }
                vec![entry]
            };
            chosen
                .into_iter()
                .map(|e| {
                    e.cancel.cancel();
                    let paused = e.strategy == Strategy::PerCell && e.runner != selected;
                    (e.id, e.status.clone(), paused)
                })
                .collect()
        };
        if targets.is_empty() {
            return Ok("no running tasks to cancel".into());
        }
        // A cancelled task ends at its next poll, on its runner's thread.
        let deadline = Instant::now() + std::time::Duration::from_millis(500);
        while Instant::now() < deadline
            && targets
                .iter()
                .any(|(_, s, paused)| !paused && s.load(Ordering::Acquire) == RUNNING)
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut lines = Vec::new();
        for (id, status, paused) in &targets {
            lines.push(match status.load(Ordering::Acquire) {
                RUNNING if *paused => {
                    format!("task {id} will stop when its runner runs again (its loop is paused)")
                }
                RUNNING => format!("task {id} was asked to stop but still runs (blocking code?)"),
                _ => format!("cancelled task {id}"),
            });
        }
        Ok(lines.join("\n"))
    }

    /// What switching away from `runner` does to its running tasks, if it has any.
    pub(crate) fn on_leaving(&self, runner: &str) -> Option<String> {
        let entries = lock(&self.entries);
        let live: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.runner == runner && e.status() == RUNNING)
            .collect();
        let n = live.len();
        let strategy = live.first()?.strategy;
        let (tasks, verb) = (
            format!("{n} task{}", plural(n)),
            if n == 1 { "s" } else { "" },
        );
        Some(match strategy {
            Strategy::PerCell => {
                format!("{tasks} will pause until you come back to `{runner}` (%tasks lists them)")
            }
            Strategy::Fresh => format!(
                "{tasks} of `{runner}` end{verb} with {}",
                if n == 1 { "its cell" } else { "their cells" }
            ),
            _ => format!(
                "{tasks} keep{verb} running on `{runner}` (%tasks lists them, %cancel stops them)"
            ),
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `spawn(fn, ...)` or `spawn{name = "ticker", fn, ...}`: the function, its
/// arguments and the task's name.
fn spawn_args(args: MultiValue) -> mlua::Result<(Function, MultiValue, Option<String>)> {
    let mut args = args.into_iter();
    match args.next() {
        Some(Value::Function(f)) => Ok((f, args.collect(), None)),
        Some(Value::Table(t)) => {
            let name = t.get::<Option<String>>("name")?;
            let mut items = t.sequence_values::<Value>();
            let f = match items.next() {
                Some(Ok(Value::Function(f))) => f,
                _ => {
                    return Err(lua_err(
                        "spawn{name = ..., fn, args...} needs the function first",
                    ))
                }
            };
            let rest: mlua::Result<Vec<Value>> = items.collect();
            Ok((f, MultiValue::from_vec(rest?), name))
        }
        _ => Err(lua_err(
            "spawn(fn, ...) or spawn{name = \"...\", fn, ...} takes a function",
        )),
    }
}

/// Installs `spawn` and `detach`.
pub(super) fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let g = lua.globals();
    let s = shared.clone();
    g.set(
        "spawn",
        lua.create_function(move |_, args: MultiValue| {
            let (func, args, name) = spawn_args(args)?;
            let runner = s.active_runner().map_err(|e| external(&e))?;
            spawn_task(&s, &runner, func, args, s.output_cell(), name).map_err(|e| external(&e))
        })?,
    )?;

    let s = shared.clone();
    g.set(
        "detach",
        lua.create_function(move |_, args: MultiValue| {
            let (func, args, name) = spawn_args(args)?;
            let runner = s.active_runner().map_err(|e| external(&e))?;
            spawn_task(&s, &runner, func, args, detached(), name).map_err(|e| external(&e))
        })?,
    )?;

    Ok(())
}
