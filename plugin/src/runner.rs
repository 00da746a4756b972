//! [`PluginRunner`]: a plugin's runner, seen from the host.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_ffi::FfiFuture;
use autoawait_core::kit::{reply, ReplySender};
use autoawait_core::{
    BoxFuture, ByteStream, CancelToken, Capabilities, Cell, CellResult, EventualResult, Listener,
    ReactorId, RunError, RunOptions, Runner, RunnerInfo, Services,
};

use crate::abi::{CellOut, FfiBuf, CAP_HANDOFF, CAP_KEEPS_TASKS, CAP_NESTS};
use crate::hosting::{HostedReactor, Instance};
use crate::io::{CatchIo, ImportedListener, ImportedStream};
use crate::loader::{DeclaredRunner, RunnerFns};

/// A plugin runner, seen from the host.
///
/// The host's side of the contract: a cell's timeout and cancel are applied by the
/// host around the cell's future (so they hold whatever the plugin does), `run`
/// from inside one of its cells is refused by the host, and the background tasks
/// the host spawns are guarded by a token it cancels first at shutdown. A threaded
/// runner ([`CAP_HANDOFF`]) gets cells through `spawn`, as tasks that reply to the
/// waiting host thread themselves; other runners get them through `run`.
pub(crate) struct PluginRunner {
    info: RunnerInfo,
    fns: RunnerFns,
    /// The plugin's runner, destroyed once neither this nor a driver holds it.
    instance: Arc<Instance>,
    /// A hosted runner's reactor, turned by the host's loop, which runs its cells.
    hosted: Option<Arc<HostedReactor>>,
    /// Entered around every poll of a host cell, so that `run` from inside a cell is
    /// refused and a panic translator names this runner.
    reactor: ReactorId,
    /// The plugin runner offers `Services`.
    services: bool,
    /// Cells go to the plugin's `spawn` and reply to the host ([`CAP_HANDOFF`]).
    handoff: bool,
    /// How long a handed-off cell's caller spins for the reply before it parks.
    spin: Duration,
    /// Guards the background tasks of [`Runner::spawn`]; cancelled at shutdown.
    tasks: CancelToken,
}

impl PluginRunner {
    /// Creates the runner `declared` describes. A hosted runner's cells run on the
    /// loop of `host` (a runner with a [`HostLoop`](autoawait_core::HostLoop)), or,
    /// without one, through the plugin's own `run`.
    pub(crate) fn create(
        declared: &DeclaredRunner,
        host: Option<&Arc<dyn Runner>>,
    ) -> Result<Self, RunError> {
        let fns = declared.fns;
        // SAFETY: `create` is the declaration's own entry (checked non-null at load),
        // given its own `ctx`; it returns a result the host owns.
        let handle = unsafe { (fns.create)(declared.decl.ctx) }.into_result()?;
        let instance = Arc::new(Instance { fns, handle });
        let hosted = fns
            .hosting
            .zip(host)
            .map(|(hosting, host)| HostedReactor::new(instance.clone(), hosting, host.clone()));
        let caps = declared.capabilities;
        let info = RunnerInfo {
            name: declared.name.clone().into(),
            backend: declared.backend.clone().into(),
            strategy: declared.strategy,
            summary: declared.summary.clone().into(),
            capabilities: Capabilities {
                nests: caps & CAP_NESTS != 0,
                keeps_tasks: caps & CAP_KEEPS_TASKS != 0,
                local_cells: false,
            },
        };
        // SAFETY: the runner was just created, and is destroyed only in `Drop`.
        let services = unsafe { (fns.has_services)(handle) } != 0;
        Ok(PluginRunner {
            reactor: ReactorId::new(&declared.name),
            info,
            fns,
            instance,
            hosted,
            services,
            handoff: caps & CAP_HANDOFF != 0,
            spin: autoawait_core::kit::default_spin(),
            tasks: CancelToken::new(),
        })
    }
}

