//! The measurements of a run, read from criterion's output or sampled, and what
//! they turn into: the Markdown report with its targets, a chart, the terminal's
//! table, and the drift check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One measurement, in ns: the median with criterion's 95% confidence interval
/// (or, from the [`Sampler`](crate::Sampler), the interquartile range).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// The criterion group (`per_cell`, `floors`, ...).
    pub group: String,
    /// What ran: a runner name, or `floor`.
    pub subject: String,
    /// The workload (`ready`, `yield_once`, ...).
    pub case: String,
    /// Median time per iteration, in nanoseconds.
    pub median: f64,
    /// Lower bound of the median's 95% confidence interval (or the 25th percentile).
    pub low: f64,
    /// Upper bound of the median's 95% confidence interval (or the 75th percentile).
    pub high: f64,
}

/// A drift past this (25%) between the spin floor at the start and at the end of a
/// run flags the run as noisy: something else took the cores meanwhile.
pub const DRIFT_LIMIT: f64 = 0.25;

/// The spin floor at the start and at the end of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drift {
    /// `floor::spin_pingpong`, measured first.
    pub start: f64,
    /// `floor::spin_pingpong_end`, measured last.
    pub end: f64,
}

impl Drift {
    /// `end / start - 1`: how far the floor moved, as a fraction.
    pub fn change(&self) -> f64 {
        self.end / self.start - 1.0
    }

    /// Whether the run was noisy: the floor moved more than [`DRIFT_LIMIT`].
    pub fn noisy(&self) -> bool {
        self.change().abs() > DRIFT_LIMIT
    }

    /// One line for a report: the two figures and the verdict.
    pub fn describe(&self) -> String {
        let verdict = if self.noisy() {
            "NOISY RUN: something else used the cores; rerun on a quiet machine"
        } else {
            "a quiet run"
        };
        format!(
            "spin floor {} at the start, {} at the end ({:+.0}%): {verdict}",
            human(self.start),
            human(self.end),
            self.change() * 100.0
        )
    }
}

/// The spin floor's drift over the run, if it was measured at both ends.
pub fn drift(all: &[Measurement]) -> Option<Drift> {
    let median = |case: &str| {
        all.iter()
            .find(|m| m.subject == "floor" && m.case == case)
            .map(|m| m.median)
    };
    Some(Drift {
        start: median("spin_pingpong")?,
        end: median("spin_pingpong_end")?,
    })
}

#[derive(Deserialize)]
struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct EstimatesJson {
    median: Estimate,
}

/// Reads every `*/new/` measurement under criterion's output directory.
///
/// # Errors
///
/// If the directory cannot be read. Entries that are not criterion output are
/// skipped.
pub fn read_criterion(dir: &Path) -> io::Result<Vec<Measurement>> {
    let mut found = Vec::new();
    visit(dir, &mut found)?;
    found.sort_by(|a, b| (&a.group, &a.case, &a.subject).cmp(&(&b.group, &b.case, &b.subject)));
    Ok(found)
}

fn visit(dir: &Path, found: &mut Vec<Measurement>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(m) = parse(&path) {
                found.push(m);
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            visit(&path, found)?;
        }
    }
    Ok(())
}

fn parse(new_dir: &Path) -> Option<Measurement> {
    let bench: BenchmarkJson =
        serde_json::from_str(&fs::read_to_string(new_dir.join("benchmark.json")).ok()?).ok()?;
    let estimates: EstimatesJson =
        serde_json::from_str(&fs::read_to_string(new_dir.join("estimates.json")).ok()?).ok()?;
    let id = bench.function_id.unwrap_or_default();
    let (subject, case) = id.split_once("::")?;
    Some(Measurement {
        group: bench.group_id,
        subject: subject.to_owned(),
        case: case.to_owned(),
        median: estimates.median.point_estimate,
        low: estimates.median.confidence_interval.lower_bound,
        high: estimates.median.confidence_interval.upper_bound,
    })
}

/// A nanosecond figure as people read it: `830 ns`, `1.24 µs`, `2.10 ms`.
pub fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

/// What a runner is, for the report's tables: strategy and what it means.
#[derive(Clone, Debug, Default)]
pub struct RunnerNote {
    /// `threaded`, `per-cell`, ...
    pub strategy: String,
    /// What happens to background tasks between cells.
    pub between_cells: String,
}

/// A speed target checked by the report.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is promised.
    pub label: &'static str,
    /// The measured group, subject and case.
    pub measured: (&'static str, &'static str, &'static str),
    /// The reference: a group, subject and case; `None` for an absolute bound.
    pub reference: Option<(&'static str, &'static str, &'static str)>,
    /// The bound: a ratio to the reference, or nanoseconds when absolute.
    pub bound: Bound,
}

/// How a target bounds its measurement.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    /// At most this many times the reference.
    Ratio(f64),
    /// At most the reference plus this many nanoseconds.
    Plus(f64),
    /// At most this many nanoseconds.
    Absolute(f64),
}

