//! One conformance suite for every runner: DESIGN.md's strategy table, checked.
//!
//! `runner_tests!(module, "runner-name");` instantiates every test below for one
//! runner. A backend or plugin joins the suite with one line at the bottom of
//! this file. Each test builds its own runner instance (a fresh [`Registry`]),
//! shuts it down at the end, and runs under a watchdog, so a deadlock fails the
//! test instead of hanging CI.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use autoawait_core::{
    CancelToken, Cell, CellId, EventualResult, Registry, RunError, RunOptions, Runner, RunnerExt,
    Strategy, WaitError,
};
use autoawait_runners as _;
use autoawait_static_example as _;
use futures::io::{AsyncReadExt, AsyncWriteExt};

/// How long any one test may take before it counts as a deadlock.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `body` on its own thread and fails if it does not finish in time.
fn watchdog(name: &str, body: impl FnOnce() + Send + 'static) {
    quiet_panics();
    autoawait_test_support::watchdog(&format!("test-{name}"), WATCHDOG, body);
}

/// Panics the suite provokes on purpose say `conformance-boom`; keep them off stderr.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.contains("conformance-boom") {
                default(info);
            }
        }));
    });
}

/// A runner of its own for one test, shut down when dropped.
struct Fixture {
    runner: Arc<dyn Runner>,
}

/// A registry with every built-in runner and, for plugin runners, their plugin.
fn registry_for(name: &str) -> Registry {
    let registry = Registry::new();
    if name.starts_with("twisted") {
        autoawait_plugin::load(&registry, twisted_plugin())
            .unwrap_or_else(|e| panic!("cannot load the twisted plugin: {e}"));
    }
    registry
}

/// Builds the twisted cdylib (once per test binary) and returns its path.
fn twisted_plugin() -> &'static std::path::Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        autoawait_test_support::PluginBuild::new("plugin-tests")
            .twisted()
            .unwrap_or_else(|e| panic!("cannot build the twisted plugin: {e}"))
    })
}

impl Fixture {
    fn new(name: &str) -> Self {
        let registry = registry_for(name);
        let runner = registry
            .get(name)
            .unwrap_or_else(|e| panic!("cannot create runner `{name}`: {e}"));
        Fixture { runner }
    }

    /// `sync` polls once: everything that waits is `Unsupported` there.
    fn polls_once(&self) -> bool {
        self.runner.info().name == "sync"
    }

    /// Core runners have no reactor for sockets; glommio's sockets are `!Send`.
    fn has_sockets(&self) -> bool {
        !matches!(&*self.runner.info().backend, "core" | "glommio")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.runner.shutdown(Duration::from_secs(5));
    }
}

/// Sets a flag when dropped: proves a cell's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Returns `Pending` once (after waking itself), then `Ready`.
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

