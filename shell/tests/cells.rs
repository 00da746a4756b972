//! Lua cells through the engine (no terminal): values, errors, print, persistence.

mod common;

use autoawait_core::CellId;
use autoawait_shell::{parse_percent, Completeness, ErrorKind, Output};
use common::{result_of, watchdog, Shell};

#[test]
fn globals_persist_and_the_final_expression_is_shown() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        assert_eq!(sh.out("x = 40"), None);
        assert_eq!(sh.out("x + 2").as_deref(), Some("42"));
        assert_eq!(sh.out("function add(a, b) return a + b end"), None);
        assert_eq!(sh.out("add(x, 1)").as_deref(), Some("41"));
        // Statements, then an expression: the expression is shown (IPython's rule).
        assert_eq!(sh.out("y = 1\ny + x").as_deref(), Some("41"));
        assert_eq!(sh.out("local z = 2\nprint(z)\nz * 2").as_deref(), Some("4"));
        // Locals of a cell do not persist; globals do.
        assert_eq!(sh.out("z").as_deref(), None);
        assert_eq!(sh.out("nil"), None);
        assert_eq!(sh.out("1, 'two', 3.0").as_deref(), Some("1, \"two\", 3.0"));
        assert_eq!(
            sh.out("{1, 2, name = 'lua'}").as_deref(),
            Some("{ 1, 2, name = \"lua\" }")
        );
        assert_eq!(sh.out("return 5").as_deref(), Some("5"));
    });
}

#[test]
fn outputs_carry_the_execution_count() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let (report, outputs) = sh.run("6 * 7");
        assert_eq!(report.count, 2, "the %autoawait cell was In[1]");
        assert_eq!(
            outputs,
            vec![(
                CellId::new(2),
                Output::Result {
                    count: 2,
                    value: autoawait_shell::Rich::text("42")
                }
            )]
        );
        // A blank cell takes no number.
        assert_eq!(sh.run("  \n").0.count, 0);
        assert_eq!(sh.run("1").0.count, 3);
    });
}

#[test]
fn errors_name_the_cell_and_line_with_a_traceback() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        sh.ok("function f()\n  error('boom')\nend");
        let err = sh.err("x = 1\nf()");
        assert_eq!(err.kind, ErrorKind::LuaError);
        assert_eq!(err.message, "In[2]:2: boom");
        // As IPython shows it: each frame's cell, line and the lines around it,
        // the failing one marked, the machinery's frames left out.
        assert_eq!(
            err.traceback,
            [
                "  In[2], line 2, in function 'f'",
                "        1 | function f()",
                "  ----> 2 |   error('boom')",
                "        3 | end",
                "  In[3], line 2, in main chunk",
                "        1 | x = 1",
                "  ----> 2 | f()",
            ]
        );
        // The session goes on.
        assert_eq!(sh.out("x").as_deref(), Some("1"));
    });
}

#[test]
fn a_malformed_cell_is_a_syntax_error_and_the_session_goes_on() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let err = sh.err("x = = 1");
        assert_eq!(err.kind, ErrorKind::SyntaxError);
        assert!(err.message.starts_with("In[2]:1:"), "{}", err.message);
        assert_eq!(sh.out("1 + 1").as_deref(), Some("2"));
    });
}

#[test]
fn print_is_captured_and_attributed_to_its_cell() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let outputs = sh.ok("print('a', 1, nil, true)\nio.write('b', 2, '\\n')\neprint('c')");
        assert_eq!(
            outputs,
            vec![
                (CellId::new(2), Output::Stdout("a\t1\tnil\ttrue\n".into())),
                (CellId::new(2), Output::Stdout("b2\n".into())),
                (CellId::new(2), Output::Stderr("c\n".into())),
            ]
        );
    });
}

