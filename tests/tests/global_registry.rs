//! The global registry as many libraries share it: after one calls `shutdown_all`,
//! the others get new runners on their next `get` (a binary of its own: the
//! shutdown reaches every runner of the process's registry).

use std::time::Duration;

use autoawait_core::{Registry, RunnerExt};
use autoawait_runners as _;

#[test]
fn built_in_runners_are_made_again_after_shutdown_all() {
    let registry = Registry::global();
    for name in ["tokio", "smol", "tokio-per-cell", "async-std"] {
        let before = registry.get(name).unwrap();
        assert_eq!(before.block_on(async { 1 }).unwrap(), 1);
        registry.shutdown_all(Duration::from_secs(2));
        // A handle taken before is stopped, and says how to get a working one.
        let err = before.block_on(async { 1 }).unwrap_err();
        assert!(err.is_stopped(), "`{name}`: {err:?}");
        assert!(err.to_string().contains("Registry::get"), "{err}");
        // The next `get` starts a new one.
        let after = registry.get(name).unwrap();
        assert_eq!(after.block_on(async { 2 }).unwrap(), 2, "`{name}`");
    }
}
