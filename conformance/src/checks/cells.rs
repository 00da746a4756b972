//! The checks of cells: values, panics, timeouts, cancels, nesting, blocking.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use autoawait_core::{CancelToken, Cell, RunError, RunOptions, RunnerExt, Strategy, WaitError};

use crate::support::{expect_unsupported, DropFlag, Fixture, YieldOnce, YieldOnceIf};
use crate::Subject;

/// A cell's value comes back, typed through `block_on`, also after it waits.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn value_comes_back(subject: &Subject) {
    let f = Fixture::new(subject);
    let out = f
        .runner
        .run(Cell::new(async { 40 + 2 }), &RunOptions::default())
        .unwrap();
    assert_eq!(*out.downcast::<i32>().unwrap(), 42);
    let typed: String = f.runner.block_on(async { "typed".to_owned() }).unwrap();
    assert_eq!(typed, "typed");
    if !f.polls_once() {
        assert_eq!(
            f.runner
                .block_on(async {
                    YieldOnce(false).await;
                    7u8
                })
                .unwrap(),
            7
        );
    }
}

/// A panic in a cell is `Panicked` with its message, never a crash, and the next cell
/// works.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn panics_are_values(subject: &Subject) {
    let f = Fixture::new(subject);
    for i in 0..1000 {
        let err = f
            .runner
            .block_on(async move {
                if i >= 0 {
                    panic!("conformance-boom {i}");
                }
            })
            .unwrap_err();
        match err {
            RunError::Panicked { message } => assert_eq!(message, format!("conformance-boom {i}")),
            other => panic!("expected Panicked, got {other:?}"),
        }
    }
    assert_eq!(f.runner.block_on(async { 1 + 1 }).unwrap(), 2);
}

/// A timeout ends the cell with `TimedOut` and drops its future: it runs no more.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn timeout_drops_the_cell(subject: &Subject) {
    let f = Fixture::new(subject);
    let dropped = Arc::new(AtomicBool::new(false));
    let log = Arc::new(AtomicUsize::new(0));
    let (flag, ticks) = (DropFlag(dropped.clone()), log.clone());
    let cell = Cell::new(async move {
        let _flag = flag;
        loop {
            ticks.fetch_add(1, Ordering::SeqCst);
            autoawait_core::sleep(Duration::from_millis(2)).await;
        }
    });
    let opts = RunOptions::default().timeout(Duration::from_millis(50));
    let result = f.runner.run(cell, &opts);
    if f.polls_once() {
        return expect_unsupported(result);
    }
    assert!(
        result.as_ref().is_err_and(RunError::is_timed_out),
        "{result:?}"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the cell future was not dropped"
    );
    let seen = log.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(log.load(Ordering::SeqCst), seen, "the cell kept running");
}

/// A cancel token fired from another thread ends the cell with `Cancelled` and drops its
/// future.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn cancel_from_another_thread(subject: &Subject) {
    let f = Fixture::new(subject);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let token = CancelToken::new();
    let trigger = token.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        trigger.cancel();
    });
    let cell = Cell::new(async move {
        let _flag = flag;
        std::future::pending::<()>().await;
    });
    let result = f
        .runner
        .run(cell, &RunOptions::default().cancel_token(token));
    canceller.join().unwrap();
    if f.polls_once() {
        return expect_unsupported(result);
    }
    assert!(
        result.as_ref().is_err_and(RunError::is_cancelled),
        "{result:?}"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the cell future was not dropped"
    );
    // The runner is not poisoned.
    assert_eq!(f.runner.block_on(async { 5 }).unwrap(), 5);
}

