//! What the tokio runners do beyond the conformance suite: where cells run, what
//! a host runtime sees, what happens to objects of a runtime that is gone.
#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoawait_core::{Cell, EventualResult, Registry, RunError, RunOptions, Runner, RunnerExt};
use autoawait_runners::tokio_runner;
use autoawait_test_support::{thread_name, Fixture};

/// Runs `body` on its own thread and fails if it does not finish in time.
fn watchdog(body: impl FnOnce() + Send + 'static) {
    autoawait_test_support::watchdog("test-tokio", Duration::from_secs(60), body);
}

/// `attach` is process-wide: tests that depend on what is attached take turns.
static ATTACH: Mutex<()> = Mutex::new(());

fn attach_lock() -> std::sync::MutexGuard<'static, ()> {
    ATTACH.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn threaded_cells_and_tasks_run_on_the_tokio_thread() {
    watchdog(|| {
        let f = Fixture::new("tokio");
        let names =
            f.0.block_on(async {
                let task = tokio::spawn(async { thread_name() }).await.unwrap();
                (thread_name(), task)
            })
            .unwrap();
        assert_eq!(names, ("tokio".to_owned(), "tokio".to_owned()));
    });
}

#[test]
fn threaded_spawns_local_cells_from_any_thread() {
    watchdog(|| {
        let f = Fixture::new("tokio");
        let cell = Cell::local(|| {
            let not_send = std::rc::Rc::new(6);
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                *not_send * 7
            }
        });
        let task = f.0.spawn(cell).unwrap();
        let out = task.wait(Some(Duration::from_secs(20))).unwrap();
        assert_eq!(*out.downcast::<i32>().unwrap(), 42);
    });
}

#[test]
fn threaded_shutdown_from_inside_a_cell_does_not_hang() {
    watchdog(|| {
        let f = Fixture::new("tokio");
        let runner = f.0.clone();
        f.0.block_on(async move { runner.shutdown(Duration::from_secs(1)) })
            .unwrap();
        let err = f.0.block_on(async { 1 }).unwrap_err();
        assert!(err.is_stopped(), "{err:?}");
    });
}

#[test]
fn threaded_shutdown_ends_cells_in_flight_with_stopped() {
    watchdog(|| {
        let f = Fixture::new("tokio");
        let runner = f.0.clone();
        let waiting = std::thread::spawn(move || runner.block_on(std::future::pending::<()>()));
        std::thread::sleep(Duration::from_millis(50));
        f.0.shutdown(Duration::from_secs(1));
        let err = waiting.join().unwrap().unwrap_err();
        assert!(err.is_stopped(), "{err:?}");
    });
}

#[test]
fn per_cell_suspends_tokio_tasks_between_cells() {
    watchdog(|| {
        let f = Fixture::new("tokio-per-cell");
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        f.0.block_on(async move {
            tokio::spawn(async move {
                loop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        })
        .unwrap();
        let after_cell = ticks.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            after_cell,
            "ran between cells"
        );
        f.0.block_on(async { tokio::time::sleep(Duration::from_millis(30)).await })
            .unwrap();
        assert!(ticks.load(Ordering::SeqCst) > after_cell, "did not resume");
    });
}

#[test]
#[allow(clippy::async_yields_async)] // cell 1 returns a timer for cell 2
fn fresh_objects_of_an_earlier_cell_fail_clearly() {
    watchdog(|| {
        let f = Fixture::new("tokio-fresh");
        // A timer made in cell 1 and polled in cell 2 (returned, not awaited).
        let sleep =
            f.0.block_on(async { Box::pin(tokio::time::sleep(Duration::from_millis(1))) })
                .unwrap();
        let err = f.0.block_on(sleep).unwrap_err();
        assert!(err.is_wrong_runtime(), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("tokio-fresh"), "{message}");
        assert!(message.contains("shut down"), "{message}");

        // A listener bound in cell 1 and used in cell 2.
        let listener =
            f.0.block_on(async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() })
                .unwrap();
        let accepted =
            f.0.block_on(async move { listener.accept().await.map(|_| ()) })
                .unwrap();
        let err = accepted.unwrap_err();
        assert!(err.to_string().contains("shutdown"), "{err}");

        // The runner goes on.
        assert_eq!(f.0.block_on(async { 3 }).unwrap(), 3);
    });
}

#[test]
fn fresh_spawn_outside_a_cell_gets_its_own_runtime() {
    watchdog(|| {
        let f = Fixture::new("tokio-fresh");
        let task =
            f.0.spawn(Cell::new(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                thread_name()
            }))
            .unwrap();
        let out = task.wait(Some(Duration::from_secs(20))).unwrap();
        assert_eq!(*out.downcast::<String>().unwrap(), "tokio-fresh-task");
        // A task still running at shutdown is cancelled and its thread joined.
        let task = f.0.spawn(Cell::new(std::future::pending::<()>())).unwrap();
        f.0.shutdown(Duration::from_secs(1));
        assert!(task.wait(Some(Duration::from_secs(5))).is_err());
    });
}

/// A tokio current_thread runtime with timers and I/O, as a host would build it.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn runners_that_cannot_nest_refuse_inside_another_runtime() {
    watchdog(|| {
        let rt = current_thread();
        for name in ["tokio-per-cell", "tokio-fresh", "tokio-host"] {
            let f = Fixture::new(name);
            let _guard = attach_lock();
            let err = rt
                .block_on(async { f.0.block_on(async { 1 }) })
                .unwrap_err();
            // Blocking would freeze the caller's runtime; `tokio-host` may have been
            // handed that very runtime, which would then wait for itself.
            if name == "tokio-host" {
                assert!(err.is_would_deadlock(), "{name}: {err:?}");
            } else {
                assert!(err.is_would_block(), "{name}: {err:?}");
            }
        }
    });
}

