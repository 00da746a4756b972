//! A Twisted-style callback reactor on mio, as an autoawait plugin loaded at run time.
//!
//! The reactor ([`reactor::Reactor`]) has `call_later`, a timer heap, a `mio::Waker`
//! for wake-ups from other threads, tasks, a [`Deferred`] and
//! TCP through mio sockets. Like Twisted's, it runs once per process and cannot be
//! restarted. The plugin offers three runners:
//!
//! - `twisted` (threaded): the reactor runs on its own thread, named `twisted`, for
//!   the life of the process, as crochet does it; timers and tasks keep firing
//!   between cells. The thread starts with the first cell. Shutting the runner down
//!   cancels its tasks and refuses new cells; the reactor thread goes on until the
//!   process exits, since it could never be started again.
//! - `twisted-per-cell` (fresh): starts the reactor for the cell on the calling
//!   thread and stops it after. The first cell works; the second gets
//!   `NotRestartable` with the advice to use `twisted`. That is the problem that made
//!   crochet necessary.
//! - `twisted-host` (host): the reactor is turned by the host's own loop
//!   (`tokio-host`'s: the kernel's cell runtime, or the shell's), with no thread of
//!   its own; cells run on that loop. Selecting `twisted` after it gives the reactor
//!   back to its thread (started then if it never ran), and the other way round,
//!   with timers, deferreds and tasks intact: only how it is driven changes.
//!
//! And these async functions for cells (front ends bind them by name):
//!
//! | function | result |
//! |---|---|
//! | `twisted.sleep(s)` | nil, after `s` seconds on the reactor's timer heap |
//! | `twisted.call_later(s, fn)` | what `fn()` returns, called on the reactor thread after `s` seconds |
//! | `twisted.deferred()` | a handle to a new deferred |
//! | `twisted.deferred.callback(d, v)` | fires `d` with `v` |
//! | `twisted.deferred.errback(d, msg)` | fires `d` with an error |
//! | `twisted.deferred.wait(d)` | `d`'s value once fired (or its error); any number of times |
//! | `twisted.deferred.release(d)` | forgets `d` (a front end calls it when its handle is collected) |
//!
//! `sleep` and `call_later` need the reactor running (a cell of any of its runners,
//! or any cell once `twisted` or `twisted-host` has started it); the deferred functions work anywhere.
//!
//! All three offer `Services` on the reactor: `sleep` on its timer heap, TCP
//! `connect`/`listen` through mio sockets.
//!
//! Build it with `cargo build -p autoawait-twisted` and load
//! `target/debug/libautoawait_twisted.so` with `Registry::load_plugin`, or by name
//! `twisted` from `AUTOAWAIT_PLUGIN_PATH`.

mod host;
pub mod reactor;

pub use host::TWISTED_HOST;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use autoawait_core::kit;
use autoawait_core::{
    Advice, BoxFuture, ByteStream, CancelToken, Capabilities, Cell, CellResult, EventualResult,
    Listener, ReactorId, RunError, RunOptions, Runner, RunnerInfo, Services, Strategy, WaitError,
};
use autoawait_plugin::{PluginBuilder, Value};

use reactor::{Deferred, Phase, Reactor};

/// The threaded runner's info.
pub const TWISTED: RunnerInfo = RunnerInfo::new(
    "twisted",
    "twisted",
    Strategy::Threaded,
    "Twisted-style reactor on mio, on its own thread for the whole process (crochet); \
     timers and tasks keep firing between cells",
)
.with_capabilities(Capabilities {
    // Its tasks cross threads (cells come from the host's): `Send` cells only.
    local_cells: false,
    ..Capabilities::of(Strategy::Threaded)
});

/// The per-cell runner's info.
pub const TWISTED_PER_CELL: RunnerInfo = RunnerInfo::new(
    "twisted-per-cell",
    "twisted",
    Strategy::Fresh,
    "starts the reactor for one cell and stops it after; Twisted's reactor cannot \
     restart, so only the first cell works (use `twisted`)",
)
.with_capabilities(Capabilities {
    local_cells: false,
    ..Capabilities::of(Strategy::Fresh)
});

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What works when the per-cell reactor cannot: the threaded runner, crochet's way.
fn use_twisted() -> Advice {
    Advice::runners(
        "the threaded runner, which keeps one reactor running on its own thread between \
         cells as crochet does",
        ["twisted"],
    )
}

