//! The C ABI between a host and a plugin: `#[repr(C)]` types only.
//!
//! Everything here has a fixed layout, so a host and a plugin built by different
//! compilers agree on it. Ownership rules:
//! - the [`PluginVTable`] and everything it points to are static data of the plugin;
//! - a cell's result ([`CellOut`]) is allocated and freed by the host: the plugin
//!   passes the pointer through;
//! - an [`FfiBuf`] or an [`FfiCallback`] carries the function that frees it, from the
//!   image that made it, so either side may drop it.
//!
//! Every function pointer is an `Option<unsafe extern "C" fn>`: the same layout as a
//! bare pointer (null is `None`), never callable from safe code, and checked before
//! any call — the loader refuses a plugin whose vtable has a null entry it would call.

use std::ffi::{c_char, c_void};
use std::fmt;
use std::time::Duration;

use async_ffi::{FfiContext, FfiFuture};
use autoawait_core::{Advice, RunError};

/// The ABI version this build of `autoawait-core` exports and loads.
pub const ABI_VERSION: u32 = 1;

/// Every ABI version this build can load.
pub const SUPPORTED_ABI_VERSIONS: &[u32] = &[1];

/// The symbol a plugin exports: an [`EntryFn`].
pub const ENTRY_SYMBOL: &str = "autoawait_plugin_v1";

/// The type of the exported `autoawait_plugin_v1` symbol. Returns null if the
/// plugin cannot describe itself.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginVTable;

/// What a plugin is: returned by its `autoawait_plugin_v1` symbol.
///
/// Append-only: a later ABI minor revision adds fields at the end and raises
/// `struct_size`; a host reads only the fields it knows, after checking
/// `abi_version` and that `struct_size` covers them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PluginVTable {
    /// [`ABI_VERSION`] of the `autoawait-core` the plugin was built with. Always first.
    pub abi_version: u32,
    /// `size_of::<PluginVTable>()` in the plugin. Always second.
    pub struct_size: u32,
    /// The plugin's name (NUL-terminated UTF-8), as in `%load_ext NAME`.
    pub name: *const c_char,
    /// `rustc --version` of the compiler that built the plugin, for diagnostics.
    pub rustc_version: *const c_char,
    /// The version of `autoawait-core` the plugin was built with, for diagnostics.
    pub core_version: *const c_char,
    /// The plugin's runners: `runner_count` of them, `runner_stride` bytes apart.
    pub runners: *const RunnerDecl,
    /// How many runners `runners` points to.
    pub runner_count: usize,
    /// The distance between two runners: `size_of::<RunnerDecl>()` in the plugin.
    /// Like the vtable, a `RunnerDecl` is append-only; the host refuses a stride
    /// smaller than the declaration it knows.
    pub runner_stride: usize,
    /// The async functions the plugin offers to cells: `function_count` of them,
    /// `function_stride` bytes apart.
    pub functions: *const FunctionDecl,
    /// How many functions `functions` points to.
    pub function_count: usize,
    /// The distance between two functions: `size_of::<FunctionDecl>()` in the plugin.
    pub function_stride: usize,
}

// SAFETY: a vtable is immutable, and everything it points to is static data of the
// plugin (which is never unloaded) or functions that may be called from any thread.
unsafe impl Send for PluginVTable {}
// SAFETY: as for `Send`: shared access only reads immutable static data.
unsafe impl Sync for PluginVTable {}

/// `RunnerDecl::capabilities` bit: `run` may be called from inside a cell it runs.
pub const CAP_NESTS: u32 = 1;
/// `RunnerDecl::capabilities` bit: tasks keep running between cells.
pub const CAP_KEEPS_TASKS: u32 = 2;
/// `RunnerDecl::capabilities` bit: the runner's loop runs on a thread of its own, so
/// the host may run a cell by passing it to `spawn` (a cell that sends its result
/// to the host itself) and waiting, instead of calling `run`.
pub const CAP_HANDOFF: u32 = 4;

