//! The plugin loader, against real cdylibs this test builds: the twisted plugin
//! (plugins/twisted) and one plugin per failure (plugins/test-plugins, one example
//! each).
//!
//! The twisted reactor runs once per process, so the `twisted-per-cell` tests run
//! in a child process (this test binary again, see `per_cell_child`); every test
//! in this process uses the threaded `twisted` runner.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use autoawait_core::{
    Cell, Registry, RunError, RunOptions, RunnerExt, Source, Strategy, WaitError,
};
use autoawait_plugin::{
    find_plugin, load, plugin_file_names, Callback, PluginError, PluginFunction, Value,
};
use autoawait_runners as _; // tokio's panic translator, for the WrongRuntime test
use autoawait_test_support::PluginBuild;

/// Runs `f` on a thread; fails the test if it takes longer than `secs`.
fn watchdog<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    autoawait_test_support::watchdog("watchdog-body", Duration::from_secs(secs), f)
}

struct Built {
    /// Holds `libautoawait_twisted.so`.
    twisted_dir: PathBuf,
    twisted: PathBuf,
    /// Holds the test plugins, `lib<name>.so`.
    variants: PathBuf,
}

/// Builds the plugins once per process, into a target dir of their own.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let build = PluginBuild::new("plugin-tests");
        build
            .build(&[
                "-p",
                "autoawait-twisted",
                "-p",
                "autoawait-test-plugins",
                "--lib",
                "--examples",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        let twisted = build.lib("autoawait_twisted");
        assert!(twisted.is_file(), "{} was not built", twisted.display());
        Built {
            twisted_dir: twisted.parent().unwrap().to_path_buf(),
            twisted,
            variants: build.out_dir().join("examples"),
        }
    })
}

fn variant(name: &str) -> PathBuf {
    let path = built()
        .variants
        .join(autoawait_test_support::dylib_name(&name.replace('-', "_")));
    assert!(
        path.is_file(),
        "test plugin {} was not built",
        path.display()
    );
    path
}

/// The process-wide registry with the twisted plugin loaded (threaded tests).
fn twisted_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::empty();
        load(&registry, &built().twisted).expect("twisted loads");
        registry
    })
}

fn function(name: &str) -> PluginFunction {
    twisted_registry();
    autoawait_plugin::plugin_function(name).expect("the twisted plugin has it")
}

/// Asserts `load` fails with a plugin error containing `needle`, and leaves the
/// registry as it was.
fn assert_load_fails(path: &Path, needle: &str) -> PluginError {
    let registry = Registry::new();
    let before = registry.names();
    let err = load(&registry, path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(needle), "`{text}` does not say `{needle}`");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert_eq!(registry.names(), before, "the registry changed");
    err
}

