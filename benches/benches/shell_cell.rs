//! Cells end to end through the shell engine (no terminal), per runner: parse the
//! Lua source, run it through the runner, collect its outputs. This is what a user
//! waits for at the prompt. Ids are `runner::case`:
//! - `trivial`: the cell `x = 1` (IPython: about 200 µs for the same cell; the
//!   target through `tokio` is ≤ 10 µs);
//! - `await_sleep0`: the cell `await(sleep(0))` (IPython + twisted: about 460 µs);
//! - `spawn_gather_10`: a cell that spawns 10 tasks and gathers them.
//!
//! `off::trivial` is autoawait off: the cell runs on the calling thread.

mod common;

use std::sync::Arc;

use autoawait_core::CellId;
use autoawait_shell::{Engine, Output, Sink};
use criterion::{criterion_group, criterion_main, Criterion};

/// Drops every output.
struct Discard;

impl Sink for Discard {
    fn emit(&self, _cell: CellId, _output: Output) {}
}

const RUNNERS: &[&str] = &[
    "inline",
    "sync",
    "tokio",
    "tokio-per-cell",
    "tokio-fresh",
    "tokio-nested",
    "smol",
    "smol-per-cell",
    "smol-fresh",
    "smol-nested",
    "async-std",
];

const CELLS: &[(&str, &str)] = &[
    ("trivial", "x = 1"),
    ("await_sleep0", "await(sleep(0))"),
    (
        "spawn_gather_10",
        "local t = {} for i = 1, 10 do t[i] = spawn(function() return i end) end \
         local s = 0 for i = 1, 10 do s = s + t[i]:wait() end",
    ),
];

fn engine_on(runner: &str) -> Option<Engine> {
    let mut engine = Engine::new(Arc::new(Discard)).expect("the engine starts");
    engine
        .run_cell(&format!("%autoawait {runner}"))
        .is_ok()
        .then_some(engine)
}

fn cells(c: &mut Criterion) {
    let mut group = c.benchmark_group("shell_cell");
    for runner in RUNNERS {
        let Some(mut engine) = engine_on(runner) else {
            eprintln!("skipping `{runner}`: not available");
            continue;
        };
        for (case, cell) in CELLS {
            if !engine.run_cell(cell).is_ok() {
                eprintln!("{runner}::{case}: skipped: the cell fails under `{runner}`");
                continue;
            }
            group.bench_function(format!("{runner}::{case}"), |b| {
                b.iter(|| engine.run_cell(cell))
            });
        }
    }
    if let Some(mut engine) = engine_on("off") {
        group.bench_function("off::trivial", |b| b.iter(|| engine.run_cell("x = 1")));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = cells
}
criterion_main!(benches);
