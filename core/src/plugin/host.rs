//! The host side: loading a plugin library and adapting its runners and functions.

use std::ffi::{c_char, CStr};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_ffi::FfiFuture;

use super::abi::{
    CellOut, EntryFn, FfiBuf, FfiResult, FfiValue, FunctionDecl, PluginVTable, RunnerDecl,
    RunnerHandle, CAP_HANDOFF, CAP_KEEPS_TASKS, CAP_NESTS, ENTRY_SYMBOL, SUPPORTED_ABI_VERSIONS,
};
use super::io::{CatchIo, ImportedListener, ImportedStream};
use super::{strategy_from_u32, Value};
use crate::handoff::{self, ReplySender};
use crate::options::lock;
use crate::{
    BoxFuture, ByteStream, CancelToken, Capabilities, Cell, CellResult, EventualResult, Listener,
    ReactorId, Registry, RunError, RunOptions, Runner, RunnerInfo, Services, Source,
};

/// A plugin library loaded into this process. Cheap to clone.
///
/// Libraries are never unloaded: a library that registered thread-local
/// destructors (std and tokio do) crashes the process if it is unloaded.
#[derive(Clone)]
pub struct Plugin(Arc<PluginInner>);

struct PluginInner {
    path: PathBuf,
    name: String,
    rustc_version: String,
    core_version: String,
    runners: Vec<&'static RunnerDecl>,
    functions: Vec<PluginFunction>,
}

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The file it was loaded from (canonical).
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// `rustc --version` of the compiler that built it.
    pub fn rustc_version(&self) -> &str {
        &self.0.rustc_version
    }

    /// The `autoawait-core` version it was built with.
    pub fn core_version(&self) -> &str {
        &self.0.core_version
    }

    /// The names of its runners.
    pub fn runner_names(&self) -> Vec<String> {
        self.runner_decls()
            .iter()
            .map(|d| c_string(d.name))
            .collect()
    }

    /// The async functions it offers to cells.
    pub fn functions(&self) -> &[PluginFunction] {
        &self.0.functions
    }

    /// The function called `name`, if the plugin has one.
    pub fn function(&self, name: &str) -> Option<&PluginFunction> {
        self.0.functions.iter().find(|f| f.name == name)
    }

    fn runner_decls(&self) -> &[&'static RunnerDecl] {
        &self.0.runners
    }
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.0.name)
            .field("path", &self.0.path)
            .field("rustc_version", &self.0.rustc_version)
            .field("core_version", &self.0.core_version)
            .field("runners", &self.runner_names())
            .field("functions", &self.0.functions)
            .finish()
    }
}

/// An async function a plugin offers to cells (`twisted.sleep`, say).
///
/// Front ends bind it under its dotted name and call it with [`Value`]s.
#[derive(Clone)]
pub struct PluginFunction {
    name: String,
    doc: String,
    decl: &'static FunctionDecl,
}

impl PluginFunction {
    /// Its dotted name (`twisted.sleep`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line of documentation, with the signature.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// Calls it. The future may be awaited under any runner, on any thread; the
    /// plugin decides what it needs (the twisted functions need its reactor running).
    pub fn call(&self, args: Vec<Value>) -> PluginCall {
        let mut args: Vec<FfiValue> = args.into_iter().map(FfiValue::from).collect();
        let nargs = args.len();
        let fut = (self.decl.call)(self.decl.ctx, args.as_mut_ptr(), nargs);
        // SAFETY: the plugin took ownership of every value (it reads each once); only
        // the array is left to free, so forget the values without dropping them.
        unsafe { args.set_len(0) };
        PluginCall(fut)
    }
}

impl fmt::Debug for PluginFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginFunction")
            .field("name", &self.name)
            .field("doc", &self.doc)
            .finish()
    }
}

/// The future of a [`PluginFunction::call`]: `Send`, resolves to the value.
pub struct PluginCall(FfiFuture<FfiResult<FfiValue>>);

