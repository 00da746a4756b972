//! The strategy table, as the registry of a binary that links every
//! backend sees it: every runner is there, with the strategy and capabilities the
//! table gives its name.

use autoawait_core::{Registry, Selector, Strategy};
use autoawait_runners as _;

/// (name, strategy, nests, keeps background tasks running between cells)
const TABLE: &[(&str, Strategy, bool, bool)] = &[
    ("inline", Strategy::Nested, true, true),
    ("sync", Strategy::Fresh, false, false),
    ("tokio", Strategy::Threaded, false, true),
    ("tokio-per-cell", Strategy::PerCell, false, false),
    ("tokio-fresh", Strategy::Fresh, false, false),
    ("tokio-host", Strategy::Host, false, true),
    ("tokio-nested", Strategy::Nested, true, true),
    ("smol", Strategy::Threaded, false, true),
    ("smol-per-cell", Strategy::PerCell, false, false),
    ("smol-fresh", Strategy::Fresh, false, false),
    ("smol-host", Strategy::Host, false, true),
    ("smol-nested", Strategy::Nested, true, true),
    ("async-std", Strategy::Threaded, false, true),
    ("glommio", Strategy::Threaded, false, true),
];

#[test]
fn every_runner_of_the_design_is_registered_with_its_strategy() {
    let registry = Registry::global();
    let listing = registry.list();
    for &(name, strategy, nests, keeps_tasks) in TABLE {
        let Some(entry) = listing.iter().find(|l| l.info.name == name) else {
            panic!(
                "runner `{name}` is not registered; have: {:?}",
                registry.names()
            );
        };
        assert!(entry.unavailable.is_none(), "`{name}` is not built in");
        assert_eq!(entry.info.strategy, strategy, "{name}");
        assert_eq!(entry.info.capabilities.nests, nests, "{name}: nests");
        assert_eq!(
            entry.info.capabilities.keeps_tasks, keeps_tasks,
            "{name}: keeps_tasks"
        );
        assert!(!entry.info.summary.is_empty(), "{name} has no summary");
    }
}

#[test]
fn the_default_runner_is_threaded_tokio() {
    let registry = Registry::new();
    let selector = Selector::new(&registry);
    assert_eq!(
        selector.status(),
        "autoawait is `on`, and set to use `tokio` (threaded: background tasks keep running)"
    );
}

#[test]
fn async_std_says_it_is_discontinued() {
    let info = Registry::global().info("async-std").unwrap();
    assert!(info.summary.contains("discontinued"), "{}", info.summary);
    assert!(info.summary.contains("smol"), "{}", info.summary);
}