#[test]
fn twisted_loads_with_its_runners_listed_as_plugin() {
    let registry = Registry::new();
    let load = load(&registry, &built().twisted).unwrap();
    assert!(load.newly_loaded);
    assert!(load.to_string().contains("twisted-per-cell"), "{load}");
    let plugin = &load.plugin;
    assert_eq!(plugin.name(), "twisted");
    assert_eq!(plugin.rustc_version(), autoawait_plugin::RUSTC_VERSION);
    assert_eq!(plugin.core_version(), env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> = plugin.functions().iter().map(|f| f.name()).collect();
    for f in ["twisted.sleep", "twisted.call_later", "twisted.deferred"] {
        assert!(names.contains(&f), "{names:?}");
    }
    let canonical = built().twisted.canonicalize().unwrap();
    let list = registry.list();
    let row = |name: &str| list.iter().find(|l| l.info.name == name).unwrap().clone();
    let threaded = row("twisted");
    assert_eq!(threaded.source, Source::Plugin(canonical.clone()));
    assert_eq!(threaded.info.strategy, Strategy::Threaded);
    assert!(threaded.info.capabilities.keeps_tasks);
    assert!(!threaded.info.capabilities.local_cells);
    let per_cell = row("twisted-per-cell");
    assert_eq!(per_cell.source, Source::Plugin(canonical));
    assert_eq!(per_cell.info.strategy, Strategy::Fresh);
    assert!(registry.contains("inline"), "built-ins stay");
}

#[test]
fn loading_the_same_path_twice_is_a_no_op_that_says_so() {
    let registry = Registry::empty();
    assert!(load(&registry, &built().twisted).unwrap().newly_loaded);
    let names = registry.names();
    // Through another spelling of the same path.
    let other = built()
        .twisted_dir
        .join(".")
        .join(built().twisted.file_name().unwrap());
    let again = load(&registry, other).unwrap();
    assert!(!again.newly_loaded);
    assert!(again.to_string().contains("already loaded"), "{again}");
    assert_eq!(registry.names(), names);
}

#[test]
fn a_missing_file_is_an_error() {
    assert_load_fails(&built().variants.join("libnothing.so"), "no such file");
}

#[test]
fn a_file_that_is_not_a_library_is_an_error() {
    let path = built().variants.join("libtext.so");
    std::fs::write(&path, "not a library\n").unwrap();
    assert_load_fails(&path, "not a shared library");
}

#[test]
fn a_library_without_the_entry_symbol_is_an_error() {
    assert_load_fails(&variant("no-symbol"), "no `autoawait_plugin_v1` symbol");
}

#[test]
fn an_unsupported_abi_version_is_an_error_naming_the_supported_ones() {
    let err = assert_load_fails(&variant("bad-abi"), "ABI version is 99");
    assert!(err.to_string().contains("supports version 1"), "{err}");
}

#[test]
fn a_vtable_smaller_than_needed_is_an_error() {
    assert_load_fails(&variant("small-struct"), "its vtable is 8 bytes");
}

#[test]
fn a_runner_whose_create_panics_is_an_error() {
    let err = assert_load_fails(
        &variant("create-panics"),
        "creating its runner `probe` panicked",
    );
    assert!(
        err.to_string().contains("create panicked on purpose"),
        "{err}"
    );
}

#[test]
fn a_runner_whose_create_fails_is_an_error() {
    assert_load_fails(&variant("create-fails"), "create failed on purpose");
}

#[test]
fn a_taken_runner_name_is_an_error_and_registers_nothing() {
    let registry = Registry::empty();
    load(&registry, variant("good")).unwrap();
    let before = registry.list().len();
    let err = load(&registry, variant("taken_name")).unwrap_err();
    assert!(err.to_string().contains("`probe`"), "{err}");
    assert!(err.to_string().contains("already taken"), "{err}");
    assert_eq!(registry.list().len(), before);
    // In a registry of its own the name is free.
    let other = Registry::empty();
    assert!(load(&other, variant("taken_name")).unwrap().newly_loaded);
}

#[test]
fn a_null_vtable_is_an_error() {
    assert_load_fails(&variant("null_vtable"), "returned no plugin");
}

#[test]
fn a_null_function_pointer_is_an_error() {
    let err = assert_load_fails(&variant("null_fn"), "its runner `probe` has no `run` entry");
    assert!(err.reason.contains("null function pointer"), "{err}");
}

#[test]
fn a_panicking_builder_is_an_error_and_the_host_goes_on() {
    assert_load_fails(
        &variant("panicking_builder"),
        "returned no plugin (its builder failed or panicked)",
    );
}

#[test]
fn a_runner_stride_smaller_than_a_declaration_is_an_error() {
    assert_load_fails(
        &variant("small_stride"),
        "runner declarations are 8 bytes apart",
    );
}

#[test]
fn a_function_name_another_plugin_offers_is_an_error() {
    load(&Registry::empty(), variant("good")).unwrap();
    assert_load_fails(
        &variant("echo_again"),
        "it offers function `probe.echo`, and plugin `probe`",
    );
    // The first one still answers.
    let echo = autoawait_plugin::plugin_function("probe.echo").unwrap();
    let back = autoawait_core::block_on_inline(echo.call(vec![Value::Int(4)])).unwrap();
    assert_eq!(back, Value::Int(4));
}

#[test]
fn a_good_plugin_runs_cells_and_passes_values_both_ways() {
    watchdog(60, || {
        let registry = Registry::empty();
        let load = load(&registry, variant("good")).unwrap();
        let probe = registry.get("probe").unwrap();
        assert_eq!(probe.block_on(async { 6 * 7 }).unwrap(), 42);
        let text: String = probe.block_on(async { "typed".to_string() }).unwrap();
        assert_eq!(text, "typed");

        let echo = load.plugin.function("probe.echo").unwrap().clone();
        for v in [
            Value::Nil,
            Value::Bool(true),
            Value::Int(-3),
            Value::Float(0.5),
        ] {
            let back = autoawait_core::block_on_inline(echo.call(vec![v.clone()])).unwrap();
            assert_eq!(back, v);
        }
        let back = autoawait_core::block_on_inline(echo.call(vec![Value::from("héllo")])).unwrap();
        assert_eq!(back.as_str(), Some("héllo"));
        // A host callback goes to the plugin and comes back callable.
        let cb = Callback::new(|| Ok(Value::from("called")));
        let back = autoawait_core::block_on_inline(echo.call(vec![cb.into()])).unwrap();
        let Value::Callback(cb) = back else {
            panic!("not a callback: {back:?}")
        };
        assert_eq!(cb.call().unwrap().as_str(), Some("called"));
    });
}

#[test]
fn find_plugin_tries_the_usual_file_names() {
    let names = plugin_file_names("twisted");
    assert_eq!(names[0], "libautoawait_twisted.so");
    let found = find_plugin(
        "twisted",
        &[PathBuf::from("/nonexistent"), built().twisted_dir.clone()],
    )
    .unwrap();
    assert_eq!(found, built().twisted);
    let err = find_plugin("no-such-plugin", &[built().twisted_dir.clone()]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("libautoawait_no_such_plugin.so"), "{text}");
    assert!(text.contains("AUTOAWAIT_PLUGIN_PATH"), "{text}");
}

#[test]
fn twisted_runs_cells_on_its_thread() {
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        // The plugin names the thread `twisted`, but in its own copy of std: the
        // host's `thread::current()` does not know that name, so compare ids.
        let here = thread::current().id();
        let elsewhere = twisted
            .block_on(async move { thread::current().id() != here })
            .unwrap();
        assert!(elsewhere, "the cell ran on the calling thread");
        // The OS knows the name (that is what thread listings show).
        if cfg!(target_os = "linux") {
            let comm = twisted
                .block_on(async { std::fs::read_to_string("/proc/thread-self/comm") })
                .unwrap()
                .unwrap();
            assert_eq!(comm.trim(), "twisted");
        }
        let sleep = function("twisted.sleep");
        let out = twisted
            .block_on(async move {
                sleep.call(vec![Value::Float(0.01)]).await?;
                Ok::<_, RunError>(5)
            })
            .unwrap();
        assert_eq!(out.unwrap(), 5);
    });
}

