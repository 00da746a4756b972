//! Runner `probe`, whose creation fails.

use std::sync::Arc;

use autoawait_core::{Advice, RunError, Runner};
use autoawait_plugin::PluginBuilder;

fn make() -> Result<Arc<dyn Runner>, RunError> {
    Err(RunError::Unsupported {
        runner: "probe".into(),
        reason: "create failed on purpose".into(),
        advice: Advice::default(),
    })
}

autoawait_plugin::export_plugin!(
    || PluginBuilder::new("probe").runner(autoawait_test_plugins::PROBE, make)
);
