//! `twisted-host`: the reactor turned by the host's own loop, with no thread of its
//! own (Twisted's `asyncioreactor`, without a second reactor to install).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use autoawait_core::{
    Advice, Capabilities, Cell, CellResult, EventualResult, Hosted, ReactorId, RunError,
    RunOptions, Runner, RunnerInfo, Services, Strategy,
};

use crate::reactor::{Phase, Reactor};
use crate::TwistedServices;

/// The hosted runner's info.
pub const TWISTED_HOST: RunnerInfo = RunnerInfo::new(
    "twisted-host",
    "twisted",
    Strategy::Host,
    "the reactor turned by the host's own loop (tokio-host's), no thread of its own; \
     `twisted` and `twisted-host` hand the one reactor back and forth, timers and tasks \
     intact",
)
.with_capabilities(Capabilities {
    local_cells: false,
    ..Capabilities::of(Strategy::Host)
});

/// `twisted-host`. A host with a loop ([`autoawait_core::HostLoop`]) turns the
/// reactor through [`Hosted`] and runs the cells itself; `run` here is for a host
/// without one: the calling thread turns the reactor until the cell is done.
pub(crate) struct HostDriven {
    info: RunnerInfo,
    id: ReactorId,
    /// Cancels this instance's background tasks at shutdown.
    tasks: autoawait_core::CancelToken,
    stopped: AtomicBool,
}

impl HostDriven {
    pub(crate) fn new() -> Self {
        HostDriven {
            info: TWISTED_HOST,
            id: ReactorId::new("twisted-host"),
            tasks: autoawait_core::CancelToken::new(),
            stopped: AtomicBool::new(false),
        }
    }

    /// The reactor, on the host's loop from now on.
    fn attach(&self) -> Result<&'static Reactor, RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RunError::Stopped {
                runner: TWISTED_HOST.name.to_string(),
            });
        }
        let reactor = Reactor::global();
        reactor.host().map_err(|phase| RunError::NotRestartable {
            runner: TWISTED_HOST.name.to_string(),
            reason: match phase {
                Phase::Stopped => "the reactor of this process already ran for a \
                                   `twisted-per-cell` cell and stopped, and Twisted's \
                                   reactor cannot be started again"
                    .into(),
                _ => "the reactor is running a `twisted-per-cell` cell".into(),
            },
            advice: Advice::default().or("restart the process"),
        })?;
        Ok(reactor)
    }
}

impl Runner for HostDriven {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        let reactor = Reactor::global();
        if self.id.is_current() || reactor.is_reactor_thread() {
            return Err(RunError::would_deadlock(
                &TWISTED_HOST.name,
                "run() from inside a cell of this runner",
            ));
        }
        let reactor = self.attach()?;
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&TWISTED_HOST.name))?;
        let (task, eventual) = EventualResult::task(origin, opts.guard(fut), Some(&self.id));
        let (done, finished) = mpsc::channel();
        reactor.spawn(async move {
            task.await;
            let _ = done.send(());
        });
        // This thread is the host's loop until the cell is done.
        loop {
            match finished.try_recv() {
                Ok(()) | Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if !reactor.turn_hosted(Duration::from_secs(60)) {
                // `twisted` took the reactor back meanwhile: its thread finishes it.
                let _ = finished.recv();
                break;
            }
        }
        match eventual.try_result() {
            Some(result) => result.map_err(|e| match e {
                autoawait_core::WaitError::Run(e) => e,
                other => RunError::Failed {
                    message: other.to_string(),
                },
            }),
            None => Err(RunError::TaskDropped {
                runner: TWISTED_HOST.name.to_string(),
            }),
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let reactor = self.attach()?;
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&TWISTED_HOST.name))?;
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        let (task, eventual) = EventualResult::task(origin, opts.guard(fut), Some(&self.id));
        reactor.spawn(task);
        Ok(eventual)
    }

    /// As `twisted`'s: a host's task that reports its result itself.
    fn submit(&self, cell: Cell) -> Result<(), RunError> {
        let reactor = self.attach()?;
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&TWISTED_HOST.name))?;
        reactor.spawn(async move {
            let _ = fut.await;
        });
        Ok(())
    }

    fn shutdown(&self, grace: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.tasks.cancel();
        let reactor = Reactor::global();
        if !reactor.is_hosted() || reactor.is_reactor_thread() {
            return;
        }
        reactor.drain(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&TwistedServices)
    }

    fn hosted(&self) -> Option<&dyn Hosted> {
        Some(self)
    }
}

impl Hosted for HostDriven {
    fn attach(&self) -> Result<(), RunError> {
        HostDriven::attach(self).map(drop)
    }

    fn fd(&self) -> std::io::Result<OwnedFd> {
        Reactor::global().fd()
    }

    fn next_turn(&self) -> Option<Duration> {
        Reactor::global().next_turn()
    }

    fn turn(&self, max_wait: Duration) -> bool {
        Reactor::global().turn_hosted(max_wait)
    }
}
