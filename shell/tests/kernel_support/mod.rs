//! Starting `autoawait kernel` as a process, and reading its memory and threads.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use autoawait_kernel::ConnectionInfo;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_autoawait");

/// A connection file on free loopback ports, with `key`.
pub(crate) fn connection(key: &str, name: &str) -> (ConnectionInfo, PathBuf) {
    let mut ports = Vec::new();
    let listeners: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    for l in &listeners {
        ports.push(l.local_addr().unwrap().port());
    }
    drop(listeners);
    let info = ConnectionInfo {
        transport: "tcp".into(),
        ip: "127.0.0.1".into(),
        key: key.into(),
        shell_port: ports[0],
        iopub_port: ports[1],
        stdin_port: ports[2],
        control_port: ports[3],
        hb_port: ports[4],
        kernel_name: None,
    };
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kernel-{name}-{}.json", std::process::id()));
    std::fs::write(&file, info.to_json()).unwrap();
    (info, file)
}

/// `autoawait kernel -f FILE`, its stderr piped.
pub(crate) fn spawn_kernel(file: &PathBuf) -> Child {
    Command::new(BIN)
        .args(["kernel", "-f"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("autoawait kernel starts")
}

/// A field of /proc/PID/status, in its unit (kB for VmRSS).
pub(crate) fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The process is gone or a zombie (exited, not yet reaped).
pub(crate) fn has_exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Runs `f` on a current_thread tokio runtime.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