impl Future for PluginCall {
    type Output = Result<Value, RunError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(out.into_result().map(Value::from)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(RunError::from_panic(payload))),
        }
    }
}

impl fmt::Debug for PluginCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginCall").finish_non_exhaustive()
    }
}

/// What [`Registry::load_plugin`] did.
#[derive(Clone, Debug)]
pub struct PluginLoad {
    /// The plugin.
    pub plugin: Plugin,
    /// `false` if this registry already had the plugin: nothing changed.
    pub newly_loaded: bool,
}

impl fmt::Display for PluginLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plugin;
        if !self.newly_loaded {
            return write!(
                f,
                "plugin `{}` from {} is already loaded; nothing changed",
                p.name(),
                p.path().display()
            );
        }
        write!(
            f,
            "loaded plugin `{}` from {}",
            p.name(),
            p.path().display()
        )?;
        let runners = p.runner_names();
        if !runners.is_empty() {
            write!(f, "; runners: {}", runners.join(", "))?;
        }
        if !p.functions().is_empty() {
            let names: Vec<&str> = p.functions().iter().map(|f| f.name()).collect();
            write!(f, "; functions: {}", names.join(", "))?;
        }
        Ok(())
    }
}

/// Every plugin library loaded in this process, in load order.
fn libraries() -> &'static Mutex<Vec<Plugin>> {
    static LIBRARIES: Mutex<Vec<Plugin>> = Mutex::new(Vec::new());
    &LIBRARIES
}

/// Every plugin loaded in this process (into any registry), in load order.
pub fn loaded_plugins() -> Vec<Plugin> {
    lock(libraries()).clone()
}

/// The plugin function called `name` (`twisted.sleep`), from any loaded plugin.
pub fn plugin_function(name: &str) -> Option<PluginFunction> {
    lock(libraries())
        .iter()
        .find_map(|p| p.function(name).cloned())
}

/// Where [`Registry::load_plugin_named`] looks: every directory of
/// `AUTOAWAIT_PLUGIN_PATH` (a `PATH`-style list), then the executable's directory.
pub fn plugin_search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("AUTOAWAIT_PLUGIN_PATH")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    dirs
}

/// The file names plugin `name` may have, most specific first: for `twisted` on
/// Linux, `libautoawait_twisted.so`, `libtwisted.so`, `autoawait_twisted.so`,
/// `twisted.so` (dashes become underscores, as cargo does).
pub fn plugin_file_names(name: &str) -> Vec<String> {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    let stem = name.trim().replace('-', "_");
    let mut names = vec![
        format!("{DLL_PREFIX}autoawait_{stem}{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}"),
    ];
    if !DLL_PREFIX.is_empty() {
        names.push(format!("autoawait_{stem}{DLL_SUFFIX}"));
        names.push(format!("{stem}{DLL_SUFFIX}"));
    }
    names
}

