//! The magics through the engine: each one, and its errors.

mod common;

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