/// `twisted`: the reactor on its own thread for the life of the process.
///
/// The reactor thread belongs to the process, not to a runner instance: shutting a
/// runner down cancels the tasks it spawned and refuses new cells, but leaves the
/// reactor running, because it could never be started again.
struct Threaded {
    info: RunnerInfo,
    id: ReactorId,
    /// Cancels this instance's background tasks at shutdown.
    tasks: CancelToken,
    /// How long `run` spins for the reply before parking.
    spin: Duration,
    stopped: AtomicBool,
}

/// The process's reactor thread, once started.
static REACTOR_THREAD: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);
/// Set once the reactor thread runs (it runs for the rest of the process): cells
/// then skip the locks of `ensure_started`.
static THREADED_RUNNING: AtomicBool = AtomicBool::new(false);

impl Threaded {
    fn check(&self) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RunError::Stopped {
                runner: self.info.name.to_string(),
            });
        }
        Ok(())
    }

    /// Starts the reactor thread on first use; takes the reactor back from the
    /// host's loop if `twisted-host` drove it since.
    fn ensure_started(&self) -> Result<(), RunError> {
        self.check()?;
        let reactor = Reactor::global();
        if THREADED_RUNNING.load(Ordering::Acquire) && !reactor.is_hosted() {
            return Ok(());
        }
        let mut thread = lock(&REACTOR_THREAD);
        match reactor.phase() {
            Phase::Running { threaded: true, .. } | Phase::Claimed { threaded: true } => {
                THREADED_RUNNING.store(true, Ordering::Release);
                return Ok(());
            }
            // Its thread goes on from where the host's loop left it.
            Phase::Hosted if reactor.unhost() => return Ok(()),
            Phase::NotStarted | Phase::Hosted => {}
            Phase::Stopped => {
                return Err(RunError::NotRestartable {
                    runner: self.info.name.to_string(),
                    reason: "the reactor of this process already ran for a \
                             `twisted-per-cell` cell and stopped, and Twisted's reactor \
                             cannot be started again"
                        .into(),
                    advice: Advice::runners("the threaded runner", ["twisted"])
                        .or("restart the process"),
                })
            }
            Phase::Running { .. } | Phase::Claimed { .. } => {
                return Err(RunError::NotRestartable {
                    runner: self.info.name.to_string(),
                    reason: "the reactor is running a `twisted-per-cell` cell; the two \
                             twisted runners share the process's one reactor"
                        .into(),
                    advice: Advice::default(),
                })
            }
        }
        reactor.claim(true).map_err(|_| RunError::NotRestartable {
            runner: self.info.name.to_string(),
            reason: "another runner claimed the reactor first".into(),
            advice: Advice::default(),
        })?;
        // Every `twisted` instance shares the thread, so it is marked with one id.
        let id = self.id;
        let handle = thread::Builder::new()
            .name("twisted".into())
            .spawn(move || {
                let _driving = id.enter();
                let _ = Reactor::global().run(true);
            })
            .map_err(|e| {
                RunError::backend(std::io::Error::other(format!(
                    "cannot spawn the twisted reactor thread: {e}"
                )))
            })?;
        *thread = Some(handle);
        THREADED_RUNNING.store(true, Ordering::Release);
        Ok(())
    }
}

/// The one identity of the `twisted` reactor thread, shared by every instance.
fn threaded_id() -> ReactorId {
    static ID: OnceLock<ReactorId> = OnceLock::new();
    *ID.get_or_init(|| ReactorId::new("twisted"))
}

impl Runner for Threaded {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.id.is_current() {
            return Err(RunError::would_deadlock(
                &self.info.name,
                "run() from inside a cell of this runner",
            ));
        }
        self.ensure_started()?;
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        // Spin briefly, then park: the fast cross-thread hand-off of core.
        let (tx, rx) = kit::reply(self.spin);
        // The host guards its cells itself; options here are for direct callers.
        let fut = opts.guard(fut);
        Reactor::global().spawn(async move { tx.send(fut.await) });
        // No reply: the reactor dropped the cell (it stopped).
        rx.recv().unwrap_or_else(|| {
            Err(RunError::TaskDropped {
                runner: self.info.name.to_string(),
            })
        })
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.ensure_started()?;
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let (task, eventual) = EventualResult::task(origin, opts.guard(fut), Some(&self.id));
        Reactor::global().spawn(task);
        Ok(eventual)
    }

    /// A cell (or a host's task) that reports its result itself. Not guarded by the
    /// runner's task token: a clone per cell would pass that token's count between
    /// the caller's core and the reactor's on every cell. A plugin host guards the
    /// background tasks it submits with a token of its own.
    fn submit(&self, cell: Cell) -> Result<(), RunError> {
        self.ensure_started()?;
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        Reactor::global().spawn(async move {
            let _ = fut.await;
        });
        Ok(())
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&TwistedServices)
    }

    fn shutdown(&self, grace: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.tasks.cancel();
        let reactor = Reactor::global();
        if !reactor.is_running() || reactor.is_reactor_thread() {
            return;
        }
        reactor.drain(grace);
    }
}

