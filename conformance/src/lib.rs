//! The contract of a [`Runner`] and the strategy table of autoawait, as checks any
//! runner can run: ours, a plugin's, yours.
//!
//! | strategy | between cells | `run()` inside a cell |
//! |---|---|---|
//! | threaded | background tasks keep running | `WouldDeadlock` |
//! | per-cell | tasks are suspended; they resume in the next cell | `WouldDeadlock` |
//! | fresh | tasks started by a cell end with it | `WouldDeadlock` |
//! | host | tasks keep running on the host loop | per backend |
//! | nested | as its base loop | works, to any depth |
//!
//! Each check is a function named after what it checks ([`CHECKS`] lists them with
//! their contracts); it panics with the reason when the runner breaks the contract.
//! Every check gets a runner of its own from the [`Subject`] and shuts it down after.
//! [`conformance_tests!`] makes one `#[test]` per check; [`report`] runs them all
//! and says which passed, for tools (`autoawait check`).
//!
//! # Examples
//!
//! In `tests/conformance.rs` of a runner crate:
//!
//! ```no_run
//! use std::sync::Arc;
//! use autoawait_conformance::{conformance_tests, Subject};
//!
//! fn mine() -> Subject {
//!     Subject::new("inline", || Ok(autoawait_core::Registry::new().get("inline")?))
//! }
//!
//! conformance_tests!(inline, mine());
//! ```
//!
//! Or all at once, with a report:
//!
//! ```
//! use autoawait_conformance::{report, Subject};
//!
//! let subject = Subject::new("inline", || Ok(autoawait_core::Registry::new().get("inline")?));
//! let report = report(&subject);
//! assert_eq!(report.failed(), 0, "{report}");
//! ```

mod checks;
mod support;

use std::fmt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoawait_core::{RunError, Runner};

pub use checks::*;

/// How long one check may take before it counts as a deadlock, unless
/// [`WATCHDOG_ENV`] says otherwise.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Seconds one check may take (overrides [`WATCHDOG`]): a runner under suspicion
/// fails fast, a slow machine gets more time.
pub const WATCHDOG_ENV: &str = "AUTOAWAIT_CHECK_TIMEOUT";

