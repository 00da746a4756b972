//! The contract of autoawait: run a future to completion from synchronous code,
//! through a runner picked by name at run time.
//!
//! An interactive host (a REPL, a notebook kernel, a blocking facade) hands each
//! [`Cell`] to a [`Runner`] picked with `%autoawait <name>` (a [`Selector`]) from the
//! [`Registry`]. Runners differ in what happens between cells ([`Strategy`]): a
//! reactor thread that keeps background tasks running, a loop driven only during
//! cells, a fresh loop per cell, the host's own loop, or a re-entrant loop. Whatever
//! the runner, a panic is a value, a timeout or a cancel drops the cell, and blocking
//! where it would deadlock is an error, never a hang.
//!
//! This crate depends on no reactor. It holds two runners of its own: `inline`
//! (polls on the calling thread, pollster-style) and `sync` (IPython's pseudo-sync
//! runner); `autoawait-runners` adds tokio, smol and friends, `autoawait-plugin`
//! loads runners from shared libraries, and [`kit`] is what every runner shares.
//!
//! ```
//! use std::time::Duration;
//! use autoawait_core::{current_cell, Cell, CellId, Registry, RunOptions, RunnerExt};
//!
//! let runner = Registry::global().get("inline")?;
//!
//! // Typed results on `dyn Runner`.
//! assert_eq!(runner.block_on(async { 6 * 7 })?, 42);
//!
//! // A panic is a value; the runner goes on.
//! assert!(runner.block_on(async { panic!("boom") }).unwrap_err().is_panicked());
//!
//! // Background work is attributed to the cell that started it.
//! let cell = Cell::with_origin(CellId::new(3), async { current_cell() });
//! let task = runner.spawn(cell)?;
//! let seen = task.wait(Some(Duration::from_secs(5)))?;
//! assert_eq!(*seen.downcast::<Option<CellId>>().unwrap(), Some(CellId::new(3)));
//! # Ok::<(), autoawait_core::Error>(())
//! ```
#![forbid(unsafe_code)]

mod builtin;
mod cell;
mod closest;
mod error;
mod eventual;
mod factory;
mod hooks;
mod hosted;
pub mod kit;
mod options;
mod reactor;
mod registry;
mod runner;
mod selector;
mod services;
mod sync;
mod timer;

pub use builtin::block_on_inline;
pub use cell::{
    current_cell, in_cell, with_cell, Cell, CellFuture, CellId, CellOutput, CellResult, InCell,
    LocalCellFuture,
};
pub use closest::closest_name;
pub use error::{panic_text, Advice, Error, LookupError, RunError, WaitError};
pub use eventual::{set_error_hook, Completer, EventualResult, LocalTask, Task, WaitResult};
pub use factory::{MakeRunner, RunnerFactory};
pub use hooks::{BlockingProbe, PanicTranslator};
pub use hosted::{HostLoop, Hosted};
pub use options::{CancelToken, Guarded, RunOptions};
pub use reactor::{current_runner_name, ReactorGuard, ReactorId};
pub use registry::{Listing, Registry, Source};
pub use runner::{downcast, BoxFuture, Capabilities, Runner, RunnerExt, RunnerInfo, Strategy};
pub use selector::{default_runner_name, SelectError, Selector};
pub use services::{AcceptFn, Accepted, ByteStream, Listener, Services};
pub use timer::{sleep, Sleep};

#[doc(hidden)]
pub use inventory;
