//! tokio runners, one per strategy:
//!
//! | runner | strategy | how |
//! |---|---|---|
//! | `tokio` ([`Threaded`]) | threaded | a thread named `tokio` owns a current_thread runtime and a `LocalSet` until shutdown; cells are handed over through a spin-then-park mailbox |
//! | `tokio-per-cell` ([`PerCell`]) | per-cell | one current_thread runtime, driven by `block_on` on the caller's thread only while a cell runs |
//! | `tokio-fresh` ([`Fresh`]) | fresh | a new current_thread runtime per cell, shut down after it |
//! | `tokio-host` ([`Host`]) | host | the runtime the host runs: [`attach`]ed, or the one the calling thread is in, or else a multi_thread runtime of its own |
//! | `tokio-nested` ([`Nested`]) | nested | a multi_thread runtime; `run` inside a cell uses `block_in_place` + `Handle::block_on` |
//!
//! Every runner offers tokio's timer and TCP to its cells as
//! [`Services`](autoawait_core::Services), and names every thread it starts after
//! itself (or after [`Config::thread_name`]). Each can be built directly with a
//! [`Config`], for a library that wants a runner of its own; the registry builds
//! them with the defaults.
//!
//! Blocking a thread that drives a tokio current_thread runtime (inside its
//! `block_on`, or a task of it) is refused with
//! [`RunError::WouldBlock`] by every runner:
//! it would freeze that runtime. `spawn_blocking` threads may block.
//!
//! # Examples
//!
//! A blocking facade with a runner of its own, safe from any thread:
//!
//! ```
//! use autoawait_core::kit::Config;
//! use autoawait_core::RunnerExt;
//! use autoawait_runners::tokio_runner::Threaded;
//!
//! let io = Threaded::new(Config::new("my-lib").thread_name("my-lib-io"))?;
//! let answer = io.block_on(async {
//!     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//!     42
//! })?;
//! assert_eq!(answer, 42);
//! # Ok::<(), autoawait_core::RunError>(())
//! ```
//!
//! A host that already runs tokio hands its runtime to `tokio-host`:
//!
//! ```
//! use autoawait_core::{Registry, RunnerExt};
//!
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .thread_name("host")
//!     .enable_all()
//!     .build()?;
//! autoawait_runners::tokio_runner::attach(rt.handle().clone());
//! let runner = Registry::global().get("tokio-host")?;
//! // A task the cell spawns runs on the host's workers.
//! let worker = runner.block_on(async {
//!     let name = || std::thread::current().name().map(str::to_owned);
//!     tokio::spawn(async move { name() }).await.unwrap()
//! })?;
//! assert_eq!(worker.as_deref(), Some("host"));
//! autoawait_runners::tokio_runner::detach();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod drive;
mod fresh;
mod host;
mod nested;
mod per_cell;
mod services;
mod threaded;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use autoawait_core::kit::{quietly, Config};
use autoawait_core::{Advice, BlockingProbe, CellResult, PanicTranslator, RunError, RunnerFactory};
use tokio::runtime::{Builder, Handle, Runtime, RuntimeFlavor};

pub use fresh::Fresh;
pub use host::{attach, detach, Host};
pub use nested::Nested;
pub use per_cell::PerCell;
pub use threaded::Threaded;

/// A current_thread runtime with every driver, its blocking threads named `name`.
pub(crate) fn current_thread(name: &str) -> Result<Runtime, RunError> {
    Builder::new_current_thread()
        .enable_all()
        .thread_name(name)
        .build()
        .map_err(RunError::backend)
}

/// A multi_thread runtime of `config.workers` workers named `name`.
fn multi_thread(config: &Config, name: &str) -> Result<Runtime, RunError> {
    Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .thread_name(name)
        .build()
        .map_err(RunError::backend)
}

/// Shuts `rt` down, joining its threads within `grace`; inside a runtime (where
/// tokio may not block) it is shut down in the background instead of panicking.
fn shut_down(rt: Runtime, grace: Duration) {
    if Handle::try_current().is_ok() {
        rt.shutdown_background();
    } else {
        rt.shutdown_timeout(grace);
    }
}