#[test]
fn host_runs_on_the_multi_thread_runtime_of_the_calling_worker() {
    watchdog(|| {
        let _guard = attach_lock();
        let f = Fixture::new("tokio-host");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("host-rt")
            .enable_all()
            .build()
            .unwrap();
        let runner = f.0.clone();
        let on_worker = rt.block_on(async move {
            tokio::spawn(async move {
                runner.block_on(async {
                    // A task of the cell goes to the host's runtime.
                    tokio::spawn(async { thread_name() }).await.unwrap()
                })
            })
            .await
            .unwrap()
        });
        assert_eq!(on_worker.unwrap(), "host-rt");
    });
}

#[test]
fn host_refuses_the_thread_of_a_current_thread_host_and_run_async_works_there() {
    watchdog(|| {
        let _guard = attach_lock();
        let f = Fixture::new("tokio-host");
        let rt = current_thread();
        let err = rt
            .block_on(async { f.0.block_on(async { 1 }) })
            .unwrap_err();
        assert!(err.is_would_deadlock(), "{err:?}");
        assert!(err.to_string().contains("run_async"), "{err}");

        // The async path: the host's own loop polls the cell, tasks and timers included.
        let cell = Cell::new(async {
            let task = tokio::spawn(async { 20 });
            tokio::time::sleep(Duration::from_millis(2)).await;
            task.await.unwrap() + 22
        });
        let out = rt
            .block_on(f.0.run_async(cell, &RunOptions::default()))
            .unwrap();
        assert_eq!(*out.downcast::<i32>().unwrap(), 42);
    });
}

#[test]
fn host_hands_cells_to_an_attached_runtime_driven_elsewhere() {
    watchdog(|| {
        let _guard = attach_lock();
        let rt = current_thread();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = rt.handle().clone();
        let host = std::thread::Builder::new()
            .name("host-loop".into())
            .spawn(move || rt.block_on(stopped))
            .unwrap();
        tokio_runner::attach(handle);
        let f = Fixture::new("tokio-host");
        let out = f.0.block_on(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            thread_name()
        });
        let task = f.0.spawn(Cell::new(async { thread_name() }));
        tokio_runner::detach();
        assert_eq!(out.unwrap(), "host-loop");
        let task = task.unwrap().wait(Some(Duration::from_secs(20))).unwrap();
        assert_eq!(*task.downcast::<String>().unwrap(), "host-loop");
        stop.send(()).unwrap();
        host.join().unwrap().unwrap();
    });
}

#[test]
fn host_gives_up_on_an_attached_runtime_that_nothing_drives() {
    watchdog(|| {
        let _guard = attach_lock();
        let rt = current_thread();
        tokio_runner::attach(rt.handle().clone());
        let f = Fixture::new("tokio-host");
        let opts = RunOptions::default().timeout(Duration::from_millis(50));
        let err =
            f.0.run(Cell::new(async { 1 }), &opts)
                .map(|_| ())
                .unwrap_err();
        assert!(err.is_timed_out(), "{err:?}");
        let cancel = autoawait_core::CancelToken::new();
        let trigger = cancel.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            trigger.cancel();
        });
        let opts = RunOptions::default().cancel_token(cancel);
        let err =
            f.0.run(Cell::new(async { 1 }), &opts)
                .map(|_| ())
                .unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        canceller.join().unwrap();
        tokio_runner::detach();
    });
}

#[test]
fn host_without_a_runtime_owns_one() {
    watchdog(|| {
        let _guard = attach_lock();
        let f = Fixture::new("tokio-host");
        let worker =
            f.0.block_on(async { tokio::spawn(async { thread_name() }).await.unwrap() })
                .unwrap();
        assert_eq!(worker, "tokio-host-worker");
    });
}

#[test]
fn nested_works_from_worker_tasks_and_deep_stacks() {
    watchdog(|| {
        let f = Fixture::new("tokio-nested");
        fn depth(runner: Arc<dyn Runner>, n: u32) -> Result<u32, RunError> {
            if n == 0 {
                return Ok(0);
            }
            let inner = runner.clone();
            runner.block_on(async move {
                // The inner run needs a task this level spawned.
                let task = tokio::spawn(async move { n });
                let below = depth(inner, n - 1)?;
                Ok(below + task.await.unwrap())
            })?
        }
        assert_eq!(depth(f.0.clone(), 6).unwrap(), 21);

        // From a task on a worker, through `spawn`.
        let runner = f.0.clone();
        let task: EventualResult =
            f.0.spawn(Cell::new(async move { depth(runner, 3) }))
                .unwrap();
        let out = task.wait(Some(Duration::from_secs(20))).unwrap();
        assert_eq!(
            autoawait_core::downcast::<Result<u32, RunError>>(out).unwrap(),
            6
        );
    });
}

#[test]
fn tokio_services_under_another_runner_are_wrong_runtime() {
    watchdog(|| {
        let tokio = Fixture::new("tokio");
        let sleep = tokio.0.services().unwrap().sleep(Duration::from_millis(1));
        let inline = Registry::global().get("inline").unwrap();
        let err = inline.block_on(sleep).unwrap_err();
        match err {
            RunError::WrongRuntime { needs, .. } => assert_eq!(needs, "tokio"),
            other => panic!("expected WrongRuntime, got {other:?}"),
        }
    });
}

#[test]
fn nested_refuses_a_local_set_instead_of_panicking() {
    watchdog(|| {
        let f = Fixture::new("tokio-nested");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let err = local
            .block_on(&rt, async { f.0.block_on(async { 1 }) })
            .unwrap_err();
        assert!(err.is_would_block(), "{err:?}");
    });
}