#[test]
fn rich_values_are_mime_bundles() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let outputs = sh.ok("markdown('**I HAVE AWAKENED!**')");
        match &outputs[..] {
            [(_, Output::Result { value, .. })] => {
                assert_eq!(value.plain, "**I HAVE AWAKENED!**");
                assert_eq!(value.get("text/markdown"), Some("**I HAVE AWAKENED!**"));
            }
            other => panic!("{other:?}"),
        }
        let outputs = sh.ok("display(html('<b>hi</b>'), {1, 2})");
        match &outputs[..] {
            [(_, Output::Display { value: a, id: None }), (_, Output::Display { value: b, id: None })] =>
            {
                assert_eq!(a.get("text/html"), Some("<b>hi</b>"));
                assert_eq!(b.plain, "{ 1, 2 }");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sh.out("tostring(markdown('m'))").as_deref(), Some("\"m\""));
    });
}

#[test]
fn a_display_handle_updates_what_it_showed() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let outputs = sh.ok("h = display_handle(markdown('**1**'))");
        let id = match &outputs[..] {
            [(
                _,
                Output::Display {
                    value,
                    id: Some(id),
                },
            )] => {
                assert_eq!(value.get("text/markdown"), Some("**1**"));
                id.clone()
            }
            other => panic!("{other:?}"),
        };
        let outputs = sh.ok("h:update(2); h:display(3); return h.id");
        match &outputs[..] {
            [(_, Output::UpdateDisplay { id: a, value: two }), (
                _,
                Output::Display {
                    value: three,
                    id: Some(b),
                },
            ), (_, Output::Result { value: shown, .. })] => {
                assert_eq!((a, b), (&id, &id));
                assert_eq!((two.plain.as_str(), three.plain.as_str()), ("2", "3"));
                assert_eq!(shown.plain, format!("{id:?}"));
            }
            other => panic!("{other:?}"),
        }
        let other = sh.out("display_handle().id").unwrap();
        assert_ne!(other, format!("{id:?}"), "each handle has an id of its own");
    });
}

#[test]
fn completeness_follows_the_lua_parser() {
    watchdog(20, || {
        let sh = Shell::new("inline");
        let c = |s: &str| sh.engine.is_complete(s);
        assert_eq!(c("x = 1"), Completeness::Complete);
        assert_eq!(c("function f()"), Completeness::Incomplete);
        assert_eq!(c("for i = 1, 3 do\n  print(i)"), Completeness::Incomplete);
        assert_eq!(c("s = [[long"), Completeness::Incomplete);
        assert_eq!(
            c("x = = 1"),
            Completeness::Invalid,
            "no more lines can make it valid"
        );
        assert_eq!(c("%autoawait tokio"), Completeness::Complete);
        assert_eq!(c("%%timeit"), Completeness::Incomplete);
        assert_eq!(c("%%timeit\nx = 1"), Completeness::Incomplete);
        assert_eq!(c("%%timeit\nx = 1\n"), Completeness::Complete);
    });
}

#[test]
fn percent_format_splits_cells() {
    let text = "x = 1\n-- %%\n\ny = 2\n\n\n-- %% [markdown]\n-- # Title\n-- %% named cell\nx + y\n";
    assert_eq!(parse_percent(text), ["x = 1", "y = 2", "x + y"]);
    assert!(parse_percent("").is_empty());
}

#[test]
fn line_magics_and_lua_mix_in_one_cell() {
    watchdog(20, || {
        let mut sh = Shell::new("inline");
        let outputs = sh.ok("x = 1\n%autoawait off\ny = x + 1\ny");
        assert!(common::stdout_of(&outputs).contains("autoawait is `off`"));
        assert_eq!(result_of(&outputs).as_deref(), Some("2"));
        // Line numbers of errors stay those of the cell.
        let err = sh.err("%autoawait on\n\nerror('late')");
        assert_eq!(err.message, "In[3]:3: late");
    });
}

#[test]
fn the_built_in_runners_are_linked_into_the_engine() {
    // The tests that depend on tokio and smol skip without them: make sure they are here.
    assert!(common::has("tokio") && common::has("smol"));
}

#[test]
fn an_engine_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<autoawait_shell::Engine>();
    assert_send::<autoawait_shell::Interrupter>();
}
