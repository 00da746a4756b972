//! [`Cell`], the unit of work a host hands to a runner, and cell origins.

use std::any::Any;
use std::cell::Cell as StdCell;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::RunError;

/// The value a cell produced, type-erased. [`RunnerExt::block_on`](crate::RunnerExt::block_on)
/// downcasts it back.
pub type CellOutput = Box<dyn Any + Send>;

/// What running a cell gives: its value, or why there is none.
pub type CellResult = Result<CellOutput, RunError>;

type SendBody = Pin<Box<dyn Future<Output = CellOutput> + Send>>;
type LocalBody = Pin<Box<dyn Future<Output = CellOutput>>>;
type LocalFactory = Box<dyn FnOnce() -> LocalBody + Send>;

/// The identity of a cell: where a piece of work came from.
///
/// Hosts number their cells (`In[3]`); tasks spawned by a cell carry its id, so
/// their output can be attributed to it. See [`current_cell`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellId(NonZeroU64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1 << 32);

impl CellId {
    /// A cell id chosen by the host (an execution count, say). `0` is mapped to `1`.
    pub const fn new(n: u64) -> Self {
        match NonZeroU64::new(n) {
            Some(n) => CellId(n),
            None => CellId(NonZeroU64::MIN),
        }
    }

    /// A fresh id, distinct from every other fresh id (and from small host-chosen ones).
    pub fn next() -> Self {
        CellId::new(NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// The number inside.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for CellId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CellId({})", self.0)
    }
}

impl fmt::Display for CellId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

thread_local! {
    static CURRENT: StdCell<Option<CellId>> = const { StdCell::new(None) };
}

/// The cell whose code is being polled on this thread right now.
///
/// While any future of a cell is polled — the cell itself, or a task it spawned
/// through a runner, on any executor and any thread — this returns that cell's id.
/// Outside of cells it returns `None`.
///
/// # Examples
///
/// ```
/// use autoawait_core::{current_cell, Cell, CellId, RunOptions, Registry};
///
/// let runner = Registry::global().get("inline").unwrap();
/// let cell = Cell::with_origin(CellId::new(3), async { current_cell() });
/// let seen = runner.run(cell, &RunOptions::default()).unwrap();
/// assert_eq!(*seen.downcast::<Option<CellId>>().unwrap(), Some(CellId::new(3)));
/// assert_eq!(current_cell(), None);
/// ```
pub fn current_cell() -> Option<CellId> {
    CURRENT.with(|c| c.get())
}

/// Restores the previous current cell when dropped (also on unwind).
struct Enter(Option<CellId>);

impl Enter {
    fn new(id: CellId) -> Self {
        Enter(CURRENT.with(|c| c.replace(Some(id))))
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

pin_project_lite::pin_project! {
    /// A future that makes [`current_cell`] return its origin while it is polled.
    ///
    /// Built by [`in_cell`]; runners wrap the tasks they spawn with it.
    #[derive(Debug)]
    pub struct InCell<F> {
        origin: CellId,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for InCell<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _enter = Enter::new(*this.origin);
        this.inner.poll(cx)
    }
}

/// Runs `fut` as part of cell `origin`: [`current_cell`] returns `origin` while it
/// is polled, whatever thread polls it.
///
/// # Examples
///
/// ```
/// use autoawait_core::{current_cell, in_cell, CellId};
///
/// let fut = in_cell(CellId::new(7), async { current_cell() });
/// assert_eq!(autoawait_core::block_on_inline(fut), Some(CellId::new(7)));
/// ```
pub fn in_cell<F: Future>(origin: CellId, fut: F) -> InCell<F> {
    InCell { origin, inner: fut }
}

/// Calls `f` as part of cell `origin`: [`current_cell`] returns `origin` until it
/// returns. For callbacks a cell hands to a reactor (`call_later`), so that what
/// they print is that cell's output, whichever thread calls them.
///
/// # Examples
///
/// ```
/// use autoawait_core::{current_cell, with_cell, CellId};
///
/// assert_eq!(with_cell(CellId::new(4), current_cell), Some(CellId::new(4)));
/// assert_eq!(current_cell(), None);
/// ```
pub fn with_cell<R>(origin: CellId, f: impl FnOnce() -> R) -> R {
    let _enter = Enter::new(origin);
    f()
}

/// The unit of work a host hands to a [`Runner`](crate::Runner).
///
/// A cell is either a `Send + 'static` future ([`Cell::new`]), or a `Send` closure
/// that builds a `!Send` future on the thread that will poll it ([`Cell::local`]),
/// for thread-local executors. Either way it carries its origin, a [`CellId`].
///
/// A cell's future catches panics (they become [`RunError::Panicked`], with the
/// message kept and nothing printed unless `AUTOAWAIT_PANIC_OUTPUT=1`) and sets
/// [`current_cell`] while it is polled, so runners need to do neither.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use autoawait_core::{Cell, Registry, RunOptions};
///
/// let runner = Registry::global().get("inline").unwrap();
/// let cell = Cell::local(|| {
///     let not_send = Rc::new(20);
///     async move { *not_send + 22 }
/// });
/// let out = runner.run(cell, &RunOptions::default()).unwrap();
/// assert_eq!(*out.downcast::<i32>().unwrap(), 42);
/// ```
pub struct Cell {
    origin: CellId,
    body: Body,
}

enum Body {
    Send(SendBody),
    Local(LocalFactory),
}

impl Cell {
    /// A cell from a `Send` future. Its origin is the cell that is running now
    /// ([`current_cell`]), or a fresh id outside of cells.
    pub fn new<F>(fut: F) -> Self
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Cell::with_origin(current_cell().unwrap_or_else(CellId::next), fut)
    }

    /// A cell from a `Send` future, with an origin chosen by the host.
    pub fn with_origin<F>(origin: CellId, fut: F) -> Self
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let body: SendBody = Box::pin(async move { Box::new(fut.await) as CellOutput });
        Cell {
            origin,
            body: Body::Send(body),
        }
    }

