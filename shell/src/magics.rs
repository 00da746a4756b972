//! The magics: one table ([`MAGICS`]) drives dispatch, `%lsmagic` and `%help`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use autoawait_core::{CellId, RunOptions};
use mlua::{Function, MultiValue};

use crate::builtins::spawn_task;
use crate::engine::{self, Engine};
use crate::errors::lua_error;
use crate::output::{Output, Rich};
use crate::ErrorInfo;

/// Where a magic may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MagicKind {
    /// `%name args` on a line of its own.
    Line,
    /// `%%name args` on the first line of a cell, the body below.
    Cell,
    /// Either.
    Both,
}

type Handler = fn(&mut Engine, Call<'_>) -> Result<Option<Rich>, ErrorInfo>;

/// One magic: its name, how it is used, what it does, and its handler.
#[derive(Clone, Copy)]
pub struct Magic {
    /// The name typed after `%` or `%%`.
    pub name: &'static str,
    /// Line magic, cell magic, or both.
    pub kind: MagicKind,
    /// How to call it.
    pub usage: &'static str,
    /// What it does.
    pub help: &'static str,
    handler: Handler,
}

impl std::fmt::Debug for Magic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Magic")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What a handler gets.
struct Call<'a> {
    args: &'a str,
    /// The cell body, for `%%name`.
    body: Option<&'a str>,
    id: CellId,
    /// The cell's execution count, for chunk names (`In[3]:2:`).
    count: u64,
    opts: &'a RunOptions,
}

/// Every magic, in the order `%lsmagic` lists them.
pub const MAGICS: &[Magic] = &[
    Magic {
        name: "autoawait",
        kind: MagicKind::Line,
        usage: "%autoawait [on|off|RUNNER|--list]",
        help: "show or set how cells run: on/off, or the runner cells use (tokio, smol, ...); \
               --list shows every runner",
        handler: autoawait,
    },
    Magic {
        name: "load_ext",
        kind: MagicKind::Line,
        usage: "%load_ext PATH|NAME",
        help: "load a runner plugin (a shared library): its runners and cell functions appear",
        handler: load_ext,
    },
    Magic {
        name: "run_in_reactor",
        kind: MagicKind::Cell,
        usage: "%%run_in_reactor [NAME]",
        help: "run the cell body in the background on the current runner and bind its Task \
               to NAME (default `_`); `return` gives the result, NAME:wait(timeout) gets it",
        handler: run_in_reactor,
    },
    Magic {
        name: "tasks",
        kind: MagicKind::Line,
        usage: "%tasks",
        help: "list the background tasks: id, the cell that started it, runner, state \
               (running, done, failed, cancelled, dropped), age, name",
        handler: tasks,
    },
    Magic {
        name: "cancel",
        kind: MagicKind::Line,
        usage: "%cancel ID|all",
        help: "cancel a running background task (ids from %tasks), or all of them",
        handler: cancel,
    },
    Magic {
        name: "timeit",
        kind: MagicKind::Both,
        usage: "%timeit [-n N] [-r R] STATEMENT  |  %%timeit [-n N] [-r R]",
        help: "time a statement (it may await): mean and deviation over R runs of N loops",
        handler: timeit,
    },
    Magic {
        name: "time",
        kind: MagicKind::Both,
        usage: "%time STATEMENT  |  %%time",
        help: "run once and show the wall time, then the value",
        handler: time,
    },
    Magic {
        name: "lsmagic",
        kind: MagicKind::Line,
        usage: "%lsmagic",
        help: "list the magics",
        handler: lsmagic,
    },
    Magic {
        name: "help",
        kind: MagicKind::Line,
        usage: "%help [MAGIC|BUILTIN]",
        help: "help on the magics and the Lua builtins",
        handler: help,
    },
    Magic {
        name: "reset",
        kind: MagicKind::Line,
        usage: "%reset [-f]",
        help: "remove every global the cells defined and restore the builtins",
        handler: reset,
    },
];

