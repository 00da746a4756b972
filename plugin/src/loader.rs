//! The dlopen side: opening a plugin library once per process and checking every
//! pointer of its vtable before anything is called.

use std::ffi::{c_char, CStr};
use std::path::Path;
use std::sync::Mutex;

use autoawait_core::kit::lock;
use autoawait_core::Strategy;

use crate::abi::{
    CallFn, CheckFn, ConnectFn, CreateFn, Decl, EntryFn, FunctionDecl, ListenFn, PluginVTable,
    RunFn, RunnerDecl, RunnerHandle, SpawnFn, CAP_HOSTED, ENTRY_SYMBOL, SUPPORTED_ABI_VERSIONS,
};
use crate::{strategy_from_u32, Plugin, PluginError, PluginFunction};

/// The entry points of a plugin runner, each checked non-null at load.
#[derive(Clone, Copy)]
pub(crate) struct RunnerFns {
    pub(crate) create: CreateFn,
    pub(crate) run: RunFn,
    pub(crate) spawn: SpawnFn,
    pub(crate) shutdown: unsafe extern "C" fn(RunnerHandle, u64),
    pub(crate) destroy: unsafe extern "C" fn(RunnerHandle),
    pub(crate) has_services: unsafe extern "C" fn(RunnerHandle) -> u8,
    pub(crate) sleep: unsafe extern "C" fn(RunnerHandle, u64) -> async_ffi::FfiFuture<u8>,
    pub(crate) connect: ConnectFn,
    pub(crate) listen: ListenFn,
    /// ABI 1.1, optional: the plugin's own conformance checks.
    pub(crate) check: Option<CheckFn>,
    /// ABI 1.2, for a runner with `CAP_HOSTED`: its reactor's entries for the host.
    pub(crate) hosting: Option<HostingFns>,
}

/// The `hosted_*` entries of a runner with `CAP_HOSTED` (ABI 1.2), all present.
#[derive(Clone, Copy)]
pub(crate) struct HostingFns {
    pub(crate) attach: unsafe extern "C" fn(RunnerHandle) -> crate::abi::FfiResult<u8>,
    pub(crate) fd: unsafe extern "C" fn(RunnerHandle) -> i32,
    pub(crate) next: unsafe extern "C" fn(RunnerHandle) -> u64,
    pub(crate) turn: unsafe extern "C" fn(RunnerHandle, u64) -> u8,
}

/// One runner a loaded plugin declares: its strings copied, its entries checked.
#[derive(Clone)]
pub(crate) struct DeclaredRunner {
    pub(crate) name: String,
    pub(crate) backend: String,
    pub(crate) summary: String,
    pub(crate) strategy: Strategy,
    pub(crate) capabilities: u32,
    /// The declaration itself, for `ctx` (static data of a never-unloaded library).
    pub(crate) decl: &'static RunnerDecl,
    pub(crate) fns: RunnerFns,
}

/// Every plugin library loaded in this process, in load order.
pub(crate) fn libraries() -> &'static Mutex<Vec<Plugin>> {
    static LIBRARIES: Mutex<Vec<Plugin>> = Mutex::new(Vec::new());
    &LIBRARIES
}

