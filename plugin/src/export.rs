//! The plugin side: [`PluginBuilder`] describes a plugin, and the
//! [`export_plugin!`](crate::export_plugin) macro exports it.

use std::ffi::{c_char, c_void, CString};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_ffi::FfiFuture;
use autoawait_conformance::{Outcome, Subject};
use autoawait_core::{
    downcast, BoxFuture, Cell, CellId, MakeRunner, RunError, RunOptions, Runner, RunnerInfo,
    Services, Strategy,
};

use crate::abi::{
    CellOut, FfiBuf, FfiIoResult, FfiListener, FfiResult, FfiStream, FfiValue, FunctionDecl,
    PluginVTable, RunnerDecl, RunnerHandle, ABI_VERSION, CAP_HANDOFF, CAP_HOSTED, CAP_KEEPS_TASKS,
    CAP_NESTS,
};
use crate::io::{export_listener, export_stream, CatchIo};
use crate::{strategy_to_u32, CatchUnwind, Value, RUSTC_VERSION};

/// An async function a plugin offers to cells: takes the call's arguments, returns
/// a future of the result.
pub type PluginFn = fn(Vec<Value>) -> BoxFuture<'static, Result<Value, RunError>>;

/// Describes a plugin: its name, runners and functions. Exported with
/// [`export_plugin!`](crate::export_plugin).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use autoawait_core::{RunError, Runner, RunnerInfo, Strategy};
/// use autoawait_plugin::{PluginBuilder, Value};
///
/// const INFO: RunnerInfo = RunnerInfo::new("mine", "mine", Strategy::Threaded, "my loop");
/// fn make() -> Result<Arc<dyn Runner>, RunError> {
///     Ok(autoawait_core::Registry::global().get("inline")?) // a real plugin makes its own
/// }
///
/// let vtable = PluginBuilder::new("mine")
///     .runner(INFO, make)
///     .function("mine.answer", "mine.answer() -> 42", |_args| {
///         Box::pin(async { Ok(Value::Int(42)) })
///     })
///     .build();
/// assert_eq!(vtable.runner_count, 1);
/// ```
#[derive(Debug)]
pub struct PluginBuilder {
    name: String,
    runners: Vec<(RunnerInfo, MakeRunner)>,
    functions: Vec<(String, String, PluginFn)>,
}

impl PluginBuilder {
    /// A plugin called `name` (as in `%load_ext NAME`).
    pub fn new(name: &str) -> Self {
        PluginBuilder {
            name: name.to_owned(),
            runners: Vec::new(),
            functions: Vec::new(),
        }
    }

    /// Adds a runner. `make` is called when the plugin is loaded into a registry.
    /// Plugin runners never receive `!Send` cells ([`Cell::local`]).
    pub fn runner(mut self, info: RunnerInfo, make: MakeRunner) -> Self {
        self.runners.push((info, make));
        self
    }

    /// Adds an async function for cells. `doc` is one line, with the signature.
    pub fn function(mut self, name: &str, doc: &str, f: PluginFn) -> Self {
        self.functions.push((name.to_owned(), doc.to_owned(), f));
        self
    }

    /// The vtable, leaked: it lives as long as the process, like the library.
    pub fn build(self) -> &'static PluginVTable {
        let runners: Vec<RunnerDecl> = self
            .runners
            .into_iter()
            .map(|(info, make)| runner_decl(&info, make))
            .collect();
        let functions: Vec<FunctionDecl> = self
            .functions
            .into_iter()
            .map(|(name, doc, f)| FunctionDecl {
                name: leak_str(&name),
                doc: leak_str(&doc),
                ctx: (Box::leak(Box::new(f)) as *const PluginFn).cast(),
                call: Some(call_function),
            })
            .collect();
        let runners = Box::leak(runners.into_boxed_slice());
        let functions = Box::leak(functions.into_boxed_slice());
        Box::leak(Box::new(PluginVTable {
            abi_version: ABI_VERSION,
            struct_size: std::mem::size_of::<PluginVTable>() as u32,
            name: leak_str(&self.name),
            rustc_version: leak_str(RUSTC_VERSION),
            core_version: leak_str(env!("CARGO_PKG_VERSION")),
            runners: runners.as_ptr(),
            runner_count: runners.len(),
            runner_stride: std::mem::size_of::<RunnerDecl>(),
            functions: functions.as_ptr(),
            function_count: functions.len(),
            function_stride: std::mem::size_of::<FunctionDecl>(),
        }))
    }
}