/// The builtins, for `%help`: (name, usage, help).
pub const BUILTINS: &[(&str, &str, &str)] = &[
    ("await", "await(x)", "wait for an awaitable, a Task or a function (needs %autoawait on)"),
    ("gather", "gather(a, b, ...)", "an awaitable running all of them concurrently; await gives their values"),
    ("spawn", "spawn(fn, ...), spawn{name = s, fn, ...}", "run fn(...) in the background on the current runner: a Task with :wait([timeout]) :cancel() :done() :result(); %tasks lists them"),
    ("detach", "detach(fn, ...)", "spawn(fn, ...) for a long-lived task: its output goes to the cell running now (the latest cell in a notebook, [bg] in the REPL), not to the cell that started it"),
    ("sleep", "sleep(s)", "an awaitable that waits s seconds on the runner's timer"),
    ("timeout", "timeout(s, x)", "an awaitable: x, or a TimedOut error after s seconds (x is dropped, CPU-bound Lua too)"),
    ("tcp", "tcp.connect(addr), tcp.listen(addr)", "awaitables for TCP streams (:read([n]) :write(s) :close()) and listeners (:accept() :addr())"),
    ("http", "http.get(url [, opts]), http.post(url, body [, opts]), http.request{...}", "awaitables of a response on the runner's own sockets: .status .ok .headers .url, await(r:text()), await(r:json()), for line in r:lines(); opts: headers, body, json, timeout, redirects, ca"),
    ("json", "json.encode(v [, {indent = n}]), json.decode(s)", "JSON to and from Lua values; json.null is JSON's null, json.array(t) marks an (empty) array"),
    ("display", "display(v, ...)", "show values now (rich values as MIME bundles in a notebook)"),
    (
        "display_handle",
        "display_handle([v]) -> h",
        "show v under a display id; h:update(v) replaces it in place in a notebook",
    ),
    ("markdown", "markdown(s)", "a rich markdown value"),
    ("html", "html(s)", "a rich HTML value"),
    ("print", "print(...)", "print, attributed to the cell (or task's cell) that prints"),
    ("eprint", "eprint(...)", "print to standard error"),
    ("run_cell", "run_cell(src)", "run src as a nested cell, synchronously (needs a re-entrant runner such as tokio-nested or inline)"),
];

/// Finds a magic by name.
pub(crate) fn find(name: &str) -> Option<&'static Magic> {
    MAGICS.iter().find(|m| m.name == name)
}

fn unknown(name: &str, prefix: &str) -> ErrorInfo {
    let closest = autoawait_core::closest_name(name, MAGICS.iter().map(|m| m.name));
    let mut message = format!("unknown magic `{prefix}{name}`");
    if let Some(m) = closest {
        // The way it was typed, if the magic can be used that way.
        let kind = find(m).map_or(MagicKind::Line, |m| m.kind);
        let p = match (prefix, kind) {
            ("%%", MagicKind::Cell | MagicKind::Both) | (_, MagicKind::Cell) => "%%",
            _ => "%",
        };
        let _ = write!(message, "; did you mean `{p}{m}`?");
    }
    message.push_str(" (%lsmagic lists every magic)");
    ErrorInfo::usage(message)
}

pub(crate) fn run_line_magic(
    engine: &mut Engine,
    name: &str,
    args: &str,
    id: CellId,
    count: u64,
    opts: &RunOptions,
) -> Result<Option<Rich>, ErrorInfo> {
    if let Some(cell_magic) = name.strip_prefix('%') {
        return Err(ErrorInfo::usage(match find(cell_magic) {
            Some(_) => format!(
                "`%%{cell_magic}` is a cell magic: it must be on the first line of the cell, \
                 with the body below"
            ),
            None => unknown(cell_magic, "%%").message,
        }));
    }
    let magic = find(name).ok_or_else(|| unknown(name, "%"))?;
    if magic.kind == MagicKind::Cell {
        return Err(ErrorInfo::usage(format!(
            "%%{name} is a cell magic: put `%%{name}` on the first line of a cell, with \
                 the body below"
        )));
    }
    (magic.handler)(
        engine,
        Call {
            args,
            body: None,
            id,
            count,
            opts,
        },
    )
}

pub(crate) fn run_cell_magic(
    engine: &mut Engine,
    name: &str,
    args: &str,
    body: &str,
    id: CellId,
    count: u64,
    opts: &RunOptions,
) -> Result<Option<Rich>, ErrorInfo> {
    let magic = find(name).ok_or_else(|| unknown(name, "%%"))?;
    if magic.kind == MagicKind::Line {
        return Err(ErrorInfo::usage(format!(
            "%{name} is a line magic, not a cell magic: write `%{name} ...`"
        )));
    }
    (magic.handler)(
        engine,
        Call {
            args,
            body: Some(body),
            id,
            count,
            opts,
        },
    )
}

fn say(engine: &Engine, id: CellId, text: impl Into<String>) {
    let mut text = text.into();
    text.push('\n');
    engine.shared().sink.emit(id, Output::Stdout(text));
}

