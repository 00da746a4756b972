//! `autoawait kernel` driven by real Jupyter clients: the official jupyter_kernel_test
//! suite (with its iopub_welcome test), jupyter_client (bad HMAC, interrupt, background
//! output routing, tokio-host interrupts and input, fd capture, subshells, exit),
//! nbclient, `jupyter run` and Jupyter Kernel Gateway (REST and websocket, on
//! 127.0.0.1), against the kernelspec installed into a venv under the target dir.
//!
//! Needs python3 (the venv is provisioned by kernel/python/provision.sh). Without
//! it the test fails loudly; `AUTOAWAIT_SKIP_PYTHON_TESTS=1` skips it on purpose.

mod common;

use std::path::PathBuf;

use autoawait_test_support::run_with_limit;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_autoawait");

fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kernel/python")
}

#[test]
fn jupyter_clients_drive_the_kernel() {
    if std::env::var_os("AUTOAWAIT_SKIP_PYTHON_TESTS").is_some() {
        eprintln!(
            "WARNING: AUTOAWAIT_SKIP_PYTHON_TESTS is set: the Jupyter client tests were NOT run"
        );
        return;
    }
    assert!(
        Command::new("python3").arg("--version").output().is_ok(),
        "python3 is missing: the Jupyter kernel tests (jupyter_kernel_test, jupyter_client, nbclient) \
         cannot run. Install python3 with venv, or set AUTOAWAIT_SKIP_PYTHON_TESTS=1 to skip them knowingly."
    );
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jupyter-venv");
    let mut provision = Command::new("bash");
    provision
        .arg(python_dir().join("provision.sh"))
        .env("AUTOAWAIT_JUPYTER_VENV", &venv);
    let (ok, text) = run_with_limit(provision, Duration::from_secs(600));
    assert!(ok, "provisioning the Python venv failed:\n{text}");

    let mut install = Command::new(BIN);
    install.args(["kernel", "install", "--prefix"]).arg(&venv);
    let (ok, text) = run_with_limit(install, Duration::from_secs(30));
    assert!(
        ok,
        "`autoawait kernel install --prefix VENV` failed:\n{text}"
    );

    let mut python = Command::new(venv.join("bin/python"));
    python
        .args([
            "-m",
            "unittest",
            "-v",
            "test_kernel",
            "test_client",
            "test_gateway",
        ])
        .current_dir(python_dir())
        // The venv's kernelspec wins over one installed in the user's data dir.
        .env("JUPYTER_PATH", venv.join("share/jupyter"))
        .env("AUTOAWAIT_KERNEL_NAME", "autoawait")
        .env_remove("AUTOAWAIT_CONNECTION_FILE")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    // The tour notebook runs headless too; its first cell loads the twisted plugin.
    let tour = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/tour.ipynb");
    assert!(tour.is_file(), "examples/tour.ipynb is missing");
    python
        .env("AUTOAWAIT_NOTEBOOK", &tour)
        .env("AUTOAWAIT_PLUGIN_PATH", common::twisted_dir());
    let (ok, text) = run_with_limit(python, Duration::from_secs(600));
    eprintln!("{text}");
    assert!(ok, "the Jupyter client tests failed:\n{text}");
}
