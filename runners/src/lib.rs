//! Runners for autoawait, one module and one cargo feature per backend, each
//! registering with the [`autoawait_core::Registry`] through `inventory`.
//!
//! Link this crate (`use autoawait_runners as _;`) and its runners appear in
//! [`Registry::global`](autoawait_core::Registry::global). A backend whose feature
//! is off is still listed, and selecting it says which feature to enable.
//!
//! ```
//! use autoawait_runners as _;
//! assert!(autoawait_core::Registry::global().contains("inline"));
//! ```

// The one seam where backends are chosen: one line per backend.
#[cfg(feature = "async-std")]
mod async_std_runner;
#[cfg(all(feature = "glommio", target_os = "linux"))]
mod glommio_runner;
#[cfg(feature = "smol")]
mod smol_runner;
#[cfg(feature = "tokio")]
pub mod tokio_runner;

mod disabled;