/// `RunnerDecl::capabilities` bit (ABI 1.2): the runner's reactor can be driven by
/// the host's loop, through the `hosted_*` entries ([`autoawait_core::Hosted`]):
/// its cells run on the host's loop, with no thread of the plugin's.
pub const CAP_HOSTED: u32 = 8;

/// One runner of a plugin.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RunnerDecl {
    /// The name a user types after `%autoawait` (NUL-terminated UTF-8).
    pub name: *const c_char,
    /// The backend (NUL-terminated UTF-8).
    pub backend: *const c_char,
    /// One line for `%autoawait --list` (NUL-terminated UTF-8).
    pub summary: *const c_char,
    /// The strategy: see [`strategy_to_u32`](crate::strategy_to_u32).
    pub strategy: u32,
    /// `CAP_*` bits.
    pub capabilities: u32,
    /// Passed to `create`.
    pub ctx: *const c_void,
    /// Makes the runner. The host calls it once per registry the plugin is loaded into.
    pub create: Option<CreateFn>,
    /// Runs a cell to completion, blocking the calling thread. `origin` is the cell id.
    /// On success, returns the output of `cell` unchanged.
    pub run: Option<RunFn>,
    /// Starts `task` in the background and returns; `task` reports its own result to
    /// the host, and its output is meaningless (always 0). Shutdown drops it.
    pub spawn: Option<SpawnFn>,
    /// Stops the runner, waiting at most `grace_nanos`. Idempotent.
    pub shutdown: Option<unsafe extern "C" fn(runner: RunnerHandle, grace_nanos: u64)>,
    /// Frees the runner made by `create`. Called at most once, last.
    pub destroy: Option<unsafe extern "C" fn(runner: RunnerHandle)>,
    /// 1 if the runner offers [`Services`](autoawait_core::Services) (sleep, TCP), else 0.
    pub has_services: Option<unsafe extern "C" fn(runner: RunnerHandle) -> u8>,
    /// `Services::sleep`: resolves to 1 after `nanos` on the runner's timers, or to 0
    /// at once if it has none (the host then uses its own timer).
    pub sleep: Option<unsafe extern "C" fn(runner: RunnerHandle, nanos: u64) -> FfiFuture<u8>>,
    /// `Services::connect` to `addr` (`"ip:port"`).
    pub connect: Option<ConnectFn>,
    /// `Services::listen` on `addr` (`"ip:port"`, port 0 picks one).
    pub listen: Option<ListenFn>,
    // ---- ABI 1.1: read only when the plugin's `runner_stride` covers it ----
    /// Runs conformance check `check` (by name) in the plugin's own image against a
    /// new runner made with `ctx`, with no host in between: the plugin's own `run`,
    /// `spawn`, timeouts and cancels. Returns `ok`, `FAIL: why` or `skip: why`.
    pub check: Option<CheckFn>,
    // ---- ABI 1.2: read only when the stride covers them and `CAP_HOSTED` is set ----
    /// [`Hosted::attach`](autoawait_core::Hosted::attach): takes the reactor onto the
    /// host's loop. Any thread.
    pub hosted_attach: Option<unsafe extern "C" fn(runner: RunnerHandle) -> FfiResult<u8>>,
    /// [`Hosted::fd`](autoawait_core::Hosted::fd): a new descriptor that becomes
    /// readable when the reactor has work, owned (and closed) by the host; -1 if
    /// none could be made. Any thread.
    pub hosted_fd: Option<unsafe extern "C" fn(runner: RunnerHandle) -> i32>,
    /// [`Hosted::next_turn`](autoawait_core::Hosted::next_turn): nanoseconds until
    /// the reactor needs a turn, 0 for now, `u64::MAX` for "when the descriptor is
    /// readable". Called by the one driver, after each turn.
    pub hosted_next: Option<unsafe extern "C" fn(runner: RunnerHandle) -> u64>,
    /// [`Hosted::turn`](autoawait_core::Hosted::turn): turns once, waiting at most
    /// `max_wait_nanos` for events; 1 while hosted, 0 once it is not (the driver
    /// stops). One driver at a time; never from inside one of its cells.
    pub hosted_turn: Option<unsafe extern "C" fn(runner: RunnerHandle, max_wait_nanos: u64) -> u8>,
}

