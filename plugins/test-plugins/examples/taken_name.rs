//! Runner `probe` again, with no functions: its name is taken once `good` is loaded.

use autoawait_plugin::PluginBuilder;

autoawait_plugin::export_plugin!(|| PluginBuilder::new("probe-again").runner(
    autoawait_test_plugins::PROBE,
    autoawait_test_plugins::make_probe
));