#[test]
fn twisted_timers_and_tasks_keep_firing_between_cells() {
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let fired = Arc::new(AtomicUsize::new(0));
        // Cell 1 starts a ticking task and a call_later, and returns at once.
        let (t, f) = (ticks.clone(), fired.clone());
        let sleep = function("twisted.sleep");
        let call_later = function("twisted.call_later");
        twisted
            .block_on(async move {
                let ticking = Cell::new(async move {
                    loop {
                        sleep.call(vec![Value::Float(0.005)]).await.unwrap();
                        t.fetch_add(1, Ordering::SeqCst);
                    }
                });
                let later = Callback::new(move || {
                    f.fetch_add(1, Ordering::SeqCst);
                    Ok(Value::Nil)
                });
                // Fire-and-forget: the call is scheduled when made.
                drop(call_later.call(vec![Value::Float(0.02), later.into()]));
                ticking
            })
            .map(|ticking| twisted.spawn(ticking).unwrap().stash())
            .unwrap();
        // No cell runs now; the reactor thread keeps going.
        let deadline = Instant::now() + Duration::from_secs(20);
        while (ticks.load(Ordering::SeqCst) < 3 || fired.load(Ordering::SeqCst) < 1)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(
            ticks.load(Ordering::SeqCst) >= 3,
            "the task did not tick between cells"
        );
        assert_eq!(
            fired.load(Ordering::SeqCst),
            1,
            "call_later did not fire between cells"
        );
        // Cell 2 sees the task still ticking.
        let seen = ticks.load(Ordering::SeqCst);
        let sleep = function("twisted.sleep");
        twisted
            .block_on(async move { sleep.call(vec![Value::Float(0.05)]).await })
            .unwrap()
            .unwrap();
        assert!(ticks.load(Ordering::SeqCst) > seen);
    });
}

