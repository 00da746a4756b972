//! What the smol runners do beyond the conformance suite: where cells and tasks
//! run, `!Send` work, shutdown grace, and coexistence with a tokio host.
#![cfg(feature = "smol")]

use std::rc::Rc;
use std::time::Duration;

use autoawait_core::{Cell, Registry, RunError, RunOptions, RunnerExt, WaitError};
use autoawait_runners as _;
use autoawait_test_support::{thread_name, Fixture};

/// Runs `body` on its own thread and fails if it does not finish in time.
fn watchdog(body: impl FnOnce() + Send + 'static) {
    autoawait_test_support::watchdog("test-smol", Duration::from_secs(60), body);
}

/// A `!Send` cell answering 42.
fn local_cell() -> Cell {
    Cell::local(|| {
        let not_send = Rc::new(21);
        async move {
            smol::Timer::after(Duration::from_millis(1)).await;
            *not_send * 2
        }
    })
}

fn value<T: 'static>(result: autoawait_core::WaitResult) -> T {
    autoawait_core::downcast::<T>(result.unwrap())
}

#[test]
fn threaded_cells_and_tasks_run_on_the_smol_thread() {
    watchdog(|| {
        let f = Fixture::new("smol");
        let r = f.0.clone();
        let names =
            f.0.block_on(async move {
                let task = r.spawn(Cell::new(async { thread_name() }))?.await;
                Ok::<_, RunError>((thread_name(), value::<String>(task)))
            })
            .unwrap()
            .unwrap();
        assert_eq!(names, ("smol".to_owned(), "smol".to_owned()));
    });
}

#[test]
fn threaded_spawns_local_cells_from_any_thread() {
    watchdog(|| {
        let f = Fixture::new("smol");
        // From outside: the task is built on the reactor thread.
        let task = f.0.spawn(local_cell()).unwrap();
        assert_eq!(value::<i32>(task.wait(Some(Duration::from_secs(20)))), 42);
        // From a cell on the reactor thread: straight into its executor.
        let r = f.0.clone();
        let out =
            f.0.block_on(async move { r.spawn(local_cell())?.await })
                .unwrap();
        assert_eq!(value::<i32>(out), 42);
    });
}

#[test]
fn threaded_shutdown_lets_tasks_finish_within_the_grace() {
    watchdog(|| {
        let f = Fixture::new("smol");
        let finishing =
            f.0.spawn(Cell::new(async {
                smol::Timer::after(Duration::from_millis(30)).await;
                1u8
            }))
            .unwrap();
        f.0.shutdown(Duration::from_secs(10));
        assert_eq!(value::<u8>(finishing.wait(Some(Duration::ZERO))), 1);

        let f = Fixture::new("smol");
        let endless = f.0.spawn(Cell::new(std::future::pending::<()>())).unwrap();
        f.0.shutdown(Duration::from_millis(10));
        let err = endless.wait(Some(Duration::ZERO)).unwrap_err();
        assert!(
            err.as_run_error().is_some_and(RunError::is_task_dropped),
            "{err:?}"
        );
    });
}

#[test]
fn threaded_shutdown_from_inside_a_cell_does_not_hang() {
    watchdog(|| {
        let f = Fixture::new("smol");
        let r = f.0.clone();
        let first = f.0.block_on(async move { r.shutdown(Duration::ZERO) });
        assert!(matches!(first, Ok(()) | Err(RunError::Stopped { .. })));
        assert!(f.0.block_on(async {}).unwrap_err().is_stopped());
        // The fixture's shutdown joins the thread that stopped from inside.
    });
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_awaitables_under_smol_are_wrong_runtime_naming_the_runner() {
    watchdog(|| {
        for name in ["smol", "smol-per-cell", "smol-fresh", "smol-nested"] {
            let f = Fixture::new(name);
            let err =
                f.0.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await })
                    .unwrap_err();
            match &err {
                RunError::WrongRuntime { needs, runner, .. } => {
                    assert_eq!((needs.as_str(), runner.as_str()), ("tokio", name));
                }
                other => panic!("`{name}`: expected WrongRuntime, got {other:?}"),
            }
            assert!(err.to_string().contains("a tokio runner: `tokio`"), "{err}");
            // The runner is not poisoned.
            assert_eq!(f.0.block_on(async { 3 }).unwrap(), 3);
        }
    });
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("smol-test drop boom");
        }
    }
}

