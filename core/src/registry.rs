//! The [`Registry`]: every runner by name, built-in ones collected with `inventory`.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use crate::options::lock;
use crate::{RunError, Runner, RunnerInfo};

/// Makes a runner.
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
/// use std::sync::Arc;
/// use autoawait_core::{RunError, Runner, RunnerFactory, RunnerInfo, Strategy};
///
/// const INFO: RunnerInfo =
///     RunnerInfo::new("glommio", "glommio", Strategy::Threaded, "io_uring executor");
/// inventory::submit! {
///     RunnerFactory::unavailable(INFO, "enable the `glommio` feature of autoawait-runners")
/// }
/// ```
#[derive(Debug)]
pub struct RunnerFactory {
    info: RunnerInfo,
    create: Create,
}

#[derive(Clone, Debug)]
enum Create {
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

/// Where a runner comes from, for `%autoawait --list`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Linked into this binary and collected with `inventory`.
    BuiltIn,
    /// Loaded at run time from this shared library.
    Plugin(PathBuf),
    /// Registered at run time with [`Registry::register`].
    Registered,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn => f.write_str("built-in"),
            Source::Plugin(path) => write!(f, "plugin {}", path.display()),
            Source::Registered => f.write_str("registered"),
        }
    }
}

struct Entry {
    key: String,
    info: RunnerInfo,
    source: Source,
    create: Option<Create>,
    instance: Mutex<Option<Arc<dyn Runner>>>,
}

/// One row of [`Registry::list`].
#[derive(Clone, Debug)]
pub struct Listing {
    /// What the runner says about itself.
    pub info: RunnerInfo,
    /// Where it comes from.
    pub source: Source,
    /// `Some(reason)` if this build cannot run it.
    pub unavailable: Option<String>,
    /// `true` once it was created (its threads may be running).
    pub created: bool,
}

/// Every runner by name: the built-in ones (collected with `inventory`), plugins,
/// and runners registered at run time.
///
/// Lookups are case-insensitive. A runner is created on first use and then kept, so
/// switching away and back finds the same reactor and its background tasks.
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, RunnerExt};
///
/// let registry = Registry::global();
/// let runner = registry.get("Inline").unwrap();
/// assert!(std::sync::Arc::ptr_eq(&runner, &registry.get("inline").unwrap()));
/// assert_eq!(runner.block_on(async { 1 }).unwrap(), 1);
///
/// let err = registry.get("inlin").unwrap_err();
/// assert!(err.to_string().contains("did you mean `inline`?"));
/// ```
pub struct Registry {
    entries: RwLock<Vec<Arc<Entry>>>,
}