/// The file of plugin `name` in `dirs`: the first of [`plugin_file_names`] found in
/// the first directory that has one.
///
/// # Errors
///
/// [`RunError::Plugin`] listing every place it looked.
pub fn find_plugin(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, RunError> {
    let names = plugin_file_names(name);
    for dir in dirs {
        for file in &names {
            let path = dir.join(file);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(RunError::Plugin {
        path: PathBuf::from(name),
        reason: format!(
            "no plugin named `{name}`: looked for {} in {}; set AUTOAWAIT_PLUGIN_PATH to the \
             directory that holds it, or pass its path",
            names.join(", "),
            if looked.is_empty() {
                "no directory".to_owned()
            } else {
                looked.join(", ")
            }
        ),
    })
}

/// Serialises loads, so that the check for taken names and the registration are
/// one step as far as other loads are concerned.
static LOADING: Mutex<()> = Mutex::new(());

impl Registry {
    /// Loads the plugin library at `path` and registers its runners, shown as
    /// [`Source::Plugin`] by `%autoawait --list`. Its functions become available
    /// through [`Plugin::functions`] and [`plugin_function`].
    ///
    /// Each runner is created at once (so that a failure shows here); a runner may
    /// still start its threads lazily. The library is never unloaded, even when
    /// loading fails after it was opened.
    ///
    /// # Errors
    ///
    /// [`RunError::Plugin`], and the registry is left as it was, when the file does
    /// not exist, is not a shared library, has no `autoawait_plugin_v1` symbol, has an
    /// ABI version this build does not support, a vtable smaller than this build needs,
    /// a runner whose name is taken, or a runner whose creation fails or panics.
    /// Loading the same file twice is not an error: the second time returns a
    /// [`PluginLoad`] that says nothing changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use autoawait_core::Registry;
    ///
    /// let err = Registry::empty().load_plugin("/no/such/libplugin.so").unwrap_err();
    /// assert!(err.to_string().contains("no such file"));
    /// ```
    pub fn load_plugin(&self, path: impl AsRef<Path>) -> Result<PluginLoad, RunError> {
        let path = path.as_ref();
        let fail = |reason: String| RunError::Plugin {
            path: path.to_path_buf(),
            reason,
        };
        let canonical = path
            .canonicalize()
            .map_err(|e| fail(format!("no such file ({e})")))?;
        if !canonical.is_file() {
            return Err(fail("not a file".into()));
        }
        let _loading = lock(&LOADING);
        let plugin = open_library(&canonical)?;
        let decls = plugin.runner_decls();
        let source = Source::Plugin(canonical.clone());
        let names = plugin.runner_names();
        let listing = self.list();
        let mine = listing.iter().filter(|l| l.source == source).count();
        if mine == names.len() && (mine > 0 || self.has_functions_of(&plugin)) {
            return Ok(PluginLoad {
                plugin,
                newly_loaded: false,
            });
        }
        // Taken names first, so that nothing is created for a plugin that cannot load.
        for (i, name) in names.iter().enumerate() {
            if names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) || self.contains(name) {
                return Err(fail(format!(
                    "it has a runner named `{name}`, and that name is already taken \
                     ({}); nothing was registered",
                    RunError::DuplicateName { name: name.clone() }
                )));
            }
        }
        let mut created: Vec<Arc<dyn Runner>> = Vec::with_capacity(decls.len());
        for (decl, name) in decls.iter().zip(&names) {
            match (decl.create)(decl.ctx).into_result() {
                Ok(handle) => created.push(Arc::new(PluginRunner::new(decl, handle))),
                Err(err) => {
                    // `created` is dropped here: each runner is destroyed.
                    let what = match err {
                        RunError::Panicked { message } => format!("panicked: {message}"),
                        err => format!("failed: {err}"),
                    };
                    return Err(fail(format!(
                        "creating its runner `{name}` {what}; nothing was registered"
                    )));
                }
            }
        }
        for runner in created {
            // Names were checked under LOADING; a concurrent `register` could still
            // race us, and then the rest is registered without it.
            let _ = self.register_from(runner, source.clone());
        }
        self.mark_functions_of(&plugin);
        Ok(PluginLoad {
            plugin,
            newly_loaded: true,
        })
    }

    /// Loads plugin `name` from the first place [`plugin_search_path`] finds it
    /// (file names as in [`plugin_file_names`]), as [`load_plugin`](Self::load_plugin).
    ///
    /// # Errors
    ///
    /// As [`find_plugin`] and [`load_plugin`](Self::load_plugin).
    pub fn load_plugin_named(&self, name: &str) -> Result<PluginLoad, RunError> {
        let path = find_plugin(name, &plugin_search_path())?;
        self.load_plugin(path)
    }

    fn registry_key(&self) -> usize {
        self as *const Registry as usize
    }

    fn has_functions_of(&self, plugin: &Plugin) -> bool {
        lock(function_loads()).contains(&(self.registry_key(), plugin.path().to_path_buf()))
    }

    fn mark_functions_of(&self, plugin: &Plugin) {
        if plugin.runner_names().is_empty() {
            lock(function_loads()).push((self.registry_key(), plugin.path().to_path_buf()));
        }
    }
}

/// (registry, path) of plugins without runners, loaded into that registry.
fn function_loads() -> &'static Mutex<Vec<(usize, PathBuf)>> {
    static LOADS: Mutex<Vec<(usize, PathBuf)>> = Mutex::new(Vec::new());
    &LOADS
}

/// Opens the library at canonical `path` (once per process) and checks its vtable.
fn open_library(path: &Path) -> Result<Plugin, RunError> {
    if let Some(p) = lock(libraries()).iter().find(|p| p.path() == path) {
        return Ok(p.clone());
    }
    let fail = |reason: String| RunError::Plugin {
        path: path.to_path_buf(),
        reason,
    };
    // SAFETY: loading a library runs its initialisers. We load only files the user
    // named as autoawait plugins; that is the trust a plugin system needs.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| fail(format!("not a shared library, or it cannot be loaded: {e}")))?;
    // Never unload (see `Plugin`): forget the handle whatever happens next.
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: `EntryFn` is the documented type of `autoawait_plugin_v1`; a symbol of
    // that name that is not an autoawait plugin entry breaks the plugin contract.
    let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }.map_err(|e| {
        fail(format!(
            "it has no `{ENTRY_SYMBOL}` symbol, so it is not an autoawait plugin \
             (plugins export it with `autoawait_core::export_plugin!`): {e}"
        ))
    })?;
    let vtable = entry();
    if vtable.is_null() {
        return Err(fail(format!(
            "its `{ENTRY_SYMBOL}` returned no plugin (it failed)"
        )));
    }
    // SAFETY: the entry returned a non-null pointer to its static vtable. Its first
    // two `u32` fields are the same in every ABI version, so they may be read before
    // anything else is known.
    let (abi_version, struct_size) = unsafe {
        let header = vtable.cast::<u32>();
        (header.read(), header.add(1).read())
    };
    if !SUPPORTED_ABI_VERSIONS.contains(&abi_version) {
        let supported: Vec<String> = SUPPORTED_ABI_VERSIONS.iter().map(u32::to_string).collect();
        return Err(fail(format!(
            "its plugin ABI version is {abi_version}, and this build of autoawait supports \
             version {}; rebuild the plugin against a matching autoawait-core",
            supported.join(", ")
        )));
    }
    let needed = std::mem::size_of::<PluginVTable>();
    if (struct_size as usize) < needed {
        return Err(fail(format!(
            "its vtable is {struct_size} bytes, smaller than the {needed} bytes ABI version \
             {abi_version} needs; the plugin is broken or was built for another ABI"
        )));
    }
    // SAFETY: the ABI version and size check out, so the whole v1 vtable is there,
    // static and immutable.
    let vtable: &'static PluginVTable = unsafe { &*vtable };
    let runners = decls::<RunnerDecl>(vtable.runners, vtable.runner_count, vtable.runner_stride)
        .map_err(|e| fail(format!("its runner declarations are {e}")))?;
    let functions = decls::<FunctionDecl>(
        vtable.functions,
        vtable.function_count,
        vtable.function_stride,
    )
    .map_err(|e| fail(format!("its function declarations are {e}")))?
    .into_iter()
    .map(|decl| PluginFunction {
        name: c_string(decl.name),
        doc: c_string(decl.doc),
        decl,
    })
    .collect();
    let plugin = Plugin(Arc::new(PluginInner {
        path: path.to_path_buf(),
        name: c_string(vtable.name),
        rustc_version: c_string(vtable.rustc_version),
        core_version: c_string(vtable.core_version),
        runners,
        functions,
    }));
    lock(libraries()).push(plugin.clone());
    Ok(plugin)
}

