//! One run of `autoawait bench`: the floors, then each runner's workloads (each
//! runner shut down and its threads gone before the next starts), then the spin
//! floor again to see whether the machine stayed as quiet as it began.

use std::sync::Arc;

use autoawait_core::Runner;

use crate::{baseline, floors, runner_cases, settle, spin_pingpong, Measurement, Sampler, Skipped};

/// The floors a run measures: what each runner is compared with.
pub const FLOORS_SHOWN: &[&str] = &["spin_pingpong", "park_pingpong", "tokio_block_on"];

/// Where a run is, for a progress bar.
#[derive(Debug)]
pub struct Progress<'a> {
    /// Cases done so far.
    pub done: usize,
    /// Cases in the run (an estimate until every runner has said what it skips).
    pub total: usize,
    /// The case starting now (`runner::case`).
    pub id: &'a str,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct BenchRun {
    /// Every measurement, in the order taken.
    pub measurements: Vec<Measurement>,
    /// The workloads a runner could not do, with its reason.
    pub skipped: Vec<Skipped>,
    /// Runners that left threads running after shutdown, and how many.
    pub leftovers: Vec<(String, usize)>,
}

/// Measures the floors, then the cases of each of `runners` (a name and the
/// runner; `only` keeps the workloads it names), then the spin floor again as
/// `spin_pingpong_end`. Each runner is shut down once measured.
pub fn bench(
    runners: Vec<(String, Arc<dyn Runner>)>,
    only: Option<&[&str]>,
    sampler: &Sampler,
    progress: &mut dyn FnMut(Progress<'_>),
) -> BenchRun {
    let mut run = BenchRun::default();
    let threads = baseline();
    let per_runner = only.map_or(crate::WORKLOADS.len(), <[_]>::len);
    let mut total = FLOORS_SHOWN.len() + per_runner * runners.len() + 1;
    let mut done = 0;
    let mut measure = |group: &str, case: &mut crate::Case, done: &mut usize, total: usize| {
        progress(Progress {
            done: *done,
            total,
            id: &case.id(),
        });
        let m = sampler.sample(group, case);
        *done += 1;
        m
    };
    for mut case in floors()
        .into_iter()
        .filter(|c| FLOORS_SHOWN.contains(&c.name.as_str()))
    {
        let m = measure("floors", &mut case, &mut done, total);
        run.measurements.push(m);
    }
    for (name, runner) in runners {
        let (cases, skipped) = runner_cases(&name, &runner, only);
        total -= skipped.len();
        run.skipped.extend(skipped);
        for mut case in cases {
            let m = measure("per_cell", &mut case, &mut done, total);
            run.measurements.push(m);
        }
        runner.shutdown(std::time::Duration::from_secs(1));
        drop(runner);
        if let Some(Err(left)) = threads.map(settle) {
            run.leftovers.push((name, left));
        }
    }
    let m = measure(
        "floors_end",
        &mut spin_pingpong("spin_pingpong_end"),
        &mut done,
        total,
    );
    run.measurements.push(m);
    progress(Progress {
        done,
        total,
        id: "",
    });
    run
}