/// Writes the Markdown report: one table per group and case, ratios to the floors,
/// and the targets with their verdicts.
pub fn markdown(
    all: &[Measurement],
    notes: &BTreeMap<String, RunnerNote>,
    targets: &[Target],
    machine: &str,
) -> String {
    let find = |(g, s, c): (&str, &str, &str)| {
        all.iter()
            .find(|m| m.group == g && m.subject == s && m.case == c)
    };
    let floors: Vec<&Measurement> = all.iter().filter(|m| m.subject == "floor").collect();
    let spin = floors
        .iter()
        .find(|m| m.case == "spin_pingpong")
        .map(|m| m.median);
    let park = floors
        .iter()
        .find(|m| m.case == "park_pingpong")
        .map(|m| m.median);
    let direct = floors
        .iter()
        .find(|m| m.case == "tokio_block_on")
        .map(|m| m.median);

    let mut out = String::new();
    let _ = writeln!(out, "# autoawait: per-cell latency\n");
    let _ = writeln!(
        out,
        "Generated by `cargo run -p autoawait-benches --bin report` from criterion's output \
         (`cargo bench -p autoawait-benches`). {machine}\n"
    );
    let _ = writeln!(
        out,
        "Median per cell with criterion's 95% interval, and ratios to floors measured in the \
         same run: a spinning cross-thread ping-pong (the cheapest possible hand-off), a \
         park/unpark ping-pong (the cheapest sleeping hand-off), and a direct tokio \
         current_thread `block_on` on the caller thread.\n"
    );
    if let Some(drift) = drift(all) {
        let flag = if drift.noisy() { "**Noisy run.** " } else { "" };
        let _ = writeln!(out, "{flag}Drift check: {}.\n", drift.describe());
    }
    let _ = writeln!(
        out,
        "![ready-cell latency per runner](per_cell_ready.svg)\n"
    );

    if !targets.is_empty() {
        let _ = writeln!(out, "## Targets\n");
        let _ = writeln!(out, "| target | measured | bound | verdict |");
        let _ = writeln!(out, "|---|---:|---:|---|");
        for t in targets {
            let Some(m) = find(t.measured) else {
                let _ = writeln!(out, "| {} | not measured | | – |", t.label);
                continue;
            };
            let reference = t.reference.and_then(find).map(|r| r.median);
            let (limit, shown) = match (t.bound, reference) {
                (Bound::Absolute(ns), _) => (Some(ns), human(ns)),
                (Bound::Ratio(r), Some(base)) => (
                    Some(base * r),
                    format!("{r}× {} = {}", human(base), human(base * r)),
                ),
                (Bound::Plus(ns), Some(base)) => (
                    Some(base + ns),
                    format!("{} + {} = {}", human(base), human(ns), human(base + ns)),
                ),
                _ => (None, "reference not measured".into()),
            };
            let verdict = match limit {
                Some(limit) if m.median <= limit => "met".to_owned(),
                Some(limit) => format!("missed by {:.0}%", (m.median / limit - 1.0) * 100.0),
                None => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {shown} | {verdict} |",
                t.label,
                human(m.median)
            );
        }
        out.push('\n');
    }

    // The floors: one table.
    if !floors.is_empty() {
        let _ = writeln!(out, "## Floors\n");
        let _ = writeln!(
            out,
            "| floor | median | 95% interval | × spin ping-pong | × park ping-pong | × direct block_on |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for m in &floors {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} – {} | {} | {} | {} |",
                m.case,
                human(m.median),
                human(m.low),
                human(m.high),
                ratio(m.median, spin),
                ratio(m.median, park),
                ratio(m.median, direct),
            );
        }
        out.push('\n');
    }

    // Everything else: one table per group and case, fastest first.
    let mut groups: Vec<(&str, &str)> = all
        .iter()
        .filter(|m| m.subject != "floor")
        .map(|m| (m.group.as_str(), m.case.as_str()))
        .collect();
    groups.dedup();
    for (group, case) in groups {
        let mut rows: Vec<&Measurement> = all
            .iter()
            .filter(|m| m.group == group && m.case == case && m.subject != "floor")
            .collect();
        rows.sort_by(|a, b| a.median.total_cmp(&b.median));
        let _ = writeln!(out, "## {group}: {case}\n");
        let _ = writeln!(
            out,
            "| runner | strategy | median | 95% interval | × spin ping-pong | × park ping-pong | \
             × direct block_on | between cells |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|");
        for m in rows {
            let note = notes.get(&m.subject).cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} – {} | {} | {} | {} | {} |",
                m.subject,
                note.strategy,
                human(m.median),
                human(m.low),
                human(m.high),
                ratio(m.median, spin),
                ratio(m.median, park),
                ratio(m.median, direct),
                note.between_cells,
            );
        }
        out.push('\n');
    }
    out
}

