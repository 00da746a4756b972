//! Runners for autoawait, one module and one cargo feature per backend, each
//! registering with the [`autoawait_core::Registry`] through `inventory`.
//!
//! Link this crate (`use autoawait_runners as _;`) and its runners appear in
//! [`Registry::global`](autoawait_core::Registry::global). A backend whose feature
//! is off is still listed, and selecting it says which feature to enable.
//!
//! | module | feature | runners |
//! |---|---|---|
//! | [`tokio_runner`] | `tokio` | `tokio`, `tokio-per-cell`, `tokio-fresh`, `tokio-host`, `tokio-nested` |
//! | [`smol_runner`] | `smol` | `smol`, `smol-per-cell`, `smol-fresh`, `smol-host` (with `tokio`), `smol-nested` |
//! | [`async_std_runner`] | `async-std` | `async-std` |
//! | [`glommio_runner`] | `glommio` (Linux) | `glommio` |
//!
//! Each runner is also a type of its module, built with a
//! [`Config`](autoawait_core::kit::Config): a library that wants a runner of its
//! own (thread names, worker count, drop grace) builds one directly instead of
//! sharing the registry's.
//!
//! ```
//! use autoawait_core::{Registry, RunnerExt};
//! use autoawait_runners as _;
//!
//! let smol = Registry::global().get("smol")?;
//! assert_eq!(smol.block_on(async { 6 * 7 })?, 42);
//! # Ok::<(), autoawait_core::Error>(())
//! ```
#![forbid(unsafe_code)]

/// `Debug` for runner types: their name and strategy, as `dyn Runner` shows them.
macro_rules! runner_debug {
    ($($runner:ty),+ $(,)?) => {
        $(
            impl std::fmt::Debug for $runner {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    std::fmt::Debug::fmt(self as &dyn autoawait_core::Runner, f)
                }
            }
        )+
    };
}

/// [`runner_debug!`], and a runner dropped without a shutdown shuts down, giving its
/// threads the drop grace of its [`Lifecycle`](autoawait_core::kit::Lifecycle).
macro_rules! runner_traits {
    ($($runner:ty),+ $(,)?) => {
        runner_debug!($($runner),+);
        $(
            impl Drop for $runner {
                fn drop(&mut self) {
                    autoawait_core::Runner::shutdown(self, self.life.drop_grace());
                }
            }
        )+
    };
}

// The one seam where backends are chosen: one line per backend.
#[cfg(feature = "async-std")]
pub mod async_std_runner;
#[cfg(all(feature = "glommio", target_os = "linux"))]
pub mod glommio_runner;
#[cfg(feature = "smol")]
pub mod smol_runner;
#[cfg(feature = "tokio")]
pub mod tokio_runner;

mod disabled;
