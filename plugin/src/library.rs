//! [`Plugin`], [`PluginFunction`], and loading a plugin into a registry: [`load`].

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_ffi::FfiFuture;
use autoawait_core::kit::lock;
use autoawait_core::{LookupError, Registry, RunError, Runner, Source};

use crate::abi::{CallFn, FfiBuf, FfiResult, FfiValue, FunctionDecl};
use crate::loader::{self, libraries, DeclaredRunner};
use crate::runner::PluginRunner;
use crate::{CatchUnwind, PluginError, Value};

/// A plugin library loaded into this process. Cheap to clone.
///
/// Libraries are never unloaded: a library that registered thread-local
/// destructors (std and tokio do) crashes the process if it is unloaded.
#[derive(Clone)]
pub struct Plugin(Arc<Inner>);

struct Inner {
    path: PathBuf,
    name: String,
    rustc_version: String,
    core_version: String,
    runners: Vec<DeclaredRunner>,
    functions: Vec<PluginFunction>,
}

impl Plugin {
    pub(crate) fn new(
        path: PathBuf,
        name: String,
        rustc_version: String,
        core_version: String,
        runners: Vec<DeclaredRunner>,
        functions: Vec<PluginFunction>,
    ) -> Self {
        Plugin(Arc::new(Inner {
            path,
            name,
            rustc_version,
            core_version,
            runners,
            functions,
        }))
    }

    /// Opens the plugin library at `path`, once per process, and checks it: the
    /// symbol, the ABI version, the vtable's size, every function pointer, the
    /// declarations' strides, function names no other loaded plugin offers.
    ///
    /// # Errors
    ///
    /// [`PluginError`] saying what is wrong with the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Plugin, PluginError> {
        let path = path.as_ref();
        let canonical = path
            .canonicalize()
            .map_err(|e| PluginError::new(path, format!("no such file ({e})")))?;
        if !canonical.is_file() {
            return Err(PluginError::new(path, "not a file"));
        }
        loader::open(&canonical)
    }

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

    /// The `autoawait-plugin` version it was built with.
    pub fn core_version(&self) -> &str {
        &self.0.core_version
    }

    /// The names of its runners.
    pub fn runner_names(&self) -> Vec<String> {
        self.0.runners.iter().map(|r| r.name.clone()).collect()
    }

    /// The async functions it offers to cells.
    pub fn functions(&self) -> &[PluginFunction] {
        &self.0.functions
    }

    /// Runs conformance check `check` in the plugin's own image against a new
    /// instance of its runner `runner`, with no host in between (the plugin's own
    /// `run`, timeouts and cancels are what is checked). `None` if the plugin has
    /// no such runner, or was built before plugins could check themselves.
    pub fn check(&self, runner: &str, check: &str) -> Option<autoawait_conformance::Outcome> {
        let declared = self.0.runners.iter().find(|r| r.name == runner)?;
        let check_fn = declared.fns.check?;
        // SAFETY: the declaration's own entry (present: its stride covers it), given
        // its own `ctx`; it takes the name and returns a buffer the host owns.
        let answer = unsafe { check_fn(declared.decl.ctx, FfiBuf::from(check)) };
        Some(crate::decode_outcome(&answer.into_string()))
    }

    /// The function called `name`, if the plugin has one.
    pub fn function(&self, name: &str) -> Option<&PluginFunction> {
        self.0.functions.iter().find(|f| f.name == name)
    }

    /// Creates each of its runners and registers them in `registry`, shown as
    /// [`Source::Plugin`] by `%autoawait --list`: all of them, or none.
    ///
    /// # Errors
    ///
    /// [`PluginError`] if a runner's name is taken or its creation fails or
    /// panics; the registry is left as it was.
    pub fn register(&self, registry: &Registry) -> Result<PluginLoad, PluginError> {
        let fail = |reason: String| PluginError::new(self.path(), reason);
        if registry.has_plugin(self.path()) {
            return Ok(PluginLoad {
                plugin: self.clone(),
                newly_loaded: false,
            });
        }
        // Taken names first, so that nothing is created for a plugin that cannot load.
        let names = self.runner_names();
        for (i, name) in names.iter().enumerate() {
            if names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) || registry.contains(name) {
                return Err(taken(self, name));
            }
        }
        let mut created: Vec<Arc<dyn Runner>> = Vec::with_capacity(names.len());
        for runner in &self.0.runners {
            // A hosted runner's reactor is driven by a `tokio-host` of its own (on the
            // runtime attached to `tokio-host`, or its own), shut down with it.
            let host = (runner.fns.hosting.is_some())
                .then(|| registry.create("tokio-host").ok())
                .flatten()
                .filter(|r| r.host_loop().is_some());
            match PluginRunner::create(runner, host.as_ref()) {
                Ok(r) => created.push(Arc::new(r)),
                Err(err) => {
                    // `created` is dropped here: each runner is destroyed.
                    let what = match err {
                        RunError::Panicked { message } => format!("panicked: {message}"),
                        err => format!("failed: {err}"),
                    };
                    return Err(fail(format!(
                        "creating its runner `{}` {what}; nothing was registered",
                        runner.name
                    )));
                }
            }
        }
        let source = Source::Plugin(self.path().to_path_buf());
        registry
            .register_all(created, source)
            .map_err(|e| match e {
                LookupError::DuplicateName { name } => taken(self, &name),
                other => fail(other.to_string()),
            })?;
        registry.note_plugin(self.path().to_path_buf());
        Ok(PluginLoad {
            plugin: self.clone(),
            newly_loaded: true,
        })
    }
}