/// `run` on a thread that is inside a tokio runtime, where tokio refuses to start
/// (or block on) another.
fn inside_runtime(runner: &str) -> RunError {
    RunError::WouldBlock {
        runner: runner.into(),
        what: "a thread inside a tokio runtime".into(),
        advice: Advice::runners("the re-entrant runner", ["tokio-nested"])
            .or("await the future, spawn it, or call run() from `spawn_blocking`")
            .without(runner),
    }
}

/// `rt.block_on(fut)`, where tokio refusing to block (this thread is already inside
/// a runtime) is [`inside_runtime`] instead of a panic.
fn block_on<F>(runner: &str, rt: &Runtime, fut: F) -> CellResult
where
    F: std::future::Future<Output = CellResult>,
{
    match quietly(|| catch_unwind(AssertUnwindSafe(|| rt.block_on(fut)))) {
        Ok(out) => out,
        Err(payload) => match autoawait_core::panic_text(payload.as_ref()) {
            m if m.contains("Cannot start a runtime from within a runtime") => {
                Err(inside_runtime(runner))
            }
            _ => Err(RunError::from_panic(payload)),
        },
    }
}

/// `block_in_place(f)`, or `WouldBlock` where tokio forbids blocking this thread
/// (a `LocalSet` or a current_thread runtime inside a multi_thread one).
fn block_in_place<R>(runner: &str, f: impl FnOnce() -> R) -> Result<R, RunError> {
    match quietly(|| catch_unwind(AssertUnwindSafe(|| tokio::task::block_in_place(f)))) {
        Ok(out) => Ok(out),
        Err(payload) => {
            if !autoawait_core::panic_text(payload.as_ref()).contains("can call blocking only") {
                resume_unwind(payload);
            }
            Err(inside_runtime(runner))
        }
    }
}

/// Whether this thread drives a tokio current_thread runtime (its `block_on`, or
/// one of its tasks): blocking it would freeze that runtime. `spawn_blocking`
/// threads of such a runtime may block; tokio's `block_in_place` tells them apart.
fn drives_current_thread() -> Option<&'static str> {
    let handle = Handle::try_current().ok()?;
    if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
        return None;
    }
    let refused = quietly(|| catch_unwind(|| tokio::task::block_in_place(|| ()))).is_err();
    refused.then_some("a tokio current_thread runtime")
}

/// tokio's panics that mean "this awaitable needs a tokio runtime".
fn translate_panic(message: &str) -> Option<RunError> {
    let runner = || autoawait_core::current_runner_name().unwrap_or_else(|| "no runner".into());
    if message.contains("must be called from the context of a Tokio") {
        return Some(RunError::WrongRuntime {
            needs: "tokio".into(),
            runner: runner(),
            detail: message.into(),
        });
    }
    if message.contains("A Tokio 1.x context was found, but it is being shutdown") {
        // A timer or socket made on a tokio runtime that is gone (a fresh runner's
        // earlier cell, a runner that was shut down).
        return Some(RunError::WrongRuntime {
            needs: "tokio".into(),
            runner: runner(),
            detail: format!(
                "{message} The tokio runtime this awaitable was made on was shut down, as \
                 a fresh runner does after each cell: make it in the cell that awaits it, \
                 or use a runner that keeps its runtime"
            ),
        });
    }
    None
}

inventory::submit! { PanicTranslator(translate_panic) }
inventory::submit! { BlockingProbe(drives_current_thread) }

inventory::submit! {
    RunnerFactory::new(threaded::INFO, || Ok(Arc::new(Threaded::new(Config::new("tokio"))?)))
}
inventory::submit! {
    RunnerFactory::new(per_cell::INFO, || {
        Ok(Arc::new(PerCell::new(Config::new("tokio-per-cell"))?))
    })
}
inventory::submit! {
    RunnerFactory::new(fresh::INFO, || Ok(Arc::new(Fresh::new(Config::new("tokio-fresh")))))
}
inventory::submit! {
    RunnerFactory::new(host::INFO, || Ok(Arc::new(Host::new(Config::new("tokio-host")))))
}
inventory::submit! {
    RunnerFactory::new(nested::INFO, || Ok(Arc::new(Nested::new(Config::new("tokio-nested"))?)))
}
