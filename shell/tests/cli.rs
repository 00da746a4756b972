//! The `autoawait` binary end to end: `autoawait run FILE.lua` on cell files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use autoawait_test_support::wait_with_limit;
use common::has;

/// Writes `text` to a cell file of its own under cargo's scratch directory
/// for integration tests.
fn cell_file(text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{n}.lua", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary with `args`; kills it (and fails) after 30 s.
fn autoawait(args: &[&str]) -> (bool, String, String) {
    autoawait_with(args, &[])
}

/// [`autoawait`] with extra environment variables.
fn autoawait_with(args: &[&str], env: &[(&str, PathBuf)]) -> (bool, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_autoawait"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let done = wait_with_limit(child, Duration::from_secs(30));
    assert!(done.status.is_some(), "watchdog: autoawait {args:?} hung");
    (done.success(), done.stdout, done.stderr)
}

fn run(text: &str, extra: &[&str]) -> (bool, String, String) {
    let path = cell_file(text);
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = autoawait(&args);
    let _ = std::fs::remove_file(&path);
    result
}

#[test]
fn cells_are_echoed_with_their_values_and_globals_persist() {
    let (ok, out, _) = run(
        "-- %%\n%autoawait inline\n-- %%\nx = 40\n-- %%\nx + 2\n-- %%\nprint('hi')\n",
        &[],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("In [1]: %autoawait inline\nautoawait is `on`"),
        "{out}"
    );
    assert!(
        out.contains("In [2]: x = 40\n\nIn [3]: x + 2\nOut[3]: 42\n"),
        "{out}"
    );
    assert!(out.contains("In [4]: print('hi')\nhi\n"), "{out}");
}

#[test]
fn the_first_failing_cell_stops_the_run_unless_keep_going() {
    let text = "-- %%\n%autoawait inline\n-- %%\nerror('boom')\n-- %%\n'after'\n";
    let (ok, out, _) = run(text, &[]);
    assert!(!ok);
    assert!(out.contains("LuaError: In[2]:1: boom"), "{out}");
    assert!(!out.contains("after"), "{out}");

    let (ok, out, _) = run(text, &["--keep-going"]);
    assert!(!ok, "a failure still fails the run");
    assert!(out.contains("Out[3]: \"after\""), "{out}");
}

#[test]
fn errors_are_messages_and_the_session_goes_on() {
    let (ok, out, _) = run(
        "-- %%\n%autoawait inline\n-- %%\nx = = 1\n-- %%\n%timit 1\n-- %%\n\
         %load_ext /nonexistent/libnothing.so\n-- %%\n%autoawait tokoi\n-- %%\n'alive'\n",
        &["--keep-going"],
    );
    assert!(!ok);
    assert!(
        out.contains("SyntaxError: In[2]:1: unexpected symbol near '='"),
        "{out}"
    );
    assert!(out.contains("did you mean `%timeit`?"), "{out}");
    assert!(out.contains("/nonexistent/libnothing.so"), "{out}");
    assert!(out.contains("UsageError: no runner named `tokoi`"), "{out}");
    assert!(out.contains("Out[6]: \"alive\""), "{out}");
}

#[test]
fn runner_flag_selects_the_runner() {
    let (ok, out, _) = run("%autoawait\n", &["--runner", "sync"]);
    assert!(ok, "{out}");
    assert!(out.contains("set to use `sync`"), "{out}");
    let (ok, _, err) = run("1\n", &["--runner", "nope"]);
    assert!(!ok);
    assert!(err.contains("no runner named `nope`"), "{err}");
}

#[test]
fn background_output_is_tagged_with_its_cell() {
    let runner = if has("tokio") { "tokio" } else { "inline" };
    let (ok, out, _) = run(
        "-- %%\nt = spawn(function() await(sleep(0.1)); print('from the task') end)\n\
         -- %%\nawait(sleep(0.5))\nprint('cell 2')\n",
        &["--runner", runner],
    );
    assert!(ok, "{out}");
    assert!(out.contains("[In 1] from the task\n"), "{out}");
    assert!(out.contains("\ncell 2\n"), "{out}");
}

#[test]
fn every_builtin_from_a_cell_file() {
    let runner = if has("tokio") { "tokio" } else { "inline" };
    let (ok, out, _) = run(
        "-- %%\nawait(sleep(0.01))\n'slept'\n\
         -- %%\nawait(gather(sleep(0.01), function() return 'g' end))\n\
         -- %%\nt = spawn(function(x) return x * 2 end, 21)\nt:wait(5)\n\
         -- %%\nt:done(), t:result()\n\
         -- %%\npcall(await, timeout(0.01, sleep(5)))\n\
         -- %%\ndisplay(markdown('# title'))\n\
         -- %%\nhtml('<i>x</i>')\n\
         -- %%\n%%run_in_reactor r\n    return 'reactor'\n\
         -- %%\nr:wait(5)\n",
        &["--runner", runner],
    );
    assert!(ok, "{out}");
    for expected in [
        "Out[1]: \"slept\"",
        "Out[2]: nil, \"g\"",
        "Out[3]: 42",
        "Out[4]: true, 42",
        "Out[5]: false, ",
        "\n# title\n",
        "Out[7]: <i>x</i>",
        "r = <Task of In[8]",
        "Out[9]: \"reactor\"",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from {out}");
    }
}

#[test]
fn wrong_runtime_and_strategies_are_visible_from_lua() {
    if !has("tokio") || !has("smol") {
        return;
    }
    let (ok, out, _) = run(
        "-- %%\n%autoawait smol\n-- %%\nawait(tokio.sleep(0.01))\n\
         -- %%\n%autoawait tokio-fresh\nt = spawn(function() await(sleep(5)) end)\n\
         -- %%\nt:wait(5)\n",
        &["--keep-going"],
    );
    assert!(!ok);
    assert!(
        out.contains("WrongRuntime: this awaitable needs a tokio runtime but runs under `smol`"),
        "{out}"
    );
    assert!(out.contains("TaskDropped: the task was dropped"), "{out}");
}

#[test]
fn the_tour_runs() {
    if !has("tokio") || !has("smol") {
        return;
    }
    let tour = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tour.lua");
    let plugins = common::twisted_dir();
    let (ok, out, err) = autoawait_with(&["run", tour], &[("AUTOAWAIT_PLUGIN_PATH", plugins)]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("loaded plugin `twisted`"), "{out}");
    assert!(out.contains("set to use `twisted`"), "{out}");
    assert!(out.contains("I HAVE AWAKENED!"), "{out}");
    assert!(out.contains("Out[6]: \"fired\""), "{out}");
    assert!(out.contains("] tick 1"), "{out}");
    // HTTP and JSON against the tour's own server, under three runners.
    assert!(
        out.contains("200, \"application/json\", \"earth\""),
        "{out}"
    );
    assert!(out.contains("\"twisted: /a /b /c\""), "{out}");
    assert!(out.contains("\"smol: /a /b /c\""), "{out}");
    assert!(out.contains("httpd"), "{out}");
    assert!(out.contains("timed out"), "{out}");
    assert!(out.contains("the end"), "{out}");
}

#[test]
fn help_comes_from_clap() {
    let (ok, out, _) = autoawait(&["--help"]);
    assert!(ok);
    assert!(out.contains("run"), "{out}");
    assert!(out.contains("--runner"), "{out}");
}

#[test]
fn every_magic_from_a_cell_file() {
    let (ok, out, _) = run(
        "-- %%\n%autoawait inline\n\
         -- %%\n%autoawait --list\n\
         -- %%\n%lsmagic\n\
         -- %%\n%help run_in_reactor\n\
         -- %%\n%timeit -n 2 -r 2 await(sleep(0))\n\
         -- %%\n%%timeit -n 2 -r 2\nawait(sleep(0))\n\
         -- %%\n%time 6 * 7\n\
         -- %%\nleftover = 1\n\
         -- %%\n%reset -f\n\
         -- %%\nleftover\n\
         -- %%\n%%run_in_reactor\n  if true then\n    return 'indented'\n  end\n\
         -- %%\n_:wait(5)\n",
        &[],
    );
    assert!(ok, "{out}");
    for expected in [
        "* inline",
        "Available cell magics:\n%%run_in_reactor  %%timeit  %%time",
        "%%run_in_reactor [NAME]\n  run the cell body",
        "(mean ± std. dev. of 2 runs, 2 loops each)",
        "Wall time: ",
        "Out[7]: 42",
        "reset: removed 1 globals",
        "In [10]: leftover\n\n",
        "_ = <Task of In[11]",
        "Out[12]: \"indented\"",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from {out}");
    }
}

/// Starts `autoawait run` on `cells`, sends it SIGINT after each of `pauses`, and
/// returns its exit code and output (killed after 20 s).
fn interrupted_run(cells: &str, pauses: &[u64]) -> (Option<i32>, String) {
    let path = cell_file(cells);
    let child = Command::new(env!("CARGO_BIN_EXE_autoawait"))
        .args(["run", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    for pause in pauses {
        std::thread::sleep(Duration::from_millis(*pause));
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }
    let done = wait_with_limit(child, Duration::from_secs(20));
    let status = done.status.expect("autoawait run ends after SIGINT");
    (status.code(), done.stdout + &done.stderr)
}

#[test]
fn sigint_cancels_the_running_cell_and_the_run_goes_on() {
    let (code, out) = interrupted_run(
        "-- %%\nawait(sleep(30))\n-- %%\nwhile true do end\n-- %%\nprint('after both')\n",
        &[700, 1300],
    );
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.matches("KeyboardInterrupt").count(), 2, "{out}");
    assert!(out.contains("after both"), "{out}");
}

#[test]
fn a_second_sigint_within_a_second_ends_the_run() {
    let started = Instant::now();
    let (code, out) = interrupted_run(
        "-- %%\nwhile true do end\n-- %%\nawait(sleep(30))\n-- %%\nprint('never')\n",
        &[700, 200],
    );
    assert_eq!(code, Some(130), "{out}");
    assert!(out.contains("a second Ctrl-C, the run ends"), "{out}");
    assert!(!out.contains("never"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
