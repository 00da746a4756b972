//! Function `probe.echo` again, under another plugin name: a name means one function.

use autoawait_plugin::PluginBuilder;

autoawait_plugin::export_plugin!(|| PluginBuilder::new("echo-again").function(
    "probe.echo",
    "probe.echo(v): returns v, again",
    autoawait_test_plugins::echo
));