fn autoawait(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    let before = engine.selector().name().to_owned();
    let mut text = engine
        .selector()
        .handle(call.args)
        .map_err(|e| ErrorInfo::from(&e))?;
    // Leaving a runner with tasks still alive on it: say what becomes of them.
    if engine.selector().name() != before {
        if let Some(note) = engine.shared().tasks.on_leaving(&before) {
            text = format!("{text}\n{note}");
        }
    }
    say(engine, call.id, text);
    Ok(None)
}

fn tasks(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    if !call.args.is_empty() {
        return Err(ErrorInfo::usage("usage: %tasks (it takes no arguments)"));
    }
    say(engine, call.id, engine.shared().tasks.table());
    Ok(None)
}

fn cancel(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    let selected = engine.selector().name().to_owned();
    let text = engine
        .shared()
        .tasks
        .cancel(call.args.trim(), &selected)
        .map_err(ErrorInfo::usage)?;
    say(engine, call.id, text);
    Ok(None)
}

fn load_ext(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    if call.args.is_empty() {
        return Err(ErrorInfo::usage("usage: %load_ext PATH|NAME"));
    }
    let text = crate::plugins::load(engine, call.args)?;
    say(engine, call.id, text);
    Ok(None)
}

fn is_lua_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn run_in_reactor(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    let mut words = call.args.split_whitespace();
    let name = words.next().unwrap_or("_");
    if let Some(extra) = words.next() {
        return Err(ErrorInfo::usage(format!(
            "%%run_in_reactor takes one name, got an extra argument `{extra}`"
        )));
    }
    if !is_lua_name(name) {
        return Err(ErrorInfo::usage(format!(
            "%%run_in_reactor binds a Lua name, and `{name}` is not one"
        )));
    }
    let body = call.body.unwrap_or("");
    // The body is a function body: `return` gives the result, locals stay local. A
    // leading blank line keeps error line numbers those of the cell.
    let func = engine
        .lua()
        .load(format!("\n{body}"))
        .set_name(crate::cells::chunk_name(call.count))
        .into_function()
        .map_err(|e| lua_error(&e))?;
    let runner = engine
        .selector()
        .runner()
        .map_err(|e| ErrorInfo::from(&e))?;
    let shared = engine.shared().clone();
    let task = spawn_task(
        &shared,
        &runner,
        func,
        MultiValue::new(),
        call.id,
        Some(name.to_owned()),
    )
    .map_err(|e| ErrorInfo::from(&e))?;
    let ud = engine
        .lua()
        .create_userdata(task)
        .map_err(|e| lua_error(&e))?;
    let shown = mlua::Value::UserData(ud.clone())
        .to_string()
        .unwrap_or_default();
    engine
        .lua()
        .globals()
        .set(name, ud)
        .map_err(|e| lua_error(&e))?;
    say(engine, call.id, format!("{name} = {shown}"));
    Ok(None)
}

/// Parses `[-n N] [-r R] rest`.
fn timing_options(args: &str) -> Result<(Option<u64>, Option<u64>, &str), ErrorInfo> {
    let (mut number, mut repeat) = (None, None);
    let mut rest = args.trim_start();
    loop {
        let flag = if rest.starts_with("-n") {
            &mut number
        } else if rest.starts_with("-r") {
            &mut repeat
        } else {
            break;
        };
        let after = rest[2..].trim_start();
        let (value, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        let n: u64 = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            ErrorInfo::usage(format!(
                "{} takes a positive number, got `{value}`",
                &rest[..2]
            ))
        })?;
        *flag = Some(n);
        rest = tail.trim_start();
    }
    Ok((number, repeat, rest))
}