#[test]
fn a_panicking_cell_through_the_abi_is_panicked_with_its_message() {
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        let err = twisted
            .block_on(async { panic!("boom through the plugin") })
            .unwrap_err();
        assert!(err.is_panicked(), "{err:?}");
        assert!(err.to_string().contains("boom through the plugin"), "{err}");
        assert_eq!(
            twisted.block_on(async { 1 }).unwrap(),
            1,
            "the next cell works"
        );
    });
}

#[test]
fn host_tokio_inside_the_plugin_reactor_is_wrong_runtime() {
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        let err = twisted
            .block_on(async { tokio::time::sleep(Duration::from_millis(1)).await })
            .unwrap_err();
        let RunError::WrongRuntime { needs, runner, .. } = &err else {
            panic!("not WrongRuntime: {err:?}")
        };
        assert_eq!(needs, "tokio");
        assert_eq!(runner, "twisted");
        assert_eq!(
            twisted.block_on(async { 2 }).unwrap(),
            2,
            "the next cell works"
        );
    });
}

#[test]
fn run_from_inside_a_twisted_cell_would_deadlock() {
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        let inner = twisted.clone();
        let err = twisted
            .block_on(async move { inner.block_on(async { 1 }) })
            .unwrap()
            .unwrap_err();
        assert!(err.is_would_deadlock(), "{err:?}");
    });
}

#[test]
fn a_host_timeout_drops_a_cell_running_in_the_plugin() {
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        let sleep = function("twisted.sleep");
        let opts = RunOptions::default().timeout(Duration::from_millis(50));
        let err = twisted
            .block_on_with(
                async move { sleep.call(vec![Value::Float(100.0)]).await },
                &opts,
            )
            .unwrap_err();
        assert!(err.is_timed_out(), "{err:?}");
    });
}

#[test]
fn deferreds_fire_once_with_a_value_or_an_error() {
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        let call = |name: &str, args: Vec<Value>| {
            autoawait_core::block_on_inline(function(name).call(args))
        };
        let d = call("twisted.deferred", vec![]).unwrap();
        let wait = function("twisted.deferred.wait");
        let d2 = d.clone();
        let waiting = twisted
            .spawn(Cell::new(async move { wait.call(vec![d2]).await }))
            .unwrap();
        call(
            "twisted.deferred.callback",
            vec![d.clone(), Value::from(42)],
        )
        .unwrap();
        let again = call("twisted.deferred.callback", vec![d.clone(), Value::from(1)]);
        assert!(again
            .unwrap_err()
            .to_string()
            .contains("AlreadyCalledError"));
        let out = waiting.wait(Some(Duration::from_secs(20))).unwrap();
        let out = *out.downcast::<Result<Value, RunError>>().unwrap();
        assert_eq!(out.unwrap(), Value::Int(42));

        let e = call("twisted.deferred", vec![]).unwrap();
        call(
            "twisted.deferred.errback",
            vec![e.clone(), Value::from("it broke")],
        )
        .unwrap();
        let err = call("twisted.deferred.wait", vec![e.clone()]).unwrap_err();
        assert_eq!(err.to_string(), "it broke");
        // Awaiting again gives the same outcome, until the handle is released.
        let err = call("twisted.deferred.wait", vec![e.clone()]).unwrap_err();
        assert_eq!(err.to_string(), "it broke");
        call("twisted.deferred.release", vec![e.clone()]).unwrap();
        let err = call("twisted.deferred.wait", vec![e]).unwrap_err();
        assert!(err.to_string().contains("was released"), "{err}");

        let err = call("twisted.sleep", vec![Value::from("soon")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be a number of seconds, got string"),
            "{err}"
        );
    });
}

