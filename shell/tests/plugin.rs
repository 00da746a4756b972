//! `%load_ext twisted` end to end: the binary loads the real twisted plugin (built
//! by this test), its runners join `%autoawait`, its functions become Lua functions.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn load_ext_binds_the_twisted_plugin() {
    let out = run_cells(
        "load_ext.lua",
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
    );
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

/// Runs `cells` (a cell file's text) with the twisted plugin findable; its stdout.
fn run_cells(name: &str, cells: &str) -> String {
    let dir = common::twisted_dir();
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&file, cells).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_autoawait"))
        .args(["run", "--keep-going"])
        .arg(&file)
        .env("AUTOAWAIT_PLUGIN_PATH", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = autoawait_test_support::wait_with_limit(child, Duration::from_secs(30));
    assert!(done.status.is_some(), "watchdog: autoawait hung");
    done.stdout
}

#[test]
fn twisted_host_runs_the_reactor_on_the_shells_loop() {
    let out = run_cells(
        "twisted_host.lua",
        "-- %%\n%load_ext twisted\n\
         -- %%\n%autoawait twisted-host\n\
         -- %%\nspawn(function() for i = 1, 5 do await(twisted.sleep(0.1)); print('noise ' .. i) end end)\n\
         -- %%\nawait(twisted.sleep(0.8))\n'next cell'\n\
         -- %%\nawait(twisted.call_later(0.01, function() return 7 end))\n\
         -- %%\nd = await(twisted.deferred())\n\
         t = spawn(function() return await(d) end)\nawait(d:callback(42))\nt:wait(2)\n",
    );
    for i in 1..=5 {
        // Printed while the next cell ran, and tagged with the cell that spawned it.
        let line = format!("[In 3] noise {i}");
        assert!(out.contains(&line), "{line:?} missing from:\n{out}");
    }
    for expected in [
        "set to use `twisted-host` (host",
        "Out[4]: \"next cell\"",
        "Out[5]: 7",
        "Out[6]: 42",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
}

/// The reactor moves between its thread and the shell's loop with a timer pending
/// and a task running: the timer fires once, not early and not late, and the task
/// goes on ticking through every move.
#[test]
fn switching_twisted_and_twisted_host_keeps_timers_and_tasks() {
    let out = run_cells(
        "twisted_switch.lua",
        "-- %%\n%load_ext twisted\n\
         -- %%\n%autoawait twisted\n\
         -- %%\nfired = 0\nticks = 0\n\
         spawn(function() await(twisted.call_later(0.8, function() fired = fired + 1 end)) end)\n\
         spawn(function() while true do await(twisted.sleep(0.02)); ticks = ticks + 1 end end)\n\
         -- %%\n%autoawait twisted-host\n\
         -- %%\nawait(twisted.sleep(0.2))\nreturn 'early: ' .. fired\n\
         -- %%\n%autoawait twisted\n\
         -- %%\nawait(twisted.sleep(0.2))\nreturn 'still early: ' .. fired\n\
         -- %%\n%autoawait twisted-host\n\
         -- %%\nawait(twisted.sleep(0.8))\nreturn 'fired: ' .. fired\n\
         -- %%\n%autoawait twisted\n\
         -- %%\nlocal before = ticks\nawait(twisted.sleep(0.2))\n\
         return 'ticking: ' .. tostring(ticks > before + 3) .. ', ' .. tostring(before > 40)\n\
         -- %%\nawait(twisted.sleep(0.5))\nreturn 'once: ' .. fired\n",
    );
    for expected in [
        "\"early: 0\"",
        "\"still early: 0\"",
        "\"fired: 1\"",
        "\"ticking: true, true\"",
        "\"once: 1\"",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
}
