//! [`LookupError`]: a runner that cannot be had by name.

use std::error::Error;
use std::fmt;

use crate::RunError;

/// Why [`Registry::get`](crate::Registry::get) (or a registration) failed.
///
/// # Examples
///
/// ```
/// use autoawait_core::{LookupError, Registry};
///
/// let err = Registry::global().get("inlin").unwrap_err();
/// assert!(matches!(&err, LookupError::UnknownRunner { closest: Some(c), .. } if c == "inline"));
/// assert!(err.to_string().starts_with("no runner named `inlin`; did you mean `inline`?"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LookupError {
    /// No runner of that name is registered.
    UnknownRunner {
        /// The name that was asked for.
        name: String,
        /// The closest registered name, if one is close.
        closest: Option<String>,
        /// Every registered name.
        available: Vec<String>,
    },
    /// The runner is known but was not compiled into this build.
    Unavailable {
        /// The runner's name.
        name: String,
        /// Why, and how to enable it.
        reason: String,
    },
    /// A runner of that name is already registered.
    DuplicateName {
        /// The name in use.
        name: String,
    },
    /// The runner's factory failed; the next lookup tries again.
    CannotCreate {
        /// The runner's name.
        name: String,
        /// Why it could not be created.
        source: RunError,
    },
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::UnknownRunner {
                name,
                closest,
                available,
            } => {
                write!(f, "no runner named `{name}`")?;
                match closest {
                    Some(closest) => write!(f, "; did you mean `{closest}`?")?,
                    None => write!(f, ".")?,
                }
                write!(f, " The runners are: ")?;
                for (i, n) in available.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "`{n}`")?;
                }
                Ok(())
            }
            LookupError::Unavailable { name, reason } => {
                write!(f, "runner `{name}` is not available: {reason}")
            }
            LookupError::DuplicateName { name } => write!(
                f,
                "a runner named `{name}` is already registered; pick another name"
            ),
            LookupError::CannotCreate { name, source } => {
                write!(f, "runner `{name}` cannot start: {source}")
            }
        }
    }
}

impl Error for LookupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            LookupError::CannotCreate { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A runner built on another one (a factory that looks its base up) fails with
/// [`RunError::Backend`] when the base cannot be had.
impl From<LookupError> for RunError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::CannotCreate { source, .. } => source,
            other => RunError::backend(other),
        }
    }
}
