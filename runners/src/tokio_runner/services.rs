//! The [`Services`] of every tokio runner: tokio's timer and TCP, made on first poll
//! so that they bind to the runtime that polls them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use autoawait_core::{AcceptFn, BoxFuture, ByteStream, Listener, Services};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// tokio's timer and TCP, for cells of any tokio runner.
pub(super) struct TokioServices;

pub(super) static SERVICES: TokioServices = TokioServices;

impl Services for TokioServices {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // tokio's timer ticks every millisecond, so `sleep(0)` would wait for the next
        // tick; like asyncio's `sleep(0)`, zero means "let the others run once".
        if duration.is_zero() {
            return Box::pin(tokio::task::yield_now());
        }
        Box::pin(async move { tokio::time::sleep(duration).await })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn ByteStream>>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream.compat()) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = Arc::new(tokio::net::TcpListener::bind(addr).await?);
            let accept = AcceptFn::new(listener.local_addr()?, move || {
                let listener = listener.clone();
                Box::pin(async move {
                    let (stream, peer) = listener.accept().await?;
                    stream.set_nodelay(true)?;
                    Ok((Box::new(stream.compat()) as Box<dyn ByteStream>, peer))
                })
            });
            Ok(Box::new(accept) as Box<dyn Listener>)
        })
    }
}