/// The watchdog in force: [`WATCHDOG_ENV`] if set to seconds, else [`WATCHDOG`].
pub fn watchdog() -> Duration {
    std::env::var(WATCHDOG_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(WATCHDOG, Duration::from_secs_f64)
}

type Make = dyn Fn() -> Result<Arc<dyn Runner>, RunError> + Send + Sync;
type Isolate = dyn Fn(&Check) -> Command + Send + Sync;

/// The runner under test: its name, and how to make a new instance for each check.
///
/// # Examples
///
/// ```
/// use autoawait_conformance::Subject;
///
/// let subject = Subject::new("inline", || Ok(autoawait_core::Registry::new().get("inline")?));
/// assert_eq!(subject.name(), "inline");
/// assert!(subject.make().is_ok());
/// ```
#[derive(Clone)]
pub struct Subject {
    name: String,
    make: Arc<Make>,
    isolate: Option<Arc<Isolate>>,
}

impl Subject {
    /// Runner `name`, made by `make` for each check.
    pub fn new(
        name: impl Into<String>,
        make: impl Fn() -> Result<Arc<dyn Runner>, RunError> + Send + Sync + 'static,
    ) -> Self {
        Subject {
            name: name.into(),
            make: Arc::new(make),
            isolate: None,
        }
    }

    /// How to run a check that needs a process of its own ([`Check::isolated`]):
    /// the command runs it in a child and succeeds if it passes. Without one,
    /// [`report`] skips those checks.
    pub fn isolate_with(
        mut self,
        command: impl Fn(&Check) -> Command + Send + Sync + 'static,
    ) -> Self {
        self.isolate = Some(Arc::new(command));
        self
    }

    /// The runner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new instance of the runner.
    ///
    /// # Errors
    ///
    /// The factory's.
    pub fn make(&self) -> Result<Arc<dyn Runner>, RunError> {
        (self.make)()
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One check: what it is called, the contract it checks, and the check itself.
#[derive(Clone, Copy)]
pub struct Check {
    /// Its name, as a test is named.
    pub name: &'static str,
    /// The contract it checks, in a sentence.
    pub contract: &'static str,
    /// Needs a process of its own (it counts the process's threads).
    pub isolated: bool,
    /// The check: panics with the reason if the runner breaks the contract.
    pub run: fn(&Subject),
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

macro_rules! checks {
    ($($name:ident $(isolated $iso:literal)? : $contract:literal,)+) => {
        /// Every check, in the order [`report`] runs them.
        pub const CHECKS: &[Check] = &[
            $(Check {
                name: stringify!($name),
                contract: $contract,
                isolated: false $(|| $iso)?,
                run: checks::$name,
            },)+
        ];

    };
}

/// Makes one `#[test]` per check of [`CHECKS`] for a runner, in module `$module`:
/// `conformance_tests!(tokio, my_subject());`. Each test runs under a watchdog; a
/// check that needs a process of its own runs in a child process of the test binary.
#[macro_export]
macro_rules! conformance_tests {
    ($module:ident, $subject:expr) => {
        $crate::conformance_tests!(@tests $module, $subject;
            value_comes_back, panics_are_values, timeout_drops_the_cell,
            cancel_from_another_thread, background_tasks_between_cells, nesting,
            blocking_on_the_reactor_thread, shutdown_stops_the_runner,
            shutdown_drops_background_tasks, many_threads_at_once, local_cells, services,
            shutdown_joins_threads,
        );
    };
    (@tests $module:ident, $subject:expr; $($check:ident,)+) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $check() {
                    $crate::run_test(stringify!($check), module_path!(), || $subject);
                }
            )+

            #[test]
            fn every_check_has_a_test() {
                let tests = [$(stringify!($check)),+];
                let checks: Vec<&str> = $crate::CHECKS.iter().map(|c| c.name).collect();
                assert_eq!(tests.as_slice(), checks.as_slice());
            }
        }
    };
}

checks! {
    value_comes_back: "a cell's value comes back, typed through `block_on`, also after it waits",
    panics_are_values: "a panic in a cell is `Panicked` with its message, never a crash, and the next cell works",
    timeout_drops_the_cell: "a timeout ends the cell with `TimedOut` and drops its future: it runs no more",
    cancel_from_another_thread: "a cancel token fired from another thread ends the cell with `Cancelled` and drops its future",
    background_tasks_between_cells: "tasks a cell spawns inherit its origin, and run between cells as the strategy says (threaded, host, nested: keep running; per-cell: pause; fresh: end)",
    nesting: "`run()` inside a cell works to any depth on a nested runner, and is `WouldDeadlock` elsewhere (host: either); never a hang",
    blocking_on_the_reactor_thread: "waiting for a task from a cell of a runner whose loop must run it is `WouldDeadlock`, never a hang",
    shutdown_stops_the_runner: "after `shutdown` (idempotent) every `run` and `spawn` is `Stopped`",
    shutdown_drops_background_tasks: "`shutdown` drops background tasks that would wait forever",
    many_threads_at_once: "8 threads running 1000 cells each all get their own values",
    local_cells: "a `!Send` cell (`Cell::local`) runs if the runner says it takes them, and is `Unsupported` otherwise",
    services: "the runner's services sleep, spawn with the cell's origin, and carry TCP on loopback (or say `Unsupported`)",
    shutdown_joins_threads isolated true: "`shutdown` joins every thread the runner started",
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The runner kept the contract.
    Passed,
    /// It did not: why.
    Failed(String),
    /// The check did not run: why.
    Skipped(String),
}

/// What [`report`] found: one line per check.
#[derive(Clone, Debug)]
pub struct Report {
    /// The runner's name.
    pub runner: String,
    /// Each check, its outcome and how long it took.
    pub checks: Vec<(Check, Outcome, Duration)>,
}

impl Report {
    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed))
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.checks.iter().filter(|(_, o, _)| f(o)).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (check, outcome, took) in &self.checks {
            match outcome {
                Outcome::Passed => {
                    writeln!(f, "ok   {}::{} ({took:.2?})", self.runner, check.name)?
                }
                Outcome::Failed(why) => {
                    writeln!(f, "FAIL {}::{}: {why}", self.runner, check.name)?;
                    writeln!(f, "     contract: {}", check.contract)?;
                }
                Outcome::Skipped(why) => {
                    writeln!(f, "skip {}::{}: {why}", self.runner, check.name)?
                }
            }
        }
        write!(
            f,
            "{}: {} passed, {} failed",
            self.runner,
            self.passed(),
            self.failed()
        )
    }
}

