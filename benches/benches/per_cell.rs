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
//! Each runner runs two cells: `ready` (`async { 1 }`) and `yield_once` (a future
//! that wakes itself and returns `Pending` once, so the executor's wake path runs).
//! Runners are taken from the registry, so every backend compiled in is measured;
//! `sync` runs only the ready cell (it polls once). The ids are `runner::case`.
//!
//! `AUTOAWAIT_BENCH_QUICK=1` shortens warm-up and measurement for a smoke run.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use autoawait_core::{Registry, RunnerExt};
use criterion::{criterion_group, criterion_main, Criterion};

use autoawait_runners as _;

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

fn configured() -> Criterion {
    let quick = std::env::var_os("AUTOAWAIT_BENCH_QUICK").is_some_and(|v| v != "0");
    let c = Criterion::default().without_plots();
    if quick {
        c.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(20)
    } else {
        c.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(50)
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

fn runners(c: &mut Criterion) {
    let registry = Registry::global();
    let mut g = c.benchmark_group("per_cell");
    for listing in registry.list() {
        if listing.unavailable.is_some() {
            continue;
        }
        let name = listing.info.name.to_string();
        let runner = match registry.get(&name) {
            Ok(runner) => runner,
            Err(err) => {
                eprintln!("skipping `{name}`: {err}");
                continue;
            }
        };
        g.bench_function(format!("{name}::ready"), |b| {
            b.iter(|| runner.block_on(async { black_box(1u64) }).unwrap())
        });
        if name != "sync" {
            g.bench_function(format!("{name}::yield_once"), |b| {
                b.iter(|| runner.block_on(YieldOnce(false)).unwrap())
            });
        }
    }
    g.finish();
    registry.shutdown_all(Duration::from_secs(1));
}

criterion_group! {
    name = per_cell;
    config = configured();
    targets = floors, runners
}
criterion_main!(per_cell);