fn expect_unsupported<T: std::fmt::Debug>(result: Result<T, RunError>) {
    match result {
        Err(RunError::Unsupported { .. }) => {}
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

fn value_comes_back(name: &str) {
    let f = Fixture::new(name);
    let out = f
        .runner
        .run(Cell::new(async { 40 + 2 }), &RunOptions::default())
        .unwrap();
    assert_eq!(*out.downcast::<i32>().unwrap(), 42);
    let typed: String = f.runner.block_on(async { "typed".to_owned() }).unwrap();
    assert_eq!(typed, "typed");
    if !f.polls_once() {
        assert_eq!(
            f.runner
                .block_on(async {
                    YieldOnce(false).await;
                    7u8
                })
                .unwrap(),
            7
        );
    }
}

fn panics_are_values(name: &str) {
    let f = Fixture::new(name);
    for i in 0..1000 {
        let err = f
            .runner
            .block_on(async move {
                if i >= 0 {
                    panic!("conformance-boom {i}");
                }
            })
            .unwrap_err();
        match err {
            RunError::Panicked { message } => assert_eq!(message, format!("conformance-boom {i}")),
            other => panic!("expected Panicked, got {other:?}"),
        }
    }
    assert_eq!(f.runner.block_on(async { 1 + 1 }).unwrap(), 2);
}

fn timeout_drops_the_cell(name: &str) {
    let f = Fixture::new(name);
    let dropped = Arc::new(AtomicBool::new(false));
    let log = Arc::new(AtomicUsize::new(0));
    let (flag, ticks) = (DropFlag(dropped.clone()), log.clone());
    let cell = Cell::new(async move {
        let _flag = flag;
        loop {
            ticks.fetch_add(1, Ordering::SeqCst);
            autoawait_core::sleep(Duration::from_millis(2)).await;
        }
    });
    let opts = RunOptions::default().timeout(Duration::from_millis(50));
    let result = f.runner.run(cell, &opts);
    if f.polls_once() {
        return expect_unsupported(result);
    }
    assert!(
        result.as_ref().is_err_and(RunError::is_timed_out),
        "{result:?}"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the cell future was not dropped"
    );
    let seen = log.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(log.load(Ordering::SeqCst), seen, "the cell kept running");
}

fn cancel_from_another_thread(name: &str) {
    let f = Fixture::new(name);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let token = CancelToken::new();
    let trigger = token.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        trigger.cancel();
    });
    let cell = Cell::new(async move {
        let _flag = flag;
        std::future::pending::<()>().await;
    });
    let result = f
        .runner
        .run(cell, &RunOptions::default().cancel_token(token));
    canceller.join().unwrap();
    if f.polls_once() {
        return expect_unsupported(result);
    }
    assert!(
        result.as_ref().is_err_and(RunError::is_cancelled),
        "{result:?}"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the cell future was not dropped"
    );
    // The runner is not poisoned.
    assert_eq!(f.runner.block_on(async { 5 }).unwrap(), 5);
}

fn background_tasks_between_cells(name: &str) {
    let f = Fixture::new(name);
    let ticks = Arc::new(AtomicUsize::new(0));
    let runner = f.runner.clone();
    let counter = ticks.clone();
    // Cell 1 spawns a ticking task and returns at once.
    let spawned = f.runner.run(
        Cell::with_origin(CellId::new(1), async move {
            runner.spawn(Cell::new(async move {
                loop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    autoawait_core::sleep(Duration::from_millis(2)).await;
                }
            }))
        }),
        &RunOptions::default(),
    );
    if f.polls_once() {
        let spawned =
            autoawait_core::downcast::<Result<EventualResult, RunError>>(spawned.unwrap());
        return expect_unsupported(spawned);
    }
    let task = autoawait_core::downcast::<Result<EventualResult, RunError>>(spawned.unwrap())
        .expect("spawn from inside a cell");
    assert_eq!(task.origin(), CellId::new(1), "the task inherits its cell");

    let after_cell = ticks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    let idle = ticks.load(Ordering::SeqCst) - after_cell;
    let info = f.runner.info();
    if info.capabilities.keeps_tasks {
        assert!(
            idle > 0,
            "`{}` ({}): tasks must run between cells",
            info.name,
            info.strategy
        );
    } else {
        assert_eq!(
            idle, 0,
            "`{}` ({}): tasks must not run between cells",
            info.name, info.strategy
        );
    }

    // Cell 2 runs for a while: per-cell runners resume the task, fresh ones do not.
    let before = ticks.load(Ordering::SeqCst);
    f.runner
        .block_on(autoawait_core::sleep(Duration::from_millis(50)))
        .unwrap();
    let during = ticks.load(Ordering::SeqCst) - before;
    match info.strategy {
        Strategy::Fresh => {
            assert_eq!(during, 0, "a fresh runner must drop tasks with their cell");
            let err = task.wait(Some(Duration::from_secs(5))).unwrap_err();
            assert!(
                err.as_run_error().is_some_and(RunError::is_task_dropped),
                "{err:?}"
            );
        }
        _ => {
            assert!(
                during > 0,
                "`{}`: the task must run during the next cell",
                info.name
            );
            task.cancel();
            let err = task.wait(None).unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
        }
    }
}

