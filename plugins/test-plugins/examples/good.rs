//! The good plugin: runner `probe` and function `probe.echo`.

autoawait_plugin::export_plugin!(autoawait_test_plugins::probe);
