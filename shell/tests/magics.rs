//! The magics through the engine: each one, and its errors.

mod common;

use std::time::Duration;

use autoawait_shell::{ErrorKind, MAGICS};
use common::{has, stdout_of, watchdog, Shell};

#[test]
fn autoawait_is_the_core_selector() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        assert_eq!(
            sh.stdout("%autoawait"),
            "autoawait is `on`, and set to use `inline` (nested: re-entrant: cells may run cells)\n"
        );
        assert!(sh.stdout("%autoawait OFF").contains("is `off`"));
        assert!(sh.stdout("%autoawait 1").contains("is `on`"));
        let list = sh.stdout("%autoawait --list");
        assert!(list.contains("* inline"), "{list}");
        assert!(list.contains("sync"), "{list}");
        let err = sh.err("%autoawait inlnie");
        assert_eq!(err.kind, ErrorKind::UsageError);
        assert!(
            err.message.contains("did you mean `inline`?"),
            "{}",
            err.message
        );
        let err = sh.err("%autoawait a b");
        assert_eq!(err.kind, ErrorKind::UsageError);
    });
}

#[test]
fn lsmagic_and_help_come_from_the_table() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let list = sh.stdout("%lsmagic");
        for m in MAGICS {
            assert!(list.contains(m.name), "{} missing from {list}", m.name);
        }
        assert!(list.contains("%%run_in_reactor"));
        let help = sh.stdout("%help");
        for m in MAGICS {
            assert!(help.contains(m.usage), "{} missing from {help}", m.usage);
        }
        assert!(help.contains("spawn(fn, ...)"));
        assert!(sh.stdout("%help %timeit").starts_with("%timeit [-n N]"));
        assert!(sh.stdout("%help gather").starts_with("gather(a, b, ...)"));
        assert_eq!(sh.err("%help nothing").kind, ErrorKind::UsageError);
    });
}

#[test]
fn an_unknown_magic_names_the_closest() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let err = sh.err("%timit x");
        assert_eq!(err.kind, ErrorKind::UsageError);
        assert!(
            err.message.contains("did you mean `%timeit`?"),
            "{}",
            err.message
        );
        let err = sh.err("%%run_in_reactr\nreturn 1");
        assert!(
            err.message.contains("did you mean `%%run_in_reactor`?"),
            "{}",
            err.message
        );
        let err = sh.err("%run_in_reactor");
        assert!(err.message.contains("is a cell magic"), "{}", err.message);
        let err = sh.err("%%lsmagic\n");
        assert!(err.message.contains("is a line magic"), "{}", err.message);
        assert_eq!(sh.out("1").as_deref(), Some("1"), "the session goes on");
    });
}

#[test]
fn run_in_reactor_binds_a_task_for_any_indentation() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let shown = sh.stdout(
            "%%run_in_reactor result\n\
             local total = 0\n\
             for i = 1, 3 do\n\
                 if i > 1 then\n\
                     total = total + i\n\
                 end\n\
             end\n\
             await(sleep(0.01))\n\
             return total",
        );
        assert!(shown.starts_with("result = <Task of In[2]"), "{shown}");
        assert_eq!(sh.out("result:wait(5)").as_deref(), Some("5"));
        assert_eq!(sh.out("total"), None, "the body's locals stay local");

        // Default name `_`.
        sh.ok("%%run_in_reactor\nreturn 'default'");
        assert_eq!(sh.out("_:wait(5)").as_deref(), Some("\"default\""));

        // A syntax error is a failure of the cell, and binds nothing.
        let err = sh.err("%%run_in_reactor broken\nreturn = 1");
        assert_eq!(err.kind, ErrorKind::SyntaxError);
        assert!(err.message.starts_with("In[7]:2:"), "{}", err.message);
        assert_eq!(sh.out("broken"), None);

        let err = sh.err("%%run_in_reactor a b\nreturn 1");
        assert_eq!(err.kind, ErrorKind::UsageError);
    });
}

#[test]
fn timeit_and_time_work_with_await() {
    watchdog(60, || {
        let mut sh = Shell::new("inline");
        let line = sh.stdout("%timeit -n 3 -r 2 await(sleep(0))");
        assert!(
            line.contains("per loop (mean ± std. dev. of 2 runs, 3 loops each)"),
            "{line}"
        );
        sh.ok("count = 0");
        sh.ok("%%timeit -n 4 -r 5\ncount = count + 1\nawait(sleep(0))");
        assert_eq!(sh.out("count").as_deref(), Some("20"));
        // Without -n it picks a loop count itself.
        let line = sh.stdout("%timeit x = 1");
        assert!(line.contains("of 7 runs"), "{line}");

        let outputs = sh.ok("%time await(sleep(0.01)) or 7");
        assert!(stdout_of(&outputs).starts_with("Wall time: "));
        assert_eq!(common::result_of(&outputs).as_deref(), Some("7"));

        assert_eq!(sh.err("%timeit -n x 1").kind, ErrorKind::UsageError);
        assert_eq!(sh.err("%timeit").kind, ErrorKind::UsageError);
        let err = sh.err("%timeit error('in timeit')");
        assert!(err.message.contains("in timeit"), "{}", err.message);
    });
}

