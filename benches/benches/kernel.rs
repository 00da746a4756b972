//! The kernel against ipykernel, with the same Rust client (`autoawait_kernel::Client`,
//! the zeromq crate) in the same run. Ids are `kernel::case`, `kernel` being
//! `autoawait` (`autoawait kernel`, the release binary) or `ipykernel` (the tests'
//! venv, `kernel/python/provision.sh`; skipped, and said so, when it is missing):
//! - `trivial`: `x = 1`, execute → reply → idle;
//! - `await`: a cell that awaits once (`await(sleep(0))` / `await asyncio.sleep(0)`);
//! - `print_10000`: 10,000 printed lines, execute → idle, every line received;
//! - `startup`: process start to the first `kernel_info_reply` with IOPub connected.
//!
//! The autoawait kernel runs with `AUTOAWAIT_IOPUB_RATE_LIMIT=0`: back-to-back
//! 10,000-line cells exceed its default rate, where it would summarise.
//!
//! After criterion's own output, a table gives the medians, the ratios
//! ipykernel / autoawait and each kernel's RSS after the run.
//!
//! `cargo build --release -p autoawait-shell` first (`cargo bench` runs that binary);
//! `AUTOAWAIT_BIN` and `AUTOAWAIT_JUPYTER_VENV` point elsewhere.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use autoawait_kernel::{Channel, Client, ConnectionInfo};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

/// A kernel to measure: how to start it and its cells.
struct Flavour {
    name: &'static str,
    argv: Vec<String>,
    trivial: &'static str,
    awaits: &'static str,
    print: &'static str,
    setup: &'static str,
}

