//! Runner `probe`, whose creation panics.

use std::sync::Arc;

use autoawait_core::{RunError, Runner};
use autoawait_plugin::PluginBuilder;

fn make() -> Result<Arc<dyn Runner>, RunError> {
    panic!("probe cannot start: create panicked on purpose")
}

autoawait_plugin::export_plugin!(
    || PluginBuilder::new("probe").runner(autoawait_test_plugins::PROBE, make)
);
