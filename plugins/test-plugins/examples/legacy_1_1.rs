//! Runner `probe` as a plugin built against ABI 1.1 declares it: its runner
//! declarations end after `check`, before the hosting entries of ABI 1.2. A host
//! of a later revision must load it, with `check` there and no hosting.

use autoawait_plugin::abi::{PluginVTable, RunnerDecl};

/// The entry point: the good vtable, with declarations of ABI 1.1's length.
#[no_mangle]
pub extern "C" fn autoawait_plugin_v1() -> *const PluginVTable {
    let builder = autoawait_plugin::PluginBuilder::new("legacy-1-1").runner(
        autoawait_test_plugins::PROBE,
        autoawait_test_plugins::make_probe,
    );
    let mut vtable = *builder.build();
    // One runner: its declaration starts at `runners` whatever the stride.
    vtable.runner_stride = std::mem::offset_of!(RunnerDecl, hosted_attach);
    Box::leak(Box::new(vtable))
}
