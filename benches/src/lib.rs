//! The measuring code of autoawait, shared by the criterion benches
//! (`cargo bench -p autoawait-benches`) and `autoawait bench`: the floors and the
//! per-cell workloads as [`Case`]s, a [`Sampler`] for where criterion is not
//! linked, one run over chosen runners ([`bench()`]), and the report that turns the
//! measurements into `benches/REPORT.md`, a chart, or a table on a terminal.
//!
//! Every measurement is named `runner::case` (floors are `floor::case`).
//! `cargo run -p autoawait-benches --bin report` reads criterion's output under
//! `target/criterion` and writes the report.

mod cases;
mod report;
mod run;
mod sample;

pub use cases::{
    baseline, build_block_on_drop, floors, runner_cases, settle, spin_pingpong, thread_count, Case,
    Skipped, YieldOnce, WORKLOADS,
};
pub use report::{
    drift, human, markdown, read_criterion, svg_chart, table, Bound, Drift, Measurement,
    RunnerNote, Target, DRIFT_LIMIT,
};
pub use run::{bench, BenchRun, Progress, FLOORS_SHOWN};
pub use sample::Sampler;

/// `true` when `AUTOAWAIT_BENCH_QUICK` is set to anything but `0`.
pub fn quick() -> bool {
    std::env::var("AUTOAWAIT_BENCH_QUICK").is_ok_and(|v| v != "0")
}
