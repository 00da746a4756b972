//! `tokio-host` as a [`HostLoop`](autoawait_core::HostLoop): a hosted reactor
//! turned by a task on the host's runtime, woken by its descriptor (through
//! `AsyncFd`) or by its next deadline.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use autoawait_core::{Hosted, RunError};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::Handle;

/// Watches a descriptor of the reactor's for readability. The `AsyncFd` owns it:
/// it stays open for as long as it is registered, which is what tokio asks of the
/// deprecated safe constructor (made `unsafe` for descriptors borrowed from
/// elsewhere, tokio#8587).
fn watch(reactor: &dyn Hosted) -> std::io::Result<AsyncFd<OwnedFd>> {
    #[allow(deprecated)]
    AsyncFd::with_interest(reactor.fd()?, Interest::READABLE)
}

/// Tells the reactor that nothing drives it any more if the task is dropped
/// unfinished (its runtime shut down).
struct Detach(Option<Arc<dyn Hosted>>);

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(reactor) = self.0.take() {
            reactor.detached();
        }
    }
}

/// Starts the task that drives `reactor` on `runtime`.
pub(super) fn drive(runtime: &Handle, reactor: Arc<dyn Hosted>) -> Result<(), RunError> {
    let first = {
        let _in_runtime = runtime.enter();
        watch(&*reactor).map_err(RunError::backend)?
    };
    runtime.spawn(async move {
        let mut detach = Detach(Some(reactor.clone()));
        let mut watched = Some(first);
        loop {
            let Some(fd) = watched.take().or_else(|| watch(&*reactor).ok()) else {
                return;
            };
            if !turn_until_released(&*reactor, &fd).await {
                return;
            }
            // Unwatched before the reactor hears it was let go: the next driver
            // registers the same descriptor.
            drop(fd);
            if reactor.release() {
                detach.0 = None;
                return;
            }
        }
    });
    Ok(())
}

/// Turns `reactor` whenever `fd` is readable or its deadline comes, until a turn
/// says it is no longer hosted (`true`) or the runtime shuts down (`false`).
async fn turn_until_released(reactor: &dyn Hosted, fd: &AsyncFd<OwnedFd>) -> bool {
    // Readiness is cleared before a turn, never after: an event that comes during
    // the turn makes the descriptor ready again for the next one.
    while reactor.turn(Duration::ZERO) {
        let wait = reactor.next_turn();
        if wait == Some(Duration::ZERO) {
            tokio::task::yield_now().await;
            continue;
        }
        let mut deadline = std::pin::pin!(wait.map(tokio::time::sleep));
        let woken = std::future::poll_fn(|cx| {
            match fd.poll_read_ready(cx) {
                Poll::Ready(Ok(mut guard)) => {
                    guard.clear_ready();
                    return Poll::Ready(true);
                }
                Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Pending => {}
            }
            match deadline.as_mut().as_pin_mut().map(|d| d.poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(true),
                _ => Poll::Pending,
            }
        })
        .await;
        if !woken {
            return false;
        }
    }
    true
}
