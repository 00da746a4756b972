//! `smol-host`: the smol executor driven by a task on a host tokio runtime.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use autoawait_core::kit::prelude::*;
use autoawait_core::kit::quietly;
use autoawait_core::Capabilities;
use smol::future::FutureExt as _;
use smol::Executor;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::services::SERVICES;
use super::{guarded, spawn_send, tick_forever, Shared};

pub(super) const INFO: RunnerInfo = RunnerInfo::new(
    "smol-host",
    "smol",
    Strategy::Host,
    "a smol executor driven by a task on the host's tokio runtime: tokio and smol together",
)
.with_capabilities(Capabilities {
    local_cells: false,
    ..Capabilities::of(Strategy::Host)
});

/// `smol-host`: coexistence with a tokio host.
///
/// At creation the runner looks for the host's tokio runtime with
/// `Handle::try_current()`. It spawns one task there that drives a smol executor
/// until shutdown; cells and background tasks run on that executor, inside the
/// tokio task, so a cell may use tokio and smol awaitables side by side. Created
/// outside any runtime, the runner starts its own tokio runtime on a thread named
/// after it to play the host.
///
/// `run` hands the cell over and blocks the caller: on a tokio multi-thread worker
/// through `block_in_place`, so the host keeps going. It is `WouldDeadlock` from
/// inside a cell of the runner (the driving task) and, when the host is a
/// current_thread runtime, from a thread of a current_thread runtime (it may be the
/// host, which would have to drive the task it waits for); async hosts await
/// [`Runner::run_async`] instead. `!Send` cells are `Unsupported`: a multi-thread
/// host moves the driving task between threads.
///
/// # Examples
///
/// ```
/// use autoawait_core::kit::Config;
/// use autoawait_core::RunnerExt;
/// use autoawait_runners::smol_runner::Host;
///
/// let runner = Host::new(Config::new("smol-host"))?;
/// let both = runner.block_on(async {
///     tokio::task::yield_now().await;
///     smol::future::yield_now().await;
///     "tokio and smol"
/// })?;
/// assert_eq!(both, "tokio and smol");
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub struct Host {
    life: Lifecycle,
    config: Config,
    executor: Arc<Shared>,
    stop: smol::channel::Sender<()>,
    /// The host is a current_thread runtime of someone else's: blocking a thread
    /// of a current_thread runtime may block the host.
    host_is_current_thread: bool,
}

impl Host {
    /// Spawns the driving task on the current tokio runtime, or on one of its own.
    ///
    /// # Errors
    ///
    /// If a runtime of its own is needed and cannot start.
    pub fn new(config: Config) -> Result<Self, RunError> {
        let life = Lifecycle::new(INFO, &config);
        let ex = Arc::new(Executor::new());
        let executor = Arc::new(Shared::new(ex.clone()));
        let (stop, stop_rx) = smol::channel::bounded::<()>(1);
        let driver = Driving {
            reactor: life.reactor(),
            fut: drive(ex.clone(), stop_rx.clone()),
            ex,
            stop: stop_rx,
            release: executor.clone(),
        };
        let mut host_is_current_thread = false;
        match Handle::try_current() {
            Ok(host) => {
                host_is_current_thread = host.runtime_flavor() == RuntimeFlavor::CurrentThread;
                drop(host.spawn(driver));
            }
            // No host: a tokio runtime of its own, on its own thread, plays it.
            Err(_) => {
                let rt = crate::tokio_runner::current_thread(&config.thread_name)?;
                life.spawn(&config.thread_name, move || {
                    let _ = rt.block_on(rt.spawn(driver));
                })?;
            }
        }
        Ok(Host {
            life,
            config,
            executor,
            stop,
            host_is_current_thread,
        })
    }

    /// Whether this thread may block on a cell: `Ok(true)` on a tokio multi-thread
    /// worker (block through `block_in_place`), `Ok(false)` elsewhere.
    fn may_block(&self) -> Result<bool, RunError> {
        if self.life.reactor().is_current() {
            return Err(self
                .life
                .would_deadlock("run() from inside a cell of this runner"));
        }
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => Ok(true),
            Ok(_) if self.host_is_current_thread => Err(RunError::WouldDeadlock {
                runner: self.life.name().to_owned(),
                what: "run() from a thread of a current_thread tokio runtime, which may be \
                       the host that drives the cell"
                    .into(),
                advice: Advice::text(
                    "await `run_async` instead, or call run() from another thread",
                ),
            }),
            _ => Ok(false),
        }
    }
}

type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Ticks `ex` until `stop` closes.
fn drive(ex: Arc<Executor<'static>>, stop: smol::channel::Receiver<()>) -> Drive {
    Box::pin(async move {
        let _ = stop.recv().or(tick_forever(&ex)).await;
    })
}

/// The driving task: marks its thread as driving `smol-host` while it is polled,
/// survives a smol task that panics out of its poll, and releases the executor
/// when it ends (also when the host runtime drops it), so that nothing waits for
/// an executor nobody drives.
struct Driving {
    reactor: ReactorId,
    fut: Drive,
    ex: Arc<Executor<'static>>,
    stop: smol::channel::Receiver<()>,
    release: Arc<Shared>,
}

// No field is pinned through `Driving`: `fut` is boxed, and `stop` is only cloned.
impl Unpin for Driving {}

impl Future for Driving {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let _driving = this.reactor.enter();
        loop {
            match quietly(|| catch_unwind(AssertUnwindSafe(|| this.fut.as_mut().poll(cx)))) {
                Ok(poll) => return poll,
                // The panicking task is closed; tick the others with a new future.
                Err(_) => this.fut = drive(this.ex.clone(), this.stop.clone()),
            }
        }
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        drop(self.release.take());
    }
}

impl Runner for Host {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        let in_worker = self.may_block()?;
        self.life.check()?;
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(self.life.name()))?;
        let ex = self.executor.get(&self.life)?;
        let (reply, result) = reply(self.config.spin);
        let opts = opts.clone();
        ex.spawn(async move { reply.send(guarded(fut, opts).await) })
            .detach();
        drop(ex);
        let result = if in_worker {
            tokio::task::block_in_place(|| result.recv())
        } else {
            result.recv()
        };
        result.unwrap_or_else(|| Err(self.life.stopped()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        spawn_send(&self.life, &self.executor, self.life.reactor(), cell)
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        self.stop.close();
        drop(self.executor.take());
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&SERVICES)
    }
}

runner_traits!(Host);
