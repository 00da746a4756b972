//! `autoawait`, the shell: Lua 5.4 cells that `await`, run through the runner picked
//! with `%autoawait`, with IPython's magics, a REPL and a cell-file runner.
//!
//! An [`Engine`] runs one cell at a time and sends what it produces to a [`Sink`]:
//! text, the `Out[n]` value, rich values, errors — each attributed to the cell it
//! belongs to, also when a background task prints after its cell finished. No
//! terminal is needed, so a notebook kernel and the benches drive the same engine as
//! the REPL ([`term`]).
//!
//! ```
//! use std::sync::Arc;
//! use autoawait_shell::{Engine, Output, VecSink};
//!
//! let sink = Arc::new(VecSink::default());
//! let mut engine = Engine::new(sink.clone()).unwrap();
//! engine.run_cell("%autoawait inline");
//! engine.run_cell("function twice(x) await(sleep(0.001)); return 2 * x end");
//! engine.run_cell("twice(21)");
//! let out = sink.take().into_iter().find_map(|(_, o)| match o {
//!     Output::Result { value, .. } => Some(value.plain),
//!     _ => None,
//! });
//! assert_eq!(out.as_deref(), Some("42"));
//! ```
#![forbid(unsafe_code)]

// Link every built-in runner (an unreferenced crate's `inventory::submit!` vanishes).
use autoawait_runners as _;

mod assist;
pub mod bench;
mod builtins;
mod cells;
pub mod check;
mod engine;
mod errors;
mod highlight;
pub mod kernel;
mod magics;
mod output;
mod plugins;
pub mod scaffold;
mod show;
pub mod term;

pub use cells::{completeness, parse_percent, Completeness};
pub use engine::{CellOutcome, Engine, Interrupter};
pub use errors::{ErrorInfo, ErrorKind};
pub use magics::{Magic, MagicKind, BUILTINS, MAGICS};
pub use output::{Output, Rich, Sink, VecSink};
