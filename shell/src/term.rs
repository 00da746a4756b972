//! The terminal front ends: the REPL ([`repl`]) and the cell-file runner
//! ([`run_file`]), with a [`Sink`] that prints late output of finished cells as
//! `[In 3] ...` above the prompt.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoawait_core::{CellId, Registry};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, ExternalPrinter, Helper};

use crate::{Completeness, Engine, ErrorInfo, ErrorKind, Output, Sink};

type Printer = Box<dyn ExternalPrinter + Send>;

/// Prints outputs on a terminal: the running cell's plainly, other cells' (late
/// output of background tasks) tagged `[In n]`, above the prompt while one is shown.
pub struct TermSink {
    running: AtomicU64,
    /// The prompt while one is shown.
    prompt: Mutex<Option<String>>,
    printer: Mutex<Option<Printer>>,
    /// Set at exit: runners shutting down drop tasks, which is no news.
    closed: AtomicBool,
    /// Serialises writes so that lines of two threads never interleave.
    out: Mutex<()>,
    /// Errors in colour (stdout is a colour terminal).
    colour: bool,
}

impl std::fmt::Debug for TermSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TermSink")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Default for TermSink {
    fn default() -> Self {
        TermSink {
            running: AtomicU64::new(0),
            prompt: Mutex::new(None),
            printer: Mutex::new(None),
            closed: AtomicBool::new(false),
            out: Mutex::new(()),
            colour: colours(),
        }
    }
}

/// Renders an output as terminal text (ending with a newline unless it is stream text).
pub fn render(output: &Output) -> String {
    match output {
        Output::Stdout(text) | Output::Stderr(text) => text.clone(),
        Output::Result { count, value } => format!("Out[{count}]: {}\n", value.plain),
        Output::Display { value, .. } => format!("{}\n", value.plain),
        // A terminal cannot change what it printed: show the new value.
        Output::UpdateDisplay { value, .. } => format!("{}\n", value.plain),
        Output::Error(err) => format!("{}\n", render_error(err)),
    }
}

fn render_error(err: &ErrorInfo) -> String {
    err.to_string()
}