#[test]
fn a_destructor_that_panics_when_a_timeout_drops_the_cell_is_a_value() {
    watchdog(|| {
        let mut names = vec!["smol", "smol-per-cell", "smol-fresh", "smol-nested"];
        if cfg!(feature = "tokio") {
            names.push("smol-host");
        }
        for name in names {
            let f = Fixture::new(name);
            let cell = Cell::new(async {
                let _bomb = PanicOnDrop;
                std::future::pending::<()>().await;
            });
            let opts = RunOptions::default().timeout(Duration::from_millis(5));
            match f.0.run(cell, &opts) {
                Err(RunError::Panicked { message }) => {
                    assert_eq!(message, "smol-test drop boom", "`{name}`");
                }
                other => panic!("`{name}`: expected Panicked, got {other:?}"),
            }
            assert_eq!(f.0.block_on(async { 3 }).unwrap(), 3, "`{name}`");
        }
    });
}

#[test]
fn fresh_spawn_outside_a_cell_gets_a_thread_of_its_own() {
    watchdog(|| {
        let f = Fixture::new("smol-fresh");
        let task = f.0.spawn(Cell::new(async { thread_name() })).unwrap();
        let name = value::<String>(task.wait(Some(Duration::from_secs(20))));
        assert_eq!(name, "smol-fresh");
        let local = f.0.spawn(local_cell()).unwrap();
        assert_eq!(value::<i32>(local.wait(Some(Duration::from_secs(20)))), 42);

        let endless = f.0.spawn(Cell::new(std::future::pending::<()>())).unwrap();
        f.0.shutdown(Duration::from_secs(5));
        let err = endless.wait(Some(Duration::from_secs(20))).unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
    });
}

#[test]
fn fresh_cells_spawn_local_tasks_that_end_with_the_cell() {
    watchdog(|| {
        let f = Fixture::new("smol-fresh");
        let r = f.0.clone();
        let (done, left) =
            f.0.block_on(async move {
                let done = r.spawn(local_cell())?.await;
                let left = r.spawn(Cell::new(std::future::pending::<()>()))?;
                Ok::<_, RunError>((done, left))
            })
            .unwrap()
            .unwrap();
        assert_eq!(value::<i32>(done), 42);
        let err = left.wait(Some(Duration::ZERO)).unwrap_err();
        assert!(
            err.as_run_error().is_some_and(RunError::is_task_dropped),
            "{err:?}"
        );
    });
}

#[test]
fn local_spawns_are_refused_where_tasks_move_between_threads() {
    watchdog(|| {
        let mut names = vec!["smol-per-cell", "smol-nested"];
        if cfg!(feature = "tokio") {
            names.push("smol-host");
        }
        for name in names {
            let f = Fixture::new(name);
            match f.0.spawn(local_cell()) {
                Err(RunError::Unsupported { runner, advice, .. }) => {
                    assert_eq!(runner, name);
                    assert!(advice.runner_names().contains(&"smol"), "{advice:?}");
                }
                other => panic!("`{name}`: expected Unsupported, got {other:?}"),
            }
        }
    });
}

#[test]
fn per_cell_tasks_resume_on_whichever_thread_runs_the_next_cell() {
    watchdog(|| {
        let f = Fixture::new("smol-per-cell");
        let task = f.0.spawn(Cell::new(async { thread_name() })).unwrap();
        assert!(task.try_result().is_none(), "no cell ran yet");
        let runner = f.0.clone();
        let cell_thread = std::thread::Builder::new()
            .name("next-cell".into())
            .spawn(move || {
                runner
                    .block_on(smol::Timer::after(Duration::from_millis(5)))
                    .unwrap()
            })
            .unwrap();
        cell_thread.join().unwrap();
        assert_eq!(
            value::<String>(task.wait(Some(Duration::ZERO))),
            "next-cell"
        );
    });
}

#[test]
fn nested_runs_from_tasks_on_the_driver_thread_and_waits_from_cells() {
    watchdog(|| {
        let f = Fixture::new("smol-nested");
        let r = f.0.clone();
        // A task (ticked by the `smol-nested` thread or a cell) runs a cell.
        let task =
            f.0.spawn(Cell::new(async move {
                r.block_on(async {
                    smol::Timer::after(Duration::from_millis(1)).await;
                    5u8
                })
            }))
            .unwrap();
        let out = task.wait(Some(Duration::from_secs(20)));
        assert_eq!(value::<Result<u8, RunError>>(out).unwrap(), 5);
        // A cell may wait for a task: the `smol-nested` thread runs it.
        let r = f.0.clone();
        let waited =
            f.0.block_on(async move {
                let task = r.spawn(Cell::new(async {
                    smol::Timer::after(Duration::from_millis(5)).await;
                    thread_name()
                }))?;
                task.wait(Some(Duration::from_secs(20)))
            })
            .unwrap();
        assert_eq!(value::<String>(waited), "smol-nested");
    });
}

#[cfg(feature = "tokio")]
mod host {
    use super::*;
    use autoawait_core::EventualResult;

