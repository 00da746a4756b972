//! A vtable that announces itself 8 bytes long.

use autoawait_plugin::abi::PluginVTable;

/// The entry point, with a broken header.
#[no_mangle]
pub extern "C" fn autoawait_plugin_v1() -> *const PluginVTable {
    let mut vtable = *autoawait_test_plugins::probe().build();
    vtable.struct_size = 8;
    Box::leak(Box::new(vtable))
}
