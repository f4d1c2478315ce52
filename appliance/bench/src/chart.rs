//! SVG charts (plotters): throughput against size, one line per device; speed-up
//! against the CPU backend, one line per other device. One pair per series of
//! workloads that differ only in size (e.g. `kernels-lde-koalabear-w16`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use proofbox_backend_api::BackendKind;

use crate::error::BenchError;
use crate::output::{cpu_medians, si_prefix};
use crate::report::{Measurement, Report, Status};
use crate::workload::Suite;

/// One chart's measurements: its suite, its throughput unit, and per device id the
/// measurements in workload order.
type Series<'a> = (Suite, String, BTreeMap<String, Vec<&'a Measurement>>);

/// (label, points) of one line.
type Line = (String, Vec<(i64, f64)>);

fn x_of(m: &Measurement) -> i64 {
    match m.log_rows {
        Some(l) => i64::from(l),
        None => m.size as i64,
    }
}

/// A figure with a k/M/G prefix, for axis labels.
fn compact(v: f64) -> String {
    let (x, p) = si_prefix(v);
    let digits = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.digits$}{p}")
}

/// The chart a measurement belongs to: workloads that differ only in size.
pub fn series_of(m: &Measurement) -> String {
    let field = m.field.map(|f| f.name()).unwrap_or("any");
    match m.suite {
        Suite::Kernels => format!("kernels-{}-{field}-w{}", m.operation, m.width.unwrap_or(0)),
        Suite::Proofs => format!(
            "proofs-{}-{field}",
            m.circuit.map(|c| c.name()).unwrap_or("unknown")
        ),
        Suite::State => format!("state-{}", m.operation),
    }
}

fn x_desc(suite: Suite) -> &'static str {
    match suite {
        Suite::State => "updates",
        _ => "log2 rows",
    }
}

/// One SVG line chart with a log-scale y axis: each line a label and its `(x, y)`
/// points. For figures drawn outside a report (the state tree's updates/s against
/// the state's size, `benches/src/bin/state_tree_chart.rs`).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[(String, Vec<(i64, f64)>)],
) -> Result<(), String> {
    draw(path, title, x_label, y_label, lines, false)
}

fn draw(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    unit_line: bool,
) -> Result<(), String> {
    let xs = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let ys = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (mut x0, mut x1) = xs.fold((i64::MAX, i64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (mut y0, mut y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if unit_line {
        y0 = y0.min(1.0);
        y1 = y1.max(1.0);
    }
    // One step of margin: a log2 size either side, or a tenth of the span of updates.
    let pad = if x1 > 64 {
        ((x1 - x0) / 10).max(x0 / 10).max(1)
    } else {
        1
    };
    x0 -= pad;
    x1 += pad;
    // A decade of headroom above the data keeps the legend (upper left) off the lines.
    y0 = (y0 / 2.0).max(f64::MIN_POSITIVE);
    y1 *= 10.0;

    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(((x1 - x0) as usize + 1).min(12))
        .y_labels(8)
        .x_desc(x_label)
        .y_desc(y_label)
        .y_label_formatter(&|v| compact(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    if unit_line {
        chart
            .draw_series(LineSeries::new(
                vec![(x0, 1.0), (x1, 1.0)],
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label("CPU backend (1.0)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    }
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes the charts of `report` into `dir` and returns their paths. Only passed
/// measurements are drawn; a series with none gets no chart, and a speed-up chart
/// needs the CPU backend and at least one other device.
pub fn write_charts(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    // series -> device -> points, in workload order.
    let mut series: BTreeMap<String, Series<'_>> = BTreeMap::new();
    for m in report
        .measurements
        .iter()
        .filter(|m| m.status == Status::Passed)
    {
        let key = series_of(m);
        let unit = m
            .throughput
            .as_ref()
            .map(|t| t.unit.clone())
            .unwrap_or_default();
        series
            .entry(key)
            .or_insert_with(|| (m.suite, unit, BTreeMap::new()))
            .2
            .entry(m.device.clone())
            .or_default()
            .push(m);
    }
    if series.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    let cpu = cpu_medians(report);
    let machine = &report.environment.machine;
    let mut written = Vec::new();
    for (name, (suite, unit, devices)) in &series {
        let label = |d: &str, ms: &[&Measurement]| {
            let name = ms.first().map(|m| m.device_name.as_str()).unwrap_or("");
            let short: String = name.chars().take(36).collect();
            let dots = if name.chars().count() > 36 { "..." } else { "" };
            format!("{d} ({short}{dots})")
        };
        let mut lines: Vec<Line> = devices
            .iter()
            .map(|(d, ms)| {
                let mut pts: Vec<(i64, f64)> = ms
                    .iter()
                    .filter_map(|m| Some((x_of(m), m.throughput.as_ref()?.value)))
                    .collect();
                pts.sort_by_key(|p| p.0);
                (label(d, ms), pts)
            })
            .collect();
        lines.retain(|(_, p)| !p.is_empty());
        if lines.is_empty() {
            continue;
        }
        let path = dir.join(format!("throughput-{name}.svg"));
        draw(
            &path,
            &format!("{name}: throughput ({machine})"),
            x_desc(*suite),
            unit,
            &lines,
            false,
        )
        .map_err(|message| BenchError::Chart {
            chart: path.display().to_string(),
            message,
        })?;
        written.push(path);

        let has_cpu = devices
            .values()
            .flatten()
            .any(|m| m.backend == BackendKind::Cpu);
        let mut speed: Vec<Line> = devices
            .iter()
            .filter(|(_, ms)| ms.iter().all(|m| m.backend != BackendKind::Cpu))
            .map(|(d, ms)| {
                let mut pts: Vec<(i64, f64)> = ms
                    .iter()
                    .filter_map(|m| Some((x_of(m), crate::output::speedup(m, &cpu)?)))
                    .collect();
                pts.sort_by_key(|p| p.0);
                (label(d, ms), pts)
            })
            .collect();
        speed.retain(|(_, p)| !p.is_empty());
        if !has_cpu || speed.is_empty() {
            continue;
        }
        let path = dir.join(format!("speedup-{name}.svg"));
        draw(
            &path,
            &format!("{name}: speed-up against the CPU backend ({machine})"),
            x_desc(*suite),
            "CPU backend time / device time",
            &speed,
            true,
        )
        .map_err(|message| BenchError::Chart {
            chart: path.display().to_string(),
            message,
        })?;
        written.push(path);
    }
    Ok(written)
}
