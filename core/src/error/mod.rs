//! Errors, one type per domain: [`RunError`] (a cell's fate, a runner's state),
//! [`LookupError`] (finding a runner), [`WaitError`] (waiting for a background
//! result), and [`Error`], which holds any of them for callers that only pass
//! errors on with `?`.

mod advice;
mod lookup;
mod run;
mod wait;

use std::any::Any;
use std::fmt;

pub use advice::Advice;
pub use lookup::LookupError;
pub use run::RunError;
pub use wait::WaitError;

use crate::SelectError;

/// Any error of this crate, for callers that pass errors on with `?`.
///
/// Every domain error converts into it; match on it, or on the domain error, when
/// you need to know more.
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, RunnerExt};
///
/// fn answer() -> Result<i32, autoawait_core::Error> {
///     let runner = Registry::global().get("inline")?; // a LookupError
///     Ok(runner.block_on(async { 6 * 7 })?) // a RunError
/// }
/// assert_eq!(answer().unwrap(), 42);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A cell's fate or a runner's state.
    Run(RunError),
    /// A runner could not be found or created.
    Lookup(LookupError),
    /// A background result could not be had.
    Wait(WaitError),
    /// `%autoawait` was given an argument it cannot take.
    Select(SelectError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Run(e) => e.fmt(f),
            Error::Lookup(e) => e.fmt(f),
            Error::Wait(e) => e.fmt(f),
            Error::Select(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Run(e) => Some(e),
            Error::Lookup(e) => Some(e),
            Error::Wait(e) => Some(e),
            Error::Select(e) => Some(e),
        }
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        Error::Run(e)
    }
}

impl From<LookupError> for Error {
    fn from(e: LookupError) -> Self {
        Error::Lookup(e)
    }
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Self {
        Error::Wait(e)
    }
}

impl From<SelectError> for Error {
    fn from(e: SelectError) -> Self {
        Error::Select(e)
    }
}

/// The message of a panic payload, as [`RunError::Panicked`] keeps it.
///
/// # Examples
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("at {}", 3)).unwrap_err();
/// assert_eq!(autoawait_core::panic_text(payload.as_ref()), "at 3");
/// ```
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(e) = payload.downcast_ref::<RunError>() {
        e.to_string()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
