//! The check that needs a process of its own: shutdown joins every thread.

use std::time::{Duration, Instant};

use autoawait_core::{Cell, RunnerExt};

use crate::support::YieldOnce;
use crate::Subject;

/// Process-wide threads that no runner owns and that live until exit: the core
/// timer, the fallback driver of async-io (smol's reactor), the global executor
/// of async-std, the idle-exiting blocking pool of the `blocking` crate, and the
/// twisted reactor, which runs once per process and can never be restarted.
const PROCESS_THREADS: [&str; 5] = [
    "autoawait-timer",
    "async-io",
    "async-std/runtime",
    "blocking-",
    "twisted",
];

/// Threads of this process, except the process-wide ones (Linux: `/proc`).
fn threads() -> Vec<String> {
    let mut names = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return names;
    };
    for entry in tasks.flatten() {
        if let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) {
            let name = name.trim().to_owned();
            // Linux keeps 15 bytes of a thread's name.
            if !PROCESS_THREADS
                .iter()
                .any(|p| name.starts_with(&p[..p.len().min(15)]))
            {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

/// `shutdown` joins every thread the runner started.
///
/// # Panics
///
/// With the reason, if the runner breaks that contract.
pub fn shutdown_joins_threads(subject: &Subject) {
    // Start the timer thread first so it is not counted as the runner's.
    autoawait_core::block_on_inline(autoawait_core::sleep(Duration::from_millis(1)));
    let before = threads();
    let runner = subject
        .make()
        .unwrap_or_else(|e| panic!("cannot create runner `{}`: {e}", subject.name()));
    let r = runner.clone();
    let _ = runner.block_on(async move {
        let task = r.spawn(Cell::new(async {
            loop {
                autoawait_core::sleep(Duration::from_millis(1)).await;
            }
        }));
        autoawait_core::sleep(Duration::from_millis(5)).await;
        task.is_ok()
    });
    for _ in 0..100 {
        let _ = runner.block_on(YieldOnce(false));
    }
    let started = Instant::now();
    runner.shutdown(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(20), "shutdown hung");
    // A joined thread can stay listed in /proc for a moment while the kernel
    // reaps it (its tid is cleared before it is released): allow for that.
    let mut after = threads();
    let reaped = Instant::now();
    while after != before && reaped.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(5));
        after = threads();
    }
    assert_eq!(before, after, "threads left running after shutdown");
}
