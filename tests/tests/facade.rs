//! A `reqwest::blocking`-style facade over autoawait, as a library author writes
//! it: `runner.block_on(fut)` from whatever thread the library's user calls from.
//! It must be safe by default: a clear error where blocking would freeze the
//! caller's loop, never a silent freeze or a hang.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use autoawait_core::kit::Config;
use autoawait_core::{Cell, RunError, RunOptions, Runner, RunnerExt};
use autoawait_runners::tokio_runner;
use autoawait_test_support::{watchdog, Fixture};

/// The runners a facade might block on, each of a registry of its own.
const BLOCKING: &[&str] = &[
    "tokio",
    "tokio-per-cell",
    "tokio-fresh",
    "smol",
    "smol-per-cell",
    "smol-fresh",
    "async-std",
    "inline",
];

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn within(secs: u64, body: impl FnOnce() + Send + 'static) {
    watchdog("facade", Duration::from_secs(secs), body);
}

#[test]
fn blocking_on_a_current_thread_runtime_thread_is_would_block_with_the_way_out() {
    within(30, || {
        let rt = current_thread();
        for name in BLOCKING {
            let runner = Fixture::new(name);
            // In the runtime's block_on, and in a task of it: both drive the runtime.
            let direct = rt.block_on(async { runner.0.block_on(async { 1 }) });
            let local = tokio::task::LocalSet::new();
            let r = runner.0.clone();
            let in_task = local.block_on(&rt, async move {
                tokio::task::spawn_local(async move { r.block_on(async { 1 }) })
                    .await
                    .unwrap()
            });
            for result in [direct, in_task] {
                let err = result.expect_err(name);
                assert!(err.is_would_block(), "`{name}`: {err:?}");
                let text = err.to_string();
                assert!(text.contains("tokio current_thread runtime"), "{text}");
                assert!(
                    text.contains("run_async") && text.contains("spawn_blocking"),
                    "the error says the way out: {text}"
                );
            }
            // The runner is not poisoned: from a plain thread it works.
            assert_eq!(runner.0.block_on(async { 2 }).unwrap(), 2, "`{name}`");
        }
    });
}

#[test]
fn run_async_is_the_way_out_and_the_callers_runtime_keeps_ticking() {
    within(30, || {
        let rt = current_thread();
        let runner = tokio_runner::Threaded::new(Config::new("facade")).unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let (value, during) = rt.block_on(async move {
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            });
            let before = ticks.load(Ordering::Relaxed);
            let cell = Cell::new(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                7u8
            });
            let out = runner.run_async(cell, &RunOptions::default()).await;
            let during = ticks.load(Ordering::Relaxed) - before;
            ticker.abort();
            (autoawait_core::downcast::<u8>(out.unwrap()), during)
        });
        assert_eq!(value, 7);
        // A frozen caller would tick 0 times; a 5 ms ticker over 100 ms ticks ~20.
        assert!(during >= 3, "the caller's runtime ticked {during} times");
    });
}

#[test]
fn spawn_blocking_threads_may_block_on_every_runner() {
    within(60, || {
        for flavor in ["current_thread", "multi_thread"] {
            let rt = match flavor {
                "current_thread" => current_thread(),
                _ => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap(),
            };
            for name in BLOCKING.iter().filter(|n| **n != "inline") {
                let runner = Fixture::new(name);
                let r = runner.0.clone();
                let slept = rt.block_on(async move {
                    tokio::task::spawn_blocking(move || {
                        r.block_on(async {
                            autoawait_core::sleep(Duration::from_millis(1)).await;
                            3
                        })
                    })
                    .await
                    .unwrap()
                });
                assert_eq!(
                    slept.unwrap_or_else(|e| panic!("`{name}` on {flavor}: {e}")),
                    3
                );
            }
            // tokio I/O through the tokio runners, from spawn_blocking.
            for name in ["tokio", "tokio-per-cell", "tokio-fresh"] {
                let runner = Fixture::new(name);
                let r = runner.0.clone();
                let out = rt.block_on(async move {
                    tokio::task::spawn_blocking(move || {
                        r.block_on(tokio::time::sleep(Duration::from_millis(1)))
                    })
                    .await
                    .unwrap()
                });
                out.unwrap_or_else(|e| panic!("`{name}` on {flavor}: {e}"));
            }
        }
    });
}

#[test]
fn inline_refuses_tokio_io_it_cannot_drive_instead_of_hanging() {
    within(30, || {
        let inline = Fixture::new("inline");
        // On a plain thread there is no tokio reactor to drive the timer.
        let err = inline
            .0
            .block_on(async { tokio::time::sleep(Duration::from_millis(1)).await })
            .unwrap_err();
        assert!(
            matches!(&err, RunError::WrongRuntime { needs, .. } if needs == "tokio"),
            "{err:?}"
        );
        assert!(err.to_string().contains("tokio"), "{err}");
        // Inside a `tokio` cell, blocking its thread would freeze the very reactor
        // the timer needs: refused before the cell starts.
        let tokio = Fixture::new("tokio");
        let i = inline.0.clone();
        let inside = tokio
            .0
            .block_on(async move {
                i.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await })
            })
            .unwrap();
        let err = inside.unwrap_err();
        assert!(err.is_would_block(), "{err:?}");
        // And on a current_thread runtime's own thread.
        let rt = current_thread();
        let err = rt
            .block_on(async {
                inline
                    .0
                    .block_on(async { tokio::time::sleep(Duration::from_millis(1)).await })
            })
            .unwrap_err();
        assert!(err.is_would_block(), "{err:?}");
    });
}

#[test]
fn a_private_runner_is_not_slowed_by_another_librarys_blocking_cell() {
    within(30, || {
        // Another library blocks the shared runner's thread for a while.
        let shared = autoawait_core::Registry::global().get("tokio").unwrap();
        let blocked_until = Arc::new(AtomicBool::new(false));
        let done = blocked_until.clone();
        let other = std::thread::spawn(move || {
            shared
                .block_on(async move {
                    std::thread::sleep(Duration::from_millis(400));
                    done.store(true, Ordering::SeqCst);
                })
                .unwrap();
        });
        std::thread::sleep(Duration::from_millis(20));
        // A library with a runner of its own does not wait for it.
        let mine = tokio_runner::Threaded::new(Config::new("mine").thread_name("mine-io")).unwrap();
        let thread = mine
            .block_on(async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                std::thread::current().name().map(str::to_owned)
            })
            .unwrap();
        assert!(
            !blocked_until.load(Ordering::SeqCst),
            "the private runner waited for the shared one's blocking cell"
        );
        assert_eq!(thread.as_deref(), Some("mine-io"));
        other.join().unwrap();
    });
}
