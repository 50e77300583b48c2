//! `kiln runs list|show|plot`: read run directories without writing Python.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kiln_track::plot::{Curve, PlotOptions, learning_curves};
use kiln_track::{RunRecord, list_runs, markdown_table, read_run};

use crate::Global;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the runs under the output root (`--out`, default `runs/`).
    List,
    /// Show one run: config, status, counters and headline metrics.
    Show {
        /// The run directory.
        dir: PathBuf,
    },
    /// Overlay the learning curves of several runs (runs of the same name are seeds of one
    /// curve: mean with a 95% confidence band). The figure goes to `--out` when it ends in
    /// `.png` (an `.svg` is written next to it), else to `<out>/compare.png`.
    Plot {
        /// Run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Metric to plot (default: the first of eval_return_mean, episode_return found).
        #[arg(long)]
        metric: Option<String>,
    },
}

pub fn run(cmd: RunsCommand, global: &Global) -> Result<()> {
    match cmd {
        RunsCommand::List => list(&global.out),
        RunsCommand::Show { dir } => show(&dir),
        RunsCommand::Plot { dirs, metric } => plot(&dirs, metric.as_deref(), global),
    }
}

fn headline(r: &RunRecord) -> String {
    let Some(s) = &r.summary else {
        return String::new();
    };
    s.final_metrics
        .iter()
        .take(3)
        .map(|(k, v)| match v.as_f64() {
            Some(x) => format!("{k}={x:.4}"),
            None => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn list(root: &Path) -> Result<()> {
    if !root.exists() {
        println!("no runs under {} (train something first)", root.display());
        return Ok(());
    }
    let runs = list_runs(root).with_context(|| format!("reading runs under {}", root.display()))?;
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let (status, seed, wall) = match &r.summary {
                Some(s) => (
                    format!("{:?}", s.status).to_lowercase(),
                    s.seed.to_string(),
                    format!("{:.1}", s.wall_time_s),
                ),
                None => ("running or killed".into(), String::new(), String::new()),
            };
            vec![
                r.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                status,
                seed,
                wall,
                headline(r),
            ]
        })
        .collect();
    print!(
        "{}",
        markdown_table(&["run", "status", "seed", "wall s", "final"], &rows)
    );
    Ok(())
}

fn show(dir: &Path) -> Result<()> {
    let r = read_run(dir).with_context(|| format!("reading run {}", dir.display()))?;
    println!("run: {}", r.path.display());
    println!("config: {}", serde_json::to_string_pretty(&r.config)?);
    match &r.summary {
        Some(s) => println!("summary: {}", serde_json::to_string_pretty(s)?),
        None => println!("summary: none (the run is still going, or was killed)"),
    }
    println!("logged steps: {}", r.metrics.len());
    if let Some(last) = r.metrics.last() {
        println!("last metrics: {}", serde_json::Value::Object(last.clone()));
    }
    Ok(())
}

/// The curve name of a run: the summary's name, else the directory name without its
/// `-s<seed>-<timestamp>` suffix.
fn curve_name(r: &RunRecord) -> String {
    if let Some(s) = &r.summary
        && !s.name.is_empty()
    {
        return s.name.clone();
    }
    let dir = r
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match dir.rfind("-s") {
        Some(i) if dir[i + 2..].starts_with(|c: char| c.is_ascii_digit()) => dir[..i].to_string(),
        _ => dir,
    }
}

fn plot(dirs: &[PathBuf], metric: Option<&str>, global: &Global) -> Result<()> {
    let mut runs = Vec::new();
    for d in dirs {
        runs.push(read_run(d).with_context(|| format!("reading run {}", d.display()))?);
    }
    let metric = match metric {
        Some(m) => m.to_string(),
        None => ["eval_return_mean", "episode_return"]
            .into_iter()
            .find(|k| runs.iter().any(|r| !r.series(k).is_empty()))
            .map(str::to_string)
            .with_context(|| {
                let keys: std::collections::BTreeSet<String> = runs
                    .iter()
                    .flat_map(|r| r.metrics.iter().flat_map(|m| m.keys().cloned()))
                    .collect();
                format!("no default metric found; pass --metric, one of: {keys:?}")
            })?,
    };
    let mut groups: BTreeMap<String, Vec<Vec<(f64, f64)>>> = BTreeMap::new();
    for r in &runs {
        let s = r.series(&metric);
        if s.is_empty() {
            bail!("run {} has no metric `{metric}`", r.path.display());
        }
        groups.entry(curve_name(r)).or_default().push(s);
    }
    let curves: Vec<Curve> = groups
        .into_iter()
        .map(|(label, runs)| Curve { label, runs })
        .collect();
    let stem = match global.out.extension().and_then(|e| e.to_str()) {
        Some("png" | "svg") => global.out.with_extension(""),
        _ => global.out.join("compare"),
    };
    let opts = PlotOptions {
        title: format!("{metric} (mean over seeds, 95% CI)"),
        x_label: "step".into(),
        y_label: metric.clone(),
        ..PlotOptions::default()
    };
    learning_curves(&curves, &opts, &stem)?;
    if !global.quiet {
        println!("wrote {}.png and {}.svg", stem.display(), stem.display());
    }
    Ok(())
}
