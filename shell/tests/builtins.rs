//! The async builtins through the engine: await, gather, spawn/Task, sleep, timeout,
//! run_cell, backend modules, TCP, and output of tasks finding their cell.

mod common;

use std::time::Duration;

use autoawait_core::CellId;
use autoawait_shell::{ErrorKind, Output};
use common::{has, stdout_of, watchdog, Shell};

#[test]
fn await_sleep_and_functions_that_await_work_wherever_they_are_called() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        assert_eq!(
            sh.out("await(sleep(0.01))\nreturn 'slept'").as_deref(),
            Some("\"slept\"")
        );
        sh.ok("function twice(x) await(sleep(0.001)); return 2 * x end");
        assert_eq!(sh.out("twice(21)").as_deref(), Some("42"));
        assert_eq!(
            sh.out("await(function() return 1, 2 end)").as_deref(),
            Some("1, 2")
        );
        let err = sh.err("await(5)");
        assert!(
            err.message.contains("await() takes an awaitable"),
            "{}",
            err.message
        );
        let err = sh.err("s = sleep(0)\nawait(s)\nawait(s)");
        assert!(err.message.contains("already awaited"), "{}", err.message);
    });
}

#[test]
fn with_autoawait_off_await_says_to_turn_it_on() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        sh.ok("%autoawait off");
        let err = sh.err("await(sleep(0))");
        assert!(err.message.contains("`%autoawait on`"), "{}", err.message);
        // Plain cells still run, and a task can still be waited for.
        assert_eq!(
            sh.out("t = spawn(function() return 3 end)\nt:wait(5)")
                .as_deref(),
            Some("3")
        );
        sh.ok("%autoawait on");
        assert_eq!(sh.out("await(sleep(0)) or 'on'").as_deref(), Some("\"on\""));
    });
}

#[test]
fn gather_runs_concurrently() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let outputs = sh.ok("a, b = await(gather(\n\
               function() await(sleep(0.2)); print('slow'); return 1 end,\n\
               function() await(sleep(0.01)); print('fast'); return 2 end))\n\
             a + b");
        assert_eq!(stdout_of(&outputs), "fast\nslow\n");
        assert_eq!(common::result_of(&outputs).as_deref(), Some("3"));
    });
}

#[test]
fn timeout_drops_slow_work_and_passes_fast_work_through() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let err = sh.err("await(timeout(0.01, sleep(30)))");
        assert!(
            err.message.contains("not finished within 0.01 s"),
            "{}",
            err.message
        );
        assert_eq!(
            sh.out("await(timeout(5, function() return 'fast' end))")
                .as_deref(),
            Some("\"fast\"")
        );
    });
}

#[test]
fn tasks_have_eventual_result_semantics() {
    watchdog(30, || {
        let mut sh = Shell::new("inline");
        sh.ok("t = spawn(function(a, b) await(sleep(0.05)); return a + b end, 20, 22)");
        assert_eq!(sh.out("t:done()").as_deref(), Some("false"));
        let err = sh.err("t:result()");
        assert!(err.message.contains("still running"), "{}", err.message);
        assert_eq!(sh.out("t:wait(10)").as_deref(), Some("42"));
        // Every later call sees the same result.
        assert_eq!(sh.out("t:wait()").as_deref(), Some("42"));
        assert_eq!(sh.out("t:result()").as_deref(), Some("42"));
        assert_eq!(sh.out("await(t)").as_deref(), Some("42"));
        assert_eq!(sh.out("t:done()").as_deref(), Some("true"));

        sh.ok("slow = spawn(function() await(sleep(30)) end)");
        let err = sh.err("slow:wait(0.01)");
        assert_eq!(err.kind, ErrorKind::NotReady);
        sh.ok("slow:cancel()");
        let err = sh.err("slow:wait(5)");
        assert_eq!(err.kind, ErrorKind::Cancelled);

        sh.ok("bad = spawn(function() error('task failed') end)");
        let err = sh.err("bad:wait(5)");
        assert!(err.message.contains("task failed"), "{}", err.message);
    });
}

#[test]
fn an_unobserved_task_error_is_reported_on_its_cell() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        sh.ok("spawn(function() error('lost') end)");
        let outputs = sh.ok("await(sleep(0.1)); collectgarbage(); collectgarbage()");
        let reported = outputs.iter().find_map(|(cell, o)| match o {
            Output::Error(e) => Some((*cell, e.message.clone())),
            _ => None,
        });
        let (cell, message) = reported.expect("the lost error is reported");
        assert_eq!(cell, CellId::new(2));
        assert!(
            message.contains("unhandled error in a task of In[2]"),
            "{message}"
        );
        assert!(message.contains("lost"), "{message}");
    });
}

#[test]
fn task_output_is_attributed_to_the_cell_that_spawned_it() {
    watchdog(30, || {
        let mut sh = Shell::new("inline");
        sh.ok("spawn(function() await(sleep(0.1)); print('late') end)\nprint('now')");
        // The task prints while cell 3 runs; it is still cell 2's output.
        let outputs = sh.ok("await(sleep(0.5)); print('cell 3')");
        let late = outputs
            .iter()
            .find(|(_, o)| *o == Output::Stdout("late\n".into()))
            .expect("the task printed during cell 3");
        assert_eq!(late.0, CellId::new(2));
        let own = outputs
            .iter()
            .find(|(_, o)| *o == Output::Stdout("cell 3\n".into()))
            .unwrap();
        assert_eq!(own.0, CellId::new(3));
    });
}