/// A NUL-terminated string of a plugin, copied (empty if null).
fn c_string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: the ABI says these are NUL-terminated strings in static data of a
    // library that is never unloaded.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The `count` declarations at `base`, `stride` bytes apart (static data of a plugin).
fn decls<T>(base: *const T, count: usize, stride: usize) -> Result<Vec<&'static T>, String> {
    if base.is_null() || count == 0 {
        return Ok(Vec::new());
    }
    let needed = std::mem::size_of::<T>();
    if stride < needed || !stride.is_multiple_of(std::mem::align_of::<T>()) {
        return Err(format!(
            "{stride} bytes apart, and this build needs at least {needed} (aligned)"
        ));
    }
    Ok((0..count)
        .map(|i| {
            // SAFETY: the ABI says `base` points to `count` declarations, `stride`
            // bytes apart, each starting with the fields of `T` we know (checked:
            // `stride` covers them and keeps alignment), in static data of a library
            // that is never unloaded.
            unsafe { &*base.cast::<u8>().add(i * stride).cast::<T>() }
        })
        .collect())
}

/// A plugin runner, seen from the host.
struct PluginRunner {
    info: RunnerInfo,
    decl: &'static RunnerDecl,
    handle: RunnerHandle,
    /// Entered around every poll of a host cell, so that `run` from inside a cell is
    /// refused and tokio's "no reactor" panic names this runner.
    reactor: ReactorId,
    /// The plugin runner offers `Services`.
    services: bool,
    /// Cells go to the plugin's `spawn` and reply to the host ([`CAP_HANDOFF`]).
    handoff: bool,
    /// How long a handed-off cell's caller spins for the reply before it parks.
    spin: Duration,
    /// Guards the background tasks of [`Runner::spawn`]; cancelled at shutdown.
    tasks: CancelToken,
}