/// Formats a duration the way IPython's %timeit does: three significant digits.
pub(crate) fn format_time(secs: f64) -> String {
    let (value, unit) = if secs >= 1.0 {
        (secs, "s")
    } else if secs >= 1e-3 {
        (secs * 1e3, "ms")
    } else if secs >= 1e-6 {
        (secs * 1e6, "µs")
    } else {
        (secs * 1e9, "ns")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

/// Compiles the statement to time (a cell of its own number).
fn timed_function(engine: &Engine, source: &str, count: u64) -> Result<Function, ErrorInfo> {
    if source.trim().is_empty() {
        return Err(ErrorInfo::usage("nothing to time: give a statement"));
    }
    crate::cells::compile(engine.lua(), source, count).map_err(|e| lua_error(&e))
}

fn timeit(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    let (number, repeat, rest) = timing_options(call.args)?;
    let source = call.body.unwrap_or(rest);
    let func = timed_function(engine, source, call.count)?;
    let repeat = repeat.unwrap_or(7);
    // The whole measurement is one cell future, so the statement may await.
    let driver = engine
        .lua()
        .create_async_function(move |_, ()| {
            let func = func.clone();
            async move {
                let mut loops = number.unwrap_or(1);
                if number.is_none() {
                    // IPython's autorange: 1, 2, 5, 10, 20, 50, ... until 0.2 s.
                    let mut steps = [1u64, 2, 5].into_iter().cycle();
                    let mut scale = 1;
                    loop {
                        let step = steps.next().unwrap_or(1);
                        loops = step * scale;
                        let start = Instant::now();
                        for _ in 0..loops {
                            func.call_async::<()>(()).await?;
                        }
                        if start.elapsed() >= Duration::from_millis(200) || loops >= 10_000_000 {
                            break;
                        }
                        if step == 5 {
                            scale *= 10;
                        }
                    }
                }
                let mut times = Vec::with_capacity(repeat as usize);
                for _ in 0..repeat {
                    let start = Instant::now();
                    for _ in 0..loops {
                        func.call_async::<()>(()).await?;
                    }
                    times.push(start.elapsed().as_secs_f64() / loops as f64);
                }
                Ok((loops, times))
            }
        })
        .map_err(|e| lua_error(&e))?;
    let values = engine.execute(driver, call.id, call.opts)?;
    let loops = values.front().and_then(|v| v.as_integer()).unwrap_or(1);
    let times: Vec<f64> = match values.get(1) {
        Some(mlua::Value::Table(t)) => t.sequence_values::<f64>().filter_map(Result::ok).collect(),
        _ => Vec::new(),
    };
    let n = times.len().max(1) as f64;
    let mean = times.iter().sum::<f64>() / n;
    let std = (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n).sqrt();
    let runs = if times.len() == 1 { "run" } else { "runs" };
    let each = if loops == 1 { "loop" } else { "loops" };
    say(
        engine,
        call.id,
        format!(
            "{} ± {} per loop (mean ± std. dev. of {} {runs}, {loops} {each} each)",
            format_time(mean),
            format_time(std),
            times.len()
        ),
    );
    Ok(None)
}

fn time(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    let source = call.body.unwrap_or(call.args);
    let func = timed_function(engine, source, call.count)?;
    let start = Instant::now();
    let result = engine.execute(func, call.id, call.opts);
    say(
        engine,
        call.id,
        format!("Wall time: {}", format_time(start.elapsed().as_secs_f64())),
    );
    Ok(engine::to_rich(&result?))
}

fn lsmagic(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    let line: Vec<String> = MAGICS
        .iter()
        .filter(|m| m.kind != MagicKind::Cell)
        .map(|m| format!("%{}", m.name))
        .collect();
    let cell: Vec<String> = MAGICS
        .iter()
        .filter(|m| m.kind != MagicKind::Line)
        .map(|m| format!("%%{}", m.name))
        .collect();
    say(
        engine,
        call.id,
        format!(
            "Available line magics:\n{}\n\nAvailable cell magics:\n{}\n\n%help NAME tells more.",
            line.join("  "),
            cell.join("  ")
        ),
    );
    Ok(None)
}

fn help(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    let topic = call.args.trim().trim_start_matches('%');
    let text = if topic.is_empty() {
        let mut text = String::from("Magics:\n");
        for m in MAGICS {
            let _ = writeln!(text, "  {:<42} {}", m.usage, m.help);
        }
        text.push_str("\nLua builtins:\n");
        for (_, usage, help) in BUILTINS {
            let _ = writeln!(text, "  {usage:<42} {help}");
        }
        text.push_str("\nCells are Lua 5.4; globals persist, the last expression is shown.");
        text
    } else if let Some(m) = find(topic) {
        format!("{}\n  {}", m.usage, m.help)
    } else if let Some((_, usage, help)) = BUILTINS.iter().find(|(n, _, _)| *n == topic) {
        format!("{usage}\n  {help}")
    } else {
        return Err(ErrorInfo::usage(format!(
            "no help on `{topic}`: %help lists the magics and builtins"
        )));
    };
    say(engine, call.id, text);
    Ok(None)
}

fn reset(engine: &mut Engine, call: Call<'_>) -> Result<Option<Rich>, ErrorInfo> {
    if !matches!(call.args, "" | "-f") {
        return Err(ErrorInfo::usage("usage: %reset [-f]"));
    }
    let removed = engine.reset()?;
    say(engine, call.id, format!("reset: removed {removed} globals"));
    Ok(None)
}
