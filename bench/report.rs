//! The one table a run prints: each hookd figure beside its baseline from
//! the same run and their ratio; also as Markdown, and as an SVG bar chart
//! of the ratios, for `docs/BENCHMARKS.md`.

use std::fmt::Write as _;

/// One figure of hookd beside its baseline.
pub struct Row {
    pub figure: String,
    pub unit: &'static str,
    pub hookd: f64,
    pub baseline_name: &'static str,
    pub baseline: f64,
    /// Latencies and the like, for the reader.
    pub detail: String,
}

impl Row {
    pub fn ratio(&self) -> f64 {
        if self.baseline > 0.0 {
            self.hookd / self.baseline
        } else {
            0.0
        }
    }
}

fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

pub fn print(rows: &[Row]) {
    println!(
        "{:<44} | {:>12} | {:<22} {:>12} | {:>6} | detail",
        "figure", "hookd", "baseline", "", "ratio"
    );
    for row in rows {
        println!(
            "{:<44} | {:>12} | {:<22} {:>12} | {:>6.2} | {}",
            format!("{} ({})", row.figure, row.unit),
            number(row.hookd),
            row.baseline_name,
            number(row.baseline),
            row.ratio(),
            row.detail
        );
    }
}

/// Where and how the figures were measured, as a Markdown paragraph.
pub fn machine(command: &str) -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1048576.0);
    let kernel = read("/proc/sys/kernel/osrelease");
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "Measured {date} on {cpus} CPUs, {memory:.0} GiB, Linux {}, with `hookd-bench {command}` \
         (hookd and the baselines as child processes, the load from the harness, all on this machine).\n",
        kernel.trim()
    )
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| figure | hookd | baseline | baseline's figure | ratio | detail |\n");
    out.push_str("|---|---:|---|---:|---:|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {:.2} | {} |",
            row.figure,
            row.unit,
            number(row.hookd),
            row.baseline_name,
            number(row.baseline),
            row.ratio(),
            row.detail
        );
    }
    out
}

/// A horizontal bar per row: the ratio to its baseline, with 0.5 (the
/// targets) and 1.0 marked.
pub fn svg(rows: &[Row]) -> String {
    const LABEL: f64 = 560.0;
    const BAR: f64 = 420.0;
    const HEIGHT: f64 = 26.0;
    let scale = rows.iter().map(Row::ratio).fold(1.0, f64::max).min(4.0);
    let height = HEIGHT * rows.len() as f64 + 50.0;
    let width = LABEL + BAR + 70.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-weight="bold">hookd / baseline, same run (higher is better for rates, lower for times and costs)</text>
"#
    );
    for (index, row) in rows.iter().enumerate() {
        let y = 34.0 + HEIGHT * index as f64;
        let length = BAR * row.ratio().min(scale) / scale;
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{LABEL}" y="{}" width="{length:.1}" height="{}" fill="#4a7bd0"/><text x="{:.1}" y="{}">{:.2}</text>"##,
            LABEL - 8.0,
            y + 15.0,
            escape(&format!("{} vs {}", row.figure, row.baseline_name)),
            y + 3.0,
            HEIGHT - 8.0,
            LABEL + length + 4.0,
            y + 15.0,
            row.ratio()
        );
    }
    for mark in [0.5, 1.0] {
        let x = LABEL + BAR * mark / scale;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="28" x2="{x:.1}" y2="{:.1}" stroke="#c33" stroke-dasharray="4 3"/><text x="{x:.1}" y="{:.1}" fill="#c33" text-anchor="middle">{mark}</text>"##,
            height - 14.0,
            height - 2.0
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
