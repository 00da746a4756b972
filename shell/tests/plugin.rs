//! `%load_ext twisted` end to end: the binary loads the real twisted plugin (built
//! by this test), its runners join `%autoawait`, its functions become Lua functions.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the twisted plugin into a target dir of its own; returns its directory.
fn twisted_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // <target>/debug/deps/plugin-<hash> -> <target>/shell-plugin-tests
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().join("shell-plugin-tests");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "autoawait-twisted",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "cargo build -p autoawait-twisted failed");
    target.join("debug")
}

#[test]
fn load_ext_binds_the_twisted_plugin() {
    let dir = twisted_dir();
    let cells = std::env::temp_dir().join(format!("autoawait-plugin-{}.lua", std::process::id()));
    std::fs::write(
        &cells,
        "-- %%\n%autoawait twisted\n\
         -- %%\n%load_ext twisted\n\
         -- %%\n%autoawait twisted\n\
         -- %%\nawait(twisted.sleep(0.05))\nmarkdown('**I HAVE AWAKENED!**')\n\
         -- %%\nawait(twisted.call_later(0.01, function() return 7 end))\n\
         -- %%\nd = await(twisted.deferred())\n\
         t = spawn(function() return await(d) end)\nawait(d:callback(42))\nt:wait(2)\n\
         -- %%\n%load_ext twisted\n\
         -- %%\n%load_ext /nonexistent/libtwisted.so\n\
         -- %%\n'alive'\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_autoawait"))
        .args(["run", "--keep-going"])
        .arg(&cells)
        .env("AUTOAWAIT_PLUGIN_PATH", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("watchdog: autoawait hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    for expected in [
        // Selecting it before loading it names the closest runners instead.
        "UsageError: no runner named `twisted`",
        "loaded plugin `twisted`",
        "set to use `twisted`",
        "Out[4]: **I HAVE AWAKENED!**",
        "Out[5]: 7",
        "Out[6]: 42",
        "is already loaded; nothing changed",
        "/nonexistent/libtwisted.so",
        "Out[9]: \"alive\"",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
}
