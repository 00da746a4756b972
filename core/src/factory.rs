//! [`RunnerFactory`]: a built-in runner, collected with `inventory`.

use std::sync::Arc;

use crate::{RunError, Runner, RunnerInfo};

/// Makes a runner with its defaults (a registry's factory).
pub type MakeRunner = fn() -> Result<Arc<dyn Runner>, RunError>;

/// A built-in runner, submitted with [`inventory::submit!`] by the crate that
/// implements it. The registry creates the runner on first use.
///
/// A binary must reference every crate whose runners it wants (`use crate_x as _;`):
/// an unreferenced crate is not linked and its `submit!` silently vanishes.
///
/// # Examples
///
/// ```
/// use autoawait_core::{RunnerFactory, RunnerInfo, Strategy};
///
/// const INFO: RunnerInfo =
///     RunnerInfo::new("glommio", "glommio", Strategy::Threaded, "io_uring executor");
/// inventory::submit! {
///     RunnerFactory::unavailable(INFO, "enable the `glommio` feature of autoawait-runners")
/// }
/// ```
#[derive(Debug)]
pub struct RunnerFactory {
    pub(crate) info: RunnerInfo,
    pub(crate) create: Create,
}

#[derive(Clone, Debug)]
pub(crate) enum Create {
    Make(MakeRunner),
    Unavailable(&'static str),
}

impl RunnerFactory {
    /// A runner that `make` creates on first use.
    pub const fn new(info: RunnerInfo, make: MakeRunner) -> Self {
        RunnerFactory {
            info,
            create: Create::Make(make),
        }
    }

    /// A runner this build does not have; selecting it says `reason`.
    pub const fn unavailable(info: RunnerInfo, reason: &'static str) -> Self {
        RunnerFactory {
            info,
            create: Create::Unavailable(reason),
        }
    }
}

inventory::collect!(RunnerFactory);