/// Opens the library at canonical `path` (once per process) and checks its vtable.
pub(crate) fn open(path: &Path) -> Result<Plugin, PluginError> {
    let mut libraries = lock(libraries());
    if let Some(p) = libraries.iter().find(|p| p.path() == path) {
        return Ok(p.clone());
    }
    let fail = |reason: String| PluginError::new(path, reason);
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
             (plugins export it with `autoawait_plugin::export_plugin!`): {e}"
        ))
    })?;
    // SAFETY: the entry takes nothing and returns a pointer; `export_plugin!` builds
    // the vtable under `catch_unwind`, so it does not unwind into the host.
    let vtable = unsafe { entry() };
    if vtable.is_null() {
        return Err(fail(format!(
            "its `{ENTRY_SYMBOL}` returned no plugin (its builder failed or panicked)"
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
             version {}; rebuild the plugin against a matching autoawait-plugin",
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
        .map_err(|e| fail(format!("its runner declarations are {e}")))?
        .into_iter()
        .map(declared_runner)
        .collect::<Result<Vec<_>, String>>()
        .map_err(fail)?;
    let functions = decls::<FunctionDecl>(
        vtable.functions,
        vtable.function_count,
        vtable.function_stride,
    )
    .map_err(|e| fail(format!("its function declarations are {e}")))?
    .into_iter()
    .map(declared_function)
    .collect::<Result<Vec<_>, String>>()
    .map_err(fail)?;
    for (i, f) in functions.iter().enumerate() {
        if functions[..i].iter().any(|g| g.name() == f.name()) {
            return Err(fail(format!("it offers function `{}` twice", f.name())));
        }
        if let Some(other) = libraries.iter().find(|p| p.function(f.name()).is_some()) {
            return Err(fail(format!(
                "it offers function `{}`, and plugin `{}` ({}) already does; a name \
                 means one function, so nothing was loaded",
                f.name(),
                other.name(),
                other.path().display()
            )));
        }
    }
    let plugin = Plugin::new(
        path.to_path_buf(),
        c_string(vtable.name),
        c_string(vtable.rustc_version),
        c_string(vtable.core_version),
        runners,
        functions,
    );
    libraries.push(plugin.clone());
    Ok(plugin)
}

fn declared_runner(decl: &'static RunnerDecl) -> Result<DeclaredRunner, String> {
    let name = c_string(decl.name);
    let missing = |entry: &str| {
        format!(
            "its runner `{name}` has no `{entry}` entry (a null function pointer); the \
             plugin is broken"
        )
    };
    let fns = RunnerFns {
        create: decl.create.ok_or_else(|| missing("create"))?,
        run: decl.run.ok_or_else(|| missing("run"))?,
        spawn: decl.spawn.ok_or_else(|| missing("spawn"))?,
        shutdown: decl.shutdown.ok_or_else(|| missing("shutdown"))?,
        destroy: decl.destroy.ok_or_else(|| missing("destroy"))?,
        has_services: decl.has_services.ok_or_else(|| missing("has_services"))?,
        sleep: decl.sleep.ok_or_else(|| missing("sleep"))?,
        connect: decl.connect.ok_or_else(|| missing("connect"))?,
        listen: decl.listen.ok_or_else(|| missing("listen"))?,
        check: decl.check,
        hosting: hosting_fns(decl).map_err(missing)?,
    };
    if name.is_empty() {
        return Err("one of its runners has no name".into());
    }
    Ok(DeclaredRunner {
        backend: c_string(decl.backend),
        summary: c_string(decl.summary),
        strategy: strategy_from_u32(decl.strategy),
        capabilities: decl.capabilities,
        decl,
        fns,
        name,
    })
}

/// The hosting entries of a runner that says it can be hosted; the name of the
/// first one missing if it says so without them.
fn hosting_fns(decl: &RunnerDecl) -> Result<Option<HostingFns>, &'static str> {
    if decl.capabilities & CAP_HOSTED == 0 {
        return Ok(None);
    }
    Ok(Some(HostingFns {
        attach: decl.hosted_attach.ok_or("hosted_attach")?,
        fd: decl.hosted_fd.ok_or("hosted_fd")?,
        next: decl.hosted_next.ok_or("hosted_next")?,
        turn: decl.hosted_turn.ok_or("hosted_turn")?,
    }))
}

fn declared_function(decl: &'static FunctionDecl) -> Result<PluginFunction, String> {
    let name = c_string(decl.name);
    let call: CallFn = decl.call.ok_or_else(|| {
        format!("its function `{name}` has no `call` entry (a null function pointer)")
    })?;
    Ok(PluginFunction::new(name, c_string(decl.doc), decl, call))
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

/// The `count` declarations at `base`, `stride` bytes apart (static data of a
/// plugin). A plugin of an earlier revision has shorter declarations: each is
/// copied into a whole one, the fields it lacks zero (null, `None`).
fn decls<T: Decl>(base: *const T, count: usize, stride: usize) -> Result<Vec<&'static T>, String> {
    if base.is_null() || count == 0 {
        return Ok(Vec::new());
    }
    let (needed, whole) = (T::MIN_SIZE, std::mem::size_of::<T>());
    if stride < needed || !stride.is_multiple_of(std::mem::align_of::<T>()) {
        return Err(format!(
            "{stride} bytes apart, and this build needs at least {needed} (aligned)"
        ));
    }
    Ok((0..count)
        .map(|i| {
            // SAFETY: the ABI says `base` points to `count` declarations, `stride`
            // bytes apart (checked: it keeps alignment and covers the fields of ABI
            // 1.0), in static data of a library that is never unloaded.
            let at = unsafe { base.cast::<u8>().add(i * stride) };
            if stride >= whole {
                // SAFETY: as above, and the whole of `T` is there.
                return unsafe { &*at.cast::<T>() };
            }
            let mut copy = std::mem::MaybeUninit::<T>::zeroed();
            // SAFETY: `stride` bytes are readable at `at` (above) and fit in `copy`
            // (`stride < size_of::<T>()`); the bytes past them stay zero, which is a
            // valid `T` (the contract of `Decl`).
            let decl = unsafe {
                std::ptr::copy_nonoverlapping(at, copy.as_mut_ptr().cast::<u8>(), stride);
                copy.assume_init()
            };
            &*Box::leak(Box::new(decl))
        })
        .collect())
}
