//! `async-std`: cells run with `async_std::task::block_on`, background tasks on
//! async-std's global executor.
//!
//! async-std is discontinued upstream ("use smol instead"); this runner exists for
//! code that still depends on it. Its executor and reactor are process-wide: they
//! keep running between cells, `block_on` nests, and `shutdown` cancels this
//! runner's tasks but cannot stop async-std's own threads.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_std::net::{TcpListener, TcpStream};
use autoawait_core::{
    BoxFuture, ByteStream, CancelToken, Capabilities, Cell, CellResult, EventualResult, Listener,
    ReactorId, RunError, RunOptions, Runner, RunnerFactory, RunnerInfo, Services, Strategy,
};

const INFO: RunnerInfo = RunnerInfo::new(
    "async-std",
    "async-std",
    Strategy::Threaded,
    "async-std's global executor; discontinued upstream, prefer `smol`",
)
.with_capabilities(Capabilities {
    nests: true,
    keeps_tasks: true,
    local_cells: true,
});
static STATIC_INFO: RunnerInfo = INFO;

struct AsyncStd {
    /// Marks the threads running this runner's cells, for error messages.
    reactor: ReactorId,
    stopped: AtomicBool,
    /// Cancels every task this runner spawned, at shutdown.
    tasks: CancelToken,
}

impl AsyncStd {
    fn check(&self) -> Result<(), RunError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RunError::Stopped {
                runner: INFO.name.to_string(),
            });
        }
        Ok(())
    }
}

impl Runner for AsyncStd {
    fn info(&self) -> &RunnerInfo {
        &STATIC_INFO
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        self.check()?;
        let _driving = self.reactor.enter();
        let fut = cell.into_local_future();
        if opts.is_empty() {
            async_std::task::block_on(fut)
        } else {
            async_std::task::block_on(opts.guard(fut))
        }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        self.check()?;
        let origin = cell.origin();
        let opts = RunOptions::default().cancel_token(self.tasks.clone());
        match cell.into_future() {
            Ok(fut) => {
                let (task, eventual) = EventualResult::task(origin, opts.guard(fut), None);
                drop(async_std::task::spawn(task));
                Ok(eventual)
            }
            Err(cell) => {
                // A `!Send` cell gets a blocking-pool thread of its own.
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                drop(async_std::task::spawn_blocking(move || {
                    let fut = opts.guard(cell.into_local_future());
                    let (task, eventual) = EventualResult::local_task(fut, origin, None);
                    let _ = tx.send(eventual);
                    async_std::task::block_on(task);
                }));
                rx.recv().map_err(|_| RunError::Stopped {
                    runner: INFO.name.to_string(),
                })
            }
        }
    }

    fn shutdown(&self, _grace: Duration) {
        self.stopped.store(true, Ordering::Release);
        self.tasks.cancel();
    }

    fn services(&self) -> Option<&dyn Services> {
        Some(self)
    }
}

impl Services for AsyncStd {
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
            let listener = TcpListener::bind(addr).await?;
            Ok(Box::new(AsyncStdListener(Arc::new(listener))) as Box<dyn Listener>)
        })
    }
}

struct AsyncStdListener(Arc<TcpListener>);

impl Listener for AsyncStdListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> BoxFuture<'static, io::Result<(Box<dyn ByteStream>, SocketAddr)>> {
        let listener = self.0.clone();
        Box::pin(async move {
            let (stream, peer) = listener.accept().await?;
            Ok((Box::new(stream) as Box<dyn ByteStream>, peer))
        })
    }
}

fn make() -> Result<Arc<dyn Runner>, RunError> {
    Ok(Arc::new(AsyncStd {
        reactor: ReactorId::new(&INFO.name),
        stopped: AtomicBool::new(false),
        tasks: CancelToken::new(),
    }))
}

inventory::submit! { RunnerFactory::new(INFO, make) }