#[test]
fn run_cell_nests_under_a_nested_runner() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let outputs = sh.ok("v = run_cell('await(sleep(0.001)); return 40 + 2')\nv + 1");
        let results: Vec<_> = outputs
            .iter()
            .filter_map(|(cell, o)| match o {
                Output::Result { count, value } => Some((*cell, *count, value.plain.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            results,
            vec![
                (CellId::new(3), 3, "42".into()),
                (CellId::new(2), 2, "43".into())
            ]
        );
        let err = sh.err("run_cell('error(\"inner\")')");
        assert!(
            err.message.contains("in the nested cell In[5]"),
            "{}",
            err.message
        );
    });
}

#[test]
fn run_cell_is_would_deadlock_under_a_threaded_runner() {
    if !has("tokio") {
        return;
    }
    watchdog(20, || {
        let mut sh = Shell::new("tokio");
        let err = sh.err("run_cell('1 + 1')");
        assert_eq!(err.kind, ErrorKind::WouldDeadlock);
        assert!(err.message.contains("tokio-nested"), "{}", err.message);
        sh.ok("%autoawait tokio-nested");
        assert_eq!(
            sh.out("run_cell('await(sleep(0.001)); return 1')")
                .as_deref(),
            Some("1")
        );
    });
}

#[test]
fn backend_modules_name_the_runner_to_select() {
    if !has("tokio") || !has("smol") {
        return;
    }
    watchdog(20, || {
        let mut sh = Shell::new("smol");
        let err = sh.err("await(tokio.sleep(0.01))");
        assert_eq!(err.kind, ErrorKind::WrongRuntime);
        assert!(err.message.contains("%autoawait tokio"), "{}", err.message);
        assert_eq!(
            sh.out("await(smol.sleep(0.001)) or 'smol'").as_deref(),
            Some("\"smol\"")
        );
        sh.ok("%autoawait tokio");
        assert_eq!(
            sh.out("await(tokio.sleep(0.001)) or 'tokio'").as_deref(),
            Some("\"tokio\"")
        );
        // An awaitable made under tokio, awaited under smol: an error, not a panic.
        sh.ok("s = sleep(0.001)");
        sh.ok("%autoawait smol");
        let err = sh.err("await(s)");
        assert_eq!(err.kind, ErrorKind::WrongRuntime);
        sh.ok("%autoawait inline");
        let err = sh.err("tokio.sleep(1)");
        assert_eq!(err.kind, ErrorKind::WrongRuntime);
    });
}

#[test]
fn tcp_echo_through_the_runner() {
    for runner in ["tokio", "smol"] {
        if !has(runner) {
            continue;
        }
        watchdog(20, move || {
            let mut sh = Shell::new(runner);
            let out = sh.out(
                "l = await(tcp.listen('127.0.0.1:0'))\n\
                 server = spawn(function()\n\
                   local c = await(l:accept())\n\
                   local data = await(c:read())\n\
                   await(c:write('echo: ' .. data))\n\
                   c:close()\n\
                 end)\n\
                 c = await(tcp.connect(l:addr()))\n\
                 await(c:write('hello'))\n\
                 await(c:read())",
            );
            assert_eq!(out.as_deref(), Some("\"echo: hello\""), "under {runner}");
            assert_eq!(sh.out("await(c:read())").as_deref(), None, "EOF is nil");
        });
    }
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let err = sh.err("await(tcp.connect('127.0.0.1:1'))");
        assert!(
            err.message.contains("no reactor for sockets"),
            "{}",
            err.message
        );
    });
}

#[test]
fn background_tasks_follow_the_runner_strategy() {
    if !has("tokio") || !has("smol") {
        return;
    }
    watchdog(30, || {
        // threaded: the ticker runs while cells of another runner run.
        let mut sh = Shell::new("tokio");
        sh.ok(
            "n = 0\nticker = spawn(function() while true do await(sleep(0.01)); n = n + 1 end end)",
        );
        sh.ok("%autoawait smol");
        sh.ok("before = n");
        sh.ok("await(sleep(0.3))");
        let ran: i64 = sh.out("n - before").unwrap().parse().unwrap();
        assert!(ran > 0, "a threaded runner's task keeps running");
        sh.ok("ticker:cancel()");

        // per-cell: the ticker pauses while no cell of its runner runs.
        let mut sh = Shell::new("tokio-per-cell");
        sh.ok(
            "n = 0\nticker = spawn(function() while true do await(sleep(0.01)); n = n + 1 end end)",
        );
        sh.ok("await(sleep(0.05))");
        sh.ok("%autoawait smol");
        sh.ok("before = n");
        sh.ok("await(sleep(0.3))");
        assert_eq!(
            sh.out("n - before").as_deref(),
            Some("0"),
            "paused between cells"
        );
        sh.ok("%autoawait tokio-per-cell");
        sh.ok("await(sleep(0.2))");
        let ran: i64 = sh.out("n - before").unwrap().parse().unwrap();
        assert!(ran > 0, "it resumes in the next cell of its runner");
        sh.ok("ticker:cancel()");

        // fresh: the task ends with its cell.
        let mut sh = Shell::new("tokio-fresh");
        sh.ok("t = spawn(function() await(sleep(10)) end)");
        let err = sh.err("t:wait(5)");
        assert_eq!(err.kind, ErrorKind::TaskDropped);
    });
}