/// `twisted-per-cell`: the reactor runs for one cell on the calling thread.
struct PerCell {
    info: RunnerInfo,
    id: ReactorId,
    stopped: AtomicBool,
}

impl Runner for PerCell {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        let name = self.info.name.to_string();
        if self.stopped.load(Ordering::Acquire) {
            return Err(RunError::Stopped { runner: name });
        }
        let reactor = Reactor::global();
        if self.id.is_current() || reactor.is_reactor_thread() {
            return Err(RunError::would_deadlock(
                &name,
                "run() from inside a cell of this runner",
            ));
        }
        if let Err(phase) = reactor.claim(false) {
            let advice = match phase {
                Phase::Running { threaded: true, .. } | Phase::Claimed { threaded: true } => {
                    "the reactor is already running on its own thread for runner \
                     `twisted`, and a process has one reactor"
                }
                Phase::Hosted => {
                    "the reactor is already running on the host's loop for runner \
                     `twisted-host`, and a process has one reactor"
                }
                _ => {
                    "the reactor already ran for an earlier cell and stopped after it; \
                     Twisted's reactor runs once per process and cannot be started again"
                }
            };
            return Err(RunError::NotRestartable {
                runner: name,
                reason: advice.into(),
                advice: use_twisted(),
            });
        }
        let origin = cell.origin();
        let fut = match cell.into_future() {
            Ok(fut) => fut,
            Err(_) => {
                // The claim is spent: the reactor must not run later for another cell.
                reactor.stop();
                let _ = reactor.run(false);
                return Err(RunError::local_unsupported(&name));
            }
        };
        let (task, eventual) = EventualResult::task(origin, opts.guard(fut), Some(&self.id));
        reactor.spawn(async move {
            task.await;
            Reactor::global().stop();
        });
        {
            let _driving = self.id.enter();
            let _ = reactor.run(false);
        }
        match eventual.try_result() {
            Some(result) => result.map_err(|e| match e {
                WaitError::Run(e) => e,
                other => RunError::Failed {
                    message: other.to_string(),
                },
            }),
            None => Err(RunError::TaskDropped { runner: name }),
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let reactor = Reactor::global();
        if !self.id.is_current() || !reactor.is_reactor_thread() {
            return Err(RunError::Unsupported {
                runner: self.info.name.to_string(),
                reason: "`twisted-per-cell` has no loop between cells, so a task spawned \
                         outside a cell would never run"
                    .into(),
                advice: use_twisted().or("spawn it from inside a cell (it ends with that cell)"),
            });
        }
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        let (task, eventual) = EventualResult::task(origin, fut, Some(&self.id));
        reactor.spawn(task);
        Ok(eventual)
    }

    fn shutdown(&self, _grace: Duration) {
        self.stopped.store(true, Ordering::Release);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&TwistedServices)
    }
}

/// `Services` of its runners: sleep on the reactor's timers, TCP through mio.
#[derive(Debug)]
pub(crate) struct TwistedServices;

fn reactor_not_running() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the twisted reactor is not running: use `%autoawait twisted`, or a cell of \
         `twisted-per-cell`",
    )
}

/// A listener on the reactor, shared with its `accept` futures.
struct TwistedListener(Arc<reactor::TcpListener>);

impl Listener for TwistedListener {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> BoxFuture<'static, std::io::Result<(Box<dyn ByteStream>, SocketAddr)>> {
        let listener = self.0.clone();
        Box::pin(async move {
            let (stream, peer) = listener.accept().await?;
            Ok((Box::new(stream) as Box<dyn ByteStream>, peer))
        })
    }
}

