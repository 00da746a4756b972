//! [`Services`](autoawait_core::Services) across the ABI: byte streams and listeners
//! of one image used by the other. The same code runs on both sides (each image has
//! its copy of this crate): `export_*` wraps a Rust object into its C form,
//! `Imported*` wraps a C form back into the Rust traits, after checking every
//! function pointer it will call.

use std::ffi::c_void;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_ffi::{ContextExt, FfiContext, FfiFuture};
use autoawait_core::{panic_text, BoxFuture, ByteStream, Listener};
use futures_io::{AsyncRead, AsyncWrite};

use crate::abi::{
    FfiAccepted, FfiBuf, FfiIoPoll, FfiIoResult, FfiListener, FfiStream, ListenerVTable, PollFn,
    StreamVTable,
};

fn panicked(payload: &(dyn std::any::Any + Send)) -> io::Error {
    io::Error::other(format!("panicked: {}", panic_text(payload)))
}

fn broken(what: &str) -> io::Error {
    io::Error::other(format!(
        "the plugin handed over a {what} with a missing function; it is broken"
    ))
}

fn to_ffi_poll(f: impl FnOnce() -> Poll<io::Result<usize>>) -> FfiIoPoll {
    match crate::caught(f) {
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

// ---- streams, exported ----

type Stream = Box<dyn ByteStream>;

/// # Safety
///
/// `ctx` is the `Box<Stream>` made by [`export_stream`] in this image, used by one
/// caller at a time (the owner of the `FfiStream`) until `stream_drop`.
unsafe fn stream<'a>(ctx: *mut c_void) -> Pin<&'a mut dyn ByteStream> {
    // SAFETY: as the function's contract says.
    let boxed = unsafe { &mut *ctx.cast::<Stream>() };
    Pin::new(&mut **boxed)
}

/// # Safety
///
/// `ctx` as for [`stream`]; `buf` points to `len` writable bytes.
unsafe extern "C" fn stream_read(
    ctx: *mut c_void,
    cx: &mut FfiContext<'_>,
    buf: *mut u8,
    len: usize,
) -> FfiIoPoll {
    to_ffi_poll(|| {
        // SAFETY: the caller passes a buffer of `len` writable bytes (from a slice).
        let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        // SAFETY: `ctx` is our stream (the function's contract).
        cx.with_context(|cx| unsafe { stream(ctx) }.poll_read(cx, buf))
    })
}

/// # Safety
///
/// `ctx` as for [`stream`]; `buf` points to `len` readable bytes.
unsafe extern "C" fn stream_write(
    ctx: *mut c_void,
    cx: &mut FfiContext<'_>,
    buf: *const u8,
    len: usize,
) -> FfiIoPoll {
    to_ffi_poll(|| {
        // SAFETY: the caller passes `len` readable bytes (from a slice).
        let buf = unsafe { std::slice::from_raw_parts(buf, len) };
        // SAFETY: `ctx` is our stream (the function's contract).
        cx.with_context(|cx| unsafe { stream(ctx) }.poll_write(cx, buf))
    })
}

/// # Safety
///
/// `ctx` as for [`stream`].
unsafe extern "C" fn stream_flush(ctx: *mut c_void, cx: &mut FfiContext<'_>) -> FfiIoPoll {
    // SAFETY: `ctx` is our stream (the function's contract).
    to_ffi_poll(|| cx.with_context(|cx| unsafe { stream(ctx) }.poll_flush(cx).map_ok(|()| 0)))
}

/// # Safety
///
/// `ctx` as for [`stream`].
unsafe extern "C" fn stream_close(ctx: *mut c_void, cx: &mut FfiContext<'_>) -> FfiIoPoll {
    // SAFETY: `ctx` is our stream (the function's contract).
    to_ffi_poll(|| cx.with_context(|cx| unsafe { stream(ctx) }.poll_close(cx).map_ok(|()| 0)))
}

/// # Safety
///
/// `ctx` was made by [`export_stream`] with `Box::into_raw`, and is dropped once.
unsafe extern "C" fn stream_drop(ctx: *mut c_void) {
    // SAFETY: as the function's contract says.
    let boxed = unsafe { Box::from_raw(ctx.cast::<Stream>()) };
    let _ = crate::caught(move || drop(boxed));
}

static STREAM_VTABLE: StreamVTable = StreamVTable {
    poll_read: Some(stream_read),
    poll_write: Some(stream_write),
    poll_flush: Some(stream_flush),
    poll_close: Some(stream_close),
    drop: Some(stream_drop),
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
        // SAFETY: a non-null vtable is static data of the image that made the stream.
        let drop = unsafe { self.vtable.as_ref() }.and_then(|v| v.drop);
        if let Some(drop) = drop {
            // SAFETY: `drop` frees `ctx`, from the same image; a stream is dropped once.
            unsafe { drop(self.ctx) };
        }
    }
}

// ---- streams, imported ----

/// The functions of a stream of the other image, each checked non-null.
#[derive(Clone, Copy)]
struct StreamFns {
    read: unsafe extern "C" fn(*mut c_void, &mut FfiContext<'_>, *mut u8, usize) -> FfiIoPoll,
    write: unsafe extern "C" fn(*mut c_void, &mut FfiContext<'_>, *const u8, usize) -> FfiIoPoll,
    flush: PollFn,
    close: PollFn,
}

/// A stream of the other image, as this image's [`ByteStream`].
pub(crate) struct ImportedStream {
    fns: StreamFns,
    /// Owns the stream: freed through its vtable when dropped.
    ffi: FfiStream,
}

impl ImportedStream {
    /// Checks every function of `ffi`'s vtable.
    pub(crate) fn new(ffi: FfiStream) -> io::Result<Self> {
        // SAFETY: a non-null vtable is static data of the image that made the stream.
        let vtable = unsafe { ffi.vtable.as_ref() }.ok_or_else(|| broken("stream"))?;
        let fns = (|| {
            Some(StreamFns {
                read: vtable.poll_read?,
                write: vtable.poll_write?,
                flush: vtable.poll_flush?,
                close: vtable.poll_close?,
            })
        })()
        .ok_or_else(|| broken("stream"))?;
        Ok(ImportedStream { fns, ffi })
    }
}

impl AsyncRead for ImportedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let (read, ctx) = (self.fns.read, self.ffi.ctx);
        // SAFETY: `read` is the stream's own function (checked), given its `ctx` and a
        // buffer of `buf.len()` writable bytes.
        from_ffi_poll(
            cx.with_ffi_context(|cx| unsafe { read(ctx, cx, buf.as_mut_ptr(), buf.len()) }),
        )
    }
}

impl AsyncWrite for ImportedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let (write, ctx) = (self.fns.write, self.ffi.ctx);
        // SAFETY: as for `poll_read`, with `buf.len()` readable bytes.
        from_ffi_poll(cx.with_ffi_context(|cx| unsafe { write(ctx, cx, buf.as_ptr(), buf.len()) }))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (flush, ctx) = (self.fns.flush, self.ffi.ctx);
        // SAFETY: the stream's own function (checked), given its `ctx`.
        from_ffi_poll(cx.with_ffi_context(|cx| unsafe { flush(ctx, cx) })).map_ok(|_| ())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (close, ctx) = (self.fns.close, self.ffi.ctx);
        // SAFETY: the stream's own function (checked), given its `ctx`.
        from_ffi_poll(cx.with_ffi_context(|cx| unsafe { close(ctx, cx) })).map_ok(|_| ())
    }
}

