//! Background tasks: `spawn(fn, ...)`, `detach(fn, ...)` and the Task a cell holds.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use autoawait_core::{
    current_cell, Cell, CellId, EventualResult, RunError, Runner, WaitError, WaitResult,
};
use futures::future::{select, Either};
use mlua::{Function, Lua, MultiValue, UserData, UserDataMethods};

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
    shared.sink.emit(origin, Output::Error(info));
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

/// Installs `spawn` and `detach`.
pub(super) fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let g = lua.globals();
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

    Ok(())
}