/// [`render`], with an error's name and failing lines in colour (for a terminal).
fn render_coloured(output: &Output) -> String {
    let Output::Error(err) = output else {
        return render(output);
    };
    let mut text = format!("\x1b[1;31m{}\x1b[0m: {}\n", err.kind, err.message);
    for line in &err.traceback {
        if line.trim_start().starts_with("---->") {
            text.push_str(&format!("\x1b[31m{line}\x1b[0m\n"));
        } else if line.trim_start().starts_with("In[") {
            text.push_str(&format!("\x1b[32m{line}\x1b[0m\n"));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Whether stdout takes colours: a terminal that is not dumb, and no `NO_COLOR`.
fn colours() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

impl TermSink {
    fn set_printer(&self, printer: Option<Printer>) {
        *self.printer.lock().unwrap_or_else(|e| e.into_inner()) = printer;
    }

    fn set_prompt(&self, prompt: Option<&str>) {
        *self.prompt.lock().unwrap_or_else(|e| e.into_inner()) = prompt.map(str::to_owned);
    }

    fn prompt_shown(&self) -> bool {
        self.prompt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Ctrl-C with no cell running, delivered as SIGINT (a terminal the line editor
    /// cannot drive, where the tty has already discarded the line): IPython's
    /// `KeyboardInterrupt`, then the prompt again.
    fn interrupted_at_prompt(&self) {
        let Some(prompt) = self
            .prompt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        let _out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\nKeyboardInterrupt\n\n{prompt}");
        let _ = out.flush();
    }

    /// Shuts every runner down and prints nothing more.
    fn close(&self, engine: Engine) {
        self.closed.store(true, Ordering::SeqCst);
        self.set_printer(None);
        Registry::global().shutdown_all(Duration::from_secs(1));
        drop(engine);
    }
}

impl Sink for TermSink {
    fn emit(&self, cell: CellId, output: Output) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let text = if self.colour {
            render_coloured(&output)
        } else {
            render(&output)
        };
        let running = self.running.load(Ordering::SeqCst);
        let _out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if cell.get() == running {
            if matches!(output, Output::Stderr(_)) {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
            } else {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            return;
        }
        // Late output of a finished cell: tag every line with its cell.
        let tag = if crate::builtins::is_detached(cell) {
            "[bg]".to_owned()
        } else {
            format!("[In {cell}]")
        };
        let mut tagged = String::new();
        for line in text.trim_end_matches('\n').split('\n') {
            tagged.push_str(&format!("{tag} {line}\n"));
        }
        if self.prompt_shown() {
            if let Some(printer) = &mut *self.printer.lock().unwrap_or_else(|e| e.into_inner()) {
                if printer.print(tagged.clone()).is_ok() {
                    return;
                }
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(tagged.as_bytes());
        let _ = out.flush();
    }

    fn cell_started(&self, cell: CellId) {
        self.running.store(cell.get(), Ordering::SeqCst);
    }

    fn cell_finished(&self, _cell: CellId) {
        self.running.store(0, Ordering::SeqCst);
    }
}

/// Makes an engine printing to a [`TermSink`], with `runner` selected if given.
///
/// # Errors
///
/// If the engine cannot start or the runner cannot be selected.
pub fn terminal_engine(runner: Option<&str>) -> anyhow::Result<(Engine, Arc<TermSink>)> {
    let sink = Arc::new(TermSink::default());
    let engine = Engine::new(sink.clone())?;
    if let Some(name) = runner {
        engine.selector().select(name)?;
    }
    let hook_sink = sink.clone();
    autoawait_core::set_error_hook(move |cell, err| {
        hook_sink.emit(
            cell,
            Output::Error(ErrorInfo::new(
                ErrorKind::TaskError,
                format!("unhandled error in a task of In[{cell}]: {err}"),
            )),
        );
    });
    Ok((engine, sink))
}

/// Prints `In [n]: source` the way IPython echoes a cell.
fn echo(count: u64, source: &str) -> String {
    let prompt = format!("In [{count}]: ");
    let pad = format!("{:>width$}: ", "...", width = prompt.len() - 2);
    let mut text = String::new();
    for (i, line) in source.lines().enumerate() {
        text.push_str(if i == 0 { &prompt } else { &pad });
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Runs the cells of a percent-format file (`-- %%` starts a cell), echoing each as
/// `In [n]:` and its value as `Out[n]:`. Stops at the first failing cell unless
/// `keep_going`. Returns `true` if every cell succeeded.
///
/// Ctrl-C (SIGINT) cancels the running cell with `KeyboardInterrupt`, as in the
/// REPL, and the run goes on with the next cell; a second Ctrl-C within a second
/// ends the run (exit status 130).
///
/// # Errors
///
/// If the file cannot be read or the engine cannot start.
pub fn run_file(path: &Path, runner: Option<&str>, keep_going: bool) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let (mut engine, sink) = terminal_engine(runner)?;
    let interrupter = engine.interrupter();
    let last = Mutex::new(None::<std::time::Instant>);
    ctrlc::set_handler(move || {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            eprintln!("\nKeyboardInterrupt: a second Ctrl-C, the run ends");
            std::process::exit(130);
        }
        *last = Some(std::time::Instant::now());
        interrupter.interrupt();
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    let mut ok = true;
    for cell in crate::parse_percent(&text) {
        print!("{}", echo(engine.execution_count() + 1, &cell));
        let _ = std::io::stdout().flush();
        let report = engine.run_cell(&cell);
        println!();
        let interrupted = report
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Cancelled);
        if !report.is_ok() {
            ok = false;
            // An interrupted cell is dropped and the run goes on, as at the prompt.
            if !keep_going && !interrupted {
                break;
            }
        }
    }
    sink.close(engine);
    Ok(ok)
}

/// Line editing for cells: completion from the engine's Lua state (the kernel's
/// completer), Lua syntax colours and bracket matching on a terminal that takes
/// them (rustyline turns colour off on a dumb terminal or a pipe).
struct CellHelper {
    lua: mlua::Lua,
}

impl Completer for CellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(crate::assist::complete(&self.lua, line, pos))
    }
}

impl Hinter for CellHelper {
    type Hint = String;
}

impl Validator for CellHelper {}

impl Highlighter for CellHelper {
    fn highlight<'l>(&self, line: &'l str, pos: usize) -> std::borrow::Cow<'l, str> {
        std::borrow::Cow::Owned(crate::highlight::lua(line, pos))
    }

    fn highlight_char(
        &self,
        _line: &str,
        _pos: usize,
        _kind: rustyline::highlight::CmdKind,
    ) -> bool {
        // Redraw as the cursor moves, so the matching bracket follows it.
        true
    }
}

impl Helper for CellHelper {}

/// IPython's continuation prompt, aligned under `In [n]: `.
fn continuation(prompt: &str) -> String {
    format!("{:>width$}: ", "...", width = prompt.len() - 2)
}

/// What the REPL does with a cell besides running it.
enum Typed<'a> {
    Exit,
    Help(&'a str),
    Cell,
}

fn classify(source: &str) -> Typed<'_> {
    if crate::assist::is_exit(source) {
        Typed::Exit
    } else if let Some(name) = crate::assist::help_query(source) {
        Typed::Help(name)
    } else {
        Typed::Cell
    }
}

/// The interactive REPL: `In [n]:` prompts and `   ...:` continuation lines,
/// completion (Tab), history (Up, Ctrl-R), `name?` help, Ctrl-C cancels the running
/// cell, `exit`, `quit` or Ctrl-D exit and shut the runners down.
///
/// # Errors
///
/// If the terminal cannot be set up or the engine cannot start.
pub fn repl(runner: Option<&str>) -> anyhow::Result<()> {
    let (mut engine, sink) = terminal_engine(runner)?;
    let interrupter = engine.interrupter();
    let at_prompt = sink.clone();
    ctrlc::set_handler(move || {
        if !interrupter.interrupt() {
            at_prompt.interrupted_at_prompt();
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    let mut editor: Editor<CellHelper, DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(CellHelper {
        lua: engine.lua().clone(),
    }));
    if let Ok(printer) = editor.create_external_printer() {
        sink.set_printer(Some(Box::new(printer)));
    }
    let history = std::env::var_os("HOME").map(|home| Path::new(&home).join(".autoawait_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "autoawait {} — Lua 5.4 cells; {}. %help for help, name? for help on a name, \
         exit or Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION"),
        engine.selector().status()
    );
    'cells: loop {
        let prompt = format!("In [{}]: ", engine.execution_count() + 1);
        let mut source = String::new();
        let mut shown = prompt.clone();
        // Lines until Lua can parse the cell (or says it never will).
        loop {
            sink.set_prompt(Some(&shown));
            let line = editor.readline(&shown);
            sink.set_prompt(None);
            match line {
                Ok(line) => {
                    if !source.is_empty() {
                        source.push('\n');
                    }
                    source.push_str(&line);
                    if source.trim().is_empty()
                        || crate::completeness(&source) != Completeness::Incomplete
                    {
                        break;
                    }
                    shown = continuation(&prompt);
                }
                // Ctrl-C as a key of the line editor: the cell typed so far is dropped.
                Err(ReadlineError::Interrupted) => {
                    println!("KeyboardInterrupt\n");
                    continue 'cells;
                }
                Err(ReadlineError::Eof) => break 'cells,
                Err(err) => return Err(err.into()),
            }
        }
        if source.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(source.as_str());
        match classify(&source) {
            Typed::Exit => break,
            Typed::Help(name) => match crate::assist::help(engine.lua(), name) {
                Some(text) => println!("{text}\n"),
                None => println!("no help on `{name}`: it is not a global, a builtin or a magic\n"),
            },
            Typed::Cell => {
                engine.run_cell(&source);
                println!();
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    sink.close(engine);
    Ok(())
}