/// The profile whose `autoawait` binary is measured: `release` under `cargo bench`,
/// `debug` under `cargo test --all-targets` (which builds that binary for the
/// shell's own tests, and runs each bench once as a smoke test).
const PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn flavours() -> Vec<Flavour> {
    let bin = std::env::var_os("AUTOAWAIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join(PROFILE).join("autoawait"));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build {}-p autoawait-shell` (or set AUTOAWAIT_BIN)",
        bin.display(),
        if PROFILE == "release" {
            "--release "
        } else {
            ""
        }
    );
    let mut out = vec![Flavour {
        name: "autoawait",
        argv: vec![bin.display().to_string(), "kernel".into(), "-f".into()],
        trivial: "x = 1",
        awaits: "await(sleep(0))",
        print: "for i = 1, 10000 do print(i) end",
        setup: "x = 0",
    }];
    let venv = std::env::var_os("AUTOAWAIT_JUPYTER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("tmp/jupyter-venv"));
    let python = venv.join("bin/python");
    let has_ipykernel = Command::new(&python)
        .args(["-c", "import ipykernel"])
        .status()
        .is_ok_and(|s| s.success());
    if has_ipykernel {
        out.push(Flavour {
            name: "ipykernel",
            argv: vec![
                python.display().to_string(),
                "-m".into(),
                "ipykernel_launcher".into(),
                "-f".into(),
            ],
            trivial: "x = 1",
            awaits: "await asyncio.sleep(0)",
            print: "for i in range(10000): print(i)",
            setup: "import asyncio",
        });
    } else {
        eprintln!(
            "WARNING: ipykernel NOT measured: {} cannot import ipykernel (run kernel/python/provision.sh)",
            python.display()
        );
    }
    out
}

/// A running kernel and a client connected to it.
struct Running {
    child: Child,
    client: Client,
    file: PathBuf,
}

fn connection(name: &str) -> (ConnectionInfo, PathBuf) {
    let listeners: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let p: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(listeners);
    let info = ConnectionInfo {
        transport: "tcp".into(),
        ip: "127.0.0.1".into(),
        key: "bench".into(),
        shell_port: p[0],
        iopub_port: p[1],
        stdin_port: p[2],
        control_port: p[3],
        hb_port: p[4],
        kernel_name: None,
    };
    let file = std::env::temp_dir().join(format!("bench-{name}-{}.json", std::process::id()));
    std::fs::write(&file, info.to_json()).unwrap();
    (info, file)
}

async fn start(f: &Flavour) -> Running {
    let (info, file) = connection(f.name);
    let child = Command::new(&f.argv[0])
        .args(&f.argv[1..])
        // Wire speed: back to back, 10,000-line cells go past the rate limit,
        // which ipykernel does not have (its server drops instead).
        .env("AUTOAWAIT_IOPUB_RATE_LIMIT", "0")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the kernel starts");
    let client = Client::connect(&info).await.expect("the kernel answers");
    Running {
        child,
        client,
        file,
    }
}

async fn stop(mut k: Running) -> u64 {
    let rss = std::fs::read_to_string(format!("/proc/{}/status", k.child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    if let Ok(id) = k
        .client
        .request(Channel::Control, "shutdown_request", json!({}))
        .await
    {
        let _ = k.client.control_reply_to(&id).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while k.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = k.child.kill();
    let _ = k.child.wait();
    let _ = std::fs::remove_file(&k.file);
    rss
}

/// One cell to its idle (and its reply); with `lines`, checks they all arrived.
async fn cell(c: &mut Client, code: &str, lines: usize) -> Duration {
    let t = Instant::now();
    let id = c.execute(code).await.unwrap();
    let reply = c.reply_to(&id).await.unwrap();
    assert_eq!(reply.content["status"], "ok", "{code}: {:?}", reply.content);
    let out = c.iopub_until_idle(&id).await.unwrap();
    let elapsed = t.elapsed();
    if lines > 0 {
        let text: usize = out
            .iter()
            .filter(|m| m.msg_type() == "stream")
            .map(|m| {
                m.content["text"]
                    .as_str()
                    .unwrap_or("")
                    .matches('\n')
                    .count()
            })
            .sum();
        assert_eq!(text, lines, "every printed line arrives");
    }
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const CASES: &[&str] = &["trivial", "await", "print_10000", "startup"];

fn bench(c: &mut Criterion) {
    let rt = rt();
    let flavours = flavours();
    // (flavour, case) -> samples, for the summary table.
    let mut table: Vec<(&str, &str, Duration)> = Vec::new();
    let mut rss = Vec::new();
    for f in &flavours {
        let mut k = rt.block_on(start(f));
        rt.block_on(cell(&mut k.client, f.setup, 0));
        let mut group = c.benchmark_group(f.name);
        for (case, code, lines, n) in [
            ("trivial", f.trivial, 0, 200),
            ("await", f.awaits, 0, 200),
            ("print_10000", f.print, 10_000, 15),
        ] {
            let mut samples = Vec::new();
            group.sample_size(if lines > 0 { 10 } else { 50 });
            group.bench_function(case, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| rt.block_on(cell(&mut k.client, code, lines)))
                        .sum()
                })
            });
            for _ in 0..n {
                samples.push(rt.block_on(cell(&mut k.client, code, lines)));
            }
            table.push((f.name, case, median(samples)));
        }
        rss.push((f.name, rt.block_on(stop(k))));
        let mut starts = Vec::new();
        group.sample_size(10);
        group.bench_function("startup", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let t = Instant::now();
                        let k = rt.block_on(start(f));
                        let took = t.elapsed();
                        rt.block_on(stop(k));
                        starts.push(took);
                        took
                    })
                    .sum()
            })
        });
        table.push((f.name, "startup", median(starts)));
        group.finish();
    }
    println!("\nkernel round trips, medians (same client, same run):");
    println!(
        "  {:<12} {:>14} {:>14} {:>10}",
        "case", "autoawait", "ipykernel", "ratio"
    );
    for case in CASES {
        let of = |name: &str| {
            table
                .iter()
                .find(|(f, c, _)| *f == name && c == case)
                .map(|t| t.2)
        };
        let (a, i) = (of("autoawait"), of("ipykernel"));
        let ratio = match (a, i) {
            (Some(a), Some(i)) => format!("{:.1}x", i.as_secs_f64() / a.as_secs_f64()),
            _ => "-".into(),
        };
        let show = |d: Option<Duration>| d.map_or("not measured".into(), |d| format!("{d:.2?}"));
        println!("  {case:<12} {:>14} {:>14} {ratio:>10}", show(a), show(i));
    }
    for (name, kb) in rss {
        println!("  RSS after the run: {name} {} MB", kb / 1024);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
