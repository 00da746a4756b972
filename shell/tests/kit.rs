//! The kit for people outside the repo, end to end: `autoawait new plugin` makes a
//! crate that builds and passes `autoawait check`, and `autoawait check` catches a
//! runner that breaks the contract; `autoawait bench` compares runners beside the
//! floors.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use autoawait_test_support::{dylib_name, run_with_limit};

/// Cold builds of a generated crate take a while on two cores.
const BUILD_LIMIT: Duration = Duration::from_secs(600);

fn autoawait(args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoawait"));
    // A check that hangs fails in 10 s rather than the default minute.
    cmd.args(args)
        .env(autoawait_conformance::WATCHDOG_ENV, "10");
    run_with_limit(cmd, Duration::from_secs(120))
}

/// A fresh directory for one generated crate.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("kit")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `cargo <args>` in the generated crate at `dir`, into a target directory shared by
/// every generated crate (so each reuses the others' artefacts), with this
/// workspace's lock file (so nothing new is resolved or downloaded).
fn cargo(dir: &Path, args: &[&str]) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kit-target");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(args)
        .arg("--quiet")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS");
    run_with_limit(cmd, BUILD_LIMIT)
}

/// Generates plugin `name` in a scratch dir, applies `edit` to its `src/lib.rs`,
/// builds it and returns the library's path.
fn plugin(name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let dir = scratch(name);
    let (ok, out) = autoawait(&["new", "plugin", dir.to_str().unwrap()]);
    assert!(ok, "autoawait new plugin failed:\n{out}");
    assert!(
        out.contains(&format!("created the plugin runner `{name}`")),
        "{out}"
    );
    let lib = dir.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, edit(text)).unwrap();
    let (ok, out) = cargo(&dir, &["build"]);
    assert!(ok, "the generated plugin does not build:\n{out}");
    let krate = format!("autoawait_{}", name.replace('-', "_"));
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("kit-target/debug")
        .join(dylib_name(&krate))
}

#[test]
fn a_new_plugin_passes_autoawait_check_through_the_host_and_in_its_image() {
    let lib = plugin("new-loop", |text| text);
    let (ok, out) = autoawait(&["check", lib.to_str().unwrap()]);
    assert!(ok, "autoawait check failed on a fresh plugin:\n{out}");
    assert!(out.contains(" passed, 0 failed"), "{out}");
    for check in autoawait_conformance::CHECKS {
        assert!(
            out.contains(&format!("ok   new-loop::{} (", check.name)),
            "{out}"
        );
    }
    assert!(
        out.contains("timeout_drops_the_cell (in the plugin)"),
        "{out}"
    );
}

/// Builds plugin `name` from the template with each `(from, to)` of `edits`
/// applied, checks it, and returns what `autoawait check` said (after asserting
/// that it failed).
fn check_broken(name: &str, edits: &[(&str, &str)]) -> String {
    let lib = plugin(name, |mut text| {
        for (from, to) in edits {
            assert!(text.contains(from), "the template no longer has `{from}`");
            text = text.replace(from, to);
        }
        text
    });
    let (ok, out) = autoawait(&["check", lib.to_str().unwrap()]);
    assert!(!ok, "autoawait check passed a broken runner:\n{out}");
    assert!(out.contains("the contract:"), "{out}");
    assert!(
        out.contains(&format!("ok   {name}::value_comes_back")),
        "{out}"
    );
    out
}

#[test]
fn a_plugin_that_ignores_timeouts_fails_the_timeout_check() {
    // Without the guard, a cell's timeout and cancel are never applied.
    let out = check_broken(
        "no-guard",
        &[(
            "opts.guard(cell.into_local_future())",
            "cell.into_local_future()",
        )],
    );
    assert!(
        out.contains("FAIL no-guard::timeout_drops_the_cell (in the plugin)"),
        "{out}"
    );
    assert!(out.contains("did not finish within 10s"), "{out}");
}

#[test]
fn a_plugin_that_nests_into_a_deadlock_fails_the_nesting_check() {
    // `run()` from the runner's own thread, no longer refused, waits for itself.
    let out = check_broken(
        "self-wait",
        &[("self.life.check_run()?;", "self.life.check()?;")],
    );
    assert!(out.contains("FAIL self-wait::nesting"), "{out}");
}