    /// A cell whose future is `!Send`: `make` is called on the thread that will poll
    /// it. Its origin is inherited as for [`Cell::new`].
    pub fn local<M, F>(make: M) -> Self
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        Cell::local_with_origin(current_cell().unwrap_or_else(CellId::next), make)
    }

    /// [`Cell::local`] with an origin chosen by the host.
    pub fn local_with_origin<M, F>(origin: CellId, make: M) -> Self
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let factory: LocalFactory = Box::new(move || {
            let fut = make();
            Box::pin(async move { Box::new(fut.await) as CellOutput })
        });
        Cell {
            origin,
            body: Body::Local(factory),
        }
    }

    /// The cell this work belongs to.
    pub fn origin(&self) -> CellId {
        self.origin
    }

    /// `true` if the cell was built with [`Cell::local`] and must be polled on the
    /// thread that builds it.
    pub fn is_local(&self) -> bool {
        matches!(self.body, Body::Local(_))
    }

    /// The cell's `Send` future, or the cell back if it is a local one.
    ///
    /// # Errors
    ///
    /// Returns the cell unchanged if it was built with [`Cell::local`].
    pub fn into_future(self) -> Result<CellFuture, Cell> {
        match self.body {
            Body::Send(body) => Ok(CellFuture {
                origin: self.origin,
                body: Some(body),
            }),
            Body::Local(_) => Err(self),
        }
    }

    /// The cell's future, built on this thread. Works for both kinds of cell; the
    /// result is `!Send`, so call it on the thread that will poll the future.
    pub fn into_local_future(self) -> LocalCellFuture {
        let origin = self.origin;
        match self.body {
            Body::Send(body) => LocalCellFuture {
                origin,
                state: LocalState::Ready(body),
            },
            Body::Local(factory) => {
                let _enter = Enter::new(origin);
                let state = match crate::kit::quietly(|| catch_unwind(AssertUnwindSafe(factory))) {
                    Ok(body) => LocalState::Ready(body),
                    Err(payload) => LocalState::Failed(Some(RunError::from_panic(payload))),
                };
                LocalCellFuture { origin, state }
            }
        }
    }
}

impl fmt::Debug for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cell")
            .field("origin", &self.origin)
            .field("local", &self.is_local())
            .finish()
    }
}

/// Polls `body`, with the origin set and panics caught.
fn poll_body<B: Future<Output = CellOutput> + ?Sized>(
    origin: CellId,
    body: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<CellResult> {
    let _enter = Enter::new(origin);
    // A panic is a value: kept off stderr unless AUTOAWAIT_PANIC_OUTPUT says otherwise.
    match crate::kit::quietly(|| catch_unwind(AssertUnwindSafe(|| body.poll(cx)))) {
        Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(RunError::from_panic(payload))),
    }
}

/// The `Send` future of a [`Cell`]: resolves to the cell's [`CellResult`].
///
/// Panics in the cell become [`RunError::Panicked`]; [`current_cell`] is set while
/// it is polled. Polling it again after it completed is a no-op that stays pending.
pub struct CellFuture {
    origin: CellId,
    body: Option<SendBody>,
}

impl CellFuture {
    /// The cell this future belongs to.
    pub fn origin(&self) -> CellId {
        self.origin
    }
}

impl Future for CellFuture {
    type Output = CellResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CellResult> {
        let origin = self.origin;
        let Some(body) = self.body.as_mut() else {
            return Poll::Pending;
        };
        let poll = poll_body(origin, body.as_mut(), cx);
        if poll.is_ready() {
            // Drop the cell's state now, with the origin still visible to destructors.
            let _enter = Enter::new(origin);
            self.body = None;
        }
        poll
    }
}

impl fmt::Debug for CellFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CellFuture")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

enum LocalState {
    Ready(LocalBody),
    Failed(Option<RunError>),
}

/// The future of a [`Cell`] built on the polling thread ([`Cell::into_local_future`]).
pub struct LocalCellFuture {
    origin: CellId,
    state: LocalState,
}

impl Future for LocalCellFuture {
    type Output = CellResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CellResult> {
        let origin = self.origin;
        match &mut self.state {
            LocalState::Ready(body) => poll_body(origin, body.as_mut(), cx),
            LocalState::Failed(err) => match err.take() {
                Some(err) => Poll::Ready(Err(err)),
                None => Poll::Pending,
            },
        }
    }
}

impl fmt::Debug for LocalCellFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCellFuture")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}