#[test]
fn an_interrupt_cancels_the_running_cell_and_the_next_one_works() {
    for runner in ["inline", "tokio"] {
        if !has(runner) {
            continue;
        }
        watchdog(30, move || {
            let mut sh = Shell::new(runner);
            let interrupter = sh.engine.interrupter();
            // A pcall in the loop does not swallow the interrupt.
            let swallowing = "while true do pcall(function() for i = 1, 1e5 do end end) end";
            for cell in ["await(sleep(30))", "while true do end", swallowing] {
                let trigger = interrupter.clone();
                let t = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    trigger.interrupt();
                });
                let err = sh.err(cell);
                assert_eq!(
                    err.kind,
                    ErrorKind::Cancelled,
                    "{cell} under {runner}: {err}"
                );
                t.join().unwrap();
                assert_eq!(sh.out("1 + 1").as_deref(), Some("2"));
            }
        });
    }
}

#[test]
fn a_task_awaited_from_several_places_wakes_them_all() {
    watchdog(20, || {
        let mut sh = Shell::new(if has("tokio") { "tokio" } else { "inline" });
        sh.ok("t = spawn(function() await(sleep(0.1)); return 5 end)");
        let out = sh.out(
            "a = spawn(function() return await(t) end)\n\
             b = spawn(function() return await(t) end)\n\
             await(t) + a:wait(5) + b:wait(5)",
        );
        assert_eq!(out.as_deref(), Some("15"));
    });
}

#[test]
fn the_sync_runner_polls_once_like_ipython() {
    watchdog(20, || {
        let mut sh = Shell::new("sync");
        assert_eq!(sh.out("1 + 1").as_deref(), Some("2"));
        // sleep(0) yields to the loop once, as asyncio.sleep(0): `sync` has no loop.
        let err = sh.err("await(sleep(0))");
        assert_eq!(err.kind, ErrorKind::Unsupported);
        assert!(err.message.contains("needs a real loop"), "{}", err.message);
        assert_eq!(sh.out("'next'").as_deref(), Some("\"next\""));
    });
}

#[test]
fn a_detached_task_prints_where_the_user_is_not_under_its_cell() {
    watchdog(20, || {
        let mut sh = Shell::new(if has("tokio") { "tokio" } else { "inline" });
        let started = sh.ok("print('start')\n\
             detach(function() await(sleep(0.2)); print('detached') end)\n\
             spawn(function() await(sleep(0.2)); print('attached') end)");
        let cell_a = started[0].0;
        let later = sh.ok("await(sleep(0.6))");
        let line = |text: &str| {
            later
                .iter()
                .find(|(_, o)| matches!(o, Output::Stdout(s) if s.contains(text)))
                .map(|(cell, _)| *cell)
                .unwrap_or_else(|| panic!("no `{text}` in {later:?}"))
        };
        // A spawned task keeps its cell; a detached one belongs to no cell.
        assert_eq!(line("attached"), cell_a);
        let detached = line("detached");
        assert_ne!(detached, cell_a);
        assert!(detached.get() >= 1 << 32, "{detached:?}");
    });
}

#[test]
fn timeout_stops_cpu_bound_lua_within_a_second_and_the_next_cell_works() {
    for runner in ["inline", "tokio", "smol"] {
        if !has(runner) {
            continue;
        }
        watchdog(30, move || {
            let mut sh = Shell::new(runner);
            for body in [
                "local i = 0 while true do i = i + 1 end",
                // pcall cannot swallow the deadline.
                "while true do pcall(function() for j = 1, 1e5 do end end) end",
            ] {
                let started = std::time::Instant::now();
                let err = sh.err(&format!("await(timeout(0.3, function() {body} end))"));
                let took = started.elapsed();
                assert_eq!(err.kind, ErrorKind::TimedOut, "{runner}: {err}");
                assert!(err.message.contains("not finished within 0.3 s"), "{err}");
                assert!(took < Duration::from_secs(1), "{runner}: took {took:?}");
                assert_eq!(sh.out("1 + 1").as_deref(), Some("2"));
            }
            // Caught, it is a value; the timeouts around it are unaffected.
            assert_eq!(
                sh.stdout(
                    "ok, e = pcall(await, timeout(0.1, function() while true do end end))\n\
                     print(ok, tostring(e):match('not finished within 0.1 s') ~= nil)\n\
                     print(await(timeout(5, function() return 7 end)))"
                ),
                "false\ttrue\n7\n"
            );
        });
    }
}