// ---- listeners, exported ----

type BoxListener = Box<dyn Listener>;

/// # Safety
///
/// `ctx` is the `Box<BoxListener>` made by [`export_listener`] in this image, alive
/// until `listener_drop`.
unsafe fn listener<'a>(ctx: *const c_void) -> &'a dyn Listener {
    // SAFETY: as the function's contract says; `Listener` is `Sync`.
    let boxed = unsafe { &*ctx.cast::<BoxListener>() };
    &**boxed
}

/// # Safety
///
/// `ctx` as for [`listener`].
unsafe extern "C" fn listener_local_addr(ctx: *const c_void) -> FfiIoResult<FfiBuf> {
    FfiIoResult::from_result(
        // SAFETY: `ctx` is our listener (the function's contract).
        crate::caught(|| unsafe { listener(ctx) }.local_addr())
            .unwrap_or_else(|p| Err(panicked(p.as_ref())))
            .map(|a| FfiBuf::from(a.to_string())),
    )
}

/// # Safety
///
/// `ctx` as for [`listener`].
unsafe extern "C" fn listener_accept(ctx: *const c_void) -> FfiFuture<FfiIoResult<FfiAccepted>> {
    // SAFETY: `ctx` is our listener (the function's contract).
    match crate::caught(|| unsafe { listener(ctx) }.accept()) {
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

/// # Safety
///
/// `ctx` was made by [`export_listener`] with `Box::into_raw`, and is dropped once.
unsafe extern "C" fn listener_drop(ctx: *mut c_void) {
    // SAFETY: as the function's contract says.
    let boxed = unsafe { Box::from_raw(ctx.cast::<BoxListener>()) };
    let _ = crate::caught(move || drop(boxed));
}

static LISTENER_VTABLE: ListenerVTable = ListenerVTable {
    local_addr: Some(listener_local_addr),
    accept: Some(listener_accept),
    drop: Some(listener_drop),
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
        // SAFETY: a non-null vtable is static data of the image that made the listener.
        let drop = unsafe { self.vtable.as_ref() }.and_then(|v| v.drop);
        if let Some(drop) = drop {
            // SAFETY: `drop` frees `ctx`, from the same image; dropped once.
            unsafe { drop(self.ctx) };
        }
    }
}

// ---- listeners, imported ----

fn parse_addr(s: FfiBuf) -> io::Result<SocketAddr> {
    let s = s.into_string();
    s.parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("address `{s}`: {e}")))
}

