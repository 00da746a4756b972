//! The registry (inventory factories, lazy single instances, run-time
//! registration) and the `%autoawait` selector.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use autoawait_core::{
    Cell, CellResult, EventualResult, LookupError, Registry, RunError, RunOptions, Runner,
    RunnerExt, RunnerFactory, RunnerInfo, Selector, Source, Strategy,
};
use proptest::prelude::*;

static CREATED: AtomicUsize = AtomicUsize::new(0);

/// A runner that counts how often it is created, and runs cells inline.
struct Counting {
    info: RunnerInfo,
    inner: Arc<dyn Runner>,
}

impl Runner for Counting {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }
    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.inner.run(cell, opts)
    }
    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.inner.spawn(cell)
    }
    fn shutdown(&self, grace: Duration) {
        self.inner.shutdown(grace)
    }
}

const COUNTING: RunnerInfo = RunnerInfo::new(
    "Counting-Test",
    "test",
    Strategy::Threaded,
    "counts its creations",
);

fn make_counting() -> Result<Arc<dyn Runner>, RunError> {
    CREATED.fetch_add(1, Ordering::SeqCst);
    // Slow creation widens the window for a race between first users.
    thread::sleep(Duration::from_millis(20));
    Ok(Arc::new(Counting {
        info: COUNTING,
        inner: Registry::new().get("inline")?,
    }))
}

inventory::submit! { RunnerFactory::new(COUNTING, make_counting) }

const BROKEN: RunnerInfo = RunnerInfo::new("broken-test", "test", Strategy::Fresh, "cannot start");

fn make_broken() -> Result<Arc<dyn Runner>, RunError> {
    Err(RunError::backend(std::io::Error::other("no such device")))
}

inventory::submit! { RunnerFactory::new(BROKEN, make_broken) }

inventory::submit! {
    RunnerFactory::unavailable(
        RunnerInfo::new("glommio-test", "glommio", Strategy::Threaded, "io_uring"),
        "runner `glommio-test` is not enabled in this build: enable the `glommio` feature",
    )
}

fn own_runner(name: &str) -> Arc<dyn Runner> {
    struct Named(RunnerInfo, Arc<dyn Runner>);
    impl Runner for Named {
        fn info(&self) -> &RunnerInfo {
            &self.0
        }
        fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
            self.1.run(cell, opts)
        }
        fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
            self.1.spawn(cell)
        }
        fn shutdown(&self, grace: Duration) {
            self.1.shutdown(grace)
        }
    }
    let mut info = RunnerInfo::new("placeholder", "mine", Strategy::Nested, "a user's runner");
    info.name = name.to_owned().into();
    Arc::new(Named(info, Registry::new().get("inline").unwrap()))
}

