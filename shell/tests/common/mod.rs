//! Helpers shared by the shell's integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use autoawait_core::{CellId, Registry};
use autoawait_shell::{CellOutcome, Engine, ErrorInfo, Output, VecSink};

/// Runs `body` on its own thread and fails the test if it takes longer than `secs`.
pub(crate) fn watchdog<T: Send + 'static>(
    secs: u64,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    autoawait_test_support::watchdog("test-body", Duration::from_secs(secs), body)
}

/// An engine on `runner` collecting its outputs.
pub(crate) struct Shell {
    pub(crate) engine: Engine,
    pub(crate) sink: Arc<VecSink>,
}

impl Shell {
    pub(crate) fn new(runner: &str) -> Shell {
        let sink = Arc::new(VecSink::default());
        let engine = Engine::new(sink.clone()).expect("engine starts");
        let mut shell = Shell { engine, sink };
        shell.ok(&format!("%autoawait {runner}"));
        shell.sink.take();
        shell
    }

    /// Runs a cell and returns its report and outputs.
    pub(crate) fn run(&mut self, src: &str) -> (CellOutcome, Vec<(CellId, Output)>) {
        let report = self.engine.run_cell(src);
        (report, self.sink.take())
    }

    /// Runs a cell that must succeed; returns its outputs.
    #[track_caller]
    pub(crate) fn ok(&mut self, src: &str) -> Vec<(CellId, Output)> {
        let (report, outputs) = self.run(src);
        assert!(report.is_ok(), "cell {src:?} failed: {:?}", report.error);
        outputs
    }

    /// Runs a cell that must fail; returns the error.
    #[track_caller]
    pub(crate) fn err(&mut self, src: &str) -> ErrorInfo {
        let (report, outputs) = self.run(src);
        let err = report
            .error
            .unwrap_or_else(|| panic!("cell {src:?} succeeded: {outputs:?}"));
        let errors: Vec<_> = outputs
            .iter()
            .filter(|(_, o)| matches!(o, Output::Error(_)))
            .collect();
        assert_eq!(errors.len(), 1, "exactly one error output: {outputs:?}");
        err
    }

    /// The `Out[n]` text of a cell that must succeed.
    #[track_caller]
    pub(crate) fn out(&mut self, src: &str) -> Option<String> {
        result_of(&self.ok(src))
    }

    /// Everything printed on stdout by a cell that must succeed.
    #[track_caller]
    pub(crate) fn stdout(&mut self, src: &str) -> String {
        stdout_of(&self.ok(src))
    }
}

pub(crate) fn result_of(outputs: &[(CellId, Output)]) -> Option<String> {
    outputs.iter().find_map(|(_, o)| match o {
        Output::Result { value, .. } => Some(value.plain.clone()),
        _ => None,
    })
}

pub(crate) fn stdout_of(outputs: &[(CellId, Output)]) -> String {
    outputs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Stdout(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// `true` if the runner is built into this binary.
pub(crate) fn has(runner: &str) -> bool {
    Registry::global().get(runner).is_ok()
}

/// Builds the twisted plugin into a target dir of its own (once per test binary)
/// and returns the directory that holds it, for `AUTOAWAIT_PLUGIN_PATH`.
pub(crate) fn twisted_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let build = autoawait_test_support::PluginBuild::new("shell-plugin-tests");
        build
            .twisted()
            .unwrap_or_else(|e| panic!("cannot build the twisted plugin: {e}"));
        build.out_dir()
    })
    .clone()
}