fn nesting(name: &str) {
    let f = Fixture::new(name);
    let info = f.runner.info().clone();
    if f.polls_once() {
        // Nothing suspends under `sync`, so nesting it is harmless.
        let r = f.runner.clone();
        let inner = f
            .runner
            .block_on(async move { r.block_on(async { 3 }) })
            .unwrap();
        assert_eq!(inner.unwrap(), 3);
        return;
    }
    let outer = f.runner.clone();
    let result = f.runner.block_on(async move {
        // The outer cell spawns a task that the innermost future needs.
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let _task = outer.spawn(Cell::new(async move {
            autoawait_core::sleep(Duration::from_millis(10)).await;
            let _ = tx.send(3);
        }))?;
        let middle = outer.clone();
        outer.block_on(async move {
            let inner = middle.clone();
            middle.block_on(async move { inner.block_on(async move { rx.await.unwrap() }) })
        })
    });
    let result = result.unwrap().and_then(|r| r).and_then(|r| r);
    if info.capabilities.nests {
        assert_eq!(result.unwrap(), 3, "`{}` must nest to depth 3", info.name);
    } else if info.strategy == Strategy::Host {
        // Per backend: either it nests, or it refuses; it never hangs.
        assert!(
            matches!(result, Ok(3) | Err(RunError::WouldDeadlock { .. })),
            "{result:?}"
        );
    } else {
        assert!(
            result.as_ref().is_err_and(RunError::is_would_deadlock),
            "{result:?}"
        );
    }
}

fn blocking_on_the_reactor_thread(name: &str) {
    let f = Fixture::new(name);
    if f.polls_once() {
        return;
    }
    let info = f.runner.info().clone();
    let runner = f.runner.clone();
    // A cell waits for a task of its own runner.
    let waited = f
        .runner
        .block_on(async move {
            let task = runner.spawn(Cell::new(async {
                autoawait_core::sleep(Duration::from_millis(20)).await;
                9u8
            }))?;
            task.wait(Some(Duration::from_secs(20)))
                .map(autoawait_core::downcast::<u8>)
        })
        .unwrap();
    match info.strategy {
        // Tasks may run elsewhere (their own threads, other workers): waiting may work.
        _ if info.capabilities.nests => {
            assert!(
                matches!(&waited, Ok(9))
                    || waited.as_ref().is_err_and(WaitError::is_would_deadlock),
                "{waited:?}"
            );
        }
        Strategy::Host => {
            assert!(
                matches!(&waited, Ok(9))
                    || waited.as_ref().is_err_and(WaitError::is_would_deadlock),
                "{waited:?}"
            );
        }
        _ => assert!(
            waited.as_ref().is_err_and(WaitError::is_would_deadlock),
            "{waited:?}"
        ),
    }
}

fn shutdown_stops_the_runner(name: &str) {
    let f = Fixture::new(name);
    assert_eq!(f.runner.block_on(async { 1 }).unwrap(), 1);
    f.runner.shutdown(Duration::from_secs(5));
    f.runner.shutdown(Duration::from_secs(5));
    let err = f.runner.block_on(async { 1 }).unwrap_err();
    assert!(err.is_stopped(), "{err:?}");
    assert!(f
        .runner
        .spawn(Cell::new(async {}))
        .unwrap_err()
        .is_stopped());
}

/// Shutdown drops a background task that would wait forever (the contract of
/// `Runner::shutdown`), even on a runner whose loop outlives it (`twisted`).
fn shutdown_drops_background_tasks(name: &str) {
    let f = Fixture::new(name);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let spawned = f.runner.spawn(Cell::new(async move {
        let _flag = flag;
        std::future::pending::<()>().await;
    }));
    if f.polls_once() {
        return expect_unsupported(spawned);
    }
    let task = spawned.expect("spawn");
    std::thread::sleep(Duration::from_millis(20));
    assert!(!dropped.load(Ordering::SeqCst), "the task ended early");
    f.runner.shutdown(Duration::from_secs(2));
    let start = Instant::now();
    while !dropped.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "a background task of `{name}` outlived shutdown"
    );
    drop(task);
}

