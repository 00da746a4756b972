//! The statically linked `futures-local` runner, found through the registry.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use autoawait_core::{Cell, Registry, RunOptions, RunnerExt, Source, Strategy};
use autoawait_static_example as _;

fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    autoawait_test_support::watchdog("test-body", Duration::from_secs(20), f)
}

/// Yields to the executor once, so that other tasks run during the cell.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

#[test]
fn it_registers_through_inventory_as_built_in() {
    let registry = Registry::new();
    let row = registry
        .list()
        .into_iter()
        .find(|l| l.info.name == "futures-local")
        .expect("linked, so registered");
    assert_eq!(row.source, Source::BuiltIn);
    assert_eq!(row.info.strategy, Strategy::PerCell);
}

#[test]
fn it_runs_send_and_local_cells_on_its_thread() {
    watchdog(|| {
        let runner = Registry::new().get("futures-local").unwrap();
        let name = runner
            .block_on(async { thread::current().name().map(str::to_owned) })
            .unwrap();
        assert_eq!(name.as_deref(), Some("futures-local"));
        let cell = Cell::local(|| {
            let not_send = Rc::new(40);
            async move { *not_send + 2 }
        });
        let out = runner.run(cell, &RunOptions::default()).unwrap();
        assert_eq!(*out.downcast::<i32>().unwrap(), 42);
        let err = runner.block_on(async { panic!("boom") }).unwrap_err();
        assert!(err.is_panicked());
        let inner = runner.clone();
        let nested = runner
            .block_on(async move { inner.block_on(async { 1 }) })
            .unwrap();
        assert!(nested.unwrap_err().is_would_deadlock());
    });
}

#[test]
fn tasks_pause_between_cells_and_resume_in_the_next() {
    watchdog(|| {
        let runner = Registry::new().get("futures-local").unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let (tx, rx) = futures::channel::mpsc::unbounded::<()>();
        let task = runner
            .spawn(Cell::new(async move {
                use futures::StreamExt;
                let mut rx = rx;
                while rx.next().await.is_some() {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            }))
            .unwrap();
        tx.unbounded_send(()).unwrap();
        thread::sleep(Duration::from_millis(50));
        assert_eq!(
            count.load(Ordering::SeqCst),
            0,
            "no cell runs: the task waits"
        );
        runner.block_on(yield_now()).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1, "the next cell drove it");
        drop(tx);
        runner.block_on(yield_now()).unwrap();
        task.wait(Some(Duration::from_secs(5))).unwrap();
    });
}
