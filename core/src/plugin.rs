//! Plugins: runners and cell functions from a shared library loaded at run time.
//!
//! A plugin is a `cdylib` that depends on `autoawait-core` and exports one symbol,
//! `autoawait_plugin_v1`, with [`export_plugin!`](crate::export_plugin). The host
//! loads it with [`Registry::load_plugin`](crate::Registry::load_plugin) (or by name
//! with [`Registry::load_plugin_named`](crate::Registry::load_plugin_named)), and its
//! runners join the registry like built-in ones.
//!
//! Only C types cross the boundary ([`abi`]): the vtable is `#[repr(C)]` and
//! append-only, cells cross as [`async_ffi::FfiFuture`]s whose results the host
//! allocates and frees, a runner's [`Services`](crate::Services) (sleep, TCP) cross
//! as C vtables, panics are caught on both sides, and a library is never
//! unloaded. Plugins also offer async functions to cells ([`PluginFunction`]),
//! called with [`Value`]s: what a scripting front end has. A plugin has its own copy of every crate it links, tokio included: a
//! host cell that calls host tokio inside a plugin's reactor fails with
//! [`RunError::WrongRuntime`](crate::RunError::WrongRuntime), and a plugin's
//! `inventory::submit!` does not reach the host's registry.
//!
//! # Examples
//!
//! A plugin's `lib.rs` (crate-type `cdylib`):
//!
//! ```
//! use std::sync::Arc;
//! use autoawait_core::plugin::{PluginBuilder, Value};
//! use autoawait_core::{RunError, Runner, RunnerInfo, Strategy};
//!
//! const MINE: RunnerInfo = RunnerInfo::new("mine", "mine", Strategy::Threaded, "my loop");
//! fn make_mine() -> Result<Arc<dyn Runner>, RunError> {
//!     # autoawait_core::Registry::global().get("inline")
//!     // ... build the runner
//! }
//!
//! autoawait_core::export_plugin!(|| {
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
//! let load = registry.load_plugin_named("mine")?; // AUTOAWAIT_PLUGIN_PATH, exe dir
//! println!("{load}");
//! assert_eq!(registry.get("mine")?.block_on(async { 1 + 1 })?, 2);
//! # Ok::<(), autoawait_core::RunError>(())
//! ```

pub mod abi;
mod export;
mod host;
mod io;
mod value;

pub use export::{PluginBuilder, PluginFn};
pub use host::{
    find_plugin, loaded_plugins, plugin_file_names, plugin_function, plugin_search_path, Plugin,
    PluginCall, PluginFunction, PluginLoad,
};
pub use value::{Callback, Value};

#[doc(hidden)]
pub use export::entry as __entry;

use crate::Strategy;

/// `rustc --version` of the compiler that built this copy of `autoawait-core`.
pub const RUSTC_VERSION: &str = env!("AUTOAWAIT_RUSTC_VERSION");

/// The number a [`Strategy`] crosses the ABI as.
pub fn strategy_to_u32(strategy: Strategy) -> u32 {
    match strategy {
        Strategy::Threaded => 0,
        Strategy::PerCell => 1,
        Strategy::Fresh => 2,
        Strategy::Host => 3,
        Strategy::Nested => 4,
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

/// Exports a plugin: defines the `autoawait_plugin_v1` symbol from a closure (or
/// function) returning a [`PluginBuilder`], called once on the first load.
///
/// Put it once in the `lib.rs` of a `cdylib`; see the [module docs](crate::plugin).
#[macro_export]
macro_rules! export_plugin {
    ($build:expr $(,)?) => {
        /// The entry point of this autoawait plugin (plugin ABI version 1).
        #[no_mangle]
        #[allow(unsafe_code)]
        pub extern "C" fn autoawait_plugin_v1() -> *const $crate::plugin::abi::PluginVTable {
            static VTABLE: ::std::sync::OnceLock<
                ::std::option::Option<&'static $crate::plugin::abi::PluginVTable>,
            > = ::std::sync::OnceLock::new();
            $crate::plugin::__entry(&VTABLE, $build)
        }
    };
}
