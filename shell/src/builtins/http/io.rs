//! A runner's byte stream (futures-io) as hyper's I/O.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use autoawait_core::ByteStream;
use futures_io::{AsyncRead, AsyncWrite};

/// A connection to a server: plain TCP from the runner's services, or TLS over it,
/// and the buffer reads go through (filling hyper's uninitialised one needs unsafe).
pub(crate) struct Io {
    stream: Box<dyn ByteStream>,
    chunk: Vec<u8>,
}

impl Io {
    pub(crate) fn new(stream: Box<dyn ByteStream>) -> Self {
        Io {
            stream,
            chunk: vec![0; 16 * 1024],
        }
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let room = buf.remaining().min(this.chunk.len());
        match Pin::new(&mut this.stream).poll_read(cx, &mut this.chunk[..room]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&this.chunk[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
