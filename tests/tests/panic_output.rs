//! A panic caught as a value is not printed (no message, no backtrace on stderr),
//! unless `AUTOAWAIT_PANIC_OUTPUT=1` asks; the message is kept in the value.
//!
//! Each case reruns this test binary as a child, so that its stderr can be read.

use std::process::Command;
use std::time::Duration;

use autoawait_core::{Registry, RunnerExt};
use autoawait_runners as _;
use autoawait_test_support::run_with_limit;

const CHILD: &str = "AUTOAWAIT_TEST_PANIC_CHILD";
const MESSAGE: &str = "the facade's cell fell over";

/// In the child: panics in a cell of each kind of runner, and prints what came back.
#[test]
fn child_panics_in_cells() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    for name in ["tokio", "tokio-per-cell", "smol", "inline"] {
        let runner = Registry::new().get(name).unwrap();
        let err = runner.block_on(async { panic!("{MESSAGE}") }).unwrap_err();
        println!("value from {name}: {err}");
        runner.shutdown(Duration::from_secs(2));
    }
}

fn child(extra: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_panics_in_cells",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env("RUST_BACKTRACE", "1")
    .env_remove("AUTOAWAIT_PANIC_OUTPUT")
    .envs(extra.iter().copied());
    let (ok, out) = run_with_limit(cmd, Duration::from_secs(60));
    assert!(ok, "the child failed:\n{out}");
    out
}

#[test]
fn panics_caught_as_values_are_quiet_and_keep_their_message() {
    let out = child(&[]);
    for name in ["tokio", "tokio-per-cell", "smol", "inline"] {
        assert!(
            out.contains(&format!("value from {name}: the cell panicked: {MESSAGE}")),
            "{out}"
        );
    }
    assert!(
        !out.contains("panicked at"),
        "a caught panic was printed:\n{out}"
    );
    assert!(
        !out.contains("stack backtrace"),
        "a backtrace was printed:\n{out}"
    );
}

#[test]
fn panic_output_can_be_asked_for() {
    let out = child(&[("AUTOAWAIT_PANIC_OUTPUT", "1")]);
    assert!(out.contains("panicked at"), "{out}");
    assert!(out.contains(MESSAGE), "{out}");
}