/// [`RunnerDecl::check`].
pub type CheckFn = unsafe extern "C" fn(ctx: *const c_void, check: FfiBuf) -> FfiBuf;

/// A declaration of the ABI that may grow at its end, read from a plugin of any
/// revision: the plugin says how far apart its declarations are (its stride).
///
/// # Safety
///
/// Every bit pattern of all zeros is a valid `Self` (null pointers, `None`
/// functions, zero numbers): what a field the plugin's revision lacks reads as.
pub unsafe trait Decl: Copy + 'static {
    /// The size of the declaration of ABI 1.0: a stride below it is broken.
    const MIN_SIZE: usize;
}

// SAFETY: raw pointers, `Option<fn>`s and integers: all-zero is null, `None`, 0.
unsafe impl Decl for RunnerDecl {
    const MIN_SIZE: usize = std::mem::offset_of!(RunnerDecl, check);
}

// SAFETY: as for `RunnerDecl`.
unsafe impl Decl for FunctionDecl {
    const MIN_SIZE: usize = std::mem::size_of::<FunctionDecl>();
}

/// [`RunnerDecl::create`].
pub type CreateFn = unsafe extern "C" fn(ctx: *const c_void) -> FfiResult<RunnerHandle>;
/// [`RunnerDecl::run`].
pub type RunFn = unsafe extern "C" fn(
    runner: RunnerHandle,
    origin: u64,
    cell: FfiFuture<CellOut>,
) -> FfiResult<CellOut>;
/// [`RunnerDecl::spawn`].
pub type SpawnFn =
    unsafe extern "C" fn(runner: RunnerHandle, origin: u64, task: FfiFuture<u8>) -> FfiResult<u8>;
/// [`RunnerDecl::connect`].
pub type ConnectFn =
    unsafe extern "C" fn(runner: RunnerHandle, addr: FfiBuf) -> FfiFuture<FfiIoResult<FfiStream>>;
/// [`RunnerDecl::listen`].
pub type ListenFn =
    unsafe extern "C" fn(runner: RunnerHandle, addr: FfiBuf) -> FfiFuture<FfiIoResult<FfiListener>>;
/// [`FunctionDecl::call`].
pub type CallFn = unsafe extern "C" fn(
    ctx: *const c_void,
    args: *mut FfiValue,
    nargs: usize,
) -> FfiFuture<FfiResult<FfiValue>>;

// SAFETY: a declaration is immutable static data of the plugin; its functions may be
// called from any thread and its `ctx` is only passed back to them.
unsafe impl Send for RunnerDecl {}
// SAFETY: as for `Send`.
unsafe impl Sync for RunnerDecl {}

/// An async function a plugin offers to cells (`twisted.sleep`, say).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FunctionDecl {
    /// Its name as cells call it, dotted (NUL-terminated UTF-8).
    pub name: *const c_char,
    /// One line of documentation, with the signature (NUL-terminated UTF-8).
    pub doc: *const c_char,
    /// Passed to `call`.
    pub ctx: *const c_void,
    /// Starts a call. Takes ownership of the `nargs` values at `args` (the host
    /// frees only the array); `args` may be null when `nargs` is 0.
    pub call: Option<CallFn>,
}

// SAFETY: as for `RunnerDecl`.
unsafe impl Send for FunctionDecl {}
// SAFETY: as for `RunnerDecl`.
unsafe impl Sync for FunctionDecl {}

/// A runner made by a plugin's `create`, opaque to the host.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct RunnerHandle(pub *const c_void);

// SAFETY: a handle points to a plugin runner, which is `Send + Sync` (`Runner`
// requires it); the pointer itself is only an address, used through `unsafe` entries.
unsafe impl Send for RunnerHandle {}
// SAFETY: as for `Send`.
unsafe impl Sync for RunnerHandle {}

/// The result of a host cell: a pointer the host made and will free; the plugin
/// passes it through untouched.
#[repr(transparent)]
#[derive(Debug)]
pub struct CellOut(pub *mut c_void);