fn taken(plugin: &Plugin, name: &str) -> PluginError {
    PluginError::new(
        plugin.path(),
        format!(
            "it has a runner named `{name}`, and that name is already taken in this \
             registry; nothing was registered"
        ),
    )
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
    call: CallFn,
}

impl PluginFunction {
    pub(crate) fn new(
        name: String,
        doc: String,
        decl: &'static FunctionDecl,
        call: CallFn,
    ) -> Self {
        PluginFunction {
            name,
            doc,
            decl,
            call,
        }
    }

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
        // SAFETY: `call` is the declaration's own entry (checked non-null at load),
        // given its `ctx` and `nargs` initialised values whose ownership it takes.
        let fut = unsafe { (self.call)(self.decl.ctx, args.as_mut_ptr(), nargs) };
        // SAFETY: the plugin took ownership of every value (it reads each once); only
        // the array is left to free, so forget the values without dropping them.
        unsafe { args.set_len(0) };
        PluginCall(CatchUnwind(fut))
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
pub struct PluginCall(CatchUnwind<FfiFuture<FfiResult<FfiValue>>>);

impl Future for PluginCall {
    type Output = Result<Value, RunError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|out| out.and_then(FfiResult::into_result).map(Value::from))
    }
}

impl fmt::Debug for PluginCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginCall").finish_non_exhaustive()
    }
}

/// What [`load`] did.
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

/// Serialises loads, so that the check for taken names and the registration are
/// one step as far as other loads are concerned.
static LOADING: Mutex<()> = Mutex::new(());

/// Loads the plugin library at `path` ([`Plugin::open`]) and registers its runners
/// in `registry` ([`Plugin::register`]). Its functions become available through
/// [`Plugin::functions`] and [`plugin_function`].
///
/// Each runner is created at once (so that a failure shows here); a runner may
/// still start its threads lazily. The library is never unloaded, even when loading
/// fails after it was opened. Loading the same file twice is not an error: the
/// second time returns a [`PluginLoad`] that says nothing changed.
///
/// # Errors
///
/// [`PluginError`], and the registry is left as it was, when the file does not
/// exist, is not a shared library, has no `autoawait_plugin_v1` symbol, has an ABI
/// version this build does not support, a vtable or a declaration smaller than this
/// build needs, a null function pointer, a function name another plugin offers, a
/// runner whose name is taken, or a runner whose creation fails or panics.
///
/// # Examples
///
/// ```
/// use autoawait_core::Registry;
///
/// let err = autoawait_plugin::load(&Registry::empty(), "/no/such/libplugin.so").unwrap_err();
/// assert!(err.to_string().contains("no such file"));
/// ```
pub fn load(registry: &Registry, path: impl AsRef<Path>) -> Result<PluginLoad, PluginError> {
    let _loading = lock(&LOADING);
    Plugin::open(path)?.register(registry)
}

/// Loads plugin `name` from the first place [`plugin_search_path`] finds it (file
/// names as in [`plugin_file_names`]), as [`load`].
///
/// # Errors
///
/// As [`find_plugin`] and [`load`].
pub fn load_named(registry: &Registry, name: &str) -> Result<PluginLoad, PluginError> {
    load(registry, find_plugin(name, &plugin_search_path())?)
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

/// Where [`load_named`] looks: every directory of `AUTOAWAIT_PLUGIN_PATH` (a
/// `PATH`-style list), then the executable's directory.
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
/// [`PluginError`] listing every place it looked.
pub fn find_plugin(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, PluginError> {
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
    Err(PluginError::new(
        Path::new(name),
        format!(
            "no plugin named `{name}`: looked for {} in {}; set AUTOAWAIT_PLUGIN_PATH to the \
             directory that holds it, or pass its path",
            names.join(", "),
            if looked.is_empty() {
                "no directory".to_owned()
            } else {
                looked.join(", ")
            }
        ),
    ))
}
