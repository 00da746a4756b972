//! autoawait plugins: runners and cell functions from a shared library loaded at
//! run time, over a C ABI.
//!
//! A plugin is a `cdylib` that depends on this crate and exports one symbol,
//! `autoawait_plugin_v1`, with [`export_plugin!`]. The host loads it with [`load`]
//! (or by name with [`load_named`]), and its runners join the registry like
//! built-in ones.
//!
//! Only C types cross the boundary ([`abi`]): the vtable is `#[repr(C)]` and
//! append-only, cells cross as [`async_ffi::FfiFuture`]s whose results the host
//! allocates and frees, a runner's [`Services`](autoawait_core::Services) (sleep,
//! TCP) cross as C vtables, panics are caught on both sides, and a library is never
//! unloaded. Every function pointer is an `unsafe extern "C" fn` (never callable
//! from safe code) behind an `Option`: the loader refuses a plugin with a null entry
//! it would call. Plugins also offer async functions to cells ([`PluginFunction`]),
//! called with [`Value`]s: what a scripting front end has. A plugin has its own copy
//! of every crate it links, tokio included: a host cell that calls host tokio inside
//! a plugin's reactor fails with
//! [`RunError::WrongRuntime`], and a
//! plugin's `inventory::submit!` does not reach the host's registry.
//!
//! This is the only crate of autoawait with `unsafe` code: the loader
//! (`loader.rs`), the calls through the vtable, and the entry points the plugin side
//! exports, each block with the argument that makes it sound.
//!
//! # Examples
//!
//! A plugin's `lib.rs` (crate-type `cdylib`):
//!
//! ```
//! use std::sync::Arc;
//! use autoawait_core::{RunError, Runner, RunnerInfo, Strategy};
//! use autoawait_plugin::{PluginBuilder, Value};
//!
//! const MINE: RunnerInfo = RunnerInfo::new("mine", "mine", Strategy::Threaded, "my loop");
//! fn make_mine() -> Result<Arc<dyn Runner>, RunError> {
//!     # return Ok(autoawait_core::Registry::global().get("inline")?);
//!     // ... build the runner
//! }
//!
//! autoawait_plugin::export_plugin!(|| {
//!     PluginBuilder::new("mine")
//!         .runner(MINE, make_mine)
//!         .function("mine.answer", "mine.answer() -> 42", |_args| {
//!             Box::pin(async { Ok(Value::Int(42)) })
//!         })
//! });
//! ```
//!
//! And a host:
//!
//! ```no_run
//! use autoawait_core::{Registry, RunnerExt};
//!
//! let registry = Registry::global();
//! let load = autoawait_plugin::load_named(registry, "mine")?; // AUTOAWAIT_PLUGIN_PATH, exe dir
//! println!("{load}");
//! assert_eq!(registry.get("mine")?.block_on(async { 1 + 1 })?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod abi;
mod export;
mod hosting;
mod io;
mod library;
mod loader;
mod runner;
mod value;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use autoawait_core::{RunError, Strategy};

pub use export::{PluginBuilder, PluginFn};
pub use hosting::duplicate_fd;
pub use library::{
    find_plugin, load, load_named, loaded_plugins, plugin_file_names, plugin_function,
    plugin_search_path, Plugin, PluginCall, PluginFunction, PluginLoad,
};
pub use value::{Callback, Value};

#[doc(hidden)]
pub use export::entry as __entry;

/// `rustc --version` of the compiler that built this copy of `autoawait-plugin`.
pub const RUSTC_VERSION: &str = env!("AUTOAWAIT_RUSTC_VERSION");

/// A plugin library that could not be loaded; the registry was left as it was.
///
/// # Examples
///
/// ```
/// let err = autoawait_plugin::Plugin::open("/no/such/libx.so").unwrap_err();
/// assert_eq!(err.path, std::path::Path::new("/no/such/libx.so"));
/// assert!(err.to_string().starts_with("cannot load plugin /no/such/libx.so: no such file"));
/// ```
#[derive(Clone, Debug)]
pub struct PluginError {
    /// The file (or the name) that was asked for.
    pub path: PathBuf,
    /// What is wrong with it, and what to do.
    pub reason: String,
}

