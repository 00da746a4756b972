//! The [`Registry`]: every runner by name, built-in ones collected with `inventory`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::factory::Create;
use crate::kit::lock;
use crate::{closest_name, LookupError, Runner, RunnerFactory, RunnerInfo};

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
/// # Sharing
///
/// [`Registry::global`] is the process's: every library that uses it shares its
/// runners, so a cell that blocks the `tokio` runner's thread delays every other
/// caller's cells, and [`shutdown_all`](Self::shutdown_all) stops them for everyone
/// (the next [`get`](Self::get) starts a new one). A library that wants runners of
/// its own — a blocking facade, say — makes a private `Registry::new()`, or builds a
/// runner directly with a [`Config`](crate::kit::Config).
///
/// # Examples
///
/// ```
/// use autoawait_core::{Registry, RunnerExt};
///
/// let registry = Registry::global();
/// let runner = registry.get("Inline")?;
/// assert!(std::sync::Arc::ptr_eq(&runner, &registry.get("inline")?));
/// assert_eq!(runner.block_on(async { 1 })?, 1);
///
/// let err = registry.get("inlin").unwrap_err();
/// assert!(err.to_string().contains("did you mean `inline`?"));
/// # Ok::<(), autoawait_core::Error>(())
/// ```
pub struct Registry {
    entries: RwLock<Vec<Arc<Entry>>>,
    /// The plugin files loaded into this registry.
    plugins: Mutex<BTreeSet<PathBuf>>,
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
            plugins: Mutex::new(BTreeSet::new()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Arc<Entry>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Arc<Entry>>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(
        &self,
        info: RunnerInfo,
        source: Source,
        create: Option<Create>,
        instance: Option<Arc<dyn Runner>>,
    ) -> Result<(), LookupError> {
        let mut entries = self.write();
        insert_into(&mut entries, info, source, create, instance)
    }

    /// Adds a runner made at run time (a user's runner, a plugin's).
    ///
    /// # Errors
    ///
    /// [`LookupError::DuplicateName`] if its name (in any case) is taken; the
    /// registry is left as it was.
    pub fn register(&self, runner: Arc<dyn Runner>) -> Result<(), LookupError> {
        self.register_all(vec![runner], Source::Registered)
    }

    /// Adds `runners` at once, all shown with `source` by `%autoawait --list`: all of
    /// them, or (if one's name is taken, or two share one) none.
    ///
    /// # Errors
    ///
    /// [`LookupError::DuplicateName`] for the first name taken; the registry is left
    /// as it was.
    pub fn register_all(
        &self,
        runners: Vec<Arc<dyn Runner>>,
        source: Source,
    ) -> Result<(), LookupError> {
        let mut entries = self.write();
        for (i, runner) in runners.iter().enumerate() {
            let name = &runner.info().name;
            let twice = runners[..i]
                .iter()
                .any(|r| r.info().name.eq_ignore_ascii_case(name));
            if twice || entries.iter().any(|e| e.key == name.to_lowercase()) {
                return Err(LookupError::DuplicateName {
                    name: name.to_string(),
                });
            }
        }
        for runner in runners {
            let info = runner.info().clone();
            insert_into(&mut entries, info, source.clone(), None, Some(runner))?;
        }
        Ok(())
    }

    /// Notes that the plugin file at `path` was loaded into this registry; `false` if
    /// it already was. For plugin loaders: loading a file twice changes nothing.
    pub fn note_plugin(&self, path: PathBuf) -> bool {
        lock(&self.plugins).insert(path)
    }

    /// `true` if the plugin file at `path` was loaded into this registry.
    pub fn has_plugin(&self, path: &std::path::Path) -> bool {
        lock(&self.plugins).contains(path)
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
    ) -> Result<(), LookupError> {
        self.insert(
            info,
            Source::BuiltIn,
            Some(Create::Unavailable(reason)),
            None,
        )
    }

    fn entry(&self, name: &str) -> Option<Arc<Entry>> {
        let key = name.trim().to_lowercase();
        self.read().iter().find(|e| e.key == key).cloned()
    }

    /// The runner called `name` (any case), created on first use.
    ///
    /// Concurrent first calls create one instance.
    ///
    /// # Errors
    ///
    /// - [`LookupError::UnknownRunner`], naming the closest name and listing all;
    /// - [`LookupError::Unavailable`] if this build does not include the runner;
    /// - [`LookupError::CannotCreate`] with the runner's own error if it cannot be
    ///   created (the next call tries again).
    pub fn get(&self, name: &str) -> Result<Arc<dyn Runner>, LookupError> {
        let Some(entry) = self.entry(name) else {
            return Err(LookupError::UnknownRunner {
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
                let runner = make().map_err(|source| LookupError::CannotCreate {
                    name: entry.info.name.to_string(),
                    source,
                })?;
                *instance = Some(runner.clone());
                Ok(runner)
            }
            Some(Create::Unavailable(reason)) => Err(LookupError::Unavailable {
                name: entry.info.name.to_string(),
                reason: (*reason).to_owned(),
            }),
            None => unreachable!("registered runners always have an instance"),
        }
    }

    /// A new instance of runner `name`, apart from the one [`get`](Self::get)
    /// shares: the caller owns it, and shuts it down. A runner registered as an
    /// instance (not by a factory) has only that one, which is returned.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use autoawait_core::Registry;
    ///
    /// let registry = Registry::new();
    /// let mine = registry.create("inline")?;
    /// assert!(!Arc::ptr_eq(&mine, &registry.get("inline")?));
    /// # Ok::<(), autoawait_core::LookupError>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<Arc<dyn Runner>, LookupError> {
        match self.entry(name) {
            Some(entry) => match &entry.create {
                Some(Create::Make(make)) => make().map_err(|source| LookupError::CannotCreate {
                    name: entry.info.name.to_string(),
                    source,
                }),
                _ => self.get(name),
            },
            None => self.get(name),
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
        self.read()
            .iter()
            .map(|e| e.info.name.to_string())
            .collect()
    }

    /// Every runner, sorted by name, for `%autoawait --list`.
    pub fn list(&self) -> Vec<Listing> {
        self.read()
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
        let entries = self.read();
        let key = closest_name(&wanted, entries.iter().map(|e| e.key.as_str()))?;
        let entry = entries.iter().find(|e| e.key == key)?;
        Some(entry.info.name.to_string())
    }

    /// Shuts down every runner that was created, each joined within `grace`.
    ///
    /// Built-in runners are forgotten as well: the next [`get`](Self::get) starts a
    /// new one, while handles taken before answer [`RunError::Stopped`](crate::RunError::Stopped). Runners
    /// registered at run time (and plugins') cannot be made again and stay stopped.
    pub fn shutdown_all(&self, grace: Duration) {
        let entries = self.read().clone();
        for entry in entries {
            let runner = {
                let mut instance = lock(&entry.instance);
                match entry.create {
                    Some(Create::Make(_)) => instance.take(),
                    _ => instance.clone(),
                }
            };
            if let Some(runner) = runner {
                runner.shutdown(grace);
            }
        }
    }
}

fn insert_into(
    entries: &mut Vec<Arc<Entry>>,
    info: RunnerInfo,
    source: Source,
    create: Option<Create>,
    instance: Option<Arc<dyn Runner>>,
) -> Result<(), LookupError> {
    let key = info.name.to_lowercase();
    if entries.iter().any(|e| e.key == key) {
        return Err(LookupError::DuplicateName {
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
