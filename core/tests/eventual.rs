//! EventualResult: crochet's semantics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use autoawait_core::{
    block_on_inline, Cell, CellId, EventualResult, ReactorId, Registry, RunError, Runner, WaitError,
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

#[test]
fn a_wait_that_times_out_keeps_the_result_retrievable() {
    let (completer, eventual) = EventualResult::completer(CellId::new(1), None);
    assert!(!eventual.is_done());
    assert!(eventual.try_result().is_none());
    let err = eventual.wait(Some(Duration::from_millis(10))).unwrap_err();
    assert!(matches!(err, WaitError::NotReady { .. }), "{err:?}");
    assert!(err.to_string().contains("can be waited for again"));
    completer.complete(Ok(Box::new(5u32)));
    assert!(eventual.is_done());
    let out = eventual.wait(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(*out.downcast::<u32>().unwrap(), 5);
    // The value was moved out; a second wait says so.
    assert!(matches!(eventual.wait(None), Err(WaitError::AlreadyTaken)));
}

#[test]
fn try_result_does_not_wait() {
    let task = inline().spawn(Cell::new(async { 3i64 })).unwrap();
    let out = task.wait(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(*out.downcast::<i64>().unwrap(), 3);
    let ready = EventualResult::ready(CellId::new(2), Ok(Box::new("now")));
    let out = ready.try_result().unwrap().unwrap();
    assert_eq!(*out.downcast::<&str>().unwrap(), "now");
}

#[test]
fn errors_keep_their_message_and_repeat() {
    let task = inline()
        .spawn(Cell::new(async { panic!("lost in the reactor") }))
        .unwrap();
    for _ in 0..2 {
        let err = task.wait(Some(Duration::from_secs(10))).unwrap_err();
        assert_eq!(err.to_string(), "the cell panicked: lost in the reactor");
    }
}

#[test]
fn cancel_drops_the_tasks_future() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let task = inline()
        .spawn(Cell::new(async move {
            let _flag = flag;
            std::future::pending::<()>().await
        }))
        .unwrap();
    thread::sleep(Duration::from_millis(10));
    task.cancel();
    assert!(task.is_done());
    assert!(task.wait(None).unwrap_err().is_cancelled());
    for _ in 0..1000 {
        if dropped.load(Ordering::SeqCst) {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert!(dropped.load(Ordering::SeqCst), "the future was not dropped");
}

#[test]
fn cancel_drops_a_future_nobody_polls_at_once() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let (task, eventual) = EventualResult::task(
        CellId::new(3),
        Cell::new(async move {
            let _flag = flag;
            std::future::pending::<()>().await
        })
        .into_future()
        .unwrap(),
        None,
    );
    eventual.cancel();
    assert!(dropped.load(Ordering::SeqCst));
    // The task, polled later, just ends.
    block_on_inline(task);
    assert!(eventual.wait(None).unwrap_err().is_cancelled());
}

#[test]
fn stash_and_retrieve_once() {
    let eventual = EventualResult::ready(CellId::new(4), Ok(Box::new(11u8)));
    let id = eventual.stash();
    let back = EventualResult::retrieve(id).unwrap();
    assert_eq!(*back.wait(None).unwrap().downcast::<u8>().unwrap(), 11);
    let err = EventualResult::retrieve(id).unwrap_err();
    assert!(matches!(err, WaitError::NotStashed { id: i } if i == id));
    assert!(err.to_string().contains("can be retrieved once"));
}

#[test]
fn waiting_on_the_thread_that_must_complete_the_task_is_refused() {
    let reactor = ReactorId::new("my-loop");
    let (task, eventual) = EventualResult::task(
        CellId::new(5),
        Cell::new(async { 1 }).into_future().unwrap(),
        Some(&reactor),
    );
    {
        let _driving = reactor.enter();
        let err = eventual.wait(Some(Duration::from_secs(30))).unwrap_err();
        assert!(err.is_would_deadlock(), "{err:?}");
        assert!(err.to_string().contains("`my-loop`"));
        // Once the loop completed it, the same thread may take the result.
        block_on_inline(task);
        assert_eq!(*eventual.wait(None).unwrap().downcast::<i32>().unwrap(), 1);
    }
}

#[test]
fn a_task_dropped_unfinished_says_why() {
    let reactor = ReactorId::new("tokio-fresh");
    let (task, eventual) = EventualResult::task(
        CellId::new(6),
        Cell::new(std::future::pending::<()>())
            .into_future()
            .unwrap(),
        Some(&reactor),
    );
    drop(task);
    let err = eventual.wait(None).unwrap_err();
    assert!(
        matches!(&err, WaitError::Run(RunError::TaskDropped { runner }) if runner == "tokio-fresh")
    );
}

#[test]
fn an_eventual_result_is_a_future() {
    let task = inline()
        .spawn(Cell::new(async {
            autoawait_core::sleep(Duration::from_millis(5)).await;
            "awaited"
        }))
        .unwrap();
    let out = block_on_inline(task).unwrap();
    assert_eq!(*out.downcast::<&str>().unwrap(), "awaited");
}

#[test]
fn a_failed_result_nobody_looked_at_is_reported() {
    static SEEN: Mutex<Vec<(CellId, String)>> = Mutex::new(Vec::new());
    autoawait_core::set_error_hook(|cell, err| {
        SEEN.lock().unwrap().push((cell, err.to_string()));
    });
    let origin = CellId::new(777_001);
    // Dropped after it failed.
    let failed = EventualResult::ready(
        origin,
        Err(RunError::Failed {
            message: "first".into(),
        }),
    );
    drop(failed);
    // Dropped before it failed: reported when it fails.
    let (completer, eventual) = EventualResult::completer(origin, None);
    drop(eventual);
    completer.complete(Err(RunError::Failed {
        message: "second".into(),
    }));
    // Looked at, or cancelled: not reported.
    let looked = EventualResult::ready(
        origin,
        Err(RunError::Failed {
            message: "third".into(),
        }),
    );
    let _ = looked.try_result();
    drop(looked);
    drop(EventualResult::ready(origin, Err(RunError::Cancelled)));

    let seen: Vec<String> = SEEN
        .lock()
        .unwrap()
        .iter()
        .filter(|(cell, _)| *cell == origin)
        .map(|(_, msg)| msg.clone())
        .collect();
    assert_eq!(seen, ["first", "second"]);
}
