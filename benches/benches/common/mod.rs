//! What the criterion benches share: their settings and the plugin they load.

/// The criterion settings every bench uses. `AUTOAWAIT_BENCH_QUICK=1` keeps a full
/// run of every bench under five minutes on two cores (short warm-up and
/// measurement, fewer samples); without it, criterion's defaults apply.
pub(crate) fn criterion() -> criterion::Criterion {
    let c = criterion::Criterion::default().without_plots();
    if autoawait_benches::quick() {
        c.warm_up_time(std::time::Duration::from_millis(300))
            .measurement_time(std::time::Duration::from_millis(900))
            .sample_size(20)
    } else {
        c
    }
}

/// Builds the twisted plugin into `<target>/plugin-bench/<profile>` (release when
/// the benches run optimised) and returns its path; `None` if it does not build.
#[allow(dead_code)]
pub(crate) fn twisted_plugin() -> Option<std::path::PathBuf> {
    autoawait_test_support::PluginBuild::new("plugin-bench")
        .release(!cfg!(debug_assertions))
        .twisted()
        .ok()
}

/// Shuts `runner` down and waits for its threads to end, so that nothing of it
/// competes with what is measured next; says so if some are left.
#[allow(dead_code)]
pub(crate) fn retire(
    name: &str,
    runner: &std::sync::Arc<dyn autoawait_core::Runner>,
    baseline: Option<usize>,
) {
    runner.shutdown(std::time::Duration::from_secs(1));
    if let Some(baseline) = baseline {
        if let Err(left) = autoawait_benches::settle(baseline) {
            eprintln!("warning: `{name}` left {left} thread(s) running after shutdown");
        }
    }
}