fn leak_str(s: &str) -> *const c_char {
    let c = CString::new(s.replace('\0', "")).expect("NULs were removed");
    Box::leak(c.into_boxed_c_str()).as_ptr()
}

fn runner_decl(info: &RunnerInfo, make: MakeRunner) -> RunnerDecl {
    let caps = info.capabilities;
    let bit = |on: bool, bit: u32| if on { bit } else { 0 };
    RunnerDecl {
        name: leak_str(&info.name),
        backend: leak_str(&info.backend),
        summary: leak_str(&info.summary),
        strategy: strategy_to_u32(info.strategy),
        capabilities: bit(caps.nests, CAP_NESTS)
            | bit(caps.keeps_tasks, CAP_KEEPS_TASKS)
            | bit(info.strategy == Strategy::Threaded, CAP_HANDOFF)
            | bit(info.strategy == Strategy::Host, CAP_HOSTED),
        ctx: (Box::leak(Box::new(make)) as *const MakeRunner).cast(),
        create: Some(create_runner),
        run: Some(run_cell),
        spawn: Some(spawn_task),
        shutdown: Some(shutdown_runner),
        destroy: Some(destroy_runner),
        has_services: Some(has_services),
        sleep: Some(sleep_service),
        connect: Some(connect_service),
        listen: Some(listen_service),
        check: Some(check_runner),
        hosted_attach: Some(hosted_attach),
        hosted_fd: Some(hosted_fd),
        hosted_next: Some(hosted_next),
        hosted_turn: Some(hosted_turn),
    }
}

