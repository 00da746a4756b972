//! `%load_ext twisted` end to end: the binary loads the real twisted plugin (built
//! by this test), its runners join `%autoawait`, its functions become Lua functions.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn load_ext_binds_the_twisted_plugin() {
    let dir = common::twisted_dir();
    let cells = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("load_ext.lua");
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
         -- %%\n%reset -f\n\
         -- %%\nawait(twisted.call_later(0.01, function() return 8 end))\n\
         -- %%\n'alive'\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_autoawait"))
        .args(["run", "--keep-going"])
        .arg(&cells)
        .env("AUTOAWAIT_PLUGIN_PATH", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = autoawait_test_support::wait_with_limit(child, Duration::from_secs(30));
    assert!(done.status.is_some(), "watchdog: autoawait hung");
    let out = done.stdout;
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
        // An extension stays loaded through `%reset`.
        "reset: removed 2 globals",
        "Out[10]: 8",
        "Out[11]: \"alive\"",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
}
