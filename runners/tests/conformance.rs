//! One conformance suite for every runner: the strategy table and the Runner
//! contract, as `autoawait-conformance` checks them. A backend or plugin joins the
//! suite with one line at the bottom of this file.

use std::path::PathBuf;
use std::sync::OnceLock;

use autoawait_conformance::{conformance_tests, Subject};
use autoawait_core::Registry;
use autoawait_runners as _;
use autoawait_static_example as _;

/// Runner `name` of a registry of its own for each check: every built-in runner
/// and, for plugin runners, their plugin.
fn subject(name: &'static str) -> Subject {
    Subject::new(name, move || {
        let registry = Registry::new();
        if name.starts_with("twisted") {
            autoawait_plugin::load(&registry, twisted_plugin())
                .unwrap_or_else(|e| panic!("cannot load the twisted plugin: {e}"));
        }
        Ok(registry.get(name)?)
    })
}

/// Builds the twisted cdylib (once per test binary) and returns its path.
fn twisted_plugin() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        autoawait_test_support::PluginBuild::new("plugin-tests")
            .twisted()
            .unwrap_or_else(|e| panic!("cannot build the twisted plugin: {e}"))
    })
}

conformance_tests!(inline, subject("inline"));
conformance_tests!(sync, subject("sync"));
#[cfg(feature = "async-std")]
conformance_tests!(async_std, subject("async-std"));
#[cfg(all(feature = "glommio", target_os = "linux"))]
conformance_tests!(glommio, subject("glommio"));
#[cfg(feature = "tokio")]
conformance_tests!(tokio, subject("tokio"));
#[cfg(feature = "tokio")]
conformance_tests!(tokio_per_cell, subject("tokio-per-cell"));
#[cfg(feature = "tokio")]
conformance_tests!(tokio_fresh, subject("tokio-fresh"));
#[cfg(feature = "tokio")]
conformance_tests!(tokio_host, subject("tokio-host"));
#[cfg(feature = "tokio")]
conformance_tests!(tokio_nested, subject("tokio-nested"));
#[cfg(feature = "smol")]
conformance_tests!(smol, subject("smol"));
#[cfg(feature = "smol")]
conformance_tests!(smol_per_cell, subject("smol-per-cell"));
#[cfg(feature = "smol")]
conformance_tests!(smol_fresh, subject("smol-fresh"));
#[cfg(all(feature = "smol", feature = "tokio"))]
conformance_tests!(smol_host, subject("smol-host"));
#[cfg(feature = "smol")]
conformance_tests!(smol_nested, subject("smol-nested"));
conformance_tests!(futures_local, subject("futures-local"));
// `twisted-per-cell` is not here: only the first cell of a whole process can run
// on it (plugin/tests/loader.rs checks that, in a child process).
conformance_tests!(twisted, subject("twisted"));
// The same reactor, turned by `tokio-host`'s loop.
#[cfg(feature = "tokio")]
conformance_tests!(twisted_host, subject("twisted-host"));