/// Runs `per_cell_child` in a child process (its reactor is its own).
#[test]
fn twisted_per_cell_runs_one_cell_then_is_not_restartable() {
    let dir = built().twisted_dir.clone();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "per_cell_child",
            "--exact",
            "--include-ignored",
            "--nocapture",
        ])
        .env("AUTOAWAIT_PER_CELL_CHILD", "1")
        .env("AUTOAWAIT_PLUGIN_PATH", dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child failed:\n{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "run by twisted_per_cell_runs_one_cell_then_is_not_restartable in a child process"]
fn per_cell_child() {
    if std::env::var_os("AUTOAWAIT_PER_CELL_CHILD").is_none() {
        return;
    }
    watchdog(60, || {
        let registry = Registry::global();
        // By name, from AUTOAWAIT_PLUGIN_PATH.
        let load = autoawait_plugin::load_named(registry, "twisted").unwrap();
        assert!(load.newly_loaded);
        let sleep = autoawait_plugin::plugin_function("twisted.sleep").unwrap();

        // Before any reactor runs, the reactor functions say what to do.
        let err =
            autoawait_core::block_on_inline(sleep.call(vec![Value::Float(0.01)])).unwrap_err();
        assert_eq!(
            err.advice().unwrap().runner_names(),
            ["twisted", "twisted-host", "twisted-per-cell"],
            "{err}"
        );

        let per_cell = registry.get("twisted-per-cell").unwrap();
        let err = per_cell.spawn(Cell::new(async { 1 })).unwrap_err();
        assert!(err.is_unsupported(), "{err:?}");

        // The first cell runs the reactor on this thread.
        let here = thread::current().id();
        let s = sleep.clone();
        let (same_thread, slept) = per_cell
            .block_on(async move {
                let slept = s.call(vec![Value::Float(0.01)]).await;
                (thread::current().id() == here, slept)
            })
            .unwrap();
        assert!(same_thread);
        slept.unwrap();

        // The second cell cannot restart it.
        let err = per_cell.block_on(async { 2 }).unwrap_err();
        assert!(err.is_not_restartable(), "{err:?}");
        assert!(err.to_string().contains("threaded runner"), "{err}");
        assert_eq!(err.advice().unwrap().runner_names(), ["twisted"], "{err}");
        // Nor can the threaded runner: one reactor per process.
        let err = registry
            .get("twisted")
            .unwrap()
            .block_on(async { 3 })
            .unwrap_err();
        assert!(err.is_not_restartable(), "{err:?}");
    });
}

#[test]
fn shutting_twisted_down_ends_its_tasks_and_keeps_the_process_reactor() {
    watchdog(60, || {
        let registry = Registry::empty();
        load(&registry, &built().twisted).unwrap();
        let twisted = registry.get("twisted").unwrap();
        let sleep = function("twisted.sleep");
        let forever = twisted
            .spawn(Cell::new(async move {
                sleep.call(vec![Value::Float(3600.0)]).await
            }))
            .unwrap();
        twisted.shutdown(Duration::from_secs(10));
        twisted.shutdown(Duration::from_secs(10));
        let err = forever.wait(Some(Duration::from_secs(20))).unwrap_err();
        assert!(
            matches!(
                err,
                WaitError::Run(RunError::TaskDropped { .. } | RunError::Cancelled)
            ),
            "{err:?}"
        );
        assert!(twisted.block_on(async { 1 }).unwrap_err().is_stopped());
        assert!(twisted.spawn(Cell::new(async {})).unwrap_err().is_stopped());
        // The reactor cannot restart, so it outlives the runner: other instances work.
        let other = twisted_registry().get("twisted").unwrap();
        assert_eq!(other.block_on(async { 3 }).unwrap(), 3);
    });
}

#[test]
fn twisted_services_sleep_and_tcp_through_the_abi() {
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    watchdog(60, || {
        let twisted = twisted_registry().get("twisted").unwrap();
        let services = twisted.services().expect("twisted offers services");
        let started = Instant::now();
        twisted
            .block_on(services.sleep(Duration::from_millis(5)))
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(5));

        let runner = twisted.clone();
        let echoed = twisted.block_on(async move {
            let services = runner.services().unwrap();
            let listener = services.listen("127.0.0.1:0".parse().unwrap()).await?;
            let addr = listener.local_addr()?;
            let accept = listener.accept();
            let server = runner
                .spawn(Cell::new(async move {
                    let (mut stream, _) = accept.await.unwrap();
                    let mut buf = [0u8; 4];
                    stream.read_exact(&mut buf).await.unwrap();
                    stream.write_all(&buf).await.unwrap();
                    stream.flush().await.unwrap();
                }))
                .unwrap();
            let mut client = services.connect(addr).await?;
            client.write_all(b"ping").await?;
            client.flush().await?;
            let mut buf = [0u8; 4];
            client.read_exact(&mut buf).await?;
            drop(server);
            Ok::<_, std::io::Error>(buf)
        });
        assert_eq!(&echoed.unwrap().unwrap(), b"ping");

        // An I/O error crosses with its kind.
        let refused = twisted
            .block_on({
                let runner = twisted.clone();
                async move {
                    let services = runner.services().unwrap();
                    // A port nobody listens on: bind one, note it, close it.
                    let l = services.listen("127.0.0.1:0".parse().unwrap()).await?;
                    let addr = l.local_addr()?;
                    drop(l);
                    services.connect(addr).await.map(drop)
                }
            })
            .unwrap()
            .unwrap_err();
        assert_eq!(
            refused.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{refused}"
        );
    });
}

