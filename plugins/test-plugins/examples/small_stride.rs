//! Runner declarations 8 bytes apart: smaller than a declaration.

use autoawait_plugin::abi::PluginVTable;

/// The entry point, with a broken stride.
#[no_mangle]
pub extern "C" fn autoawait_plugin_v1() -> *const PluginVTable {
    let mut vtable = *autoawait_test_plugins::probe().build();
    vtable.runner_stride = 8;
    Box::leak(Box::new(vtable))
}