// SAFETY: it points to a host-owned `CellResult`, which is `Send`; the plugin never
// dereferences it.
unsafe impl Send for CellOut {}

/// `Ok(T)` or an error, across the ABI.
#[repr(C, u32)]
#[derive(Debug)]
pub enum FfiResult<T> {
    /// Success.
    Ok(T),
    /// Failure.
    Err(FfiError),
}

impl<T> FfiResult<T> {
    /// From a Rust result.
    pub fn from_result(result: Result<T, RunError>) -> Self {
        match result {
            Ok(v) => FfiResult::Ok(v),
            Err(e) => FfiResult::Err(FfiError::from_run_error(&e)),
        }
    }

    /// Into a Rust result.
    ///
    /// # Errors
    ///
    /// The [`RunError`] the other side sent.
    pub fn into_result(self) -> Result<T, RunError> {
        match self {
            FfiResult::Ok(v) => Ok(v),
            FfiResult::Err(e) => Err(e.into_run_error()),
        }
    }
}

/// A [`RunError`] across the ABI: a kind and up to three strings and a number.
#[repr(C)]
#[derive(Debug)]
pub struct FfiError {
    /// Which error (see the `ERR_*` constants of this module).
    pub kind: u32,
    /// A number (nanoseconds for `TimedOut`).
    pub number: u64,
    /// First string (the runner, or the message).
    pub a: FfiBuf,
    /// Second string (the advice or reason).
    pub b: FfiBuf,
    /// Third string (the detail).
    pub c: FfiBuf,
}

const ERR_BACKEND: u32 = 0;
const ERR_PANICKED: u32 = 1;
const ERR_TIMED_OUT: u32 = 2;
const ERR_CANCELLED: u32 = 3;
const ERR_WOULD_DEADLOCK: u32 = 4;
const ERR_STOPPED: u32 = 5;
const ERR_NOT_RESTARTABLE: u32 = 6;
const ERR_UNSUPPORTED: u32 = 7;
const ERR_WRONG_RUNTIME: u32 = 8;
const ERR_TASK_DROPPED: u32 = 9;
const ERR_FAILED: u32 = 10;
/// Sent by plugins of an earlier revision for a bad argument: read as `Failed`.
const ERR_INVALID_ARGUMENT: u32 = 11;
const ERR_WOULD_BLOCK: u32 = 12;

/// [`Advice`] as one string: the other way out, the kind, then one runner a line.
fn encode_advice(advice: &Advice) -> String {
    let mut text = format!("{}\n{}", advice.otherwise(), advice.kind());
    for runner in advice.runner_names() {
        text.push('\n');
        text.push_str(runner);
    }
    text
}

fn decode_advice(text: &str) -> Advice {
    let mut lines = text.split('\n');
    let otherwise = lines.next().unwrap_or_default().to_owned();
    let kind = lines.next().unwrap_or_default().to_owned();
    let runners: Vec<String> = lines.map(str::to_owned).collect();
    let advice = if runners.is_empty() {
        Advice::default()
    } else {
        Advice::runners(kind, runners)
    };
    if otherwise.is_empty() {
        advice
    } else {
        advice.or(otherwise)
    }
}

impl FfiError {
    fn new(kind: u32, a: &str, b: &str, c: &str) -> Self {
        FfiError {
            kind,
            number: 0,
            a: FfiBuf::from(a),
            b: FfiBuf::from(b),
            c: FfiBuf::from(c),
        }
    }

