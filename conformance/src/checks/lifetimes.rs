//! The checks of what outlives a cell: background tasks, shutdown, services.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoawait_core::{Cell, CellId, EventualResult, RunError, RunOptions, RunnerExt, Strategy};
use futures::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{expect_unsupported, DropFlag, Fixture};
use crate::Subject;

/// Tasks a cell spawns inherit its origin, and run between cells as the strategy says
/// (threaded, host, nested: keep running; per-cell: pause; fresh: end).
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn background_tasks_between_cells(subject: &Subject) {
    let f = Fixture::new(subject);
    let ticks = Arc::new(AtomicUsize::new(0));
    let runner = f.runner.clone();
    let counter = ticks.clone();
    // Cell 1 spawns a ticking task and returns at once.
    let spawned = f.runner.run(
        Cell::with_origin(CellId::new(1), async move {
            runner.spawn(Cell::new(async move {
                loop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    autoawait_core::sleep(Duration::from_millis(2)).await;
                }
            }))
        }),
        &RunOptions::default(),
    );
    if f.polls_once() {
        let spawned =
            autoawait_core::downcast::<Result<EventualResult, RunError>>(spawned.unwrap());
        return expect_unsupported(spawned);
    }
    let task = autoawait_core::downcast::<Result<EventualResult, RunError>>(spawned.unwrap())
        .expect("spawn from inside a cell");
    assert_eq!(task.origin(), CellId::new(1), "the task inherits its cell");

    let after_cell = ticks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    let idle = ticks.load(Ordering::SeqCst) - after_cell;
    let info = f.runner.info();
    if info.capabilities.keeps_tasks {
        assert!(
            idle > 0,
            "`{}` ({}): tasks must run between cells",
            info.name,
            info.strategy
        );
    } else {
        assert_eq!(
            idle, 0,
            "`{}` ({}): tasks must not run between cells",
            info.name, info.strategy
        );
    }

    // Cell 2 runs for a while: per-cell runners resume the task, fresh ones do not.
    let before = ticks.load(Ordering::SeqCst);
    f.runner
        .block_on(autoawait_core::sleep(Duration::from_millis(50)))
        .unwrap();
    let during = ticks.load(Ordering::SeqCst) - before;
    match info.strategy {
        Strategy::Fresh => {
            assert_eq!(during, 0, "a fresh runner must drop tasks with their cell");
            let err = task.wait(Some(Duration::from_secs(5))).unwrap_err();
            assert!(
                err.as_run_error().is_some_and(RunError::is_task_dropped),
                "{err:?}"
            );
        }
        _ => {
            assert!(
                during > 0,
                "`{}`: the task must run during the next cell",
                info.name
            );
            task.cancel();
            let err = task.wait(None).unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
        }
    }
}

/// After `shutdown` (idempotent) every `run` and `spawn` is `Stopped`.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn shutdown_stops_the_runner(subject: &Subject) {
    let f = Fixture::new(subject);
    assert_eq!(f.runner.block_on(async { 1 }).unwrap(), 1);
    f.runner.shutdown(Duration::from_secs(5));
    f.runner.shutdown(Duration::from_secs(5));
    let err = f.runner.block_on(async { 1 }).unwrap_err();
    assert!(err.is_stopped(), "{err:?}");
    assert!(f
        .runner
        .spawn(Cell::new(async {}))
        .unwrap_err()
        .is_stopped());
}

/// `shutdown` drops background tasks that would wait forever.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn shutdown_drops_background_tasks(subject: &Subject) {
    let name = subject.name();
    let f = Fixture::new(subject);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let spawned = f.runner.spawn(Cell::new(async move {
        let _flag = flag;
        std::future::pending::<()>().await;
    }));
    if f.polls_once() {
        return expect_unsupported(spawned);
    }
    let task = spawned.expect("spawn");
    std::thread::sleep(Duration::from_millis(20));
    assert!(!dropped.load(Ordering::SeqCst), "the task ended early");
    f.runner.shutdown(Duration::from_secs(2));
    let start = Instant::now();
    while !dropped.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "a background task of `{name}` outlived shutdown"
    );
    drop(task);
}

/// The runner's services sleep, spawn with the cell's origin, and carry TCP on loopback
/// (or say `Unsupported`).
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn services(subject: &Subject) {
    let name = subject.name();
    let f = Fixture::new(subject);
    let Some(services) = f.runner.services() else {
        return;
    };
    if f.polls_once() {
        return;
    }
    // sleep
    let sleep = services.sleep(Duration::from_millis(5));
    let started = Instant::now();
    f.runner.block_on(sleep).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(5));

    // spawn: a background cell whose origin is the spawning cell. The cell awaits
    // it: per-cell and fresh runners run tasks only while a cell runs.
    let runner = f.runner.clone();
    let seen = f
        .runner
        .run(
            Cell::with_origin(CellId::new(11), async move {
                runner
                    .spawn(Cell::new(async { autoawait_core::current_cell() }))?
                    .await
            }),
            &RunOptions::default(),
        )
        .map(autoawait_core::downcast::<autoawait_core::WaitResult>)
        .unwrap()
        .unwrap();
    assert_eq!(
        autoawait_core::downcast::<Option<CellId>>(seen),
        Some(CellId::new(11))
    );

    // TCP echo on loopback
    let runner = f.runner.clone();
    let echoed = f.runner.block_on(async move {
        let services = runner.services().unwrap();
        let listener = match services.listen("127.0.0.1:0".parse().unwrap()).await {
            Ok(listener) => listener,
            Err(e) => return Err(e),
        };
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
        Ok(buf)
    });
    match echoed.unwrap() {
        Ok(buf) => assert_eq!(&buf, b"ping"),
        // A runner without a reactor for sockets says so.
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
        Err(e) => panic!("TCP echo failed under `{name}`: {e}"),
    }
}