#[test]
fn reset_removes_user_globals_and_restores_builtins() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        sh.ok("a = 1\nb = 2\nprint = nil");
        assert_eq!(sh.stdout("%reset -f"), "reset: removed 2 globals\n");
        assert_eq!(sh.out("a"), None);
        assert_eq!(sh.stdout("print('back')"), "back\n");
        assert_eq!(sh.err("%reset now").kind, ErrorKind::UsageError);
    });
}

#[test]
fn load_ext_reports_a_bad_path() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let err = sh.err("%load_ext /nonexistent/libnothing.so");
        assert!(
            err.message.contains("/nonexistent/libnothing.so"),
            "{}",
            err.message
        );
        assert_eq!(sh.err("%load_ext").kind, ErrorKind::UsageError);
        assert_eq!(sh.out("1").as_deref(), Some("1"), "the session goes on");
    });
}

#[test]
fn timeit_runs_under_each_available_runner() {
    for runner in ["tokio", "smol", "tokio-per-cell", "smol-nested"] {
        if !has(runner) {
            continue;
        }
        watchdog(60, move || {
            let mut sh = Shell::new(runner);
            let line = sh.stdout("%timeit -n 5 -r 2 await(sleep(0))");
            assert!(line.contains("5 loops each"), "{runner}: {line}");
        });
    }
}

#[test]
fn tasks_lists_background_tasks_and_cancel_stops_them() {
    common::watchdog(30, || {
        let mut sh = common::Shell::new("tokio");
        sh.ok(
            "ticks = 0\n\
             t = spawn{name = 'ticker', function() while true do ticks = ticks + 1 await(sleep(0.01)) end end}\n\
             q = spawn(function() return 1 end)\n\
             f = spawn(function() error('boom') end)\n\
             await(sleep(0.05))",
        );
        let table = sh.stdout("%tasks");
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].contains("id") && lines[0].contains("state"),
            "{table}"
        );
        let row = |id: &str| {
            lines
                .iter()
                .find(|l| l.split_whitespace().next() == Some(id))
                .unwrap_or_else(|| panic!("no task {id}: {table}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(row("1")[1..5], ["In", "[2]", "tokio", "running"], "{table}");
        assert_eq!(row("1").last(), Some(&"ticker"));
        assert_eq!(row("2")[4], "done");
        assert_eq!(row("3")[4], "failed");
        // Finished tasks stay listed for the cell after they finished, then go.
        let table = sh.stdout("%tasks");
        assert!(
            !table.lines().any(|l| l.trim_start().starts_with("2 ")),
            "{table}"
        );
        assert!(
            !table.lines().any(|l| l.trim_start().starts_with("3 ")),
            "{table}"
        );
        // One whose result was read goes at once.
        sh.ok("r = spawn(function() return 2 end) await(sleep(0.01)) r:result()");
        assert!(!sh
            .stdout("%tasks")
            .lines()
            .any(|l| l.trim_start().starts_with("4 ")));

        assert_eq!(sh.stdout("%cancel 1"), "cancelled task 1\n");
        assert!(sh
            .err("%cancel 1")
            .message
            .contains("is not running: it is cancelled"));
        let before = sh.out("ticks").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sh.out("ticks").unwrap(), before, "the ticker stopped");
        assert!(sh.err("%cancel 99").message.contains("no task 99"));
        assert!(sh
            .err("%cancel soon")
            .message
            .contains("usage: %cancel ID|all"));
        sh.ok("for i = 1, 3 do spawn(function() await(sleep(30)) end) end");
        assert_eq!(
            sh.stdout("%cancel all"),
            "cancelled task 5\ncancelled task 6\ncancelled task 7\n"
        );
    });
}

#[test]
fn switching_runners_says_what_happens_to_their_live_tasks() {
    common::watchdog(30, || {
        let mut sh = common::Shell::new("tokio");
        sh.ok(
            "a = spawn(function() await(sleep(30)) end) b = spawn(function() await(sleep(30)) end)",
        );
        let said = sh.stdout("%autoawait tokio-per-cell");
        assert!(
            said.ends_with(
                "2 tasks keep running on `tokio` (%tasks lists them, %cancel stops them)\n"
            ),
            "{said}"
        );
        sh.ok("c = spawn(function() await(sleep(30)) end)");
        let said = sh.stdout("%autoawait smol");
        assert!(
            said.ends_with(
                "1 task will pause until you come back to `tokio-per-cell` (%tasks lists them)\n"
            ),
            "{said}"
        );
        // Nothing to say when no task is alive on the runner left.
        assert_eq!(sh.stdout("%autoawait tokio").lines().count(), 1);
        sh.ok("%cancel all");
    });
}

#[test]
fn a_cell_magic_below_the_first_line_says_where_it_belongs() {
    let mut sh = common::Shell::new("inline");
    let err = sh.err("x = 1\n%%run_in_reactor");
    assert_eq!(
        err.message,
        "`%%run_in_reactor` is a cell magic: it must be on the first line of the cell, with the body below"
    );
    let err = sh.err("x = 1\n%%timeitt");
    assert!(
        err.message.contains("did you mean `%%timeit`"),
        "{}",
        err.message
    );
}
