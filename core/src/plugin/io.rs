//! [`Services`](crate::Services) across the ABI: byte streams and listeners of one
//! image used by the other. The same code runs on both sides (each image has its
//! copy of `autoawait-core`): `export_*` wraps a Rust object into its C form,
//! `Imported*` wraps a C form back into the Rust traits.

use std::ffi::c_void;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_ffi::{ContextExt, FfiContext, FfiFuture};
use futures_io::{AsyncRead, AsyncWrite};

use super::abi::{
    FfiAccepted, FfiBuf, FfiIoPoll, FfiIoResult, FfiListener, FfiStream, ListenerVTable,
    StreamVTable,
};
use crate::error::panic_message;
use crate::{BoxFuture, ByteStream, Listener};

fn panicked(payload: &(dyn std::any::Any + Send)) -> io::Error {
    io::Error::other(format!("panicked: {}", panic_message(payload)))
}

fn to_ffi_poll(f: impl FnOnce() -> Poll<io::Result<usize>>) -> FfiIoPoll {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Poll::Ready(Ok(n))) => FfiIoPoll::Ready(n),
        Ok(Poll::Pending) => FfiIoPoll::Pending,
        Ok(Poll::Ready(Err(e))) => FfiIoPoll::Err(e.into()),
        Err(payload) => FfiIoPoll::Err(panicked(payload.as_ref()).into()),
    }
}

fn from_ffi_poll(p: FfiIoPoll) -> Poll<io::Result<usize>> {
    match p {
        FfiIoPoll::Ready(n) => Poll::Ready(Ok(n)),
        FfiIoPoll::Pending => Poll::Pending,
        FfiIoPoll::Err(e) => Poll::Ready(Err(e.into())),
    }
}

// ---- streams ----

type Stream = Box<dyn ByteStream>;

fn stream<'a>(ctx: *mut c_void) -> Pin<&'a mut dyn ByteStream> {
    // SAFETY: `ctx` is the `Box<Stream>` made by `export_stream` in this image, used
    // by one caller at a time (the owner of the `FfiStream`) until `stream_drop`.
    let boxed = unsafe { &mut *ctx.cast::<Stream>() };
    Pin::new(&mut **boxed)
}

extern "C" fn stream_read(
    ctx: *mut c_void,
    cx: &mut FfiContext<'_>,
    buf: *mut u8,
    len: usize,
) -> FfiIoPoll {
    to_ffi_poll(|| {
        // SAFETY: the caller passes a buffer of `len` writable bytes (from a slice).
        let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        cx.with_context(|cx| stream(ctx).poll_read(cx, buf))
    })
}

extern "C" fn stream_write(
    ctx: *mut c_void,
    cx: &mut FfiContext<'_>,
    buf: *const u8,
    len: usize,
) -> FfiIoPoll {
    to_ffi_poll(|| {
        // SAFETY: the caller passes `len` readable bytes (from a slice).
        let buf = unsafe { std::slice::from_raw_parts(buf, len) };
        cx.with_context(|cx| stream(ctx).poll_write(cx, buf))
    })
}

extern "C" fn stream_flush(ctx: *mut c_void, cx: &mut FfiContext<'_>) -> FfiIoPoll {
    to_ffi_poll(|| cx.with_context(|cx| stream(ctx).poll_flush(cx).map_ok(|()| 0)))
}

extern "C" fn stream_close(ctx: *mut c_void, cx: &mut FfiContext<'_>) -> FfiIoPoll {
    to_ffi_poll(|| cx.with_context(|cx| stream(ctx).poll_close(cx).map_ok(|()| 0)))
}

extern "C" fn stream_drop(ctx: *mut c_void) {
    // SAFETY: made by `export_stream` with `Box::into_raw`; dropped once.
    let boxed = unsafe { Box::from_raw(ctx.cast::<Stream>()) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

static STREAM_VTABLE: StreamVTable = StreamVTable {
    poll_read: stream_read,
    poll_write: stream_write,
    poll_flush: stream_flush,
    poll_close: stream_close,
    drop: stream_drop,
};

/// A stream of this image, for the other.
pub(crate) fn export_stream(stream: Stream) -> FfiStream {
    FfiStream {
        ctx: Box::into_raw(Box::new(stream)).cast(),
        vtable: &STREAM_VTABLE,
    }
}

impl Drop for FfiStream {
    fn drop(&mut self) {
        (self.vtable.drop)(self.ctx);
    }
}

/// A stream of the other image, as this image's [`ByteStream`].
pub(crate) struct ImportedStream(pub(crate) FfiStream);

impl AsyncRead for ImportedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let s = &self.0;
        from_ffi_poll(
            cx.with_ffi_context(|cx| (s.vtable.poll_read)(s.ctx, cx, buf.as_mut_ptr(), buf.len())),
        )
    }
}

