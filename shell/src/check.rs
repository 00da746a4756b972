//! `autoawait check PLUGIN|NAME`: the conformance suite against a plugin's runners
//! or a built-in runner, one line per check.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use autoawait_conformance::{run_check, run_in_child, Outcome, Subject, CHECKS};
use autoawait_core::{Registry, Source};
use autoawait_plugin::Plugin;

/// What `autoawait check` checks.
enum Target {
    BuiltIn(Vec<String>),
    Plugin(Plugin),
}

/// Counts of one runner's outcomes.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
        }
    }
}

fn resolve(target: &str) -> anyhow::Result<Target> {
    let registry = Registry::global();
    let looks_like_path = target.contains('/')
        || target.ends_with(std::env::consts::DLL_SUFFIX)
        || Path::new(target).is_file();
    if looks_like_path {
        return Ok(Target::Plugin(Plugin::open(target)?));
    }
    if target == "all" {
        let names = registry
            .list()
            .into_iter()
            .filter(|l| l.unavailable.is_none() && l.source == Source::BuiltIn)
            .map(|l| l.info.name.into_owned())
            .collect();
        return Ok(Target::BuiltIn(names));
    }
    if registry.contains(target) {
        let name = registry.info(target).map(|i| i.name.into_owned());
        return Ok(Target::BuiltIn(name.into_iter().collect()));
    }
    let path = autoawait_plugin::find_plugin(target, &autoawait_plugin::plugin_search_path())
        .map_err(|e| {
            anyhow!(
                "`{target}` is neither a built-in runner nor a plugin: {e}. The built-in \
                 runners are: {}",
                registry.names().join(", ")
            )
        })?;
    Ok(Target::Plugin(Plugin::open(path)?))
}

/// Each check's runner comes from a registry of its own, so none shares state with
/// another's.
fn subject(target: &Target, runner: &str) -> Subject {
    let name = runner.to_owned();
    match target {
        Target::BuiltIn(_) => Subject::new(runner, move || Ok(Registry::new().get(&name)?)),
        Target::Plugin(plugin) => {
            let plugin = plugin.clone();
            Subject::new(runner, move || {
                let registry = Registry::empty();
                plugin
                    .register(&registry)
                    .map_err(autoawait_core::RunError::backend)?;
                Ok(registry.get(&name)?)
            })
        }
    }
}

/// Runs the checks and prints them; `Ok(true)` if every check passed.
///
/// `isolated` runs one check in this process for a parent `autoawait check`.
///
/// # Errors
///
/// If the target cannot be found or loaded, or names no runner.
pub fn check(target: &str, only: Option<&str>, isolated: Option<&str>) -> anyhow::Result<bool> {
    let resolved = resolve(target)?;
    let runners = match &resolved {
        Target::BuiltIn(names) => names.clone(),
        Target::Plugin(plugin) => plugin.runner_names(),
    };
    let runners: Vec<String> = match only {
        Some(wanted) => {
            let found: Vec<String> = runners
                .iter()
                .filter(|r| r.eq_ignore_ascii_case(wanted))
                .cloned()
                .collect();
            if found.is_empty() {
                return Err(anyhow!(
                    "`{target}` has no runner `{wanted}`; its runners are: {}",
                    runners.join(", ")
                ));
            }
            found
        }
        None => runners,
    };
    if let Some(name) = isolated {
        let check = CHECKS
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("no check named `{name}`"))?;
        let runner = runners.first().context("no runner to check")?;
        run_in_child(&subject(&resolved, runner), check);
        return Ok(true);
    }
    let exe = std::env::current_exe().context("the autoawait executable has no path")?;
    let mut tallies = Vec::new();
    for runner in &runners {
        let (target, runner_arg) = (target.to_owned(), runner.clone());
        let exe = exe.clone();
        let subject = subject(&resolved, runner).isolate_with(move |check| {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "check",
                &target,
                "--runner",
                &runner_arg,
                "--isolated",
                check.name,
            ]);
            cmd
        });
        let mut tally = Tally::default();
        for check in CHECKS {
            let started = Instant::now();
            let outcome = run_check(&subject, check);
            print_line(runner, check.name, "", &outcome, started);
            tally.add(&outcome);
        }
        if let Target::Plugin(plugin) = &resolved {
            // The plugin's own runner in its own image: its own run(), timeouts, cancels.
            for check in CHECKS.iter().filter(|c| !c.isolated) {
                let started = Instant::now();
                let Some(outcome) = plugin.check(runner, check.name) else {
                    println!(
                        "skip {runner}: the plugin was built before plugins could check \
                         themselves (rebuild it to check its runners without the host)"
                    );
                    break;
                };
                print_line(runner, check.name, " (in the plugin)", &outcome, started);
                tally.add(&outcome);
            }
        }
        tallies.push((runner.clone(), tally));
    }
    println!();
    println!(
        "{:<20} {:>6} {:>6} {:>7}",
        "runner", "passed", "failed", "skipped"
    );
    for (runner, t) in &tallies {
        println!(
            "{runner:<20} {:>6} {:>6} {:>7}",
            t.passed, t.failed, t.skipped
        );
    }
    let passed: usize = tallies.iter().map(|(_, t)| t.passed).sum();
    let failed: usize = tallies.iter().map(|(_, t)| t.failed).sum();
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn print_line(runner: &str, check: &str, place: &str, outcome: &Outcome, started: Instant) {
    let took = started.elapsed();
    match outcome {
        Outcome::Passed => println!("ok   {runner}::{check}{place} ({took:.0?})"),
        Outcome::Failed(why) => {
            let contract = CHECKS
                .iter()
                .find(|c| c.name == check)
                .map_or("", |c| c.contract);
            println!("FAIL {runner}::{check}{place}: {}", why.trim());
            println!("     the contract: {contract}");
        }
        Outcome::Skipped(why) => println!("skip {runner}::{check}{place}: {why}"),
    }
    let _ = std::io::stdout().flush();
}
