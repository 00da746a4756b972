//! `async-std`: a reactor thread running `async_std::task::block_on`, background
//! tasks on async-std's global executor.
//!
//! async-std is discontinued upstream ("use smol instead"); this runner exists for
//! code that still depends on it. It is threaded, as its row in the strategy table
//! says: cells are handed to a thread named `async-std` and polled there (so
//! `run()` from inside a cell is `WouldDeadlock`, and `!Send` cells work); tasks
//! spawned with [`Runner::spawn`] run on async-std's global executor and keep
//! running between cells. `shutdown` stops the thread and cancels this runner's
//! tasks; async-std's own executor and reactor threads are process-wide and stay.
//!
//! # Examples
//!
//! ```
//! use autoawait_core::kit::Config;
//! use autoawait_core::RunnerExt;
//! use autoawait_runners::async_std_runner::AsyncStd;
//!
//! let runner = AsyncStd::new(Config::new("async-std"))?;
//! let slept = runner.block_on(async {
//!     async_std::task::sleep(std::time::Duration::from_millis(1)).await;
//!     "slept"
//! })?;
//! assert_eq!(slept, "slept");
//! # Ok::<(), autoawait_core::RunError>(())
//! ```

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_std::net::{TcpListener, TcpStream};
use autoawait_core::kit::prelude::*;
use autoawait_core::{AcceptFn, ByteStream, CancelToken, Listener, RunnerFactory};
use futures::stream::{FuturesUnordered, StreamExt};

const INFO: RunnerInfo = RunnerInfo::new(
    "async-std",
    "async-std",
    Strategy::Threaded,
    "async-std on its own thread, tasks on its global executor; discontinued upstream, prefer `smol`",
);

/// Work for the runner's thread.
enum Job {
    /// Poll a cell there and send its result back.
    Run {
        cell: Cell,
        opts: RunOptions,
        reply: ReplySender<CellResult>,
    },
    /// Build the task of a `!Send` cell there; send its handle back.
    SpawnLocal {
        cell: Cell,
        reply: ReplySender<EventualResult>,
    },
    Stop,
}

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// `async-std`: see the [module docs](self).
pub struct AsyncStd {
    life: Lifecycle,
    config: Config,
    mailbox: Arc<Mailbox<Job>>,
    /// Cancels every task this runner spawned, at shutdown.
    tasks: CancelToken,
}

impl AsyncStd {
    /// Starts the runner's thread.
    ///
    /// # Errors
    ///
    /// If the thread cannot start.
    pub fn new(config: Config) -> Result<Self, RunError> {
        let life = Lifecycle::new(INFO, &config);
        let reactor = life.reactor();
        let mailbox: Arc<Mailbox<Job>> = Arc::default();
        let jobs = mailbox.clone();
        life.spawn(&config.thread_name, move || {
            let _driving = reactor.enter();
            async_std::task::block_on(drive(&jobs, reactor));
            drop(jobs.close());
        })?;
        Ok(AsyncStd {
            life,
            config,
            mailbox,
            tasks: CancelToken::new(),
        })
    }

    fn push(&self, job: Job) -> Result<(), RunError> {
        self.mailbox.push(job).map_err(|_| self.life.stopped())
    }
}

/// The thread's loop: polls its cells (and `!Send` tasks) as they progress and
/// takes new ones from the mailbox, until asked to stop. Cells in flight are
/// dropped with it.
async fn drive(mailbox: &Mailbox<Job>, reactor: ReactorId) {
    let mut cells: FuturesUnordered<LocalFuture> = FuturesUnordered::new();
    let mut jobs = VecDeque::new();
    poll_fn(|cx| loop {
        while let Poll::Ready(Some(())) = cells.poll_next_unpin(cx) {}
        match Pin::new(&mut mailbox.wait()).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(false) => return Poll::Ready(()),
            Poll::Ready(true) => {}
        }
        mailbox.take(&mut jobs);
        for job in jobs.drain(..) {
            match job {
                Job::Stop => return Poll::Ready(()),
                Job::Run { cell, opts, reply } => {
                    let fut = opts.guard(cell.into_local_future());
                    cells.push(Box::pin(async move { reply.send(fut.await) }));
                }
                Job::SpawnLocal { cell, reply } => {
                    let origin = cell.origin();
                    let fut = cell.into_local_future();
                    let (task, eventual) = EventualResult::local_task(origin, fut, Some(&reactor));
                    cells.push(Box::pin(task));
                    reply.send(eventual);
                }
            }
        }
    })
    .await;
}

impl Runner for AsyncStd {
    fn info(&self) -> &RunnerInfo {
        self.life.info()
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.life.check_run()?;
        let (tx, rx) = reply(self.config.spin);
        let opts = opts.clone();
        self.push(Job::Run {
            cell,
            opts,
            reply: tx,
        })?;
        rx.recv().unwrap_or_else(|| Err(self.life.lost()))
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.life.check()?;
        let origin = cell.origin();
        let reactor = self.life.reactor();
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        match cell.into_future() {
            Ok(fut) => {
                let (task, eventual) =
                    EventualResult::task(origin, opts.guard(fut), Some(&reactor));
                drop(async_std::task::spawn(task));
                Ok(eventual)
            }
            Err(cell) => {
                let (tx, rx) = reply(self.config.spin);
                self.push(Job::SpawnLocal { cell, reply: tx })?;
                rx.recv().ok_or_else(|| self.life.lost())
            }
        }
    }

    fn shutdown(&self, grace: Duration) {
        self.life.stop();
        self.tasks.cancel();
        let _ = self.mailbox.push(Job::Stop);
        // From a cell, the thread cannot join itself: it ends after that cell.
        self.life.join(grace);
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(&AsyncStdServices)
    }
}

/// async-std's timers and sockets.
struct AsyncStdServices;

impl Services for AsyncStdServices {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async_std::task::sleep(duration))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn ByteStream>>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = Arc::new(TcpListener::bind(addr).await?);
            let accept = AcceptFn::new(listener.local_addr()?, move || {
                let listener = listener.clone();
                Box::pin(async move {
                    let (stream, peer) = listener.accept().await?;
                    Ok((Box::new(stream) as Box<dyn ByteStream>, peer))
                })
            });
            Ok(Box::new(accept) as Box<dyn Listener>)
        })
    }
}

runner_traits!(AsyncStd);

inventory::submit! {
    RunnerFactory::new(INFO, || Ok(Arc::new(AsyncStd::new(Config::new("async-std"))?)))
}