#[test]
fn inventory_factories_are_collected_with_core_runners() {
    let registry = Registry::new();
    let names = registry.names();
    for name in [
        "inline",
        "sync",
        "Counting-Test",
        "broken-test",
        "glommio-test",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    assert!(std::ptr::eq(Registry::global(), Registry::global()));
}

#[test]
fn lookups_are_case_insensitive_and_create_one_instance_for_8_threads() {
    let registry = Registry::new();
    let before = CREATED.load(Ordering::SeqCst);
    let barrier = Barrier::new(8);
    let runners: Vec<Arc<dyn Runner>> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (registry, barrier) = (&registry, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let name = if i % 2 == 0 {
                        "counting-test"
                    } else {
                        "COUNTING-TEST"
                    };
                    registry.get(name).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(CREATED.load(Ordering::SeqCst) - before, 1);
    for r in &runners {
        assert!(Arc::ptr_eq(r, &runners[0]));
    }
    assert_eq!(runners[0].block_on(async { 4 }).unwrap(), 4);
    // Another registry has instances of its own.
    let other = Registry::new().get("counting-test").unwrap();
    assert!(!Arc::ptr_eq(&other, &runners[0]));
}

#[test]
fn unknown_names_suggest_the_closest_and_list_all() {
    let registry = Registry::new();
    let err = registry.get("inlnie").unwrap_err();
    let LookupError::UnknownRunner {
        closest, available, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(closest.as_deref(), Some("inline"));
    assert!(available.iter().any(|n| n == "sync"));
    let msg = err.to_string();
    assert!(
        msg.starts_with("no runner named `inlnie`; did you mean `inline`?"),
        "{msg}"
    );
    assert!(msg.contains("`sync`"), "{msg}");
    // Nothing close: no suggestion, still the list.
    let err = registry.get("qqqqqqqqqq").unwrap_err();
    assert!(!err.to_string().contains("did you mean"));
    assert!(err.to_string().contains("`inline`"));
}

#[test]
fn a_compiled_out_runner_says_which_feature_to_enable() {
    let err = Registry::new().get("glommio-test").unwrap_err();
    assert!(matches!(err, LookupError::Unavailable { .. }));
    assert_eq!(
        err.to_string(),
        "runner `glommio-test` is not available: runner `glommio-test` is not enabled in \
         this build: enable the `glommio` feature"
    );
}

#[test]
fn a_failing_factory_is_an_error_and_is_retried() {
    let registry = Registry::new();
    for _ in 0..2 {
        let err = registry.get("broken-test").unwrap_err();
        assert_eq!(
            err.to_string(),
            "runner `broken-test` cannot start: backend error: no such device"
        );
        assert!(matches!(err, LookupError::CannotCreate { .. }));
    }
}

#[test]
fn runners_registered_at_run_time_join_and_duplicates_are_refused() {
    let registry = Registry::empty();
    registry.register(own_runner("mine")).unwrap();
    let err = registry.register(own_runner("MINE")).unwrap_err();
    assert!(matches!(&err, LookupError::DuplicateName { name } if name == "MINE"));
    assert_eq!(registry.names(), ["mine"]);
    let listing = registry.list();
    assert_eq!(listing[0].source, Source::Registered);
    assert!(listing[0].created);
    assert_eq!(
        registry.get("Mine").unwrap().block_on(async { 1 }).unwrap(),
        1
    );
    registry
        .register_unavailable(
            RunnerInfo::new("later", "x", Strategy::Host, ""),
            "enable the `later` feature",
        )
        .unwrap();
    assert!(registry
        .get("later")
        .unwrap_err()
        .to_string()
        .contains("`later` feature"));
}

#[test]
fn shutdown_all_stops_created_runners() {
    let registry = Registry::new();
    let inline = registry.get("inline").unwrap();
    registry.shutdown_all(Duration::from_secs(1));
    assert!(inline.block_on(async {}).unwrap_err().is_stopped());
    // Runners never created are not created by shutdown.
    assert!(!registry
        .list()
        .iter()
        .any(|l| l.info.name == "sync" && l.created));
}

// ---- the %autoawait selector ----

#[test]
fn the_status_line_names_the_runner_and_its_strategy() {
    let registry = Registry::new();
    let mut s = Selector::new(&registry);
    // No tokio in core's tests: the default is inline.
    assert_eq!(s.name(), "inline");
    assert!(s.is_on());
    assert_eq!(
        s.handle("").unwrap(),
        "autoawait is `on`, and set to use `inline` (nested: re-entrant: cells may run cells)"
    );
    assert_eq!(
        s.handle("sync").unwrap(),
        "autoawait is `on`, and set to use `sync` (fresh: background tasks end with each cell)"
    );
    assert_eq!(
        s.handle("Counting-Test").unwrap(),
        "autoawait is `on`, and set to use `Counting-Test` (threaded: background tasks keep \
         running)"
    );
}

#[test]
fn on_and_off_in_any_case_keep_the_runner() {
    let registry = Registry::new();
    let mut s = Selector::new(&registry);
    s.handle("sync").unwrap();
    for (arg, on) in [
        ("off", false),
        ("ON", true),
        ("False", false),
        ("true", true),
        ("0", false),
        ("1", true),
        ("  oFf  ", false),
    ] {
        let shown = s.handle(arg).unwrap();
        assert_eq!(s.is_on(), on, "{arg}");
        assert_eq!(s.name(), "sync");
        let state = if on { "on" } else { "off" };
        assert!(shown.starts_with(&format!("autoawait is `{state}`, and set to use `sync`")));
    }
    // Selecting a runner turns autoawait on.
    s.handle("INLINE").unwrap();
    assert!(s.is_on());
    assert_eq!(s.name(), "inline");
    assert_eq!(s.runner().unwrap().info().name, "inline");
}

#[test]
fn errors_leave_the_previous_state_intact() {
    let registry = Registry::new();
    let mut s = Selector::new(&registry);
    s.handle("sync").unwrap();
    s.handle("off").unwrap();
    for (arg, expected) in [
        ("synk", "no runner named `synk`; did you mean `sync`?"),
        ("glommio-test", "enable the `glommio` feature"),
        ("broken-test", "no such device"),
        (
            "1 2",
            "%autoawait takes one argument (on, off, a runner name or --list), not `1 2`",
        ),
        (
            "--frobnicate",
            "%autoawait has no option `--frobnicate`; its only option is --list",
        ),
    ] {
        let err = s.handle(arg).unwrap_err();
        assert!(err.to_string().contains(expected), "{arg}: {err}");
        assert_eq!(s.name(), "sync");
        assert!(!s.is_on());
    }
}

#[test]
fn list_shows_every_runner_with_backend_strategy_source_and_summary() {
    let registry = Registry::new();
    let mut s = Selector::new(&registry);
    let table = s.handle("--list").unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("  name"), "{table}");
    for col in ["backend", "strategy", "source", "summary"] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert_eq!(lines.len(), registry.names().len() + 1);
    let inline = lines.iter().find(|l| l.contains("inline")).unwrap();
    assert!(inline.starts_with("* inline"), "{inline}");
    for part in ["core", "nested", "built-in", "pollster"] {
        assert!(inline.contains(part), "{inline}");
    }
    let glommio = lines.iter().find(|l| l.contains("glommio-test")).unwrap();
    assert!(
        glommio.contains("not built") && glommio.contains("glommio` feature"),
        "{glommio}"
    );
    // Columns line up.
    let at = lines[0].find("backend").unwrap();
    assert!(lines.iter().all(|l| l.len() > at));
}

proptest! {
    #[test]
    fn no_argument_panics_or_corrupts_state(args in proptest::collection::vec(".{0,24}", 1..8)) {
        let registry = Registry::new();
        let mut s = Selector::new(&registry);
        for arg in &args {
            let (name, on) = (s.name().to_owned(), s.is_on());
            match s.handle(arg) {
                Ok(shown) => {
                    prop_assert!(!shown.is_empty());
                    prop_assert!(registry.contains(s.name()));
                }
                Err(_) => {
                    prop_assert_eq!(s.name(), name.as_str());
                    prop_assert_eq!(s.is_on(), on);
                }
            }
        }
        prop_assert!(s.status().starts_with("autoawait is `"));
    }

    #[test]
    fn near_misses_of_runner_names_suggest_them(
        name in prop::sample::select(vec!["inline", "sync", "counting-test"]),
        at in 0usize..6,
    ) {
        let registry = Registry::new();
        // Drop one character: a one-edit typo.
        let mut typo: Vec<char> = name.chars().collect();
        typo.remove(at.min(typo.len() - 1));
        let typo: String = typo.into_iter().collect();
        prop_assume!(!registry.contains(&typo));
        let err = registry.get(&typo).unwrap_err();
        let LookupError::UnknownRunner { closest, .. } = err else { panic!() };
        prop_assert_eq!(closest.map(|c| c.to_lowercase()), Some(name.to_owned()));
    }
}