/// The runner's reactor for its host, or the error that says it has none.
fn hosted(runner: &Arc<dyn Runner>) -> Result<&dyn autoawait_core::Hosted, RunError> {
    runner.hosted().ok_or_else(|| RunError::Unsupported {
        runner: runner.info().name.to_string(),
        reason: "its strategy is host, but it offers no reactor for the host to drive \
                 (`Runner::hosted` returned `None`)"
            .into(),
        advice: autoawait_core::Advice::default(),
    })
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn hosted_attach(handle: RunnerHandle) -> FfiResult<u8> {
    // SAFETY: the handle is live (the function's contract).
    guarded(|| hosted(unsafe { runner(handle) })?.attach().map(|()| 1))
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn hosted_fd(handle: RunnerHandle) -> i32 {
    use std::os::fd::IntoRawFd;
    let fd = guarded(|| {
        // SAFETY: the handle is live (the function's contract).
        let runner = unsafe { runner(handle) };
        hosted(runner)?.fd().map_err(RunError::backend)
    });
    match fd {
        // Ownership passes to the host, which closes it.
        FfiResult::Ok(fd) => fd.into_raw_fd(),
        FfiResult::Err(_) => -1,
    }
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn hosted_next(handle: RunnerHandle) -> u64 {
    // SAFETY: the handle is live (the function's contract).
    let next = guarded(|| Ok(hosted(unsafe { runner(handle) })?.next_turn()));
    match next {
        FfiResult::Ok(Some(d)) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1),
        FfiResult::Ok(None) => u64::MAX,
        // A broken reactor: turn it again at once rather than never.
        FfiResult::Err(_) => 0,
    }
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn hosted_turn(handle: RunnerHandle, max_wait_nanos: u64) -> u8 {
    let wait = Duration::from_nanos(max_wait_nanos);
    // SAFETY: the handle is live (the function's contract).
    let turned = guarded(|| Ok(hosted(unsafe { runner(handle) })?.turn(wait)));
    // A turn that panicked or a runner without a reactor: stop driving it.
    matches!(turned, FfiResult::Ok(true)).into()
}

/// The body of the `autoawait_plugin_v1` symbol made by
/// [`export_plugin!`](crate::export_plugin): builds the vtable once; null if the
/// builder panics (the host then refuses the plugin, saying so).
#[doc(hidden)]
pub fn entry(
    slot: &'static OnceLock<Option<&'static PluginVTable>>,
    build: fn() -> PluginBuilder,
) -> *const PluginVTable {
    let vtable = slot.get_or_init(|| crate::caught(|| build().build()).ok());
    match vtable {
        Some(v) => *v,
        None => std::ptr::null(),
    }
}

/// # Safety
///
/// `handle` is a `Box<Arc<dyn Runner>>` made by [`create_runner`] in this image and
/// not yet destroyed.
unsafe fn runner<'a>(handle: RunnerHandle) -> &'a Arc<dyn Runner> {
    // SAFETY: as the function's contract says.
    unsafe { &*handle.0.cast::<Arc<dyn Runner>>() }
}

fn guarded<T>(f: impl FnOnce() -> Result<T, RunError>) -> FfiResult<T> {
    FfiResult::from_result(crate::caught(f).unwrap_or_else(|p| Err(RunError::from_panic(p))))
}

/// # Safety
///
/// `ctx` is the `MakeRunner` leaked by [`PluginBuilder::build`] in this image.
unsafe extern "C" fn create_runner(ctx: *const c_void) -> FfiResult<RunnerHandle> {
    // SAFETY: as the function's contract says.
    let make = unsafe { *ctx.cast::<MakeRunner>() };
    guarded(|| {
        let runner = make()?;
        Ok(RunnerHandle(
            Box::into_raw(Box::new(runner)).cast_const().cast(),
        ))
    })
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn run_cell(
    handle: RunnerHandle,
    origin: u64,
    cell: FfiFuture<CellOut>,
) -> FfiResult<CellOut> {
    guarded(|| {
        let cell = Cell::with_origin(CellId::new(origin), cell);
        // SAFETY: the handle is live (the function's contract).
        unsafe { runner(handle) }
            .run(cell, &RunOptions::default())
            .map(downcast::<CellOut>)
    })
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn spawn_task(
    handle: RunnerHandle,
    origin: u64,
    task: FfiFuture<u8>,
) -> FfiResult<u8> {
    guarded(|| {
        // The host's task reports its result to the host itself.
        let task = async move {
            task.await;
        };
        // SAFETY: the handle is live (the function's contract).
        unsafe { runner(handle) }.submit(Cell::with_origin(CellId::new(origin), task))?;
        Ok(0)
    })
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn shutdown_runner(handle: RunnerHandle, grace_nanos: u64) {
    let _ = guarded(|| {
        // SAFETY: the handle is live (the function's contract).
        unsafe { runner(handle) }.shutdown(Duration::from_nanos(grace_nanos));
        Ok(0u8)
    });
}

/// # Safety
///
/// `handle` was made by [`create_runner`] with `Box::into_raw`; destroyed once.
unsafe extern "C" fn destroy_runner(handle: RunnerHandle) {
    // SAFETY: as the function's contract says.
    let boxed = unsafe { Box::from_raw(handle.0.cast_mut().cast::<Arc<dyn Runner>>()) };
    let _ = crate::caught(move || drop(boxed));
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn has_services(handle: RunnerHandle) -> u8 {
    // SAFETY: the handle is live (the function's contract).
    match guarded(|| Ok(u8::from(unsafe { runner(handle) }.services().is_some()))) {
        FfiResult::Ok(has) => has,
        FfiResult::Err(_) => 0,
    }
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn sleep_service(handle: RunnerHandle, nanos: u64) -> FfiFuture<u8> {
    let sleep = crate::caught(|| {
        // SAFETY: the handle is live (the function's contract).
        unsafe { runner(handle) }
            .services()
            .map(|s| s.sleep(Duration::from_nanos(nanos)))
    });
    match sleep {
        Ok(Some(sleep)) => FfiFuture::new(async move {
            sleep.await;
            1
        }),
        // No services (or they panicked): the host sleeps on its own timer.
        _ => FfiFuture::new(std::future::ready(0)),
    }
}

fn no_services() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "this plugin runner offers no sockets",
    )
}

/// Starts `service(addr)` on the runner's services and exports its output, or
/// fails at once.
///
/// # Safety
///
/// `handle` as for [`runner`].
unsafe fn io_service<T, U>(
    handle: RunnerHandle,
    addr: FfiBuf,
    service: fn(&dyn Services, SocketAddr) -> BoxFuture<'static, std::io::Result<T>>,
    export: fn(T) -> U,
) -> FfiFuture<FfiIoResult<U>>
where
    T: 'static,
    U: Send + 'static,
{
    let started = crate::caught(|| {
        let addr: SocketAddr = addr.into_string().parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("bad address: {e}"),
            )
        })?;
        // SAFETY: the handle is live (the function's contract).
        let services = unsafe { runner(handle) }
            .services()
            .ok_or_else(no_services)?;
        Ok::<_, std::io::Error>(service(services, addr))
    });
    match started {
        Ok(Ok(fut)) => {
            FfiFuture::new(async move { FfiIoResult::from_result(CatchIo(fut).await.map(export)) })
        }
        Ok(Err(e)) => FfiFuture::new(std::future::ready(FfiIoResult::Err(e.into()))),
        Err(_) => FfiFuture::new(std::future::ready(FfiIoResult::Err(
            std::io::Error::other("the plugin's services panicked").into(),
        ))),
    }
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn connect_service(
    handle: RunnerHandle,
    addr: FfiBuf,
) -> FfiFuture<FfiIoResult<FfiStream>> {
    // SAFETY: the handle is live (the function's contract).
    unsafe { io_service(handle, addr, |s, a| s.connect(a), export_stream) }
}

/// # Safety
///
/// `handle` as for [`runner`].
unsafe extern "C" fn listen_service(
    handle: RunnerHandle,
    addr: FfiBuf,
) -> FfiFuture<FfiIoResult<FfiListener>> {
    // SAFETY: the handle is live (the function's contract).
    unsafe { io_service(handle, addr, |s, a| s.listen(a), export_listener) }
}

/// # Safety
///
/// `ctx` is the `MakeRunner` leaked by [`PluginBuilder::build`] in this image.
unsafe extern "C" fn check_runner(ctx: *const c_void, check: FfiBuf) -> FfiBuf {
    // SAFETY: as the function's contract says.
    let make = unsafe { *ctx.cast::<MakeRunner>() };
    let name = check.into_string();
    let outcome = match autoawait_conformance::CHECKS
        .iter()
        .find(|c| c.name == name)
    {
        None => Outcome::Skipped(format!("this plugin knows no check `{name}`")),
        Some(c) if c.isolated => {
            Outcome::Skipped("it needs a process of its own: run through the host".into())
        }
        Some(c) => autoawait_conformance::run_check(&Subject::new("the plugin's runner", make), c),
    };
    FfiBuf::from(crate::encode_outcome(&outcome))
}

/// # Safety
///
/// `ctx` is the `PluginFn` leaked by [`PluginBuilder::build`] in this image; `args`
/// points to `nargs` initialised values whose ownership the caller gives up.
unsafe extern "C" fn call_function(
    ctx: *const c_void,
    args: *mut FfiValue,
    nargs: usize,
) -> FfiFuture<FfiResult<FfiValue>> {
    // SAFETY: as the function's contract says.
    let f = unsafe { *ctx.cast::<PluginFn>() };
    let args: Vec<Value> = (0..nargs)
        .map(|i| {
            // SAFETY: each of the `nargs` values is read exactly once (the contract).
            Value::from(unsafe { std::ptr::read(args.add(i)) })
        })
        .collect();
    let fut = match crate::caught(move || f(args)) {
        Ok(fut) => fut,
        Err(payload) => {
            let err = RunError::from_panic(payload);
            Box::pin(async move { Err(err) })
        }
    };
    FfiFuture::new(async move {
        FfiResult::from_result(CatchUnwind(fut).await.and_then(|r| r).map(FfiValue::from))
    })
}
