//! Model checks (loom) of the hazardous parts: the reactor's mailbox, the reply
//! slot, and `EventualResult`'s completion, waiting and cancelling. Every
//! interleaving of the threads below is explored.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p autoawait-core --test loom --release`
#![cfg(loom)]

use std::collections::VecDeque;
use std::time::Duration;

use autoawait_core::kit::{reply, Mailbox};
use autoawait_core::{Cell, CellId, EventualResult, RunError, WaitError};
use loom::sync::Arc;
use loom::thread;

/// Two callers push while the reactor sleeps on `wait`: no job is lost, none is
/// taken twice, and the reactor is always woken.
#[test]
fn mailbox_delivers_every_job_and_never_loses_a_wakeup() {
    loom::model(|| {
        let mailbox: Arc<Mailbox<u32>> = Arc::new(Mailbox::default());
        let callers: Vec<_> = (0..2)
            .map(|i| {
                let m = mailbox.clone();
                thread::spawn(move || m.push(i).unwrap())
            })
            .collect();
        let mut seen = VecDeque::new();
        while seen.len() < 2 {
            assert!(loom::future::block_on(mailbox.wait()));
            mailbox.take(&mut seen);
        }
        for c in callers {
            c.join().unwrap();
        }
        let mut seen: Vec<u32> = seen.into_iter().collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
    });
}

/// A push racing a close is either refused or handed back by `close`: never lost.
#[test]
fn mailbox_close_hands_back_or_refuses_every_job() {
    loom::model(|| {
        let mailbox: Arc<Mailbox<u32>> = Arc::new(Mailbox::default());
        let m = mailbox.clone();
        let caller = thread::spawn(move || m.push(7).is_ok());
        let left = mailbox.close();
        let accepted = caller.join().unwrap();
        let mut late = VecDeque::new();
        mailbox.take(&mut late);
        let kept = left.len() + late.len();
        assert_eq!(
            kept,
            usize::from(accepted),
            "accepted {accepted}, kept {kept}"
        );
        // Closed and drained: the reactor's wait ends instead of sleeping forever.
        assert!(!loom::future::block_on(mailbox.wait()));
    });
}

/// The reply slot hands its value to the receiver, or `None` if the sender is
/// dropped, whatever the order of send, park and unpark.
#[test]
fn a_reply_is_received_once_or_none() {
    loom::model(|| {
        let (tx, rx) = reply::<u32>(Duration::ZERO);
        let sender = thread::spawn(move || tx.send(5));
        assert_eq!(rx.recv(), Some(5));
        sender.join().unwrap();
    });
    loom::model(|| {
        let (tx, rx) = reply::<u32>(Duration::ZERO);
        let sender = thread::spawn(move || drop(tx));
        assert_eq!(rx.recv(), None);
        sender.join().unwrap();
    });
}

/// A task completing on one thread while another waits: the waiter gets the value.
#[test]
fn eventual_result_wakes_its_waiter_with_the_value() {
    loom::model(|| {
        let (completer, eventual) = EventualResult::completer(CellId::new(1), None);
        let worker = thread::spawn(move || completer.complete(Ok(Box::new(3u8))));
        let out = eventual.wait(None).unwrap();
        assert_eq!(*out.downcast::<u8>().unwrap(), 3);
        worker.join().unwrap();
    });
}

/// `cancel` racing the task's own completion: the result is one or the other, the
/// waiter always returns, and the task's future is dropped.
#[test]
fn cancel_racing_completion_settles_once() {
    loom::model(|| {
        let cell = Cell::with_origin(CellId::new(2), async { 9u8 });
        let fut = cell.into_future().unwrap();
        let (task, eventual) = EventualResult::task(CellId::new(2), fut, None);
        let eventual = Arc::new(eventual);
        let e = eventual.clone();
        let canceller = thread::spawn(move || e.cancel());
        loom::future::block_on(task);
        canceller.join().unwrap();
        match eventual.wait(None) {
            Ok(out) => assert_eq!(*out.downcast::<u8>().unwrap(), 9),
            Err(WaitError::Run(RunError::Cancelled)) => {}
            other => panic!("neither the value nor Cancelled: {other:?}"),
        }
        assert!(eventual.is_done());
    });
}
