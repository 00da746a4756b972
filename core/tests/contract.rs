//! The Runner contract, checked on core's own runners: cells, errors, options,
//! the `sync` and `inline` runners, and cell origins.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use autoawait_core::{
    current_cell, in_cell, CancelToken, Cell, CellId, EventualResult, Registry, RunError,
    RunOptions, Runner, RunnerExt, Strategy,
};

fn inline() -> Arc<dyn Runner> {
    Registry::new().get("inline").unwrap()
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Pending once, waking itself.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_cell_from_a_send_future_carries_its_origin() {
    let cell = Cell::with_origin(CellId::new(4), async { 1 });
    assert_eq!(cell.origin(), CellId::new(4));
    assert!(!cell.is_local());
    // Outside of a cell, each new cell gets a fresh origin.
    assert_ne!(Cell::new(async {}).origin(), Cell::new(async {}).origin());
}

#[test]
fn a_local_cell_is_built_on_the_thread_that_polls_it() {
    let runner = inline();
    let caller = thread::current().id();
    let cell = Cell::local(move || {
        let built_on = thread::current().id();
        let rc = std::rc::Rc::new(built_on);
        async move { *rc }
    });
    assert!(cell.is_local());
    let built_on = runner.block_on_local(cell);
    assert_eq!(built_on, caller);

    // Spawned, it is built on the task's thread instead.
    let task = runner
        .spawn(Cell::local(|| {
            let rc = std::rc::Rc::new(thread::current().id());
            async move { *rc }
        }))
        .unwrap();
    let spawned_on = task.wait(Some(Duration::from_secs(10))).unwrap();
    assert_ne!(*spawned_on.downcast::<thread::ThreadId>().unwrap(), caller);
}

trait BlockOnLocal {
    fn block_on_local(&self, cell: Cell) -> thread::ThreadId;
}

impl BlockOnLocal for Arc<dyn Runner> {
    fn block_on_local(&self, cell: Cell) -> thread::ThreadId {
        *self
            .run(cell, &RunOptions::default())
            .unwrap()
            .downcast()
            .unwrap()
    }
}

#[test]
fn a_panicking_local_factory_is_a_value() {
    let err = inline()
        .run(
            Cell::local(|| -> std::future::Ready<()> { panic!("factory boom") }),
            &RunOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(&err, RunError::Panicked { message } if message == "factory boom"));
}

#[test]
fn block_on_is_typed_on_dyn_runner() {
    let runner: Arc<dyn Runner> = inline();
    let v: Vec<u8> = runner.block_on(async { vec![1, 2] }).unwrap();
    assert_eq!(v, [1, 2]);
    let s = runner
        .block_on_with(async { "x" }, &RunOptions::default())
        .unwrap();
    assert_eq!(s, "x");
}

#[test]
fn a_panicking_cell_is_a_value_and_the_next_cell_works() {
    let runner = inline();
    let err = runner
        .block_on(async {
            YieldOnce(false).await;
            panic!("cell {} failed", 3)
        })
        .unwrap_err();
    assert!(err.is_panicked());
    assert_eq!(err.to_string(), "the cell panicked: cell 3 failed");
    assert_eq!(runner.block_on(async { 2 }).unwrap(), 2);
}

#[test]
fn a_timeout_drops_the_cell() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let opts = RunOptions::default().timeout(Duration::from_millis(20));
    let err = inline()
        .run(
            Cell::new(async move {
                let _flag = flag;
                std::future::pending::<()>().await
            }),
            &opts,
        )
        .unwrap_err();
    assert!(matches!(err, RunError::TimedOut { after } if after == Duration::from_millis(20)));
    assert!(dropped.load(Ordering::SeqCst));
    assert!(err.to_string().contains("did not finish within 20ms"));
}

#[test]
fn a_cancel_token_fired_from_another_thread_stops_the_cell() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let token = CancelToken::new();
    let trigger = token.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        trigger.cancel();
    });
    let err = inline()
        .run(
            Cell::new(async move {
                let _flag = flag;
                std::future::pending::<()>().await
            }),
            &RunOptions::default().cancel_token(token.clone()),
        )
        .unwrap_err();
    t.join().unwrap();
    assert!(err.is_cancelled());
    assert!(dropped.load(Ordering::SeqCst));
    assert!(token.is_cancelled());
    // A cancelled token cancels the next cell at once; a new token does not.
    let again = inline().run(
        Cell::new(async {}),
        &RunOptions::default().cancel_token(token),
    );
    assert!(again.unwrap_err().is_cancelled());
    let fresh = RunOptions::default().cancel_token(CancelToken::new());
    assert!(inline().run(Cell::new(async {}), &fresh).is_ok());
}

#[test]
fn sync_polls_once_and_explains_when_a_cell_waits() {
    let sync = Registry::new().get("sync").unwrap();
    assert_eq!(sync.info().strategy, Strategy::Fresh);
    assert_eq!(sync.block_on(async { 5 }).unwrap(), 5);
    let err = sync.block_on(YieldOnce(false)).unwrap_err();
    assert!(err.is_unsupported());
    let msg = err.to_string();
    assert!(msg.contains("polls only once"), "{msg}");
    assert!(msg.contains("`tokio`"), "{msg}");
    assert!(
        !msg.contains("%autoawait"),
        "library errors speak Rust: {msg}"
    );
    assert!(sync
        .spawn(Cell::new(YieldOnce(false)))
        .unwrap_err()
        .is_unsupported());
    let ready = sync.spawn(Cell::new(async { 1u8 })).unwrap();
    assert!(ready.is_done());
}

