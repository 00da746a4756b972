//! A vtable that announces ABI version 99.

use autoawait_plugin::abi::PluginVTable;

/// The entry point, with a broken header.
#[no_mangle]
pub extern "C" fn autoawait_plugin_v1() -> *const PluginVTable {
    let mut vtable = *autoawait_test_plugins::probe().build();
    vtable.abi_version = 99;
    Box::leak(Box::new(vtable))
}
