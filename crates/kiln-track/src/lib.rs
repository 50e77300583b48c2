//! Experiment tracking for Kiln, independent of any tensor library.
//!
//! Every training run gets a **run directory** holding
//! - `config.json`: the full configuration, written once at the start;
//! - `metrics.jsonl`: one JSON object per logged step, appended and flushed
//!   line by line so a crash loses at most the line being written;
//! - `summary.json`: how the run ended (`finished`, `interrupted`, `failed`),
//!   how much it trained, its wall time and headline metrics. It is written
//!   even when the run is abandoned by an error or a panic.
//!
//! Around that the crate offers what turns runs into results: reading runs
//! back ([`read_run`], [`list_runs`]), statistics over seeds ([`stats`]),
//! learning-curve and bar-chart figures in PNG and SVG ([`plot`]), Markdown
//! tables ([`markdown_table`]), terminal progress bars ([`Progress`]) and
//! atomic file writes for checkpoints and reports ([`write_json_atomic`],
//! [`write_bytes_atomic`]).
//!
//! ```
//! use kiln_track::{Counter, RunDir, RunSpec, RunStatus, read_run};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! let spec = RunSpec {
//!     name: "ppo-CartPole-v1".into(),
//!     command: "kiln train ppo --env CartPole-v1 --seed 1".into(),
//!     seed: 1,
//!     backend: "ndarray".into(),
//!     config: serde_json::json!({ "lr": 3e-4, "total_steps": 4096 }),
//!     kiln_version: env!("CARGO_PKG_VERSION").into(),
//! };
//! let mut run = RunDir::create(root.path(), spec)?;
//! run.log(2048, &[("episode_return", 21.5), ("loss", 0.41)])?;
//! run.log(4096, &[("episode_return", 87.0), ("loss", 0.18)])?;
//! let dir = run.path().to_path_buf();
//!
//! let mut headline = serde_json::Map::new();
//! headline.insert("eval_return_mean".into(), 92.5.into());
//! headline.insert("eval_return_std".into(), 11.2.into());
//! headline.insert("eval_episodes".into(), 10.into());
//! run.finish(RunStatus::Finished, Counter::EnvSteps(4096), headline)?;
//!
//! let record = read_run(&dir)?;
//! assert_eq!(record.series("episode_return"), vec![(2048.0, 21.5), (4096.0, 87.0)]);
//! let summary = record.summary.expect("finish wrote summary.json");
//! assert_eq!(summary.status, RunStatus::Finished);
//! assert_eq!(summary.counter, Counter::EnvSteps(4096));
//! assert_eq!(summary.final_metrics["eval_episodes"], 10);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod atomic;
pub mod error;
pub mod plot;
pub mod progress;
pub mod run;
pub mod stats;
pub mod table;

pub use error::TrackError;
pub use plot::{Bar, Curve, MeanBand, PlotOptions, bar_chart, learning_curves, mean_band};
pub use progress::Progress;
pub use run::{
    Counter, RunDir, RunRecord, RunSpec, RunStatus, Summary, list_runs, read_run,
    write_bytes_atomic, write_json_atomic,
};
pub use table::markdown_table;