    /// Encodes `err`. Kinds the ABI does not name cross as `Backend` with their message.
    pub fn from_run_error(err: &RunError) -> Self {
        match err {
            RunError::Panicked { message } => FfiError::new(ERR_PANICKED, message, "", ""),
            RunError::TimedOut { after } => FfiError {
                number: u64::try_from(after.as_nanos()).unwrap_or(u64::MAX),
                ..FfiError::new(ERR_TIMED_OUT, "", "", "")
            },
            RunError::Cancelled => FfiError::new(ERR_CANCELLED, "", "", ""),
            RunError::WouldDeadlock {
                runner,
                what,
                advice,
            } => FfiError::new(ERR_WOULD_DEADLOCK, runner, what, &encode_advice(advice)),
            RunError::WouldBlock {
                runner,
                what,
                advice,
            } => FfiError::new(ERR_WOULD_BLOCK, runner, what, &encode_advice(advice)),
            RunError::Stopped { runner } => FfiError::new(ERR_STOPPED, runner, "", ""),
            RunError::NotRestartable {
                runner,
                reason,
                advice,
            } => FfiError::new(ERR_NOT_RESTARTABLE, runner, reason, &encode_advice(advice)),
            RunError::Unsupported {
                runner,
                reason,
                advice,
            } => FfiError::new(ERR_UNSUPPORTED, runner, reason, &encode_advice(advice)),
            RunError::WrongRuntime {
                needs,
                runner,
                detail,
            } => FfiError::new(ERR_WRONG_RUNTIME, needs, runner, detail),
            RunError::TaskDropped { runner } => FfiError::new(ERR_TASK_DROPPED, runner, "", ""),
            RunError::Failed { message } => FfiError::new(ERR_FAILED, message, "", ""),
            RunError::Backend(source) => FfiError::new(ERR_BACKEND, &source.to_string(), "", ""),
            other => FfiError::new(ERR_BACKEND, &other.to_string(), "", ""),
        }
    }

    /// Decodes the error.
    pub fn into_run_error(self) -> RunError {
        let a = self.a.into_string();
        let b = self.b.into_string();
        let c = self.c.into_string();
        match self.kind {
            ERR_PANICKED => RunError::Panicked { message: a },
            ERR_TIMED_OUT => RunError::TimedOut {
                after: Duration::from_nanos(self.number),
            },
            ERR_CANCELLED => RunError::Cancelled,
            ERR_WOULD_DEADLOCK => RunError::WouldDeadlock {
                runner: a,
                what: b.into(),
                advice: decode_advice(&c),
            },
            ERR_WOULD_BLOCK => RunError::WouldBlock {
                runner: a,
                what: b.into(),
                advice: decode_advice(&c),
            },
            ERR_STOPPED => RunError::Stopped { runner: a },
            ERR_NOT_RESTARTABLE => RunError::NotRestartable {
                runner: a,
                reason: b,
                advice: decode_advice(&c),
            },
            ERR_UNSUPPORTED => RunError::Unsupported {
                runner: a,
                reason: b,
                advice: decode_advice(&c),
            },
            ERR_WRONG_RUNTIME => RunError::WrongRuntime {
                needs: a,
                runner: b,
                detail: c,
            },
            ERR_TASK_DROPPED => RunError::TaskDropped { runner: a },
            ERR_FAILED | ERR_INVALID_ARGUMENT => RunError::Failed { message: a },
            _ => RunError::backend(std::io::Error::other(a)),
        }
    }
}

/// An owned UTF-8 string across the ABI, freed by the image that made it.
///
/// Made only by `From<String>`; a buffer without a `free` function (a broken plugin)
/// is leaked rather than freed by the wrong allocator.
#[repr(C)]
pub struct FfiBuf {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    free: Option<unsafe extern "C" fn(ptr: *mut u8, len: usize, cap: usize)>,
}

// SAFETY: an `FfiBuf` owns its bytes like a `String` does.
unsafe impl Send for FfiBuf {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for FfiBuf {}

/// # Safety
///
/// `ptr`, `len` and `cap` are those of a `String` this image took apart in
/// `FfiBuf::from(String)`, freed once.
unsafe extern "C" fn free_string(ptr: *mut u8, len: usize, cap: usize) {
    // SAFETY: as the function's contract says.
    drop(unsafe { String::from_raw_parts(ptr, len, cap) });
}

impl FfiBuf {
    /// The text (lossy if the other side sent invalid UTF-8).
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    fn as_bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: a non-null `ptr` and `len` describe the initialised bytes of the
        // string this buffer owns (a dangling, well-aligned pointer when `len` is 0).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The text as a `String` of this image (copied, then the buffer is freed).
    pub fn into_string(self) -> String {
        self.to_string_lossy().into_owned()
    }
}

impl From<String> for FfiBuf {
    fn from(s: String) -> Self {
        let mut s = std::mem::ManuallyDrop::new(s);
        FfiBuf {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            cap: s.capacity(),
            free: Some(free_string),
        }
    }
}

impl From<&str> for FfiBuf {
    fn from(s: &str) -> Self {
        FfiBuf::from(s.to_owned())
    }
}

impl Drop for FfiBuf {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: `free` came with the buffer from the image that made it, for
            // exactly these three values; a buffer is dropped once.
            unsafe { free(self.ptr, self.len, self.cap) };
        }
    }
}

