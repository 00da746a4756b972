//! What the workspace's tests share: building the plugin cdylibs, a watchdog, a
//! runner of a test's own.
//!
//! A test cannot depend on a cdylib, so the plugins are built with a nested
//! `cargo build` into a target directory of their own, next to the caller's
//! (`<target>/<dir>`): the outer build's lock is not held, and the nested
//! build reuses its own artefacts from one run to the next.

#[cfg(feature = "http")]
pub mod http;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate lives in `tests/support`).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support is two levels below the workspace root")
}

/// The file name of the shared library built from crate `name`
/// (`libautoawait_twisted.so` for `autoawait_twisted` on Linux).
pub fn dylib_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// A nested `cargo build` of workspace packages into `<target>/<dir>`, where
/// `<target>` is the target directory of the running test or bench binary.
#[derive(Debug)]
pub struct PluginBuild {
    dir: PathBuf,
    release: bool,
}

impl PluginBuild {
    /// Builds into `<target>/<dir>/debug`.
    ///
    /// # Panics
    ///
    /// If the running executable is not in `<target>/<profile>/deps`.
    pub fn new(dir: &str) -> Self {
        // <target>/<profile>/deps/<binary>-<hash> -> <target>/<dir>
        let exe = std::env::current_exe().expect("the test binary has a path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("test binaries live in <target>/<profile>/deps");
        PluginBuild {
            dir: target.join(dir),
            release: false,
        }
    }

    /// Builds with `--release` (into `<target>/<dir>/release`).
    pub fn release(mut self, release: bool) -> Self {
        self.release = release;
        self
    }

    /// The directory the libraries land in.
    pub fn out_dir(&self) -> PathBuf {
        self.dir
            .join(if self.release { "release" } else { "debug" })
    }

    /// The path `crate_name`'s shared library has once built.
    pub fn lib(&self, crate_name: &str) -> PathBuf {
        self.out_dir().join(dylib_name(crate_name))
    }

    /// Runs `cargo build --quiet` with `args` (`-p`, `--features`, ...).
    ///
    /// # Errors
    ///
    /// If cargo cannot be started or the build fails.
    pub fn build(&self, args: &[&str]) -> Result<(), String> {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--manifest-path"])
            .arg(workspace_root().join("Cargo.toml"))
            .args(args)
            .env("CARGO_TARGET_DIR", &self.dir);
        if self.release {
            cargo.arg("--release");
        }
        let status = cargo
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cargo build {args:?} failed ({status})"))
        }
    }

    /// Builds the twisted plugin and returns the path of its library.
    ///
    /// # Errors
    ///
    /// If the build fails.
    pub fn twisted(&self) -> Result<PathBuf, String> {
        self.build(&["-p", "autoawait-twisted"])?;
        let lib = self.lib("autoawait_twisted");
        if lib.is_file() {
            Ok(lib)
        } else {
            Err(format!("{} was not built", lib.display()))
        }
    }
}

/// Runs `body` on a thread named `name` and returns its value; fails the test if
/// `body` does not finish within `limit` (a deadlock), and passes its panic on.
///
/// # Panics
///
/// If `body` panics or runs past `limit`.
pub fn watchdog<T: Send + 'static>(
    name: &str,
    limit: std::time::Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let _ = tx.send(result);
        })
        .expect("cannot spawn the test's thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = thread.join();
            value
        }
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("deadlock: `{name}` did not finish within {limit:?}"),
    }
}

/// What a child process left once it ended (or was killed).
#[derive(Debug)]
pub struct Finished {
    /// Its exit status; `None` if it ran past the limit and was killed.
    pub status: Option<std::process::ExitStatus>,
    /// What it wrote on stdout.
    pub stdout: String,
    /// What it wrote on stderr.
    pub stderr: String,
}

impl Finished {
    /// Whether it ended by itself, successfully.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Waits for `child` (its stdout and stderr piped), killing it after `limit`.
///
/// # Panics
///
/// If the child cannot be waited for.
pub fn wait_with_limit(mut child: std::process::Child, limit: std::time::Duration) -> Finished {
    use std::io::Read;

    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs `cmd`, killing it after `limit`; returns whether it succeeded and its
/// stdout followed by its stderr (with a note if it was killed).
///
/// # Panics
///
/// If the process cannot be started.
pub fn run_with_limit(mut cmd: Command, limit: std::time::Duration) -> (bool, String) {
    use std::process::Stdio;

    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start a child process");
    let done = wait_with_limit(child, limit);
    let text = format!("{}{}", done.stdout, done.stderr);
    match done.status {
        Some(status) => (status.success(), text),
        None => (false, format!("{text}\n[killed after {limit:?}]")),
    }
}

/// A runner of a test's own (from a registry of its own), shut down when dropped.
pub struct Fixture(pub std::sync::Arc<dyn autoawait_core::Runner>);

impl Fixture {
    /// Runner `name` of a new [`Registry`](autoawait_core::Registry).
    ///
    /// # Panics
    ///
    /// If the runner cannot be had.
    pub fn new(name: &str) -> Self {
        let runner = autoawait_core::Registry::new()
            .get(name)
            .unwrap_or_else(|e| panic!("cannot create runner `{name}`: {e}"));
        Fixture(runner)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.0.shutdown(std::time::Duration::from_secs(5));
    }
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Fixture").field(&self.0).finish()
    }
}

/// The name of the calling thread (empty if it has none).
pub fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}