impl AsyncWrite for ImportedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let s = &self.0;
        from_ffi_poll(
            cx.with_ffi_context(|cx| (s.vtable.poll_write)(s.ctx, cx, buf.as_ptr(), buf.len())),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = &self.0;
        from_ffi_poll(cx.with_ffi_context(|cx| (s.vtable.poll_flush)(s.ctx, cx))).map_ok(|_| ())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = &self.0;
        from_ffi_poll(cx.with_ffi_context(|cx| (s.vtable.poll_close)(s.ctx, cx))).map_ok(|_| ())
    }
}

// ---- listeners ----

type BoxListener = Box<dyn Listener>;

fn listener<'a>(ctx: *const c_void) -> &'a dyn Listener {
    // SAFETY: `ctx` is the `Box<BoxListener>` made by `export_listener` in this
    // image, alive until `listener_drop`; `Listener` is `Sync`.
    let boxed = unsafe { &*ctx.cast::<BoxListener>() };
    &**boxed
}

extern "C" fn listener_local_addr(ctx: *const c_void) -> FfiIoResult<FfiBuf> {
    FfiIoResult::from_result(
        catch_unwind(AssertUnwindSafe(|| listener(ctx).local_addr()))
            .unwrap_or_else(|p| Err(panicked(p.as_ref())))
            .map(|a| FfiBuf::from(a.to_string())),
    )
}

extern "C" fn listener_accept(ctx: *const c_void) -> FfiFuture<FfiIoResult<FfiAccepted>> {
    match catch_unwind(AssertUnwindSafe(|| listener(ctx).accept())) {
        Ok(fut) => FfiFuture::new(async move {
            FfiIoResult::from_result(CatchIo(fut).await.map(|(stream, peer)| FfiAccepted {
                stream: export_stream(stream),
                peer: FfiBuf::from(peer.to_string()),
            }))
        }),
        Err(p) => {
            let err = panicked(p.as_ref());
            FfiFuture::new(async move { FfiIoResult::Err(err.into()) })
        }
    }
}

extern "C" fn listener_drop(ctx: *mut c_void) {
    // SAFETY: made by `export_listener` with `Box::into_raw`; dropped once.
    let boxed = unsafe { Box::from_raw(ctx.cast::<BoxListener>()) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

static LISTENER_VTABLE: ListenerVTable = ListenerVTable {
    local_addr: listener_local_addr,
    accept: listener_accept,
    drop: listener_drop,
};

/// A listener of this image, for the other.
pub(crate) fn export_listener(listener: BoxListener) -> FfiListener {
    FfiListener {
        ctx: Box::into_raw(Box::new(listener)).cast(),
        vtable: &LISTENER_VTABLE,
    }
}

impl Drop for FfiListener {
    fn drop(&mut self) {
        (self.vtable.drop)(self.ctx);
    }
}

fn parse_addr(s: FfiBuf) -> io::Result<SocketAddr> {
    let s = s.into_string();
    s.parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("address `{s}`: {e}")))
}

/// A listener of the other image, as this image's [`Listener`].
pub(crate) struct ImportedListener(pub(crate) FfiListener);

impl Listener for ImportedListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        parse_addr((self.0.vtable.local_addr)(self.0.ctx).into_result()?)
    }

    fn accept(&self) -> BoxFuture<'static, io::Result<(Box<dyn ByteStream>, SocketAddr)>> {
        let fut = (self.0.vtable.accept)(self.0.ctx);
        Box::pin(async move {
            let accepted = CatchIo(fut).await?.into_result()?;
            let peer = parse_addr(accepted.peer)?;
            Ok((
                Box::new(ImportedStream(accepted.stream)) as Box<dyn ByteStream>,
                peer,
            ))
        })
    }
}

/// Turns a panic while polling into an `io::Error` (for `Ok`-typed outputs too).
pub(crate) struct CatchIo<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchIo<F>
where
    F::Output: IntoIoResult,
{
    type Output = io::Result<<F::Output as IntoIoResult>::Ok>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(out.into_io_result()),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panicked(payload.as_ref()))),
        }
    }
}

/// Outputs [`CatchIo`] can wrap: `io::Result<T>`, or any `FfiIoResult<T>` as `Ok`.
pub(crate) trait IntoIoResult {
    type Ok;
    fn into_io_result(self) -> io::Result<Self::Ok>;
}

impl<T> IntoIoResult for io::Result<T> {
    type Ok = T;
    fn into_io_result(self) -> io::Result<T> {
        self
    }
}

impl<T> IntoIoResult for FfiIoResult<T> {
    type Ok = FfiIoResult<T>;
    fn into_io_result(self) -> io::Result<FfiIoResult<T>> {
        Ok(self)
    }
}
