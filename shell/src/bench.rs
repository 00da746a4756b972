//! `autoawait bench [--runner A,B] [--plugin PATH]... [--quick] [--json FILE]`: the
//! per-cell cases for the named runners beside the floors, in one run, measured by
//! the same code as `cargo bench` (`autoawait-benches`).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use autoawait_benches::{drift, table, BenchRun, Progress, Sampler};
use autoawait_core::{Registry, Runner, Source};

/// What `autoawait bench` was asked.
#[derive(Debug, Default)]
pub struct BenchArgs {
    /// The runners to measure; every available one if empty.
    pub runners: Vec<String>,
    /// Plugins to load first (their runners join the default set).
    pub plugins: Vec<PathBuf>,
    /// A shorter, noisier run.
    pub quick: bool,
    /// Where to write the measurements as JSON.
    pub json: Option<PathBuf>,
}

/// The runners to measure, from a registry of the run's own (so that each can be
/// shut down once measured without touching anyone else's).
fn runners(
    registry: &Registry,
    args: &BenchArgs,
) -> anyhow::Result<Vec<(String, Arc<dyn Runner>)>> {
    let mut plugin_runners = Vec::new();
    for path in &args.plugins {
        let load = autoawait_plugin::load(registry, path)?;
        plugin_runners.extend(load.plugin.runner_names());
    }
    // The named runners (every available built-in by default), then each plugin's.
    let mut names: Vec<String> = if args.runners.is_empty() {
        registry
            .list()
            .into_iter()
            .filter(|l| l.unavailable.is_none() && l.source == Source::BuiltIn)
            .map(|l| l.info.name.into_owned())
            .collect()
    } else {
        args.runners.clone()
    };
    for name in plugin_runners {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let runner = registry
                .get(&name)
                .map_err(|e| anyhow!("cannot measure `{name}`: {e}"))?;
            Ok((runner.info().name.to_string(), runner))
        })
        .collect()
}

/// A one-line progress bar on stderr, when stderr is a terminal.
fn progress_bar() -> impl FnMut(Progress<'_>) {
    let terminal = std::io::stderr().is_terminal();
    move |p: Progress<'_>| {
        if !terminal {
            return;
        }
        const WIDTH: usize = 30;
        let filled = (p.done * WIDTH)
            .checked_div(p.total)
            .unwrap_or(0)
            .min(WIDTH);
        let mut err = std::io::stderr().lock();
        if p.id.is_empty() {
            let _ = write!(err, "\r\x1b[2K");
        } else {
            let _ = write!(
                err,
                "\r\x1b[2K[{}{}] {}/{} {}",
                "#".repeat(filled),
                " ".repeat(WIDTH - filled),
                p.done,
                p.total,
                p.id
            );
        }
        let _ = err.flush();
    }
}

fn write_json(path: &Path, run: &BenchRun) -> anyhow::Result<()> {
    let skipped: Vec<_> = run
        .skipped
        .iter()
        .map(|s| serde_json::json!({ "id": s.id, "why": s.why.to_string() }))
        .collect();
    let drift = drift(&run.measurements).map(|d| {
        serde_json::json!({ "start": d.start, "end": d.end, "change": d.change(), "noisy": d.noisy() })
    });
    let doc = serde_json::json!({
        "unit": "ns",
        "measurements": run.measurements,
        "skipped": skipped,
        "leftover_threads": run.leftovers,
        "drift": drift,
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the benches and prints the table; `Ok(false)` if the run was noisy.
///
/// # Errors
///
/// If a plugin does not load, a runner cannot be had, or the JSON not written.
pub fn bench(args: &BenchArgs) -> anyhow::Result<bool> {
    let registry = Registry::new();
    let runners = runners(&registry, args)?;
    let sampler = if args.quick {
        Sampler::quick()
    } else {
        Sampler::default()
    };
    let names: Vec<&str> = runners.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!(
        "measuring {} beside the floors{}",
        names.join(", "),
        if args.quick { " (quick: noisier)" } else { "" }
    );
    let run = autoawait_benches::bench(runners, None, &sampler, &mut progress_bar());
    print!("{}", table(&run.measurements));
    // One line per runner and reason: `twisted-per-cell` skips everything alike.
    let mut reasons: Vec<(String, String, Vec<&str>)> = Vec::new();
    for skip in &run.skipped {
        let (runner, case) = skip.id.split_once("::").unwrap_or((&skip.id, ""));
        let why = skip.why.to_string();
        match reasons
            .iter_mut()
            .find(|(r, w, _)| r == runner && *w == why)
        {
            Some((_, _, cases)) => cases.push(case),
            None => reasons.push((runner.to_owned(), why, vec![case])),
        }
    }
    for (runner, why, cases) in reasons {
        println!("skipped {runner} ({}): {why}", cases.join(", "));
    }
    for (runner, left) in &run.leftovers {
        println!("warning: `{runner}` left {left} thread(s) running after shutdown");
    }
    if let Some(path) = &args.json {
        write_json(path, &run)?;
        println!("wrote {}", path.display());
    }
    Ok(!drift(&run.measurements).is_some_and(|d| d.noisy()))
}
