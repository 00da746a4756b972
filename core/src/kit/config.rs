//! [`Config`]: what a host may tune when it builds a runner itself.

use std::borrow::Cow;
use std::time::Duration;

use super::default_spin;

/// How to build a runner: the name of the threads it starts, how many workers a
/// multi-threaded loop gets, how long a hand-off spins before it sleeps, and how
/// long a runner dropped without a shutdown gives its threads.
///
/// The registry builds its runners with `Config::new(name)`. A library that wants a
/// runner of its own (a blocking facade, say) builds one directly with a `Config`,
/// so its threads carry its name and no other library shares them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use autoawait_core::kit::Config;
///
/// let config = Config::new("tokio")
///     .thread_name("my-lib-io")
///     .workers(4)
///     .drop_grace(Duration::from_millis(100));
/// assert_eq!(config.thread_name, "my-lib-io");
/// assert_eq!(config.workers, 4);
/// assert_eq!(Config::new("tokio").thread_name, "tokio");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The runner's name, as `%autoawait` and errors show it.
    pub name: Cow<'static, str>,
    /// The name of the threads the runner starts (Linux keeps 15 bytes of it);
    /// the runner's name unless set.
    pub thread_name: Cow<'static, str>,
    /// Worker threads of a multi-threaded loop (at least one; two by default).
    pub workers: usize,
    /// How long a hand-off spins before it parks; zero parks at once. By default
    /// the budget of `AUTOAWAIT_SPIN_US` ([`default_spin`]).
    pub spin: Duration,
    /// How long a runner dropped without [`shutdown`](crate::Runner::shutdown) gives
    /// its tasks and threads (one second by default).
    pub drop_grace: Duration,
}

impl Config {
    /// The defaults for runner `name`.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        Config {
            thread_name: name.clone(),
            name,
            workers: 2,
            spin: default_spin(),
            drop_grace: Duration::from_secs(1),
        }
    }

    /// Names the threads the runner starts.
    pub fn thread_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Sets the number of worker threads of a multi-threaded loop (at least one).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Sets the hand-off spin budget; zero parks at once.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Sets the grace of a runner dropped without a shutdown.
    pub fn drop_grace(mut self, grace: Duration) -> Self {
        self.drop_grace = grace;
        self
    }
}
