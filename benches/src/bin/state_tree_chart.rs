//! Draws the state tree's updates per second against the state's size from the
//! estimates criterion saved for `cargo bench -p proofbox-state --bench state_tree`
//! (or its release-built binary run with `--bench`), and prints them as a Markdown
//! table.
//!
//! `cargo run --release -p proofbox-benches --bin state-tree-chart -- CRITERION_DIR
//! OUT.svg`: `CRITERION_DIR` is the `target/criterion` the benchmark wrote to.

use std::path::{Path, PathBuf};

const BATCH: f64 = 10_000.0;

/// The median time in nanoseconds of one benchmark, if it ran.
fn median_ns(dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let path = dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: state-tree-chart CRITERION_DIR OUT.svg")?,
    );
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: state-tree-chart CRITERION_DIR OUT.svg")?,
    );
    let series = [
        ("apply, 1 thread", "apply/1_thread"),
        ("apply, all cores", "apply/all_cores"),
        (
            "key digests and apply, all cores",
            "diff_and_apply/all_cores",
        ),
        (
            "apply with witnesses, all cores",
            "apply_with_witnesses/all_cores",
        ),
    ];
    let mut lines: Vec<(String, Vec<(i64, f64)>)> = series
        .iter()
        .map(|(l, _)| (l.to_string(), Vec::new()))
        .collect();
    println!("| keys | {} |", series.map(|s| s.0).join(" | "));
    println!("|---|{}", "---|".repeat(series.len()));
    for log in (10..=30).step_by(2) {
        // Criterion writes `state_tree_2^N_keys` as `state_tree_2_N_keys`.
        let group = format!("state_tree_2_{log}_keys");
        let rates: Vec<Option<f64>> = series
            .iter()
            .map(|(_, b)| median_ns(&dir, &group, b).map(|ns| BATCH / (ns * 1e-9)))
            .collect();
        if rates.iter().all(Option::is_none) {
            continue;
        }
        for (line, r) in lines.iter_mut().zip(&rates) {
            if let Some(r) = r {
                line.1.push((log as i64, *r));
            }
        }
        let cells: Vec<String> = rates
            .iter()
            .map(|r| r.map_or("-".into(), |r| format!("{:.1} k/s", r / 1e3)))
            .collect();
        println!("| 2^{log} | {} |", cells.join(" | "));
    }
    lines.retain(|l| !l.1.is_empty());
    if lines.is_empty() {
        return Err(format!("no state tree estimates under {}", dir.display()).into());
    }
    proofbox_bench::chart::line_chart(
        &out,
        "State tree: batches of 10,000 updates",
        "log2 keys in the state",
        "updates/s",
        &lines,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
