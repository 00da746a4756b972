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
//! loaded at run time, as a user's `%load_ext twisted` would (`twisted`, then
//! `twisted-host`, which moves its reactor onto a `tokio-host` loop). A workload a runner
//! cannot do (`sync` polls once; glommio's sockets are `!Send`) is skipped with a
//! message.
//!
//! The group `linked` measures the same `twisted` runner linked into this binary:
//! `per_cell/twisted::*` against `linked/twisted::*` is what the C ABI between a
//! host and a runner loaded at run time costs.
//!
//! [`Services`]: autoawait_core::Services
//!
//! Hygiene: every runner is shut down once measured, and the next waits until its
//! threads are gone (a warning names a runner that leaves some); the spin floor is
//! measured again at the end (`floors_end`), and the report flags a drift over 25%
//! as a noisy run.
//!
//! The cases are `autoawait_benches`'s, the same `autoawait bench` measures.
//! `AUTOAWAIT_BENCH_QUICK=1` shortens warm-up and measurement for a smoke run.

mod common;

use std::sync::Arc;

use autoawait_benches::{baseline, floors, runner_cases, spin_pingpong, Case};
use autoawait_core::{Registry, Runner};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};

use autoawait_runners as _;
use autoawait_static_example as _;

fn bench_case(g: &mut BenchmarkGroup<'_, WallTime>, mut case: Case) {
    g.bench_function(case.id(), |b| b.iter_custom(|iters| case.run(iters)));
}

fn floors_start(c: &mut Criterion) {
    let mut g = c.benchmark_group("floors");
    for case in floors() {
        bench_case(&mut g, case);
    }
    g.finish();
}

/// The spin floor again, last: the report compares it with the first.
fn floors_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("floors_end");
    bench_case(&mut g, spin_pingpong("spin_pingpong_end"));
    g.finish();
}

/// Every workload `runner` can do, then its shutdown: its threads are gone before
/// the next runner is measured.
fn measure(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, runner: Arc<dyn Runner>) {
    let threads = baseline();
    let (cases, skipped) = runner_cases(name, &runner, None);
    for skip in skipped {
        eprintln!("{}: skipped: {}", skip.id, skip.why);
    }
    for case in cases {
        bench_case(g, case);
    }
    common::retire(name, &runner, threads);
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
    match common::twisted_plugin().map(|path| autoawait_plugin::load(&registry, &path)) {
        Some(Ok(_)) => {
            // `twisted-per-cell` runs one cell per process by design.
            let runner = registry
                .get("twisted")
                .expect("the plugin registers `twisted`");
            measure(&mut g, "twisted", runner);
            // The same reactor, moved off its thread onto a loop of `tokio-host`.
            let runner = registry
                .get("twisted-host")
                .expect("the plugin registers `twisted-host`");
            measure(&mut g, "twisted-host", runner);
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
    config = common::criterion();
    targets = floors_start, runners, linked, floors_end
}
criterion_main!(per_cell);