impl PluginRunner {
    fn new(decl: &'static RunnerDecl, handle: RunnerHandle) -> Self {
        let name = c_string(decl.name);
        let strategy = strategy_from_u32(decl.strategy);
        let info = RunnerInfo {
            name: name.clone().into(),
            backend: c_string(decl.backend).into(),
            strategy,
            summary: c_string(decl.summary).into(),
            capabilities: Capabilities {
                nests: decl.capabilities & CAP_NESTS != 0,
                keeps_tasks: decl.capabilities & CAP_KEEPS_TASKS != 0,
                local_cells: false,
            },
        };
        PluginRunner {
            info,
            decl,
            handle,
            reactor: ReactorId::new(&name),
            services: (decl.has_services)(handle) != 0,
            handoff: decl.capabilities & CAP_HANDOFF != 0,
            spin: handoff::default_spin(),
            tasks: CancelToken::new(),
        }
    }
}

impl Runner for PluginRunner {
    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn run(&self, cell: Cell, opts: &RunOptions) -> CellResult {
        if self.reactor.is_current() && !self.info.capabilities.nests {
            return Err(RunError::would_deadlock(
                &self.info.name,
                "run() from inside a cell of this runner",
            ));
        }
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        let reactor = self.reactor;
        if self.handoff {
            let (tx, rx) = handoff::reply(self.spin);
            let task = if opts.is_empty() {
                reply_task(reactor, fut, tx)
            } else {
                reply_task(reactor, opts.guard(fut), tx)
            };
            (self.decl.spawn)(self.handle, origin.get(), task).into_result()?;
            // No reply: the plugin dropped the cell (it stopped).
            return rx.recv().unwrap_or_else(|| {
                Err(RunError::TaskDropped {
                    runner: self.info.name.to_string(),
                })
            });
        }
        let ffi = if opts.is_empty() {
            host_cell(reactor, fut)
        } else {
            host_cell(reactor, opts.guard(fut))
        };
        let out = (self.decl.run)(self.handle, origin.get(), ffi).into_result()?;
        if out.0.is_null() {
            return Err(RunError::backend(std::io::Error::other(
                "the plugin returned no result",
            )));
        }
        // SAFETY: a non-null `CellOut` is the pointer `host_cell` made with
        // `Box::into_raw` from a `CellResult`; the plugin hands it back once.
        *unsafe { Box::from_raw(out.0.cast::<CellResult>()) }
    }

