//! A plugin whose builder panics: `export_plugin!` must not unwind into the host.

autoawait_plugin::export_plugin!(|| -> autoawait_plugin::PluginBuilder {
    panic!("the builder panicked on purpose")
});