/// Runs `check` against `subject` on a thread of its own, under the watchdog:
/// the check's panic (or a deadlock) is its failure, kept off stderr.
pub fn run_check(subject: &Subject, check: &Check) -> Outcome {
    if check.isolated {
        return run_isolated(subject, check);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (subject, run) = (subject.clone(), check.run);
    let thread = std::thread::Builder::new()
        .name(format!("check-{}", check.name))
        .spawn(move || {
            let outcome = autoawait_core::kit::quietly(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&subject)))
            });
            let _ = tx.send(outcome.map_err(|p| autoawait_core::panic_text(p.as_ref())));
        });
    if let Err(e) = thread {
        return Outcome::Failed(format!("cannot start the check's thread: {e}"));
    }
    let limit = watchdog();
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(why)) => Outcome::Failed(why),
        Err(_) => Outcome::Failed(format!(
            "deadlock: did not finish within {limit:?} (more time: {WATCHDOG_ENV}=SECONDS)"
        )),
    }
}

fn run_isolated(subject: &Subject, check: &Check) -> Outcome {
    let Some(isolate) = &subject.isolate else {
        return Outcome::Skipped(
            "needs a process of its own, and no way to start one was given".into(),
        );
    };
    match isolate(check).output() {
        Ok(out)
            if out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains(&passed_marker(check)) =>
        {
            Outcome::Passed
        }
        Ok(out) => Outcome::Failed(format!(
            "in a child process: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Outcome::Failed(format!("cannot start the child process: {e}")),
    }
}

/// Runs every check of [`CHECKS`] against `subject`.
pub fn report(subject: &Subject) -> Report {
    let checks = CHECKS
        .iter()
        .map(|check| {
            let started = Instant::now();
            let outcome = run_check(subject, check);
            (*check, outcome, started.elapsed())
        })
        .collect();
    Report {
        runner: subject.name().to_owned(),
        checks,
    }
}

/// Marks the process a child running one isolated check.
pub const CHILD: &str = "AUTOAWAIT_CONFORMANCE_CHILD";

/// What a child prints once its isolated check passed: a child that ran nothing
/// (a test filter that matched no test) does not count as a pass.
fn passed_marker(check: &Check) -> String {
    format!("autoawait-conformance: {} passed", check.name)
}

/// Runs an isolated check in this process, which a parent started for it
/// ([`Subject::isolate_with`]), and prints that it passed.
///
/// # Panics
///
/// If the check fails.
pub fn run_in_child(subject: &Subject, check: &Check) {
    (check.run)(subject);
    println!("{}", passed_marker(check));
}

/// The body of a test made by [`conformance_tests!`]: runs check `name` of
/// [`CHECKS`], panicking with the reason if it fails. An isolated check runs again
/// in a child process of the test binary (`module` names the test), which runs it
/// directly.
///
/// # Panics
///
/// If the check fails or `name` is not a check.
#[doc(hidden)]
pub fn run_test(name: &str, module: &str, subject: impl FnOnce() -> Subject) {
    let check = CHECKS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no conformance check named `{name}`"));
    let subject = subject();
    if check.isolated && std::env::var_os(CHILD).is_some() {
        return run_in_child(&subject, check);
    }
    let test = format!(
        "{}::{name}",
        module.split_once("::").map_or(module, |(_, rest)| rest)
    );
    let subject = subject.isolate_with(move |_| {
        let mut cmd = Command::new(std::env::current_exe().expect("the test binary has a path"));
        cmd.args(["--exact", &test, "--test-threads=1", "--nocapture"])
            .env(CHILD, "1");
        cmd
    });
    match run_check(&subject, check) {
        Outcome::Passed => {}
        Outcome::Failed(why) => panic!(
            "`{}` broke the contract: {}\n{why}",
            subject.name(),
            check.contract
        ),
        Outcome::Skipped(why) => panic!("`{}` skipped: {why}", check.name),
    }
}