#[test]
fn a_plugin_that_leaks_tasks_at_shutdown_fails_the_shutdown_check() {
    // Its tasks neither cancelled nor dropped with the pool, they outlive the runner.
    let out = check_broken(
        "leaky",
        &[
            ("self.tasks.cancel();", ""),
            (
                "drop(jobs.close());",
                "drop(jobs.close());\n            std::mem::forget(pool);",
            ),
        ],
    );
    assert!(
        out.contains("FAIL leaky::shutdown_drops_background_tasks"),
        "{out}"
    );
    assert!(out.contains("outlived shutdown"), "{out}");
}

#[test]
fn a_new_static_runner_passes_its_own_conformance_tests() {
    let dir = scratch("static-loop");
    let (ok, out) = autoawait(&["new", "plugin", dir.to_str().unwrap(), "--static"]);
    assert!(ok, "{out}");
    let (ok, out) = cargo(&dir, &["test"]);
    assert!(ok, "the generated static runner fails its tests:\n{out}");
}

#[test]
fn new_plugin_refuses_bad_names_and_full_directories() {
    let dir = scratch("Bad_Name");
    let (ok, out) = autoawait(&["new", "plugin", dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("is not a runner name"), "{out}");
    assert!(!dir.exists(), "nothing is written for a bad name");

    let dir = scratch("full");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let (ok, out) = autoawait(&["new", "plugin", dir.to_str().unwrap(), "--name", "full"]);
    assert!(!ok);
    assert!(out.contains("is not empty"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn check_runs_the_suite_on_a_built_in_runner_and_refuses_unknown_names() {
    let (ok, out) = autoawait(&["check", "smol"]);
    assert!(ok, "{out}");
    assert!(out.contains("ok   smol::nesting"), "{out}");
    let (ok, out) = autoawait(&["check", "tokyo"]);
    assert!(!ok);
    assert!(
        out.contains("neither a built-in runner nor a plugin"),
        "{out}"
    );
    assert!(
        out.contains("tokio"),
        "the message lists the runners: {out}"
    );
}

#[test]
fn bench_prints_the_floors_and_a_plugins_runners_in_one_table() {
    let plugin =
        common::twisted_dir().join(autoawait_test_support::dylib_name("autoawait_twisted"));
    let json = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kit-bench.json");
    let _ = std::fs::remove_file(&json);
    let (ok, out) = autoawait(&[
        "bench",
        "--runner",
        "inline,sync",
        "--plugin",
        plugin.to_str().unwrap(),
        "--quick",
        "--json",
        json.to_str().unwrap(),
    ]);
    // A noisy run (the spin floor drifted) exits non-zero but still prints.
    assert!(out.contains("spin floor"), "{out}");
    for row in [
        "spin_pingpong",
        "park_pingpong",
        "tokio_block_on",
        "spin_pingpong_end",
    ] {
        assert!(out.contains(&format!("  {row} ")), "no floor {row}:\n{out}");
    }
    assert!(
        out.contains("x spin") && out.contains("x block_on"),
        "{out}"
    );
    // The named runners and the plugin's, each where it can run the case.
    let section = |case: &str| {
        let start = out
            .find(&format!("\n{case}\n"))
            .unwrap_or_else(|| panic!("no {case}:\n{out}"));
        out[start + case.len() + 2..]
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let ready = section("ready");
    for runner in ["inline", "sync", "twisted"] {
        assert!(
            ready.contains(&runner.to_owned()),
            "{runner} missing from ready: {ready:?}\n{out}"
        );
    }
    assert!(section("tcp_echo").contains(&"twisted".to_owned()), "{out}");
    // What a runner cannot do is said, not measured.
    assert!(out.contains("skipped sync ("), "{out}");
    assert!(out.contains("skipped twisted-per-cell ("), "{out}");
    // The JSON holds the same measurements.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let ms = doc["measurements"].as_array().unwrap();
    assert!(
        ms.iter().any(|m| m["subject"] == "twisted"
            && m["case"] == "ready"
            && m["median"].as_f64().unwrap() > 0.0),
        "{doc}"
    );
    assert!(doc["drift"]["start"].as_f64().is_some(), "{doc}");
    assert_eq!(ok, !doc["drift"]["noisy"].as_bool().unwrap(), "{out}");
}

#[test]
fn bench_refuses_an_unknown_runner_before_measuring() {
    let (ok, out) = autoawait(&["bench", "--runner", "tokyo", "--quick"]);
    assert!(!ok);
    assert!(out.contains("cannot measure `tokyo`"), "{out}");
    assert!(
        out.contains("tokio"),
        "the message suggests the closest name: {out}"
    );
    assert!(
        !out.contains("spin_pingpong"),
        "nothing was measured: {out}"
    );
}
