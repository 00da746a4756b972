//! A shared library without the `autoawait_plugin_v1` symbol.

/// Something to export, so the library is not empty.
#[no_mangle]
pub extern "C" fn autoawait_test_plugin_marker() -> u32 {
    7
}