impl Services for TwistedServices {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let reactor = Reactor::global();
        if reactor.is_running() {
            Box::pin(async move {
                let _ = reactor::sleep(reactor, duration).await;
            })
        } else {
            // No reactor between cells of `twisted-per-cell`: core's timer.
            Box::pin(autoawait_core::sleep(duration))
        }
    }

    fn connect(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<'static, std::io::Result<Box<dyn ByteStream>>> {
        let reactor = Reactor::global();
        if !reactor.is_running() {
            return Box::pin(std::future::ready(Err(reactor_not_running())));
        }
        Box::pin(async move {
            let stream = reactor::TcpStream::connect(reactor, addr).await?;
            Ok(Box::new(stream) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Box<dyn Listener>>> {
        let reactor = Reactor::global();
        let listener = if reactor.is_running() {
            reactor::TcpListener::bind(reactor, addr)
                .map(|l| Box::new(TwistedListener(Arc::new(l))) as Box<dyn Listener>)
        } else {
            Err(reactor_not_running())
        };
        Box::pin(std::future::ready(listener))
    }
}

/// The `twisted` runner, for a host that links this crate instead of loading it:
/// the same runner as the plugin's, without the C ABI between host and runner.
///
/// A linked copy has a reactor of its own, apart from that of a loaded
/// `libautoawait_twisted`: a process should use one or the other.
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, RunnerExt};
///
/// let registry = Registry::empty();
/// registry.register(autoawait_twisted::threaded())?;
/// let twisted = registry.get("twisted")?;
/// assert_eq!(twisted.block_on(async { 6 * 7 })?, 42);
/// # Ok::<(), autoawait_core::RunError>(())
/// ```
pub fn threaded() -> Arc<dyn Runner> {
    Arc::new(Threaded {
        info: TWISTED,
        id: threaded_id(),
        tasks: CancelToken::new(),
        spin: kit::default_spin(),
        stopped: AtomicBool::new(false),
    })
}

fn make_per_cell() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(PerCell {
        info: TWISTED_PER_CELL,
        id: ReactorId::new("twisted-per-cell"),
        stopped: AtomicBool::new(false),
    }))
}

// ---- functions for cells ----

/// A call with a bad argument: the call's own failure, message kept.
fn invalid(message: String) -> RunError {
    RunError::Failed { message }
}

fn seconds(f: &str, args: &[Value], at: usize) -> Result<Duration, RunError> {
    let value = args.get(at).cloned().unwrap_or_default();
    let s = value.as_f64().ok_or_else(|| {
        invalid(format!(
            "{f}: argument {} must be a number of seconds, got {}",
            at + 1,
            value.type_name()
        ))
    })?;
    Duration::try_from_secs_f64(s)
        .map_err(|_| invalid(format!("{f}: {s} is not a number of seconds (0 or more)")))
}

fn running_reactor(f: &str) -> Result<&'static Reactor, RunError> {
    let reactor = Reactor::global();
    if reactor.is_running() {
        return Ok(reactor);
    }
    Err(RunError::Unsupported {
        runner: current_runner(),
        reason: format!("{f} needs the twisted reactor running, and it is not"),
        advice: Advice::runners(
            "a twisted runner",
            ["twisted", "twisted-host", "twisted-per-cell"],
        ),
    })
}

fn current_runner() -> String {
    autoawait_core::current_runner_name().unwrap_or_else(|| "this runner".into())
}

fn ready<T: Send + 'static>(r: Result<T, RunError>) -> BoxFuture<'static, Result<T, RunError>> {
    Box::pin(std::future::ready(r))
}