/// Process-wide threads that no runner owns and that live until exit: the core
/// timer, the fallback driver of async-io (smol's reactor), the global executor
/// of async-std, the idle-exiting blocking pool of the `blocking` crate, and the
/// twisted reactor, which runs once per process and can never be restarted.
const PROCESS_THREADS: [&str; 5] = [
    "autoawait-timer",
    "async-io",
    "async-std/runtime",
    "blocking-",
    "twisted",
];

/// Threads of this process, except the process-wide ones.
fn threads() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap() {
        let comm = entry.unwrap().path().join("comm");
        if let Ok(name) = std::fs::read_to_string(comm) {
            let name = name.trim().to_owned();
            // Linux keeps 15 bytes of a thread's name.
            if !PROCESS_THREADS
                .iter()
                .any(|p| name.starts_with(&p[..p.len().min(15)]))
            {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

/// Runs in a child process (so no other test's threads are counted): every thread
/// the runner started is joined by `shutdown`.
fn shutdown_joins_threads_child(name: &str) {
    if std::env::var_os("AUTOAWAIT_CONFORMANCE_CHILD").is_none() {
        return;
    }
    // Start the timer thread first so it is not counted as the runner's.
    autoawait_core::block_on_inline(autoawait_core::sleep(Duration::from_millis(1)));
    let before = threads();
    let runner = registry_for(name).get(name).unwrap();
    let r = runner.clone();
    let _ = runner.block_on(async move {
        let task = r.spawn(Cell::new(async {
            loop {
                autoawait_core::sleep(Duration::from_millis(1)).await;
            }
        }));
        autoawait_core::sleep(Duration::from_millis(5)).await;
        task.is_ok()
    });
    for _ in 0..100 {
        let _ = runner.block_on(YieldOnce(false));
    }
    let started = Instant::now();
    runner.shutdown(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(20), "shutdown hung");
    // A joined thread can stay listed in /proc for a moment while the kernel
    // reaps it (its tid is cleared before it is released): allow for that.
    let mut after = threads();
    let reaped = Instant::now();
    while after != before && reaped.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(5));
        after = threads();
    }
    assert_eq!(before, after, "threads left running after shutdown");
}

fn shutdown_joins_threads(module: &str) {
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new(exe)
        .args([
            "--exact",
            &format!("{module}::shutdown_joins_threads_child"),
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("AUTOAWAIT_CONFORMANCE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn many_threads_at_once(name: &str) {
    let f = Fixture::new(name);
    let cells = 1000;
    let yields = !f.polls_once();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let runner = &f.runner;
            s.spawn(move || {
                for i in 0..cells {
                    let want = t * 100_000 + i;
                    let got = runner
                        .block_on(async move {
                            YieldOnceIf(yields && i % 2 == 0).await;
                            want
                        })
                        .unwrap();
                    assert_eq!(got, want);
                }
            });
        }
    });
}

/// [`YieldOnce`] when asked; ready at once otherwise (`sync` accepts those).
struct YieldOnceIf(bool);

impl Future for YieldOnceIf {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.0 {
            return Poll::Ready(());
        }
        self.0 = false;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn local_cells(name: &str) {
    let f = Fixture::new(name);
    let cell = Cell::local(|| {
        let not_send = std::rc::Rc::new(21);
        async move { *not_send * 2 }
    });
    let result = f.runner.run(cell, &RunOptions::default());
    if f.runner.info().capabilities.local_cells {
        assert_eq!(*result.unwrap().downcast::<i32>().unwrap(), 42);
    } else {
        expect_unsupported(result);
    }
}

fn services(name: &str) {
    let f = Fixture::new(name);
    let Some(services) = f.runner.services() else {
        return;
    };
    if f.polls_once() {
        return;
    }
    // sleep
    let sleep = services.sleep(Duration::from_millis(5));
    let started = Instant::now();
    f.runner.block_on(sleep).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(5));

    // spawn: a background cell whose origin is the spawning cell. The cell awaits
    // it: per-cell and fresh runners run tasks only while a cell runs.
    let runner = f.runner.clone();
    let seen = f
        .runner
        .run(
            Cell::with_origin(CellId::new(11), async move {
                runner
                    .spawn(Cell::new(async { autoawait_core::current_cell() }))?
                    .await
            }),
            &RunOptions::default(),
        )
        .map(autoawait_core::downcast::<autoawait_core::WaitResult>)
        .unwrap()
        .unwrap();
    assert_eq!(
        autoawait_core::downcast::<Option<CellId>>(seen),
        Some(CellId::new(11))
    );

    // TCP echo on loopback
    let runner = f.runner.clone();
    let echoed = f.runner.block_on(async move {
        let services = runner.services().unwrap();
        let listener = match services.listen("127.0.0.1:0".parse().unwrap()).await {
            Ok(listener) => listener,
            Err(e) => return Err(e),
        };
        let addr = listener.local_addr()?;
        let accept = listener.accept();
        let server = runner
            .spawn(Cell::new(async move {
                let (mut stream, _) = accept.await.unwrap();
                let mut buf = [0u8; 4];
                stream.read_exact(&mut buf).await.unwrap();
                stream.write_all(&buf).await.unwrap();
                stream.flush().await.unwrap();
            }))
            .unwrap();
        let mut client = services.connect(addr).await?;
        client.write_all(b"ping").await?;
        client.flush().await?;
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await?;
        drop(server);
        Ok(buf)
    });
    match echoed.unwrap() {
        Ok(buf) => assert_eq!(&buf, b"ping"),
        Err(e) if !f.has_sockets() => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
        Err(e) => panic!("TCP echo failed under `{name}`: {e}"),
    }
}

/// Every test above, for one runner: `runner_tests!(module, "runner-name");`.
macro_rules! runner_tests {
    ($module:ident, $name:literal) => {
        mod $module {
            macro_rules! case {
                ($test:ident) => {
                    #[test]
                    fn $test() {
                        super::watchdog(concat!($name, "::", stringify!($test)), || {
                            super::$test($name)
                        });
                    }
                };
            }
            case!(value_comes_back);
            case!(panics_are_values);
            case!(timeout_drops_the_cell);
            case!(cancel_from_another_thread);
            case!(background_tasks_between_cells);
            case!(nesting);
            case!(blocking_on_the_reactor_thread);
            case!(shutdown_stops_the_runner);
            case!(shutdown_drops_background_tasks);
            case!(many_threads_at_once);
            case!(local_cells);
            case!(services);

            #[test]
            fn shutdown_joins_threads() {
                super::watchdog(concat!($name, "::shutdown_joins_threads"), || {
                    super::shutdown_joins_threads(module_path!().rsplit("::").next().unwrap())
                });
            }

            #[test]
            #[ignore = "runs in a child process started by shutdown_joins_threads"]
            fn shutdown_joins_threads_child() {
                super::shutdown_joins_threads_child($name);
            }
        }
    };
}

runner_tests!(inline, "inline");
runner_tests!(sync, "sync");
#[cfg(feature = "async-std")]
runner_tests!(async_std, "async-std");
#[cfg(all(feature = "glommio", target_os = "linux"))]
runner_tests!(glommio, "glommio");
#[cfg(feature = "tokio")]
runner_tests!(tokio, "tokio");
#[cfg(feature = "tokio")]
runner_tests!(tokio_per_cell, "tokio-per-cell");
#[cfg(feature = "tokio")]
runner_tests!(tokio_fresh, "tokio-fresh");
#[cfg(feature = "tokio")]
runner_tests!(tokio_host, "tokio-host");
#[cfg(feature = "tokio")]
runner_tests!(tokio_nested, "tokio-nested");
#[cfg(feature = "smol")]
runner_tests!(smol, "smol");
#[cfg(feature = "smol")]
runner_tests!(smol_per_cell, "smol-per-cell");
#[cfg(feature = "smol")]
runner_tests!(smol_fresh, "smol-fresh");
#[cfg(all(feature = "smol", feature = "tokio"))]
runner_tests!(smol_host, "smol-host");
#[cfg(feature = "smol")]
runner_tests!(smol_nested, "smol-nested");
runner_tests!(futures_local, "futures-local");
// `twisted-per-cell` is not here: only the first cell of a whole process can run
// on it (core/tests/plugin.rs checks that, in a child process).
runner_tests!(twisted, "twisted");
