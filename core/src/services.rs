//! [`Services`]: what a runner offers to cells, so front ends can bind builtins
//! (`sleep`, TCP) without knowing the backend.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};

use crate::BoxFuture;

/// A connected byte stream (a TCP socket) as `futures::io` traits.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// A listening socket.
pub trait Listener: Send + Sync {
    /// The address it listens on (with the port the OS picked for port 0).
    ///
    /// # Errors
    ///
    /// As the OS reports it.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Waits for the next connection.
    fn accept(&self) -> BoxFuture<'static, io::Result<(Box<dyn ByteStream>, SocketAddr)>>;
}

/// The backend services a runner offers to the cells it runs: timers and TCP on its
/// reactor. Background tasks are [`Runner::spawn`](crate::Runner::spawn); their
/// origin is inherited through [`Cell::new`](crate::Cell::new).
///
/// The futures returned must be polled under this runner: a tokio timer polled under
/// smol would fail with [`RunError::WrongRuntime`](crate::RunError::WrongRuntime).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::{Registry, RunnerExt};
///
/// let runner = Registry::global().get("inline").unwrap();
/// let sleep = runner.services().unwrap().sleep(Duration::from_millis(1));
/// runner.block_on(sleep).unwrap();
/// ```
pub trait Services: Send + Sync {
    /// Waits for `duration` on the runner's timer.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// Connects to `addr` over TCP.
    ///
    /// The default fails with [`io::ErrorKind::Unsupported`].
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn ByteStream>>> {
        let _ = addr;
        Box::pin(async { Err(no_sockets()) })
    }

    /// Listens on `addr` over TCP.
    ///
    /// The default fails with [`io::ErrorKind::Unsupported`].
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let _ = addr;
        Box::pin(async { Err(no_sockets()) })
    }
}

fn no_sockets() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this runner has no reactor for sockets; select one that has, like `tokio` or `smol`",
    )
}