fn sleep(args: Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>> {
    let setup = (|| {
        Ok((
            running_reactor("twisted.sleep")?,
            seconds("twisted.sleep", &args, 0)?,
        ))
    })();
    match setup {
        Ok((reactor, delay)) => Box::pin(async move {
            let _ = reactor::sleep(reactor, delay).await;
            Ok(Value::Nil)
        }),
        Err(e) => ready(Err(e)),
    }
}

fn call_later(args: Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>> {
    const F: &str = "twisted.call_later";
    let setup = (|| {
        let reactor = running_reactor(F)?;
        let delay = seconds(F, &args, 0)?;
        let callback = match args.get(1) {
            Some(Value::Callback(cb)) => cb.clone(),
            other => {
                return Err(invalid(format!(
                    "{F}(s, fn): argument 2 must be a function, got {}",
                    other.map_or("nothing", Value::type_name)
                )))
            }
        };
        Ok((reactor, delay, callback))
    })();
    let (reactor, delay, callback) = match setup {
        Ok(s) => s,
        Err(e) => return ready(Err(e)),
    };
    let d = Deferred::<Result<Value, RunError>>::new();
    let fire = d.clone();
    reactor.call_later(delay, move || {
        let _ = fire.callback(callback.call());
    });
    Box::pin(async move {
        match d.await {
            Ok(result) => result,
            Err(message) => Err(RunError::Failed { message }),
        }
    })
}

fn deferreds() -> &'static Mutex<HashMap<u64, Deferred<Value>>> {
    static TABLE: OnceLock<Mutex<HashMap<u64, Deferred<Value>>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

fn new_deferred(_args: Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(deferreds()).insert(id, Deferred::new());
    ready(Ok(Value::Handle(id)))
}

fn deferred_arg(f: &str, args: &[Value]) -> Result<(u64, Deferred<Value>), RunError> {
    let Some(Value::Handle(id)) = args.first() else {
        return Err(invalid(format!(
            "{f}: argument 1 must be a deferred (from twisted.deferred()), got {}",
            args.first().map_or("nothing", Value::type_name)
        )));
    };
    lock(deferreds())
        .get(id)
        .cloned()
        .map(|d| (*id, d))
        .ok_or_else(|| {
            invalid(format!(
                "{f}: no deferred {id}: it was never made, or was released"
            ))
        })
}

fn already_called(e: reactor::AlreadyCalled) -> RunError {
    RunError::Failed {
        message: e.to_string(),
    }
}

fn deferred_callback(args: Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>> {
    ready((|| {
        let (_, d) = deferred_arg("twisted.deferred.callback", &args)?;
        let value = args.get(1).cloned().unwrap_or_default();
        d.callback(value).map_err(already_called)?;
        Ok(Value::Nil)
    })())
}

fn deferred_errback(args: Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>> {
    ready((|| {
        let (_, d) = deferred_arg("twisted.deferred.errback", &args)?;
        let message = match args.get(1) {
            Some(Value::Str(s)) => s.clone(),
            Some(other) => format!("{other:?}"),
            None => "errback() called without a message".into(),
        };
        d.errback(message).map_err(already_called)?;
        Ok(Value::Nil)
    })())
}

fn deferred_wait(args: Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>> {
    match deferred_arg("twisted.deferred.wait", &args) {
        Ok((_, d)) => {
            Box::pin(async move { d.await.map_err(|message| RunError::Failed { message }) })
        }
        Err(e) => ready(Err(e)),
    }
}

fn deferred_release(args: Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>> {
    ready((|| {
        let (id, _) = deferred_arg("twisted.deferred.release", &args)?;
        lock(deferreds()).remove(&id);
        Ok(Value::Nil)
    })())
}

/// The plugin's description: its runners and functions.
pub fn plugin() -> PluginBuilder {
    PluginBuilder::new("twisted")
        .runner(TWISTED, || Ok(threaded()))
        .runner(TWISTED_PER_CELL, make_per_cell)
        .runner(TWISTED_HOST, || Ok(Arc::new(host::HostDriven::new())))
        .function(
            "twisted.sleep",
            "twisted.sleep(s): waits s seconds on the reactor's timer heap",
            sleep,
        )
        .function(
            "twisted.call_later",
            "twisted.call_later(s, fn): calls fn() on the reactor thread after s seconds; \
             resolves to what it returns",
            call_later,
        )
        .function(
            "twisted.deferred",
            "twisted.deferred(): a new deferred (d:callback(v), d:errback(msg), await(d))",
            new_deferred,
        )
        .function(
            "twisted.deferred.callback",
            "twisted.deferred.callback(d, v): fires d with v",
            deferred_callback,
        )
        .function(
            "twisted.deferred.errback",
            "twisted.deferred.errback(d, msg): fires d with an error",
            deferred_errback,
        )
        .function(
            "twisted.deferred.wait",
            "twisted.deferred.wait(d): d's value once it fired, or its error",
            deferred_wait,
        )
        .function(
            "twisted.deferred.release",
            "twisted.deferred.release(d): forgets d (front ends call it when their handle \
             is collected); waits already started still complete",
            deferred_release,
        )
}

autoawait_plugin::export_plugin!(plugin);