impl Registry {
    /// The process-wide registry, holding every runner linked into this binary.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new)
    }

    /// A new registry with every runner linked into this binary. Its runners are
    /// its own: they are not the global registry's instances.
    pub fn new() -> Self {
        let registry = Registry::empty();
        for factory in inventory::iter::<RunnerFactory> {
            // A second factory of the same name is a linking mistake; the first wins.
            let _ = registry.insert(
                factory.info.clone(),
                Source::BuiltIn,
                Some(factory.create.clone()),
                None,
            );
        }
        registry
    }

    /// A registry with no runners.
    pub fn empty() -> Self {
        Registry {
            entries: RwLock::new(Vec::new()),
        }
    }

    fn insert(
        &self,
        info: RunnerInfo,
        source: Source,
        create: Option<Create>,
        instance: Option<Arc<dyn Runner>>,
    ) -> Result<(), RunError> {
        let key = info.name.to_lowercase();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.iter().any(|e| e.key == key) {
            return Err(RunError::DuplicateName {
                name: info.name.into_owned(),
            });
        }
        let at = entries.partition_point(|e| e.key < key);
        entries.insert(
            at,
            Arc::new(Entry {
                key,
                info,
                source,
                create,
                instance: Mutex::new(instance),
            }),
        );
        Ok(())
    }

    /// Adds a runner made at run time (a user's runner, a plugin's).
    ///
    /// # Errors
    ///
    /// [`RunError::DuplicateName`] if its name (in any case) is taken; the registry is
    /// left as it was.
    pub fn register(&self, runner: Arc<dyn Runner>) -> Result<(), RunError> {
        self.register_from(runner, Source::Registered)
    }

    /// [`register`](Self::register) with the source shown by `%autoawait --list`.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register).
    pub fn register_from(&self, runner: Arc<dyn Runner>, source: Source) -> Result<(), RunError> {
        self.insert(runner.info().clone(), source, None, Some(runner))
    }

    /// Adds a name this build knows but cannot run; selecting it says `reason`.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register).
    pub fn register_unavailable(
        &self,
        info: RunnerInfo,
        reason: &'static str,
    ) -> Result<(), RunError> {
        self.insert(
            info,
            Source::BuiltIn,
            Some(Create::Unavailable(reason)),
            None,
        )
    }

    fn entry(&self, name: &str) -> Option<Arc<Entry>> {
        let key = name.trim().to_lowercase();
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.iter().find(|e| e.key == key).cloned()
    }

    /// The runner called `name` (any case), created on first use.
    ///
    /// Concurrent first calls create one instance.
    ///
    /// # Errors
    ///
    /// - [`RunError::UnknownRunner`], naming the closest name and listing all of them;
    /// - [`RunError::Unavailable`] if this build does not include the runner;
    /// - the runner's own error if it cannot be created (the next call tries again).
    pub fn get(&self, name: &str) -> Result<Arc<dyn Runner>, RunError> {
        let Some(entry) = self.entry(name) else {
            return Err(RunError::UnknownRunner {
                name: name.trim().to_owned(),
                closest: self.closest(name),
                available: self.names(),
            });
        };
        let mut instance = lock(&entry.instance);
        if let Some(runner) = &*instance {
            return Ok(runner.clone());
        }
        match &entry.create {
            Some(Create::Make(make)) => {
                let runner = make()?;
                *instance = Some(runner.clone());
                Ok(runner)
            }
            Some(Create::Unavailable(reason)) => Err(RunError::Unavailable {
                name: entry.info.name.to_string(),
                reason: (*reason).to_owned(),
            }),
            None => unreachable!("registered runners always have an instance"),
        }
    }

    /// The info of runner `name` (any case), without creating it.
    pub fn info(&self, name: &str) -> Option<RunnerInfo> {
        self.entry(name).map(|e| e.info.clone())
    }

    /// `true` if a runner called `name` (any case) is known, available or not.
    pub fn contains(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// Every name, sorted.
    pub fn names(&self) -> Vec<String> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.iter().map(|e| e.info.name.to_string()).collect()
    }

    /// Every runner, sorted by name, for `%autoawait --list`.
    pub fn list(&self) -> Vec<Listing> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|e| Listing {
                info: e.info.clone(),
                source: e.source.clone(),
                unavailable: match &e.create {
                    Some(Create::Unavailable(reason)) => Some((*reason).to_owned()),
                    _ => None,
                },
                created: lock(&e.instance).is_some(),
            })
            .collect()
    }

    /// The registered name closest to `name`, if one is close enough to be a typo.
    pub fn closest(&self, name: &str) -> Option<String> {
        let wanted = name.trim().to_lowercase();
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let key = closest_name(&wanted, entries.iter().map(|e| e.key.as_str()))?;
        let entry = entries.iter().find(|e| e.key == key)?;
        Some(entry.info.name.to_string())
    }

    /// Shuts down every runner that was created. Each is joined within `grace`.
    pub fn shutdown_all(&self, grace: Duration) {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for entry in entries {
            let runner = lock(&entry.instance).clone();
            if let Some(runner) = runner {
                runner.shutdown(grace);
            }
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("runners", &self.names())
            .finish()
    }
}

/// The candidate closest to `name`, if one is close enough to be a typo of it (a
/// prefix of a candidate counts as one edit): for "did you mean ...?" messages.
///
/// ```
/// use autoawait_core::closest_name;
///
/// assert_eq!(closest_name("tokoi", ["smol", "tokio"]), Some("tokio"));
/// assert_eq!(closest_name("glom", ["glommio"]), Some("glommio"));
/// assert_eq!(closest_name("xyz", ["tokio"]), None);
/// ```
pub fn closest_name<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            let d = if c.starts_with(name) && !name.is_empty() {
                1
            } else {
                edit_distance(name, c)
            };
            (d, c)
        })
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(2))
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("tokio", "tokio"), 0);
        assert_eq!(edit_distance("tokoi", "tokio"), 2);
        assert_eq!(edit_distance("smol", "smol-fresh"), 6);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