/// The table `autoawait bench` prints: per case, the floors and then each runner
/// fastest first, with the median, the spread (25th–75th percentile) and the ratio
/// to each floor of [`FLOORS_SHOWN`](crate::FLOORS_SHOWN).
pub fn table(all: &[Measurement]) -> String {
    let floor = |case: &str| {
        all.iter()
            .find(|m| m.subject == "floor" && m.case == case)
            .map(|m| m.median)
    };
    let bases: Vec<(&str, Option<f64>)> = crate::FLOORS_SHOWN
        .iter()
        .map(|&case| (case, floor(case)))
        .collect();
    let width = all
        .iter()
        .map(|m| m.subject.len() + m.case.len() + 2)
        .max()
        .unwrap_or(0)
        .max(10);
    let mut out = String::new();
    let _ = write!(
        out,
        "{:<width$} {:>10} {:>21}",
        "", "median", "spread (p25-p75)"
    );
    for (case, _) in &bases {
        let short = match *case {
            "tokio_block_on" => "block_on",
            other => other.split('_').next().unwrap_or(other),
        };
        let _ = write!(out, " {:>10}", format!("x {short}"));
    }
    out.push('\n');
    let mut cases: Vec<&str> = Vec::new();
    for m in all.iter().filter(|m| m.subject != "floor") {
        if !cases.contains(&m.case.as_str()) {
            cases.push(&m.case);
        }
    }
    let floors = all
        .iter()
        .filter(|m| m.subject == "floor")
        .collect::<Vec<_>>();
    let mut sections = vec![("floors", floors)];
    for case in cases {
        let mut rows: Vec<&Measurement> = all
            .iter()
            .filter(|m| m.subject != "floor" && m.case == case)
            .collect();
        rows.sort_by(|a, b| a.median.total_cmp(&b.median));
        sections.push((case, rows));
    }
    for (title, rows) in sections {
        let _ = writeln!(out, "{title}");
        for m in rows {
            let id = if m.subject == "floor" {
                m.case.clone()
            } else {
                m.subject.clone()
            };
            let spread = format!("{} - {}", human(m.low), human(m.high));
            let _ = write!(
                out,
                "  {id:<w$} {:>10} {spread:>21}",
                human(m.median),
                w = width - 2
            );
            for (_, base) in &bases {
                let _ = write!(out, " {:>10}", ratio(m.median, *base));
            }
            out.push('\n');
        }
    }
    if let Some(drift) = drift(all) {
        let _ = writeln!(out, "\n{}", drift.describe());
    }
    out
}

/// `median / base` with two decimals, or `–` without a base.
fn ratio(median: f64, base: Option<f64>) -> String {
    base.map_or("–".to_owned(), |b| format!("{:.2}", median / b))
}

