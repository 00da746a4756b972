//! Per-cell latency: what one `runner.block_on(cell)` costs through every runner
//! in the registry, beside the floors it is judged against, measured in the same run.
//!
//! Why: a REPL or a kernel pays this on every cell, and a blocking facade on every
//! call. The floors say what is physically possible on this machine, so a ratio
//! means something on a noisy, shared VM where absolute numbers drift:
//!
//! - `floor::spin_pingpong`: two threads bouncing a counter through atomics, both
//!   spinning: the cheapest cross-thread hand-off there is (threaded runners are
//!   judged against it, target ≤ 10×);
//! - `floor::park_pingpong`: the same with park/unpark: the cheapest hand-off that
//!   sleeps (what a threaded runner costs without spinning);
//! - `floor::tokio_block_on`: a reused tokio current_thread runtime's `block_on` on
//!   the caller's thread (`tokio-per-cell` is judged against it, target ≤ +100 ns);
//! - `floor::tokio_build_block_on_drop`: build a current_thread runtime with every
//!   driver, `block_on`, drop (`tokio-fresh` is judged against it, target ≤ 1.25×).
//!
//! - `floor::pollster_block_on`: pollster's `block_on` of a ready future: polling
//!   with no reactor at all.
//!
//! Each runner runs these cells (ids `runner::case`):
//! - `ready` (`async { 1 }`) and `yield_once` (a future that wakes itself and
//!   returns `Pending` once, so the executor's wake path runs);
//! - `spawn_join_10`: spawn 10 tasks through the runner and await them all;
//! - `timer_0` and `timer_1ms`: sleep on the runner's own timer ([`Services`]);
//! - `tcp_echo`: connect through the runner's reactor to a loopback echo server on a
//!   plain thread, send 64 bytes, read them back.
//!
//! Runners are taken from the registry, so every backend compiled in is measured,
//! the statically linked `futures-local` too; the twisted plugin is built and
//! loaded at run time, as a user's `%load_ext twisted` would. A workload a runner
//! cannot do (`sync` polls once; glommio's sockets are `!Send`) is skipped with a
//! message.
//!
//! The group `linked` measures the same `twisted` runner linked into this binary:
//! `per_cell/twisted::*` against `linked/twisted::*` is what the C ABI between a
//! host and a runner loaded at run time costs.
//!
//! [`Services`]: autoawait_core::Services
//!
//! `AUTOAWAIT_BENCH_QUICK=1` shortens warm-up and measurement for a smoke run.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use autoawait_core::{downcast, Cell, Registry, RunError, Runner, RunnerExt};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use futures::io::{AsyncReadExt, AsyncWriteExt};

use autoawait_runners as _;
use autoawait_static_example as _;

