//! Runner `probe` as a plugin built against ABI 1.0 declares it: its runner
//! declarations end before the fields appended since (`check`, ...). A host of a
//! later revision must load it, reading the missing fields as absent.

use autoawait_plugin::abi::{Decl, PluginVTable, RunnerDecl};

/// The entry point: the good vtable, with declarations of ABI 1.0's length.
#[no_mangle]
pub extern "C" fn autoawait_plugin_v1() -> *const PluginVTable {
    let builder = autoawait_plugin::PluginBuilder::new("legacy").runner(
        autoawait_test_plugins::PROBE,
        autoawait_test_plugins::make_probe,
    );
    let mut vtable = *builder.build();
    // One runner: its declaration starts at `runners` whatever the stride.
    vtable.runner_stride = <RunnerDecl as Decl>::MIN_SIZE;
    Box::leak(Box::new(vtable))
}