#[test]
fn a_runner_without_sockets_says_so_through_the_abi() {
    watchdog(60, || {
        let registry = Registry::empty();
        load(&registry, variant("good")).unwrap();
        let probe = registry.get("probe").unwrap();
        // The plugin's `inline` has services (a sleep on core's timer), no sockets.
        let services = probe.services().expect("inline offers services");
        probe
            .block_on(services.sleep(Duration::from_millis(1)))
            .unwrap();
        let err = autoawait_core::block_on_inline(services.connect("127.0.0.1:9".parse().unwrap()))
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
    });
}

#[test]
fn a_plugin_of_abi_1_0_loads_and_runs_cells() {
    watchdog(60, || {
        let registry = Registry::empty();
        let load = load(&registry, variant("legacy")).unwrap();
        assert!(load.newly_loaded);
        let probe = registry.get("probe").unwrap();
        assert_eq!(probe.block_on(async { 6 * 7 }).unwrap(), 42);
        // It cannot check itself: that entry came later.
        assert_eq!(load.plugin.check("probe", "value_comes_back"), None);
    });
}

#[test]
fn a_plugin_of_abi_1_1_loads_runs_cells_and_checks_itself() {
    use autoawait_conformance::Outcome;
    watchdog(60, || {
        let registry = Registry::new();
        let load = load(&registry, variant("legacy_1_1")).unwrap();
        let probe = registry.get("probe").unwrap();
        assert_eq!(probe.block_on(async { 6 * 7 }).unwrap(), 42);
        assert!(probe.hosted().is_none());
        assert_eq!(
            load.plugin.check("probe", "value_comes_back"),
            Some(Outcome::Passed)
        );
    });
}

#[test]
fn a_plugin_checks_its_own_runner_in_its_own_image() {
    use autoawait_conformance::Outcome;
    watchdog(120, || {
        let load = load(&Registry::empty(), variant("good")).unwrap();
        let plugin = &load.plugin;
        assert_eq!(
            plugin.check("probe", "timeout_drops_the_cell"),
            Some(Outcome::Passed)
        );
        assert!(matches!(
            plugin.check("probe", "shutdown_joins_threads"),
            Some(Outcome::Skipped(_))
        ));
        assert!(matches!(
            plugin.check("probe", "no_such_check"),
            Some(Outcome::Skipped(_))
        ));
        assert_eq!(plugin.check("nobody", "value_comes_back"), None);
    });
}