impl fmt::Debug for FfiBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

/// A value passed to or returned by a plugin function: what a Lua front end has
/// (nil, booleans, numbers, strings), plus opaque handles to plugin objects and
/// callbacks into the caller.
#[repr(C, u32)]
#[derive(Debug)]
pub enum FfiValue {
    /// Nothing (Lua `nil`).
    Nil,
    /// A boolean (0 or 1).
    Bool(u8),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(FfiBuf),
    /// An opaque handle to an object of the plugin (a deferred, say).
    Handle(u64),
    /// A function of the caller the plugin may call.
    Callback(FfiCallback),
}

/// A callable of one image handed to the other: called with no arguments, it
/// returns a value. Freed by the image that made it.
#[repr(C)]
pub struct FfiCallback {
    pub(crate) ctx: *mut c_void,
    pub(crate) call: Option<unsafe extern "C" fn(ctx: *const c_void) -> FfiResult<FfiValue>>,
    pub(crate) drop: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
}

// SAFETY: callbacks are only made from `Send + Sync` closures (`Callback::new`).
unsafe impl Send for FfiCallback {}
// SAFETY: as for `Send`.
unsafe impl Sync for FfiCallback {}

impl Drop for FfiCallback {
    fn drop(&mut self) {
        if let Some(drop) = self.drop {
            // SAFETY: `drop` came with `ctx` from the image that made the callback,
            // and a callback is dropped once.
            unsafe { drop(self.ctx) };
        }
    }
}

impl fmt::Debug for FfiCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FfiCallback").finish_non_exhaustive()
    }
}

/// An I/O result across the ABI.
#[repr(C, u32)]
#[derive(Debug)]
pub enum FfiIoResult<T> {
    /// Success.
    Ok(T),
    /// Failure.
    Err(FfiIoError),
}

/// A `Poll<io::Result<usize>>` across the ABI.
#[repr(C, u32)]
#[derive(Debug)]
pub enum FfiIoPoll {
    /// Done: bytes read or written (0 for flush and close).
    Ready(usize),
    /// Not yet; the waker of the `FfiContext` will be woken.
    Pending,
    /// Failed.
    Err(FfiIoError),
}

/// An `io::Error` across the ABI: its kind (see [`io_kind_to_u32`]) and message.
#[repr(C)]
#[derive(Debug)]
pub struct FfiIoError {
    /// The `io::ErrorKind`, encoded.
    pub kind: u32,
    /// The error's message.
    pub message: FfiBuf,
}

const IO_KINDS: &[std::io::ErrorKind] = {
    use std::io::ErrorKind::*;
    &[
        Other,
        NotFound,
        PermissionDenied,
        ConnectionRefused,
        ConnectionReset,
        ConnectionAborted,
        NotConnected,
        AddrInUse,
        AddrNotAvailable,
        BrokenPipe,
        AlreadyExists,
        WouldBlock,
        InvalidInput,
        InvalidData,
        TimedOut,
        WriteZero,
        Interrupted,
        Unsupported,
        UnexpectedEof,
        OutOfMemory,
    ]
};

/// The ABI number of an `io::ErrorKind` (0, `Other`, for kinds it does not name).
pub fn io_kind_to_u32(kind: std::io::ErrorKind) -> u32 {
    IO_KINDS.iter().position(|k| *k == kind).unwrap_or(0) as u32
}