impl PluginError {
    pub(crate) fn new(path: &Path, reason: impl Into<String>) -> Self {
        PluginError {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot load plugin {}: {}",
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for PluginError {}

/// The number a [`Strategy`] crosses the ABI as.
///
/// ```
/// use autoawait_core::Strategy;
/// use autoawait_plugin::{strategy_from_u32, strategy_to_u32};
///
/// assert_eq!(strategy_from_u32(strategy_to_u32(Strategy::Host)), Strategy::Host);
/// ```
pub fn strategy_to_u32(strategy: Strategy) -> u32 {
    match strategy {
        Strategy::PerCell => 1,
        Strategy::Fresh => 2,
        Strategy::Host => 3,
        Strategy::Nested => 4,
        _ => 0,
    }
}

/// The [`Strategy`] of an ABI number (unknown numbers read as `Threaded`).
pub fn strategy_from_u32(n: u32) -> Strategy {
    match n {
        1 => Strategy::PerCell,
        2 => Strategy::Fresh,
        3 => Strategy::Host,
        4 => Strategy::Nested,
        _ => Strategy::Threaded,
    }
}

/// An outcome of a conformance check, as it crosses the ABI.
pub(crate) fn encode_outcome(outcome: &autoawait_conformance::Outcome) -> String {
    use autoawait_conformance::Outcome;
    match outcome {
        Outcome::Passed => "ok".into(),
        Outcome::Failed(why) => format!("FAIL: {why}"),
        Outcome::Skipped(why) => format!("skip: {why}"),
    }
}

pub(crate) fn decode_outcome(text: &str) -> autoawait_conformance::Outcome {
    use autoawait_conformance::Outcome;
    if let Some(why) = text.strip_prefix("FAIL: ") {
        Outcome::Failed(why.to_owned())
    } else if let Some(why) = text.strip_prefix("skip: ") {
        Outcome::Skipped(why.to_owned())
    } else if text == "ok" {
        Outcome::Passed
    } else {
        Outcome::Failed(format!("the plugin answered `{text}`"))
    }
}

/// Runs `f`, catching a panic as a value (kept off stderr, see
/// [`quietly`](autoawait_core::kit::quietly)): nothing unwinds across the ABI.
pub(crate) fn caught<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    autoawait_core::kit::quietly(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
}

/// Turns a panic while polling into [`RunError::Panicked`].
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, RunError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match crate::caught(|| Pin::new(inner).poll(cx)) {
            Ok(poll) => poll.map(Ok),
            Err(payload) => Poll::Ready(Err(RunError::from_panic(payload))),
        }
    }
}

/// Exports a plugin: defines the `autoawait_plugin_v1` symbol from a closure (or
/// function) returning a [`PluginBuilder`], called once on the first load.
///
/// Put it once in the `lib.rs` of a `cdylib`; see the [crate docs](crate). The
/// builder runs under `catch_unwind`: if it panics, the symbol returns null and the
/// host refuses the plugin with a clear error. (`#[no_mangle]` is the one attribute
/// the `unsafe_code` lint sees in a plugin crate: the macro allows it locally.)
///
/// # Examples
///
/// A plugin of one runner (the runner is `inline`'s factory here; yours makes
/// your runner, see `autoawait new plugin`):
///
/// ```
/// use autoawait_plugin::{export_plugin, PluginBuilder};
///
/// const INFO: autoawait_core::RunnerInfo = autoawait_core::RunnerInfo::new(
///     "my-loop",
///     "mine",
///     autoawait_core::Strategy::Nested,
///     "cells polled on the caller's thread",
/// );
///
/// fn plugin() -> PluginBuilder {
///     PluginBuilder::new("my-plugin")
///         .runner(INFO, || Ok(autoawait_core::Registry::new().get("inline")?))
/// }
///
/// export_plugin!(plugin);
/// # fn main() { assert!(!autoawait_plugin_v1().is_null()); }
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($build:expr $(,)?) => {
        /// The entry point of this autoawait plugin (plugin ABI version 1).
        #[no_mangle]
        #[allow(unsafe_code)]
        pub extern "C" fn autoawait_plugin_v1() -> *const $crate::abi::PluginVTable {
            static VTABLE: ::std::sync::OnceLock<
                ::std::option::Option<&'static $crate::abi::PluginVTable>,
            > = ::std::sync::OnceLock::new();
            $crate::__entry(&VTABLE, $build)
        }
    };
}