/// A horizontal bar chart on a log scale, as SVG: one bar per subject.
pub fn svg_chart(title: &str, bars: &[(String, f64)]) -> String {
    // Room for the longest label, at about 7 px a character.
    let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(0);
    let (row, left, width) = (22.0, 16.0 + 7.0 * longest as f64, 560.0);
    let height = 60.0 + row * bars.len() as f64;
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max);
    let min = bars.iter().map(|b| b.1).fold(max, f64::min).max(0.1);
    let (lo, hi) = (
        min.log10().floor(),
        max.log10().ceil().max(min.log10().floor() + 1.0),
    );
    let x = |ns: f64| left + (ns.max(0.1).log10() - lo) / (hi - lo) * width;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
        left + width + 90.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let mut decade = lo;
    while decade <= hi {
        let px = x(10f64.powf(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="28" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            height - 22.0,
            height - 8.0,
            human(10f64.powf(decade))
        );
        decade += 1.0;
    }
    for (i, (label, ns)) in bars.iter().enumerate() {
        let y = 32.0 + row * i as f64;
        let fill = if label.starts_with("floor") {
            "#9aa"
        } else {
            "#4a7ebb"
        };
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            left - 6.0,
            y + row * 0.6,
            escape(label),
            (x(*ns) - left).max(1.0),
            row - 6.0,
            x(*ns) + 4.0,
            y + row * 0.6,
            human(*ns)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, group: &str, id: &str, median: f64) {
        let new = dir.join(group).join(id.replace("::", "__")).join("new");
        fs::create_dir_all(&new).unwrap();
        fs::write(
            new.join("benchmark.json"),
            format!(r#"{{"group_id":"{group}","function_id":"{id}","value_str":null}}"#),
        )
        .unwrap();
        fs::write(
            new.join("estimates.json"),
            format!(
                r#"{{"median":{{"point_estimate":{median},"standard_error":1.0,
                "confidence_interval":{{"confidence_level":0.95,"lower_bound":{},"upper_bound":{}}}}}}}"#,
                median - 1.0,
                median + 1.0
            ),
        )
        .unwrap();
    }

    #[test]
    fn reads_criterion_output_and_writes_ratios_and_verdicts() {
        let dir = std::env::temp_dir().join(format!("autoawait-report-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write(&dir, "floors", "floor::spin_pingpong", 200.0);
        write(&dir, "per_cell", "tokio::ready", 1_000.0);
        write(&dir, "per_cell", "smol::ready", 3_000.0);
        fs::create_dir_all(dir.join("report")).unwrap();
        let all = read_criterion(&dir).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].subject, "tokio");
        assert_eq!(all[2].median, 1_000.0);

        let targets = [
            Target {
                label: "tokio ready within 10× spin",
                measured: ("per_cell", "tokio", "ready"),
                reference: Some(("floors", "floor", "spin_pingpong")),
                bound: Bound::Ratio(10.0),
            },
            Target {
                label: "smol ready within 10× spin",
                measured: ("per_cell", "smol", "ready"),
                reference: Some(("floors", "floor", "spin_pingpong")),
                bound: Bound::Ratio(10.0),
            },
        ];
        let notes = BTreeMap::from([(
            "tokio".to_owned(),
            RunnerNote {
                strategy: "threaded".into(),
                between_cells: "background tasks keep running".into(),
            },
        )]);
        let md = markdown(&all, &notes, &targets, "Measured here.");
        assert!(
            md.contains("| tokio ready within 10× spin | 1.00 µs |"),
            "{md}"
        );
        assert!(md.contains("| met |"), "{md}");
        assert!(md.contains("missed by 50%"), "{md}");
        assert!(
            md.contains("| `tokio` | threaded | 1.00 µs | 999 ns – 1.00 µs | 5.00 |"),
            "{md}"
        );
        let svg = svg_chart(
            "ready",
            &[("tokio".into(), 1_000.0), ("floor".into(), 200.0)],
        );
        assert!(svg.starts_with("<svg") && svg.contains("tokio") && svg.ends_with("</svg>\n"));
        let _ = fs::remove_dir_all(&dir);
    }

    fn m(subject: &str, case: &str, median: f64) -> Measurement {
        Measurement {
            group: "g".into(),
            subject: subject.into(),
            case: case.into(),
            median,
            low: median * 0.9,
            high: median * 1.1,
        }
    }

    #[test]
    fn drift_past_a_quarter_flags_a_noisy_run() {
        let quiet = [
            m("floor", "spin_pingpong", 100.0),
            m("floor", "spin_pingpong_end", 120.0),
        ];
        let d = drift(&quiet).unwrap();
        assert!(
            !d.noisy() && d.describe().contains("(+20%): a quiet run"),
            "{}",
            d.describe()
        );
        let noisy = [
            m("floor", "spin_pingpong", 100.0),
            m("floor", "spin_pingpong_end", 130.0),
        ];
        assert!(drift(&noisy).unwrap().noisy());
        let faster = [
            m("floor", "spin_pingpong", 100.0),
            m("floor", "spin_pingpong_end", 70.0),
        ];
        assert!(drift(&faster).unwrap().noisy());
        assert!(drift(&quiet[..1]).is_none(), "no end, no verdict");
        let md = markdown(&noisy, &BTreeMap::new(), &[], "");
        assert!(md.contains("**Noisy run.**"), "{md}");
    }

    #[test]
    fn the_table_puts_floors_first_and_runners_fastest_first_with_ratios() {
        let all = [
            m("floor", "spin_pingpong", 100.0),
            m("floor", "park_pingpong", 1_000.0),
            m("floor", "tokio_block_on", 200.0),
            m("smol", "ready", 400.0),
            m("tokio", "ready", 300.0),
        ];
        let t = table(&all);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("x spin") && lines[0].contains("x block_on"),
            "{t}"
        );
        assert_eq!(lines[1], "floors");
        let ready = lines.iter().position(|l| *l == "ready").unwrap();
        assert!(lines[ready + 1].trim_start().starts_with("tokio"), "{t}");
        assert!(
            lines[ready + 1].contains("3.00") && lines[ready + 1].contains("1.50"),
            "{t}"
        );
        assert!(lines[ready + 2].trim_start().starts_with("smol"), "{t}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human(830.4), "830 ns");
        assert_eq!(human(1_240.0), "1.24 µs");
        assert_eq!(human(2_100_000.0), "2.10 ms");
    }
}
