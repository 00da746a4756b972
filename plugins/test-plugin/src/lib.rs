//! Plugins for the loader's tests: each cargo feature builds one (mostly broken)
//! variant; with no feature the library has no `autoawait_plugin_v1` symbol.
//!
//! - `good`: a runner `probe` (threaded, on its own thread) and a function
//!   `probe.echo(v)` that returns its argument;
//! - `bad-abi`: announces ABI version 99;
//! - `small-struct`: announces an 8-byte vtable;
//! - `create-panics`, `create-fails`: runner `probe`'s creation panics / fails.

#[cfg(any(
    feature = "good",
    feature = "bad-abi",
    feature = "small-struct",
    feature = "create-panics",
    feature = "create-fails"
))]
mod variant {
    use std::sync::Arc;

    use autoawait_core::plugin::{PluginBuilder, Value};
    use autoawait_core::{RunError, Runner, RunnerInfo, Strategy};

    const PROBE: RunnerInfo = RunnerInfo::new(
        "probe",
        "test",
        Strategy::Nested,
        "polls cells on the calling thread",
    );

    fn make_probe() -> Result<Arc<dyn Runner>, RunError> {
        if cfg!(feature = "create-panics") {
            panic!("probe cannot start: create panicked on purpose");
        }
        if cfg!(feature = "create-fails") {
            return Err(RunError::Unsupported {
                runner: "probe".into(),
                reason: "create failed on purpose".into(),
            });
        }
        // The plugin's own copy of core's `inline` runner.
        autoawait_core::Registry::global().get("inline")
    }

    fn plugin() -> PluginBuilder {
        PluginBuilder::new("probe")
            .runner(PROBE, make_probe)
            .function("probe.echo", "probe.echo(v): returns v", |args| {
                Box::pin(async move { Ok(args.into_iter().next().unwrap_or(Value::Nil)) })
            })
    }

    #[cfg(feature = "good")]
    autoawait_core::export_plugin!(plugin);
    #[cfg(feature = "create-panics")]
    autoawait_core::export_plugin!(plugin);
    #[cfg(feature = "create-fails")]
    autoawait_core::export_plugin!(plugin);

    #[cfg(any(feature = "bad-abi", feature = "small-struct"))]
    /// A vtable with a broken header.
    #[no_mangle]
    #[allow(unreachable_pub)] // exported by symbol, not by path
    pub extern "C" fn autoawait_plugin_v1() -> *const autoawait_core::plugin::abi::PluginVTable {
        let mut vtable = *plugin().build();
        if cfg!(feature = "bad-abi") {
            vtable.abi_version = 99;
        } else {
            vtable.struct_size = 8;
        }
        Box::leak(Box::new(vtable))
    }
}

/// Something to export, so the library is not empty without a feature.
#[no_mangle]
pub extern "C" fn autoawait_test_plugin_marker() -> u32 {
    7
}