#[test]
fn inline_parks_between_wakeups_and_nests() {
    let runner = inline();
    let r = runner.clone();
    let out = runner
        .block_on(async move {
            autoawait_core::sleep(Duration::from_millis(5)).await;
            r.block_on(async {
                YieldOnce(false).await;
                3
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!(out, 3);
    let woken_elsewhere = runner
        .block_on(async {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let waker = WakeFromThread {
                rx: Some(rx),
                started: false,
            };
            let t = thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                tx.send(()).unwrap();
            });
            waker.await;
            t.join().unwrap();
            true
        })
        .unwrap();
    assert!(woken_elsewhere);
}

/// Ready once the sender sent; woken by a helper thread.
struct WakeFromThread {
    rx: Option<std::sync::mpsc::Receiver<()>>,
    started: bool,
}

impl Future for WakeFromThread {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.started {
            return Poll::Ready(());
        }
        self.started = true;
        let rx = self.rx.take().unwrap();
        let waker = cx.waker().clone();
        thread::spawn(move || {
            rx.recv().unwrap();
            waker.wake();
        });
        Poll::Pending
    }
}

#[test]
fn current_cell_follows_tasks_to_other_threads() {
    let runner = inline();
    let r = runner.clone();
    let cell = Cell::with_origin(CellId::new(9), async move {
        assert_eq!(current_cell(), Some(CellId::new(9)));
        // A task spawned by the cell runs on another thread, with the cell's origin,
        // and so does a task that task spawns.
        let inner = r.clone();
        let task = r.spawn(Cell::new(async move {
            let here = current_cell();
            let grandchild = inner
                .spawn(Cell::new(async {
                    (thread::current().id(), current_cell())
                }))
                .unwrap();
            (here, thread::current().id(), grandchild)
        }))?;
        Ok::<_, RunError>(task)
    });
    let task = autoawait_core::downcast::<Result<EventualResult, RunError>>(
        runner.run(cell, &RunOptions::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(task.origin(), CellId::new(9));
    let (seen, thread_id, grandchild) =
        autoawait_core::downcast::<(Option<CellId>, thread::ThreadId, EventualResult)>(
            task.wait(Some(Duration::from_secs(10))).unwrap(),
        );
    assert_eq!(seen, Some(CellId::new(9)));
    assert_ne!(thread_id, thread::current().id());
    let (_, seen) = autoawait_core::downcast::<(thread::ThreadId, Option<CellId>)>(
        grandchild.wait(Some(Duration::from_secs(10))).unwrap(),
    );
    assert_eq!(seen, Some(CellId::new(9)));
    assert_eq!(current_cell(), None);
}

#[test]
fn in_cell_sets_the_origin_while_polled_only() {
    let fut = in_cell(CellId::new(2), async {
        let first = current_cell();
        YieldOnce(false).await;
        (first, current_cell())
    });
    assert_eq!(current_cell(), None);
    let (a, b) = autoawait_core::block_on_inline(fut);
    assert_eq!((a, b), (Some(CellId::new(2)), Some(CellId::new(2))));
    assert_eq!(current_cell(), None);
}

#[test]
fn run_async_lets_an_async_host_await_a_cell() {
    let runner = inline();
    let fut = runner.run_async(Cell::new(async { 8u16 }), &RunOptions::default());
    let out = autoawait_core::block_on_inline(fut).unwrap();
    assert_eq!(*out.downcast::<u16>().unwrap(), 8);
    let slow = runner.run_async(
        Cell::new(std::future::pending::<()>()),
        &RunOptions::default().timeout(Duration::from_millis(10)),
    );
    assert!(autoawait_core::block_on_inline(slow)
        .unwrap_err()
        .is_timed_out());
}

#[test]
fn core_knows_no_backend_panic_texts() {
    // tokio's translator lives in autoawait-runners; this test binary links only core.
    let err = RunError::from_panic(Box::new(
        "there is no reactor running, must be called from the context of a Tokio 1.x runtime",
    ));
    assert!(err.is_panicked(), "{err:?}");
}

#[test]
fn errors_say_what_to_do() {
    let deadlock = RunError::would_deadlock("tokio", "run() from inside a cell");
    let text = deadlock.to_string();
    assert!(
        text.contains("a re-entrant runner: `tokio-nested`"),
        "{text}"
    );
    assert!(
        !text.contains("%autoawait"),
        "library errors speak Rust: {text}"
    );
    let advice = deadlock.advice().unwrap();
    assert_eq!(advice.runner_names(), ["tokio-nested", "smol-nested"]);
    // A refusing runner is never its own way out.
    let nested = RunError::would_deadlock("tokio-nested", "run() inside a runtime");
    assert_eq!(nested.advice().unwrap().runner_names(), ["smol-nested"]);
    assert!(RunError::Stopped {
        runner: "smol".into()
    }
    .to_string()
    .contains("use another runner"));
    assert!(RunError::local_unsupported("tokio-host")
        .to_string()
        .contains("`!Send`"));
    let panicked = RunError::from_panic(Box::new(String::from("owned message")));
    assert_eq!(panicked.to_string(), "the cell panicked: owned message");
    let opaque = RunError::from_panic(Box::new(17u8));
    assert!(opaque.to_string().contains("non-string panic payload"));
}
