//! What the contract costs: the same ready and yield-once futures through a direct
//! tokio current_thread `block_on`, and through `Arc<dyn Runner>` +
//! `RunnerExt::block_on` on that same runtime (Cell boxing, the cell future's
//! panic catching and origin tracking, dyn dispatch, the output's `Box<dyn Any>`
//! and its downcast). Also the registry lookup a front end does per `%autoawait`,
//! and loading a plugin (`%load_ext`).
//!
//! The difference between `direct::*` and `dyn_runner::*` is the contract's
//! overhead; the target is at most 60 ns (a spike measured ≈40 ns on these machines).

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use autoawait_benches::YieldOnce;
use autoawait_core::{
    Cell, CellResult, EventualResult, Registry, RunError, RunOptions, Runner, RunnerExt,
    RunnerInfo, Strategy,
};
use autoawait_runners as _;
use criterion::{criterion_group, criterion_main, Criterion};

/// The thinnest possible runner over a current_thread runtime: exactly the
/// contract, nothing of a real runner's bookkeeping.
struct Direct {
    info: RunnerInfo,
    rt: tokio::runtime::Runtime,
}

impl Runner for Direct {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }
    fn run(&self, cell: Cell, _opts: &RunOptions) -> CellResult {
        self.rt.block_on(cell.into_local_future())
    }
    fn spawn(&self, _cell: Cell) -> Result<EventualResult, RunError> {
        Err(RunError::Unsupported {
            runner: "bench".into(),
            reason: "benches only".into(),
            advice: Default::default(),
        })
    }
    fn shutdown(&self, _grace: Duration) {}
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("cannot build a tokio runtime")
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("overhead");
    let rt = runtime();
    group.bench_function("direct::ready", |b| {
        b.iter(|| rt.block_on(async { black_box(1u64) }))
    });
    group.bench_function("direct::yield_once", |b| {
        b.iter(|| rt.block_on(YieldOnce(false)))
    });
    let runner: Arc<dyn Runner> = Arc::new(Direct {
        info: RunnerInfo::new("bench", "tokio", Strategy::PerCell, "bench"),
        rt: runtime(),
    });
    group.bench_function("dyn_runner::ready", |b| {
        b.iter(|| runner.block_on(async { black_box(1u64) }).unwrap())
    });
    group.bench_function("dyn_runner::yield_once", |b| {
        b.iter(|| runner.block_on(YieldOnce(false)).unwrap())
    });
    let registry = Registry::global();
    registry.get("inline").unwrap();
    group.bench_function("registry::get", |b| {
        b.iter(|| registry.get(black_box("Inline")).unwrap())
    });
    // Loading the twisted plugin into a fresh registry: open (the library stays
    // mapped after the first load), check the ABI, create and register its runners,
    // then drop them with the registry.
    match common::twisted_plugin() {
        Some(path) => {
            group.bench_function("plugin::load", |b| {
                b.iter(|| autoawait_plugin::load(&Registry::empty(), &path).unwrap())
            });
        }
        None => eprintln!("plugin::load: skipped: the twisted plugin did not build"),
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = overhead
}
criterion_main!(benches);