    #[test]
    fn host_runs_tokio_and_smol_awaitables_in_one_cell() {
        watchdog(|| {
            // Created outside any runtime: it plays the host on a `smol-host` thread.
            let f = Fixture::new("smol-host");
            let out =
                f.0.block_on(async {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    smol::Timer::after(Duration::from_millis(1)).await;
                    let joined = tokio::spawn(async { 2 }).await.unwrap();
                    (thread_name(), joined)
                })
                .unwrap();
            assert_eq!(out, ("smol-host".to_owned(), 2));
        });
    }

    #[test]
    fn host_drives_smol_from_the_runtime_it_was_created_in() {
        watchdog(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("host-worker")
                .enable_all()
                .build()
                .unwrap();
            let runner = {
                let _inside = rt.enter();
                Registry::new().get("smol-host").unwrap()
            };
            let f = Fixture(runner.clone());
            // From a plain thread: the caller blocks, the host's worker runs the cell.
            let name = f.0.block_on(async { thread_name() }).unwrap();
            assert_eq!(name, "host-worker");
            // From a worker of the host: blocks in place, the other worker drives.
            let from_worker = rt
                .block_on(rt.spawn(async move {
                    runner.block_on(async {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        7
                    })
                }))
                .unwrap();
            assert_eq!(from_worker.unwrap(), 7);
            drop(f);
            drop(rt);
        });
    }

    #[test]
    fn host_refuses_the_thread_of_a_current_thread_host_and_run_async_works_there() {
        watchdog(|| {
            let ct = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let runner = ct.block_on(async { Registry::new().get("smol-host").unwrap() });
            let f = Fixture(runner.clone());
            let (refused, awaited) = ct.block_on(async move {
                let refused = runner.block_on(async { 1 });
                let awaited = runner
                    .run_async(
                        Cell::new(async {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            2
                        }),
                        &RunOptions::default(),
                    )
                    .await;
                (refused, awaited)
            });
            assert!(refused.unwrap_err().is_would_deadlock());
            assert_eq!(value::<i32>(awaited.map_err(WaitError::Run)), 2);
            drop(f);
        });
    }

    #[test]
    fn host_of_its_own_serves_callers_on_another_current_thread_runtime() {
        watchdog(|| {
            let f = Fixture::new("smol-host");
            let ct = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let runner = f.0.clone();
            let out = ct.block_on(async move { runner.block_on(async { thread_name() }) });
            assert_eq!(out.unwrap(), "smol-host");
        });
    }

    #[test]
    fn host_whose_runtime_is_gone_is_stopped_not_hung() {
        watchdog(|| {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let runner = {
                let _inside = rt.enter();
                Registry::new().get("smol-host").unwrap()
            };
            let f = Fixture(runner);
            let task: EventualResult = f.0.spawn(Cell::new(std::future::pending::<()>())).unwrap();
            assert_eq!(f.0.block_on(async { 1 }).unwrap(), 1);
            drop(rt);
            let err = f.0.block_on(async { 1 }).unwrap_err();
            assert!(err.is_stopped(), "{err:?}");
            let err = task.wait(Some(Duration::from_secs(20))).unwrap_err();
            assert!(
                err.as_run_error().is_some_and(RunError::is_task_dropped),
                "{err:?}"
            );
        });
    }
}

/// `AUTOAWAIT_SPIN_US=0` parks at once on both sides of the hand-off: the child
/// process runs [`round_trips_child`] with it.
#[test]
fn threaded_round_trips_without_spinning() {
    watchdog(|| {
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                "round_trips_child",
                "--ignored",
                "--test-threads=1",
            ])
            .env("AUTOAWAIT_SPIN_US", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

#[test]
#[ignore = "runs in a child process started by threaded_round_trips_without_spinning"]
fn round_trips_child() {
    assert_eq!(autoawait_core::kit::default_spin(), Duration::ZERO);
    let f = Fixture::new("smol");
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let runner = &f.0;
            s.spawn(move || {
                for i in 0..500 {
                    let got = runner
                        .block_on(async move {
                            smol::future::yield_now().await;
                            t * 1000 + i
                        })
                        .unwrap();
                    assert_eq!(got, t * 1000 + i);
                }
                let task = runner.spawn(local_cell()).unwrap();
                assert_eq!(value::<i32>(task.wait(None)), 42);
            });
        }
    });
}

#[test]
fn nested_run_after_the_outer_cell_already_waited() {
    watchdog(|| {
        let f = Fixture::new("smol-nested");
        for round in 0..20 {
            let r = f.0.clone();
            let got =
                f.0.block_on(async move {
                    // The outer level has waited once: its executor ticker went to sleep.
                    smol::Timer::after(Duration::from_millis(1)).await;
                    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
                    let _task = r.spawn(Cell::new(async move {
                        for _ in 0..20 {
                            smol::Timer::after(Duration::from_micros(200)).await;
                        }
                        let _ = tx.send(round);
                    }))?;
                    r.block_on(async move { rx.await.unwrap() })
                })
                .unwrap()
                .unwrap();
            assert_eq!(got, round);
        }
    });
}