    fn spawn(&self, cell: Cell) -> Result<EventualResult, RunError> {
        let origin = cell.origin();
        let fut = cell
            .into_future()
            .map_err(|_| RunError::local_unsupported(&self.info.name))?;
        // Dropped at shutdown, whatever the plugin does with the tasks it was given.
        let fut = RunOptions::default()
            .cancel_token(self.tasks.clone())
            .guard(fut);
        let (task, eventual) = EventualResult::task(origin, fut, Some(&self.reactor));
        let entered = Entered {
            reactor: self.reactor,
            inner: task,
        };
        let ffi = FfiFuture::new(async move {
            entered.await;
            0u8
        });
        (self.decl.spawn)(self.handle, origin.get(), ffi).into_result()?;
        Ok(eventual)
    }

    fn shutdown(&self, grace: Duration) {
        // First: the plugin's shutdown then waits for the woken tasks to go.
        self.tasks.cancel();
        (self.decl.shutdown)(self.handle, nanos(grace));
    }

    fn services(&self) -> Option<&dyn Services> {
        if self.services {
            Some(self)
        } else {
            None
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Services for PluginRunner {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let slept = (self.decl.sleep)(self.handle, nanos(duration));
        Box::pin(async move {
            // 0: the plugin has no timer for this; a panic: use ours too.
            let on_plugin_timer =
                CatchIo(Box::pin(
                    async move { Ok::<u8, std::io::Error>(slept.await) },
                ))
                .await;
            if !matches!(on_plugin_timer, Ok(1)) {
                crate::sleep(duration).await;
            }
        })
    }

    fn connect(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<'static, std::io::Result<Box<dyn ByteStream>>> {
        let fut = (self.decl.connect)(self.handle, FfiBuf::from(addr.to_string()));
        Box::pin(async move {
            let stream = CatchIo(fut).await?.into_result()?;
            Ok(Box::new(ImportedStream(stream)) as Box<dyn ByteStream>)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<Box<dyn Listener>>> {
        let fut = (self.decl.listen)(self.handle, FfiBuf::from(addr.to_string()));
        Box::pin(async move {
            let listener = CatchIo(fut).await?.into_result()?;
            Ok(Box::new(ImportedListener(listener)) as Box<dyn Listener>)
        })
    }
}

impl Drop for PluginRunner {
    fn drop(&mut self) {
        (self.decl.destroy)(self.handle);
    }
}

/// A host cell as a task for a plugin's `spawn` that sends its result straight to
/// the host thread waiting on `tx`: the plugin makes no cell, reply or result box.
fn reply_task<F>(reactor: ReactorId, fut: F, tx: ReplySender<CellResult>) -> FfiFuture<u8>
where
    F: Future<Output = CellResult> + Send + 'static,
{
    ffi_cell(reactor, fut, move |result| {
        tx.send(result);
        0
    })
}

/// A host cell as an `FfiFuture` for a plugin's `run`: its `CellResult` boxed by
/// the host.
fn host_cell<F>(reactor: ReactorId, fut: F) -> FfiFuture<CellOut>
where
    F: Future<Output = CellResult> + Send + 'static,
{
    ffi_cell(reactor, fut, |result| {
        CellOut(Box::into_raw(Box::new(result)).cast())
    })
}

/// `fut` as an `FfiFuture`, polled as `reactor`; `finish` makes what crosses back.
fn ffi_cell<F, T>(
    reactor: ReactorId,
    fut: F,
    finish: impl FnOnce(CellResult) -> T + Send + 'static,
) -> FfiFuture<T>
where
    F: Future<Output = CellResult> + Send + 'static,
    T: Send + 'static,
{
    let entered = Entered {
        reactor,
        inner: fut,
    };
    FfiFuture::new(async move { finish(entered.await) })
}

pin_project_lite::pin_project! {
    /// Marks the polling thread as driving `reactor` while `inner` is polled.
    struct Entered<F> {
        reactor: ReactorId,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _driving = this.reactor.enter();
        this.inner.poll(cx)
    }
}
