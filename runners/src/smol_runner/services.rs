//! The [`Services`] of every smol runner: async-io timers and async-net TCP.
//!
//! They run on async-io's process-wide reactor, so they work under any executor.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use autoawait_core::{AcceptFn, BoxFuture, ByteStream, Listener, Services};
use smol::Timer;

/// async-io's timers and sockets, for cells of any smol runner.
pub(super) struct SmolServices;

pub(super) static SERVICES: SmolServices = SmolServices;

impl Services for SmolServices {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            Timer::after(duration).await;
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn ByteStream>>> {
        Box::pin(async move {
            let stream = smol::net::TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = smol::net::TcpListener::bind(addr).await?;
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
