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
    fn accept(&self) -> BoxFuture<'static, Accepted>;
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

/// What accepting a connection gives.
pub type Accepted = io::Result<(Box<dyn ByteStream>, SocketAddr)>;

/// A [`Listener`] made of the address it listens on and a function that accepts
/// one connection: what a backend's listener becomes once its accept future owns a
/// handle to it (an `Arc`, a clone).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use autoawait_core::{AcceptFn, ByteStream, Listener};
///
/// let listener = Arc::new(std::net::TcpListener::bind("127.0.0.1:0")?);
/// let addr = listener.local_addr()?;
/// let accepting = AcceptFn::new(addr, move || {
///     let _listener = listener.clone(); // a real backend awaits its accept here
///     Box::pin(async { Err(std::io::Error::other("not in this example")) })
/// });
/// assert_eq!(accepting.local_addr()?, addr);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct AcceptFn {
    addr: SocketAddr,
    accept: Box<dyn Fn() -> BoxFuture<'static, Accepted> + Send + Sync>,
}

impl AcceptFn {
    /// A listener on `addr` whose connections `accept` waits for.
    pub fn new(
        addr: SocketAddr,
        accept: impl Fn() -> BoxFuture<'static, Accepted> + Send + Sync + 'static,
    ) -> Self {
        AcceptFn {
            addr,
            accept: Box::new(accept),
        }
    }
}

impl Listener for AcceptFn {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn accept(&self) -> BoxFuture<'static, Accepted> {
        (self.accept)()
    }
}

impl std::fmt::Debug for AcceptFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptFn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn no_sockets() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this runner has no reactor for sockets; select one that has, like `tokio` or `smol`",
    )
}
