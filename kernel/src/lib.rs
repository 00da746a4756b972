//! autoawait as a Jupyter kernel: messaging 5.5 over ZeroMQ, with output that finds
//! its cell.
//!
//! The kernel speaks the protocol (shell, control, stdin, IOPub over XPUB with
//! `iopub_welcome`, heartbeat; HMAC-SHA256 checked in constant time on every
//! incoming message; busy/idle around every request) on threads of its own that no
//! cell ever runs on, and hands cells to a [`Session`], the language engine, one
//! request at a time per shell: the main shell and any kernel subshells (JEP 91),
//! which run concurrently. The engine sends output through a [`KernelOutput`] from
//! any thread, tagged with the [`CellId`](autoawait_core::CellId) it belongs to, and
//! the kernel sends it with the parent header of the request that ran that cell, so
//! output of a background task lands under the cell that started it, even while
//! another cell runs. Stream text is batched per cell and stream, flushed on a short
//! interval, before any other output of the cell and at its end, and summarised
//! beyond a rate instead of being dropped. An `interrupt_request` (or SIGINT) fires
//! the running cells' [`CancelToken`](autoawait_core::CancelToken)s. The binary can
//! also capture file descriptors 1 and 2 ([`Kernel::capture_output`]) and exit with
//! its parent ([`Kernel::exit_with_parent`]).
//!
//! ```no_run
//! use autoawait_kernel::{Completeness, ExecuteContext, ExecuteOutcome, KernelInfo, MimeBundle, Session};
//!
//! struct Echo;
//!
//! impl Session for Echo {
//!     fn info(&self) -> KernelInfo { KernelInfo::default() }
//!     fn execute(&mut self, code: &str, ctx: &ExecuteContext) -> ExecuteOutcome {
//!         ctx.output.stdout(Some(ctx.cell), &format!("you said {code}\n"));
//!         Ok(Some(MimeBundle::text(code.len().to_string())))
//!     }
//!     fn is_complete(&mut self, _code: &str) -> Completeness {
//!         Completeness::Complete
//!     }
//! }
//!
//! // `autoawait kernel -f FILE`:
//! autoawait_kernel::run("kernel-1.json".as_ref(), |_kernel| Echo)?;
//! # Ok::<(), autoawait_kernel::KernelError>(())
//! ```
#![forbid(unsafe_code)]

mod capture;
mod client;
mod connection;
mod control;
mod exec;
mod history;
mod install;
mod io;
mod kernel;
mod outbox;
mod output;
mod session;
mod subshell;
mod wire;

pub use client::{Client, Received};
pub use connection::{Channel, ConnectionInfo, KernelError};
pub use install::{InstallError, InstallTarget, KernelSpec};
pub use kernel::{run, Kernel};
pub use output::{detached_cell, InputError, KernelOutput};
pub use session::{
    Completeness, Completions, ErrorReport, ExecuteContext, ExecuteOutcome, KernelInfo, MimeBundle,
    Session,
};