/// Returns `Pending` once (after waking itself), then `Ready`.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        if self.0 {
            return Poll::Ready(black_box(1));
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A peer thread that answers each ping; `spin` picks spinning or parking.
struct Peer {
    ping: Arc<AtomicU64>,
    pong: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Peer {
    fn start(spin: bool) -> Self {
        let ping = Arc::new(AtomicU64::new(0));
        let pong = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let caller = thread::current();
        let (pi, po, st) = (ping.clone(), pong.clone(), stop.clone());
        let thread = thread::Builder::new()
            .name("bench-peer".into())
            .spawn(move || {
                let mut seen = 0;
                while !st.load(Ordering::Acquire) {
                    let v = pi.load(Ordering::Acquire);
                    if v == seen {
                        if spin {
                            std::hint::spin_loop();
                        } else {
                            thread::park();
                        }
                        continue;
                    }
                    seen = v;
                    po.store(v, Ordering::Release);
                    if !spin {
                        caller.unpark();
                    }
                }
            })
            .expect("cannot spawn the bench-peer thread");
        Peer {
            ping,
            pong,
            stop,
            thread: Some(thread),
        }
    }

    /// `iters` round trips; returns the time they took.
    fn round_trips(&self, iters: u64, spin: bool) -> Duration {
        let peer = self.thread.as_ref().unwrap().thread().clone();
        let base = self.ping.load(Ordering::Relaxed);
        let start = Instant::now();
        for i in 1..=iters {
            let v = base + i;
            self.ping.store(v, Ordering::Release);
            if spin {
                while self.pong.load(Ordering::Acquire) != v {
                    std::hint::spin_loop();
                }
            } else {
                peer.unpark();
                while self.pong.load(Ordering::Acquire) != v {
                    thread::park();
                }
            }
        }
        start.elapsed()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn floors(c: &mut Criterion) {
    let mut g = c.benchmark_group("floors");
    for (id, spin) in [
        ("floor::spin_pingpong", true),
        ("floor::park_pingpong", false),
    ] {
        let peer = Peer::start(spin);
        g.bench_function(id, |b| b.iter_custom(|iters| peer.round_trips(iters, spin)));
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    g.bench_function("floor::tokio_block_on", |b| {
        b.iter(|| rt.block_on(async { black_box(1u64) }))
    });
    g.bench_function("floor::tokio_block_on_yield", |b| {
        b.iter(|| rt.block_on(YieldOnce(false)))
    });
    drop(rt);

    g.bench_function("floor::pollster_block_on", |b| {
        b.iter(|| pollster::block_on(async { black_box(1u64) }))
    });
    g.bench_function("floor::tokio_build_block_on_drop", |b| {
        b.iter(|| build_block_on_drop(async { black_box(1u64) }))
    });
    g.bench_function("floor::tokio_build_block_on_drop_yield", |b| {
        b.iter(|| build_block_on_drop(YieldOnce(false)))
    });
    g.finish();
}

/// What `tokio-fresh` does at least: a runtime with every driver, per cell.
fn build_block_on_drop<F: Future>(fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(fut);
    drop(rt);
    out
}

/// What one iteration of a workload does, given the runner.
type Workload = fn(&Arc<dyn Runner>) -> Result<u64, RunError>;

/// The workloads every runner runs, after `ready` and `yield_once`.
const WORKLOADS: &[(&str, Workload)] = &[
    ("spawn_join_10", spawn_join_10),
    ("timer_0", |r| sleep_for(r, Duration::ZERO)),
    ("timer_1ms", |r| sleep_for(r, Duration::from_millis(1))),
    ("tcp_echo", tcp_echo),
];

/// A cell that spawns 10 tasks on its runner and awaits them all.
fn spawn_join_10(runner: &Arc<dyn Runner>) -> Result<u64, RunError> {
    let r = runner.clone();
    runner.block_on(async move {
        let tasks: Result<Vec<_>, _> = (0..10u64)
            .map(|i| r.spawn(Cell::new(async move { i })))
            .collect();
        let mut sum = 0;
        for task in tasks? {
            sum += downcast::<u64>(task.await?);
        }
        Ok(sum)
    })?
}

/// A cell that sleeps on the runner's own timer.
fn sleep_for(runner: &Arc<dyn Runner>, duration: Duration) -> Result<u64, RunError> {
    let r = runner.clone();
    runner.block_on(async move {
        let services = r.services().ok_or_else(|| no_services(&r))?;
        services.sleep(duration).await;
        Ok(1)
    })?
}

/// A cell that connects to a loopback echo server through the runner's reactor,
/// sends 64 bytes and reads them back.
fn tcp_echo(runner: &Arc<dyn Runner>) -> Result<u64, RunError> {
    let addr = echo_server();
    let r = runner.clone();
    runner.block_on(async move {
        let services = r.services().ok_or_else(|| no_services(&r))?;
        let io = |e: std::io::Error| RunError::backend(e);
        let mut stream = services.connect(addr).await.map_err(io)?;
        let mut buf = [7u8; 64];
        stream.write_all(&buf).await.map_err(io)?;
        stream.read_exact(&mut buf).await.map_err(io)?;
        Ok(u64::from(buf[63]))
    })?
}

fn no_services(runner: &Arc<dyn Runner>) -> RunError {
    RunError::Unsupported {
        advice: Default::default(),
        runner: runner.info().name.to_string(),
        reason: "no services".into(),
    }
}

/// A blocking echo server on a plain thread: no runner's reactor is involved.
fn echo_server() -> std::net::SocketAddr {
    static ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind");
        let addr = listener.local_addr().unwrap();
        thread::Builder::new()
            .name("bench-echo".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_nodelay(true);
                    let mut buf = [0u8; 64];
                    while std::io::Read::read_exact(&mut stream, &mut buf).is_ok() {
                        if std::io::Write::write_all(&mut stream, &buf).is_err() {
                            break;
                        }
                    }
                }
            })
            .expect("cannot spawn the echo server");
        addr
    })
}

/// Every workload through `runner`, then shuts it down so that its threads do not
/// slow the next runner.
fn measure(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, runner: Arc<dyn Runner>) {
    g.bench_function(format!("{name}::ready"), |b| {
        b.iter(|| runner.block_on(async { black_box(1u64) }).unwrap())
    });
    if name != "sync" {
        g.bench_function(format!("{name}::yield_once"), |b| {
            b.iter(|| runner.block_on(YieldOnce(false)).unwrap())
        });
    }
    for (case, workload) in WORKLOADS {
        // A workload a runner cannot do (`sync` cannot wait, glommio has no
        // sockets) is skipped, and says so.
        if let Err(err) = workload(&runner) {
            eprintln!("{name}::{case}: skipped: {err}");
            continue;
        }
        g.bench_function(format!("{name}::{case}"), |b| {
            b.iter(|| workload(&runner).unwrap())
        });
    }
    runner.shutdown(Duration::from_secs(1));
}

fn runners(c: &mut Criterion) {
    // A registry of its own, so that each runner can be shut down once measured.
    let registry = Registry::new();
    let mut g = c.benchmark_group("per_cell");
    for listing in registry.list() {
        if listing.unavailable.is_some() {
            continue;
        }
        let name = listing.info.name.to_string();
        match registry.get(&name) {
            Ok(runner) => measure(&mut g, &name, runner),
            Err(err) => eprintln!("skipping `{name}`: {err}"),
        }
    }
    // The dynamic plugin last: its reactor thread lives as long as the process.
    match autoawait_benches::twisted_plugin().map(|path| autoawait_plugin::load(&registry, &path)) {
        Some(Ok(_)) => {
            // `twisted-per-cell` runs one cell per process by design.
            let runner = registry
                .get("twisted")
                .expect("the plugin registers `twisted`");
            measure(&mut g, "twisted", runner);
        }
        Some(Err(err)) => eprintln!("skipping the twisted plugin: {err}"),
        None => eprintln!("skipping the twisted plugin: it did not build"),
    }
    g.finish();
}

/// The `twisted` runner linked in: the plugin's runner without the ABI hop. Its
/// reactor is not the loaded plugin's; once measured, it parks and stays idle.
fn linked(c: &mut Criterion) {
    let mut g = c.benchmark_group("linked");
    measure(&mut g, "twisted", autoawait_twisted::threaded());
    g.finish();
}

criterion_group! {
    name = per_cell;
    config = autoawait_benches::criterion();
    targets = floors, runners, linked
}
criterion_main!(per_cell);
