//! An entry point that returns null.

use autoawait_plugin::abi::PluginVTable;

/// The entry point: no plugin.
#[no_mangle]
pub extern "C" fn autoawait_plugin_v1() -> *const PluginVTable {
    std::ptr::null()
}
