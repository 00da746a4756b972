//! `cargo run -p autoawait-benches --bin report`: turns criterion's output into
//! `benches/REPORT.md` and `benches/per_cell_ready.svg`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use autoawait_benches::{markdown, read_criterion, svg_chart, Bound, RunnerNote, Target};
use autoawait_core::Registry;
use autoawait_runners as _;
use autoawait_static_example as _;

/// The promises of the issues, checked against each run.
const TARGETS: &[Target] = &[
    Target {
        label: "`tokio` ready cell ≤ 10× spin ping-pong",
        measured: ("per_cell", "tokio", "ready"),
        reference: Some(("floors", "floor", "spin_pingpong")),
        bound: Bound::Ratio(10.0),
    },
    Target {
        label: "`smol` ready cell ≤ 10× spin ping-pong",
        measured: ("per_cell", "smol", "ready"),
        reference: Some(("floors", "floor", "spin_pingpong")),
        bound: Bound::Ratio(10.0),
    },
    Target {
        label: "`tokio-fresh` ready cell ≤ 1.25× bare build+block_on+drop",
        measured: ("per_cell", "tokio-fresh", "ready"),
        reference: Some(("floors", "floor", "tokio_build_block_on_drop")),
        bound: Bound::Ratio(1.25),
    },
    Target {
        label: "`tokio-per-cell` ready cell ≤ direct block_on + 100 ns",
        measured: ("per_cell", "tokio-per-cell", "ready"),
        reference: Some(("floors", "floor", "tokio_block_on")),
        bound: Bound::Plus(100.0),
    },
    Target {
        label: "contract overhead ≤ direct block_on + 60 ns",
        measured: ("overhead", "dyn_runner", "ready"),
        reference: Some(("overhead", "direct", "ready")),
        bound: Bound::Plus(60.0),
    },
    Target {
        label: "`twisted` plugin ready cell ≤ 1.3× `tokio`",
        measured: ("per_cell", "twisted", "ready"),
        reference: Some(("per_cell", "tokio", "ready")),
        bound: Bound::Ratio(1.3),
    },
    Target {
        label: "`twisted` plugin ready cell ≤ 1.3× the same runner linked in",
        measured: ("per_cell", "twisted", "ready"),
        reference: Some(("linked", "twisted", "ready")),
        bound: Bound::Ratio(1.3),
    },
    Target {
        label: "`twisted-host` plugin ready cell ≤ 1.5× `tokio-host` (the same loop)",
        measured: ("per_cell", "twisted-host", "ready"),
        reference: Some(("per_cell", "tokio-host", "ready")),
        bound: Bound::Ratio(1.5),
    },
    Target {
        label: "shell `http.get` round trip through `tokio` ≤ 4× the same GET with hyper directly",
        measured: ("http", "tokio", "shell_get"),
        reference: Some(("http", "tokio", "direct_hyper")),
        bound: Bound::Ratio(4.0),
    },
    Target {
        label: "shell trivial cell through `tokio` ≤ 10 µs",
        measured: ("shell_cell", "tokio", "trivial"),
        reference: None,
        bound: Bound::Absolute(10_000.0),
    },
];

fn main() -> ExitCode {
    match run() {
        Ok(path) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("report: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<PathBuf> {
    let benches = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| benches.join("../target"));
    let criterion = target.join("criterion");
    let all = read_criterion(&criterion).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot read {}: {e}; run `cargo bench -p autoawait-benches` first",
                criterion.display()
            ),
        )
    })?;
    if all.is_empty() {
        return Err(std::io::Error::other(format!(
            "no measurements under {}; run `cargo bench -p autoawait-benches` first",
            criterion.display()
        )));
    }
    // The plugin the per-cell bench built and measured, for its runners' strategies.
    let plugin = target.join("plugin-bench/release/libautoawait_twisted.so");
    if plugin.is_file() {
        if let Err(err) = autoawait_plugin::load(Registry::global(), &plugin) {
            eprintln!("report: {err}");
        }
    }
    let notes: BTreeMap<String, RunnerNote> = Registry::global()
        .list()
        .into_iter()
        .map(|l| {
            let note = RunnerNote {
                strategy: l.info.strategy.to_string(),
                between_cells: l.info.strategy.between_cells().to_owned(),
            };
            (l.info.name.into_owned(), note)
        })
        .collect();
    let md = markdown(&all, &notes, TARGETS, &machine());
    let mut bars: Vec<(String, f64)> = all
        .iter()
        .filter(|m| (m.group == "per_cell" && m.case == "ready") || m.group == "floors")
        .map(|m| {
            let label = if m.subject == "floor" {
                format!("floor: {}", m.case)
            } else {
                m.subject.clone()
            };
            (label, m.median)
        })
        .collect();
    bars.sort_by(|a, b| a.1.total_cmp(&b.1));
    let svg = svg_chart("Ready cell: median latency per runner (log scale)", &bars);
    std::fs::write(benches.join("per_cell_ready.svg"), svg)?;
    let report = benches.join("REPORT.md");
    std::fs::write(&report, md)?;
    Ok(report)
}

/// Where and when: CPU model, cores, date, rustc.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let output = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let date = output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let rustc = output("rustc", &["--version"]);
    format!("Measured on {date} on {cpu} with {cores} cores (shared, noisy), {rustc}.")
}
