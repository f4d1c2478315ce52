//! `proofbox bench compare A.json B.json ...`: reports side by side, with the ratio of
//! each to the first.
//!
//! Rows are matched on (workload, backend, device id). The ratio is the first
//! report's median time over this report's (above 1: faster than the first). Only
//! passed measurements have a time; a failed or skipped one shows as such.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proofbox_backend_api::BackendKind;

use crate::error::BenchError;
use crate::output::fmt_time;
use crate::report::{Report, Status};

/// One cell: a median time, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    Median(f64),
    Failed,
    Skipped,
    Missing,
}

impl Cell {
    fn text(self) -> String {
        match self {
            Self::Median(s) => fmt_time(s),
            Self::Failed => "FAILED".into(),
            Self::Skipped => "skipped".into(),
            Self::Missing => "-".into(),
        }
    }

    fn median(self) -> Option<f64> {
        match self {
            Self::Median(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub workload: String,
    pub backend: BackendKind,
    pub device: String,
    /// One per report, in the order given.
    pub cells: Vec<Cell>,
}

impl Row {
    /// First report's median over report `i`'s, where both passed.
    pub fn ratio(&self, i: usize) -> Option<f64> {
        Some(self.cells.first()?.median()? / self.cells.get(i)?.median()?)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One label per report (its machine, made unique).
    pub labels: Vec<String>,
    pub rows: Vec<Row>,
    /// Differences that limit what the figures mean (suite versions, quick runs).
    pub warnings: Vec<String>,
}

/// Puts `reports` side by side (at least two).
pub fn compare(reports: &[(PathBuf, Report)]) -> Result<Comparison, BenchError> {
    if reports.len() < 2 {
        return Err(BenchError::CompareInputs { got: reports.len() });
    }
    let mut labels: Vec<String> = Vec::new();
    for (i, (path, r)) in reports.iter().enumerate() {
        let mut label = r.environment.machine.clone();
        if labels.contains(&label) {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("report");
            label = format!("{label} [{}: {stem}]", i + 1);
        }
        labels.push(label);
    }
    let mut warnings = Vec::new();
    let first = &reports[0].1;
    for (label, (_, r)) in labels.iter().zip(reports).skip(1) {
        if r.suite_version != first.suite_version {
            warnings.push(format!(
                "{label} ran suite version {}, {} ran {}: workloads of the same id may differ",
                r.suite_version, labels[0], first.suite_version
            ));
        }
        if r.run.seed != first.run.seed {
            warnings.push(format!(
                "{label} used seed {}, {} used {}: inputs differ (the work does not)",
                r.run.seed, labels[0], first.run.seed
            ));
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    for (i, (_, r)) in reports.iter().enumerate() {
        for m in &r.measurements {
            let cell = match m.status {
                Status::Passed => m.median_s().map_or(Cell::Missing, Cell::Median),
                Status::Failed => Cell::Failed,
                Status::Skipped => Cell::Skipped,
            };
            let row = match rows.iter_mut().position(|row| {
                row.workload == m.workload && row.backend == m.backend && row.device == m.device
            }) {
                Some(p) => &mut rows[p],
                None => {
                    rows.push(Row {
                        workload: m.workload.clone(),
                        backend: m.backend,
                        device: m.device.clone(),
                        cells: vec![Cell::Missing; reports.len()],
                    });
                    rows.last_mut().expect("just pushed")
                }
            };
            row.cells[i] = cell;
        }
    }
    Ok(Comparison {
        labels,
        rows,
        warnings,
    })
}

/// Reads the reports at `paths` and compares them.
pub fn compare_files(paths: &[PathBuf]) -> Result<Comparison, BenchError> {
    let reports = paths
        .iter()
        .map(|p| Ok((p.clone(), Report::read(p)?)))
        .collect::<Result<Vec<_>, BenchError>>()?;
    compare(&reports)
}

impl Comparison {
    fn header(&self) -> Vec<String> {
        let mut h = vec!["workload".to_string(), "device".to_string()];
        for (i, l) in self.labels.iter().enumerate() {
            h.push(l.clone());
            if i > 0 {
                h.push(format!("ratio {}/{}", self.labels[0], l));
            }
        }
        h
    }

    fn cells(&self, row: &Row) -> Vec<String> {
        let mut c = vec![row.workload.clone(), row.device.clone()];
        for (i, cell) in row.cells.iter().enumerate() {
            c.push(cell.text());
            if i > 0 {
                c.push(row.ratio(i).map_or("-".into(), |r| format!("{r:.2}")));
            }
        }
        c
    }

    /// A plain-text table with aligned columns.
    pub fn text(&self) -> String {
        let mut table = vec![self.header()];
        table.extend(self.rows.iter().map(|r| self.cells(r)));
        let widths: Vec<usize> = (0..table[0].len())
            .map(|c| {
                table
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        for row in &table {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(s, "{}", line.join("  ").trim_end());
        }
        let _ = writeln!(
            s,
            "(median end-to-end times; ratio above 1: faster than {})",
            self.labels[0]
        );
        s
    }

    /// A Markdown table.
    pub fn markdown(&self) -> String {
        let mut s = String::from("# ProofBox benchmark comparison\n\n");
        for w in &self.warnings {
            let _ = writeln!(s, "- warning: {w}");
        }
        if !self.warnings.is_empty() {
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "Median end-to-end times; a ratio is {}'s median over the column's (above 1: faster than {}).\n",
            self.labels[0], self.labels[0]
        );
        let h = self.header();
        let _ = writeln!(s, "| {} |", h.join(" | "));
        let _ = writeln!(s, "|{}", "---|".repeat(h.len()));
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", self.cells(r).join(" | ").replace('\n', " "));
        }
        s
    }

    /// One row per (workload, device) with every report's median and ratio.
    pub fn csv(&self) -> String {
        let h = self.header();
        let quote = |c: &str| {
            if c.contains([',', '"']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.to_string()
            }
        };
        let mut s = h.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",");
        s.push('\n');
        for r in &self.rows {
            let mut c = vec![r.workload.clone(), r.device.clone()];
            for (i, cell) in r.cells.iter().enumerate() {
                c.push(cell.median().map_or_else(
                    || match cell {
                        Cell::Failed => "failed".into(),
                        Cell::Skipped => "skipped".into(),
                        _ => String::new(),
                    },
                    |m| m.to_string(),
                ));
                if i > 0 {
                    c.push(r.ratio(i).map_or(String::new(), |x| x.to_string()));
                }
            }
            s.push_str(&c.iter().map(|x| quote(x)).collect::<Vec<_>>().join(","));
            s.push('\n');
        }
        s
    }

    /// Writes `compare.md` and `compare.csv` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<[PathBuf; 2], BenchError> {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
        let md = dir.join("compare.md");
        let csv = dir.join("compare.csv");
        std::fs::write(&md, self.markdown()).map_err(|e| BenchError::io(&md, e))?;
        std::fs::write(&csv, self.csv()).map_err(|e| BenchError::io(&csv, e))?;
        Ok([md, csv])
    }
}