impl Runner for PluginRunner {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() && !self.info.capabilities.nests {
            return Err(RunError::would_deadlock(
                &self.info.name,
                "run() from inside a cell of this runner",
            ));
        }
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        let reactor = self.reactor;
        if let Some(hosted) = &self.hosted {
            hosted.ensure_driven()?;
            // The host's cell yields this cell's result, boxed once more.
            let cell = Cell::with_origin(
                origin,
                Entered {
                    reactor,
                    inner: fut,
                },
            );
            return autoawait_core::downcast::<CellResult>(hosted.host.run(cell, opts)?);
        }
        if self.handoff {
            let (tx, rx) = reply(self.spin);
            let task = reply_task(reactor, opts.guard(fut), tx);
            // SAFETY: the runner is live until `Drop`; the plugin takes the task.
            unsafe { (self.fns.spawn)(self.instance.handle, origin.get(), task) }.into_result()?;
            // No reply: the plugin dropped the cell (it stopped).
            return rx.recv().unwrap_or_else(|| {
                Err(RunError::TaskDropped {
                    runner: self.info.name.to_string(),
                })
            });
        }
        let ffi = host_cell(reactor, opts.guard(fut));
        // SAFETY: the runner is live until `Drop`; the plugin takes the cell and hands
        // its output back unchanged.
        let out =
            unsafe { (self.fns.run)(self.instance.handle, origin.get(), ffi) }.into_result()?;
        if out.0.is_null() {
            return Err(RunError::backend(std::io::Error::other(
                "the plugin returned no result",
            )));
        }
        // SAFETY: a non-null `CellOut` is the pointer `host_cell` made with
        // `Box::into_raw` from a `CellResult`; the plugin hands it back once.
        *unsafe { Box::from_raw(out.0.cast::<CellResult>()) }
    }

    /// A hosted runner's cell is awaited on the host's loop like `tokio-host`'s.
    fn run_async(&self, cell: Cell, opts: &RunOptions) -> BoxFuture<'static, CellResult> {
        let Some(hosted) = &self.hosted else {
            return autoawait_core::kit::await_spawned(self.spawn(cell), opts);
        };
        if let Err(err) = hosted.ensure_driven() {
            return Box::pin(std::future::ready(Err(err)));
        }
        let origin = cell.origin();
        match cell.into_future() {
            Ok(fut) => {
                let inner = Entered {
                    reactor: self.reactor,
                    inner: fut,
                };
                let cell = hosted
                    .host
                    .run_async(Cell::with_origin(origin, inner), opts);
                Box::pin(async move { autoawait_core::downcast::<CellResult>(cell.await?) })
            }
            Err(_) => Box::pin(std::future::ready(Err(RunError::local_unsupported(
                &self.info.name,
            )))),
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        if let Some(hosted) = &self.hosted {
            // Tasks run on the plugin's reactor, which the host's loop turns.
            hosted.ensure_driven()?;
        }
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        // Dropped at shutdown, whatever the plugin does with the tasks it was given.
        let fut = RunOptions::default()
            .cancel_token(self.tasks.clone())
            .guard(fut);
        let (task, eventual) = EventualResult::task(origin, fut, Some(&self.reactor));
        let entered = Entered {
            reactor: self.reactor,
            inner: task,
        };
        let ffi = FfiFuture::new(async move {
            entered.await;
            0u8
        });
        // SAFETY: the runner is live until `Drop`; the plugin takes the task.
        unsafe { (self.fns.spawn)(self.instance.handle, origin.get(), ffi) }.into_result()?;
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        // First: the plugin's shutdown then waits for the woken tasks to go.
        self.tasks.cancel();
        // SAFETY: the runner is live until `Drop`.
        unsafe { (self.fns.shutdown)(self.instance.handle, nanos(grace)) };
        if let Some(hosted) = &self.hosted {
            // Its loop, and the threads it started, if the runtime was its own.
            hosted.host.shutdown(grace);
        }
    }

    fn services(&self) -> Option<&dyn Services> {
        self.services.then_some(self as &dyn Services)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Services for PluginRunner {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // SAFETY: the runner is live until `Drop`.
        let slept = unsafe { (self.fns.sleep)(self.instance.handle, nanos(duration)) };
        Box::pin(async move {
            // 0: the plugin has no timer for this; a panic: use ours too.
            let on_plugin_timer =
                CatchIo(Box::pin(
                    async move { Ok::<u8, std::io::Error>(slept.await) },
                ))
                .await;
            if !matches!(on_plugin_timer, Ok(1)) {
                autoawait_core::sleep(duration).await;
            }
        })
    }

    fn connect(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<'static, std::io::Result<Box<dyn ByteStream>>> {
        // SAFETY: the runner is live until `Drop`; the plugin takes the address.
        let fut =
            unsafe { (self.fns.connect)(self.instance.handle, FfiBuf::from(addr.to_string())) };
        Box::pin(async move {
            let stream = ImportedStream::new(CatchIo(fut).await?.into_result()?)?;
            Ok(Box::new(stream) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Box<dyn Listener>>> {
        // SAFETY: the runner is live until `Drop`; the plugin takes the address.
        let fut =
            unsafe { (self.fns.listen)(self.instance.handle, FfiBuf::from(addr.to_string())) };
        Box::pin(async move {
            let listener = ImportedListener::new(CatchIo(fut).await?.into_result()?)?;
            Ok(Box::new(listener) as Box<dyn Listener>)
        })
    }
}

/// A host cell as a task for a plugin's `spawn` that sends its result straight to
/// the host thread waiting on `tx`: the plugin makes no cell, reply or result box.
fn reply_task<F>(reactor: ReactorId, fut: F, tx: ReplySender<CellResult>) -> FfiFuture<u8>
where
    F: Future<Output = CellResult> + Send + 'static,
{
    ffi_cell(reactor, fut, move |result| {
        tx.send(result);
        0
    })
}

/// A host cell as an `FfiFuture` for a plugin's `run`: its `CellResult` boxed by
/// the host.
fn host_cell<F>(reactor: ReactorId, fut: F) -> FfiFuture<CellOut>
where
    F: Future<Output = CellResult> + Send + 'static,
{
    ffi_cell(reactor, fut, |result| {
        CellOut(Box::into_raw(Box::new(result)).cast())
    })
}

/// `fut` as an `FfiFuture`, polled as `reactor`; `finish` makes what crosses back.
fn ffi_cell<F, T>(
    reactor: ReactorId,
    fut: F,
    finish: impl FnOnce(CellResult) -> T + Send + 'static,
) -> FfiFuture<T>
where
    F: Future<Output = CellResult> + Send + 'static,
    T: Send + 'static,
{
    let entered = Entered {
        reactor,
        inner: fut,
    };
    FfiFuture::new(async move { finish(entered.await) })
}

pin_project_lite::pin_project! {
    /// Marks the polling thread as driving `reactor` while `inner` is polled.
    struct Entered<F> {
        reactor: ReactorId,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _driving = this.reactor.enter();
        this.inner.poll(cx)
    }
}