/// The `io::ErrorKind` of an ABI number (`Other` if unknown).
pub fn io_kind_from_u32(n: u32) -> std::io::ErrorKind {
    IO_KINDS
        .get(n as usize)
        .copied()
        .unwrap_or(std::io::ErrorKind::Other)
}

impl From<std::io::Error> for FfiIoError {
    fn from(e: std::io::Error) -> Self {
        FfiIoError {
            kind: io_kind_to_u32(e.kind()),
            message: FfiBuf::from(e.to_string()),
        }
    }
}

impl From<FfiIoError> for std::io::Error {
    fn from(e: FfiIoError) -> Self {
        std::io::Error::new(io_kind_from_u32(e.kind), e.message.into_string())
    }
}

impl<T> FfiIoResult<T> {
    /// From a Rust result.
    pub fn from_result(r: std::io::Result<T>) -> Self {
        match r {
            Ok(v) => FfiIoResult::Ok(v),
            Err(e) => FfiIoResult::Err(e.into()),
        }
    }

    /// Into a Rust result.
    ///
    /// # Errors
    ///
    /// The error the other side sent.
    pub fn into_result(self) -> std::io::Result<T> {
        match self {
            FfiIoResult::Ok(v) => Ok(v),
            FfiIoResult::Err(e) => Err(e.into()),
        }
    }
}

/// A byte stream (a TCP connection) of one image used by the other.
#[repr(C)]
#[derive(Debug)]
pub struct FfiStream {
    /// The stream, opaque.
    pub ctx: *mut c_void,
    /// Its functions: static data of the image that made it (checked before use).
    pub vtable: *const StreamVTable,
}

// SAFETY: made only from `Send` streams (`ByteStream: Send`).
unsafe impl Send for FfiStream {}

/// The functions of an [`FfiStream`], from the image that made it.
#[repr(C)]
#[derive(Debug)]
pub struct StreamVTable {
    /// `AsyncRead::poll_read` into `len` bytes at `buf`.
    pub poll_read: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            cx: &mut FfiContext<'_>,
            buf: *mut u8,
            len: usize,
        ) -> FfiIoPoll,
    >,
    /// `AsyncWrite::poll_write` of `len` bytes at `buf`.
    pub poll_write: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            cx: &mut FfiContext<'_>,
            buf: *const u8,
            len: usize,
        ) -> FfiIoPoll,
    >,
    /// `AsyncWrite::poll_flush`.
    pub poll_flush: Option<PollFn>,
    /// `AsyncWrite::poll_close`.
    pub poll_close: Option<PollFn>,
    /// Frees the stream.
    pub drop: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
}

/// [`StreamVTable::poll_flush`] and [`StreamVTable::poll_close`].
pub type PollFn = unsafe extern "C" fn(ctx: *mut c_void, cx: &mut FfiContext<'_>) -> FfiIoPoll;

/// A TCP listener of one image used by the other.
#[repr(C)]
#[derive(Debug)]
pub struct FfiListener {
    /// The listener, opaque.
    pub ctx: *mut c_void,
    /// Its functions: static data of the image that made it (checked before use).
    pub vtable: *const ListenerVTable,
}

// SAFETY: made only from `Send + Sync` listeners (`Listener: Send + Sync`).
unsafe impl Send for FfiListener {}
// SAFETY: as for `Send`.
unsafe impl Sync for FfiListener {}

/// An accepted connection and its peer (`"ip:port"`).
#[repr(C)]
#[derive(Debug)]
pub struct FfiAccepted {
    /// The connection.
    pub stream: FfiStream,
    /// The peer's address.
    pub peer: FfiBuf,
}

/// The functions of an [`FfiListener`], from the image that made it.
#[repr(C)]
#[derive(Debug)]
pub struct ListenerVTable {
    /// The address it listens on (`"ip:port"`).
    pub local_addr: Option<unsafe extern "C" fn(ctx: *const c_void) -> FfiIoResult<FfiBuf>>,
    /// Accepts one connection.
    pub accept:
        Option<unsafe extern "C" fn(ctx: *const c_void) -> FfiFuture<FfiIoResult<FfiAccepted>>>,
    /// Frees the listener.
    pub drop: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
}