/// `run()` inside a cell works to any depth on a nested runner, and is `WouldDeadlock`
/// elsewhere (host: either); never a hang.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn nesting(subject: &Subject) {
    let f = Fixture::new(subject);
    let info = f.runner.info().clone();
    if f.polls_once() {
        // Nothing suspends under `sync`, so nesting it is harmless.
        let r = f.runner.clone();
        let inner = f
            .runner
            .block_on(async move { r.block_on(async { 3 }) })
            .unwrap();
        assert_eq!(inner.unwrap(), 3);
        return;
    }
    let outer = f.runner.clone();
    let result = f.runner.block_on(async move {
        // The outer cell spawns a task that the innermost future needs.
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let _task = outer.spawn(Cell::new(async move {
            autoawait_core::sleep(Duration::from_millis(10)).await;
            let _ = tx.send(3);
        }))?;
        let middle = outer.clone();
        outer.block_on(async move {
            let inner = middle.clone();
            middle.block_on(async move { inner.block_on(async move { rx.await.unwrap() }) })
        })
    });
    let result = result.unwrap().and_then(|r| r).and_then(|r| r);
    if info.capabilities.nests {
        assert_eq!(result.unwrap(), 3, "`{}` must nest to depth 3", info.name);
    } else if info.strategy == Strategy::Host {
        // Per backend: either it nests, or it refuses; it never hangs.
        assert!(
            matches!(result, Ok(3) | Err(RunError::WouldDeadlock { .. })),
            "{result:?}"
        );
    } else {
        assert!(
            result.as_ref().is_err_and(RunError::is_would_deadlock),
            "{result:?}"
        );
    }
}

/// Waiting for a task from a cell of a runner whose loop must run it is `WouldDeadlock`,
/// never a hang.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn blocking_on_the_reactor_thread(subject: &Subject) {
    let f = Fixture::new(subject);
    if f.polls_once() {
        return;
    }
    let info = f.runner.info().clone();
    let runner = f.runner.clone();
    // A cell waits for a task of its own runner.
    let waited = f
        .runner
        .block_on(async move {
            let task = runner.spawn(Cell::new(async {
                autoawait_core::sleep(Duration::from_millis(20)).await;
                9u8
            }))?;
            task.wait(Some(Duration::from_secs(20)))
                .map(autoawait_core::downcast::<u8>)
        })
        .unwrap();
    match info.strategy {
        // Tasks may run elsewhere (their own threads, other workers): waiting may work.
        _ if info.capabilities.nests => {
            assert!(
                matches!(&waited, Ok(9))
                    || waited.as_ref().is_err_and(WaitError::is_would_deadlock),
                "{waited:?}"
            );
        }
        Strategy::Host => {
            assert!(
                matches!(&waited, Ok(9))
                    || waited.as_ref().is_err_and(WaitError::is_would_deadlock),
                "{waited:?}"
            );
        }
        _ => assert!(
            waited.as_ref().is_err_and(WaitError::is_would_deadlock),
            "{waited:?}"
        ),
    }
}

/// 8 threads running 1000 cells each all get their own values.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn many_threads_at_once(subject: &Subject) {
    let f = Fixture::new(subject);
    let cells = 1000;
    let yields = !f.polls_once();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let runner = &f.runner;
            s.spawn(move || {
                for i in 0..cells {
                    let want = t * 100_000 + i;
                    let got = runner
                        .block_on(async move {
                            YieldOnceIf(yields && i % 2 == 0).await;
                            want
                        })
                        .unwrap();
                    assert_eq!(got, want);
                }
            });
        }
    });
}

/// A `!Send` cell (`Cell::local`) runs if the runner says it takes them, and is
/// `Unsupported` otherwise.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn local_cells(subject: &Subject) {
    let f = Fixture::new(subject);
    let cell = Cell::local(|| {
        let not_send = std::rc::Rc::new(21);
        async move { *not_send * 2 }
    });
    let result = f.runner.run(cell, &RunOptions::default());
    if f.runner.info().capabilities.local_cells {
        assert_eq!(*result.unwrap().downcast::<i32>().unwrap(), 42);
    } else {
        expect_unsupported(result);
    }
}
