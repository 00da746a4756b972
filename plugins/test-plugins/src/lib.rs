//! Plugins for the loader's tests, each an example of this crate built as a
//! `cdylib` (`examples/*.rs`), most of them broken on purpose:
//!
//! | plugin | what it is |
//! |---|---|
//! | `good` | runner `probe` (core's `inline`) and function `probe.echo(v)` that returns `v` |
//! | `no_symbol` | a library without the `autoawait_plugin_v1` symbol |
//! | `bad_abi` | announces ABI version 99 |
//! | `small_struct` | announces an 8-byte vtable |
//! | `small_stride` | its runner declarations are 8 bytes apart |
//! | `null_vtable` | its entry returns null |
//! | `null_fn` | runner `probe` without a `run` entry (a null function pointer) |
//! | `panicking_builder` | the builder given to `export_plugin!` panics |
//! | `create_panics`, `create_fails` | creating runner `probe` panics / fails |
//! | `taken_name` | runner `probe` again, with no functions |
//! | `echo_again` | function `probe.echo` again, under another plugin name |
//! | `legacy` | the good plugin with declarations of ABI 1.0's length (no `check`, no hosting) |

use std::sync::Arc;

use autoawait_core::{RunError, Runner, RunnerInfo, Strategy};
use autoawait_plugin::{PluginBuilder, Value};

/// The `probe` runner's info.
pub const PROBE: RunnerInfo = RunnerInfo::new(
    "probe",
    "test",
    Strategy::Nested,
    "polls cells on the calling thread",
);

/// A new instance of the plugin's own copy of core's `inline` runner (each registry
/// that loads the plugin, and each of its self-checks, gets its own).
///
/// # Errors
///
/// If `inline` cannot be had (it always can).
pub fn make_probe() -> Result<Arc<dyn Runner>, RunError> {
    Ok(autoawait_core::Registry::new().get("inline")?)
}

/// `probe.echo(v)`: returns `v`.
pub fn echo(args: Vec<Value>) -> autoawait_core::BoxFuture<'static, Result<Value, RunError>> {
    Box::pin(async move { Ok(args.into_iter().next().unwrap_or(Value::Nil)) })
}

/// The good plugin: runner `probe` and function `probe.echo`.
pub fn probe() -> PluginBuilder {
    PluginBuilder::new("probe")
        .runner(PROBE, make_probe)
        .function("probe.echo", "probe.echo(v): returns v", echo)
}