type LocalAddrFn = unsafe extern "C" fn(*const c_void) -> FfiIoResult<FfiBuf>;
type AcceptFn = unsafe extern "C" fn(*const c_void) -> FfiFuture<FfiIoResult<FfiAccepted>>;

/// A listener of the other image, as this image's [`Listener`].
pub(crate) struct ImportedListener {
    local_addr: LocalAddrFn,
    accept: AcceptFn,
    ffi: FfiListener,
}

impl ImportedListener {
    /// Checks every function of `ffi`'s vtable.
    pub(crate) fn new(ffi: FfiListener) -> io::Result<Self> {
        // SAFETY: a non-null vtable is static data of the image that made the listener.
        let vtable = unsafe { ffi.vtable.as_ref() }.ok_or_else(|| broken("listener"))?;
        match (vtable.local_addr, vtable.accept) {
            (Some(local_addr), Some(accept)) => Ok(ImportedListener {
                local_addr,
                accept,
                ffi,
            }),
            _ => Err(broken("listener")),
        }
    }
}

impl Listener for ImportedListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        // SAFETY: the listener's own function (checked), given its `ctx`.
        parse_addr(unsafe { (self.local_addr)(self.ffi.ctx) }.into_result()?)
    }

    fn accept(&self) -> BoxFuture<'static, io::Result<(Box<dyn ByteStream>, SocketAddr)>> {
        // SAFETY: the listener's own function (checked), given its `ctx`.
        let fut = unsafe { (self.accept)(self.ffi.ctx) };
        Box::pin(async move {
            let accepted = CatchIo(fut).await?.into_result()?;
            let peer = parse_addr(accepted.peer)?;
            let stream = ImportedStream::new(accepted.stream)?;
            Ok((Box::new(stream) as Box<dyn ByteStream>, peer))
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
        match crate::caught(|| Pin::new(inner).poll(cx)) {
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
