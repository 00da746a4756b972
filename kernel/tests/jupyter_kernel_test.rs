//! The official `jupyter_kernel_test` suite (PyPI) against the kernel, served in-process
//! with a toy Lua session that answers exactly the samples in python/test_kernel.py.
//!
//! This pins the protocol layer (message shapes, busy/idle, history, completion
//! cursors, signatures as jupyter_client makes them). The same Python file runs
//! against the real Lua engine once `autoawait kernel` exists.
//!
//! Needs python3: the test provisions a venv under the target dir
//! (python/provision.sh). Without python3 it fails loudly; set
//! `AUTOAWAIT_SKIP_PYTHON_TESTS=1` to skip it on purpose.

use std::path::PathBuf;

use autoawait_test_support::run_with_limit;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoawait_kernel::{
    Completeness, Completions, ConnectionInfo, ErrorReport, ExecuteContext, ExecuteOutcome, Kernel,
    KernelInfo, MimeBundle, Session,
};

/// A few lines of "Lua", enough for the suite's samples.
struct ToyLua {
    shutdown: Arc<AtomicBool>,
}

const NAMES: &[&str] = &[
    "print",
    "pairs",
    "pcall",
    "ipairs",
    "string.upper",
    "string.len",
    "display",
    "html",
    "markdown",
    "clear_output",
    "error",
];

fn string_arg(code: &str, call: &str) -> Option<String> {
    let rest = code.strip_prefix(call)?.strip_prefix("(\"")?;
    let inner = rest.strip_suffix("\")")?;
    Some(inner.replace("\\n", "\n"))
}

impl Session for ToyLua {
    fn info(&self) -> KernelInfo {
        KernelInfo {
            implementation: "toy-lua".into(),
            implementation_version: "0.1.0".into(),
            language: "lua".into(),
            language_version: "5.4".into(),
            mimetype: "text/x-lua".into(),
            file_extension: ".lua".into(),
            ..KernelInfo::default()
        }
    }

    fn execute(&mut self, code: &str, ctx: &ExecuteContext) -> ExecuteOutcome {
        let code = code.trim();
        let out = &ctx.output;
        let cell = Some(ctx.cell);
        if let Some(name) = code.strip_suffix('?') {
            let help = self.inspect(name, name.len(), 0);
            out.page(
                cell,
                &help.unwrap_or_else(|| MimeBundle::text(format!("{name}: unknown"))),
            );
        } else if let Some(s) = string_arg(code, "print") {
            out.stdout(cell, &format!("{s}\n"));
        } else if let Some(s) = string_arg(code, "eprint") {
            out.stderr(cell, &format!("{s}\n"));
        } else if let Some(s) = string_arg(code, "error") {
            return Err(ErrorReport::new(
                "LuaError",
                format!("In[{}]:1: {s}", ctx.execution_count),
            )
            .traceback([
                format!("In[{}]:1: {s}", ctx.execution_count),
                "stack traceback:".into(),
                "\t[C]: in function 'error'".into(),
            ]));
        } else if let Some(s) = code
            .strip_prefix("display(")
            .and_then(|c| c.strip_suffix(')'))
        {
            if let Some(h) = string_arg(s, "html") {
                out.display(cell, &MimeBundle::text(h.clone()).with("text/html", h));
            } else if let Some(m) = string_arg(s, "markdown") {
                out.display(cell, &MimeBundle::text(m.clone()).with("text/markdown", m));
            }
        } else if code == "clear_output()" {
            out.clear_output(cell, false);
        } else if let Some((a, b)) = code.split_once(" + ") {
            if let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                return Ok(Some(MimeBundle::text((a + b).to_string())));
            }
        } else if code == "'a' .. 'b'" {
            return Ok(Some(MimeBundle::text("\"ab\"")));
        }
        Ok(None)
    }

    fn is_complete(&mut self, code: &str) -> Completeness {
        let words: Vec<&str> = code
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .collect();
        if code.contains("= =") || words.first() == Some(&"end") {
            return Completeness::Invalid;
        }
        let open = words
            .iter()
            .filter(|w| ["do", "then", "function"].contains(w))
            .count()
            + code.matches('{').count();
        let close = words.iter().filter(|w| **w == "end").count() + code.matches('}').count();
        if open > close {
            Completeness::Incomplete {
                indent: "  ".into(),
            }
        } else {
            Completeness::Complete
        }
    }

    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        let start = code[..cursor]
            .rfind(|c: char| !c.is_alphanumeric() && c != '_' && c != '.')
            .map_or(0, |i| i + 1);
        let word = &code[start..cursor];
        Completions {
            matches: NAMES
                .iter()
                .filter(|n| n.starts_with(word))
                .map(|n| n.to_string())
                .collect(),
            cursor_start: start,
            cursor_end: cursor,
        }
    }

    fn inspect(&mut self, code: &str, _cursor: usize, _detail: u8) -> Option<MimeBundle> {
        (code.trim() == "print")
            .then(|| MimeBundle::text("print(...): writes its arguments to stdout"))
    }

    fn shutdown(&mut self, _restart: bool) {
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python")
}

#[test]
fn the_official_jupyter_kernel_test_suite_passes() {
    if std::env::var_os("AUTOAWAIT_SKIP_PYTHON_TESTS").is_some() {
        eprintln!("WARNING: AUTOAWAIT_SKIP_PYTHON_TESTS is set: jupyter_kernel_test was NOT run");
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        panic!(
            "python3 is missing: the official jupyter_kernel_test suite cannot run. \
             Install python3 (with venv), or set AUTOAWAIT_SKIP_PYTHON_TESTS=1 to skip it knowingly."
        );
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jupyter-venv");
    let mut provision = Command::new("bash");
    provision
        .arg(python_dir().join("provision.sh"))
        .env("AUTOAWAIT_JUPYTER_VENV", &venv);
    let (ok, text) = run_with_limit(provision, Duration::from_secs(600));
    assert!(ok, "provisioning the Python venv failed:\n{text}");

    let info = ConnectionInfo {
        transport: "tcp".into(),
        ip: "127.0.0.1".into(),
        key: "jupyter-kernel-test-key".into(),
        shell_port: 0,
        iopub_port: 0,
        stdin_port: 0,
        control_port: 0,
        hb_port: 0,
        kernel_name: Some("autoawait".into()),
    };
    let kernel = Kernel::start(info).expect("kernel starts");
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("autoawait-kernel-{}.json", std::process::id()));
    std::fs::write(&file, kernel.connection_info().to_json()).unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let session = ToyLua {
        shutdown: shutdown.clone(),
    };
    let serve = std::thread::Builder::new()
        .name("kernel-serve".into())
        .spawn(move || kernel.serve(session).unwrap())
        .unwrap();

    let mut python = Command::new(venv.join("bin/python"));
    python
        .args(["-m", "unittest", "-v", "test_kernel.AutoawaitKernelTests"])
        .current_dir(python_dir())
        .env("AUTOAWAIT_CONNECTION_FILE", &file)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (ok, text) = run_with_limit(python, Duration::from_secs(300));
    let _ = std::fs::remove_file(&file);
    assert!(ok, "jupyter_kernel_test failed:\n{text}");
    // Every test ran, the pager's included.
    assert!(
        text.contains("\nOK\n") && !text.contains("skipped"),
        "unexpected skips:\n{text}"
    );
    eprintln!("{text}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while !serve.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the kernel did not stop after shutdown_request"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    serve.join().unwrap();
    assert!(shutdown.load(Ordering::SeqCst));
}
