//! `kiln train`: train a learner on an environment into a run directory (metrics, a
//! learning-curve plot, a checkpoint and a summary with the final evaluation).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use kiln_rl::{Callback, mean_std};
use kiln_track::plot::{Curve, PlotOptions, learning_curves};
use kiln_track::{Counter, Progress, RunDir, RunSpec, RunStatus};

/// Evaluation episodes written to `summary.json` at the end of a run.
const EVAL_EPISODES: usize = 20;

/// `kiln train` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Learner, e.g. ppo (an unknown name is an error listing the known ones).
    #[arg(long, default_value = "ppo")]
    pub algo: String,
    /// Environment id, e.g. CartPole-v1 (see `kiln env list`).
    #[arg(long, default_value = "CartPole-v1")]
    pub env: String,
    /// Environment steps to train for.
    #[arg(long, default_value_t = 100_000)]
    pub steps: u64,
    /// Run seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// JSON file with the learner's config (unknown keys are errors); defaults otherwise.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Set by the first Ctrl-C: the learner stops after its current update, then the run is
/// checkpointed, evaluated and summarized as `interrupted`. A second Ctrl-C exits at once.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn install_interrupt_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond interrupt: exiting without a final checkpoint");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupt: finishing the current update, then checkpointing (Ctrl-C again to abort)"
        );
    })
    .context("installing the Ctrl-C handler")
}

/// Feeds the run directory and the progress bar after each update.
struct TrainLog<'a> {
    run: &'a mut RunDir,
    progress: &'a Progress,
    returns: Vec<(f64, f64)>,
}

impl Callback for TrainLog<'_> {
    fn on_update(&mut self, step: u64, metrics: &[(&str, f64)]) -> kiln_rl::Result<bool> {
        self.run.log(step, metrics)?;
        self.progress.set_position(step);
        let get = |key: &str| metrics.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if let Some(r) = get("charts/episodic_return") {
            self.returns.push((step as f64, r));
        }
        let last = self
            .returns
            .last()
            .map(|(_, r)| format!(" | return {r:.1}"))
            .unwrap_or_default();
        let sps = get("charts/SPS").unwrap_or(f64::NAN);
        self.progress.set_message(format!("{sps:.0} steps/s{last}"));
        Ok(!INTERRUPTED.load(Ordering::SeqCst))
    }
}

/// Runs `kiln train`, writing the run directory under `out`.
pub fn run(args: TrainArgs, out: &Path, quiet: bool) -> Result<()> {
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --config {}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing --config {} as JSON", path.display()))?;
            Some(value)
        }
        None => None,
    };
    let choice = kiln_tensor::select_device()?;
    let mut learner = kiln_rl::make_learner(
        &args.algo,
        &args.env,
        args.seed,
        config,
        choice.device.clone(),
    )?;
    let spec = RunSpec {
        name: format!("{}-{}", args.algo, args.env),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        seed: args.seed,
        backend: choice.backend.name().to_string(),
        config: serde_json::json!({
            "algo": args.algo,
            "env": args.env,
            "steps": args.steps,
            "seed": args.seed,
            "learner": learner.config_json(),
        }),
        kiln_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut run = RunDir::create(out, spec)?;
    install_interrupt_handler()?;
    let progress = Progress::new(args.steps, &args.algo, quiet);
    let mut log = TrainLog {
        run: &mut run,
        progress: &progress,
        returns: Vec::new(),
    };
    learner
        .learn(args.steps, &mut log)
        .with_context(|| format!("training {} on {}", args.algo, args.env))?;
    progress.finish();
    let curve = std::mem::take(&mut log.returns);
    let dir = run.path().to_path_buf();
    learner.save(&dir.join("checkpoint"))?;
    if !curve.is_empty() {
        let opts = PlotOptions {
            title: format!("{} on {} (seed {})", args.algo, args.env, args.seed),
            y_label: "episodic return".into(),
            ..PlotOptions::default()
        };
        let curves = [Curve {
            label: args.algo.clone(),
            runs: vec![curve],
        }];
        learning_curves(&curves, &opts, &dir.join("learning_curve"))?;
    }
    let returns = learner.evaluate(EVAL_EPISODES, args.seed.wrapping_add(1_000_000))?;
    let (mean, std) = mean_std(&returns);
    let mut fin = serde_json::Map::new();
    fin.insert("eval_return_mean".into(), mean.into());
    fin.insert("eval_return_std".into(), std.into());
    fin.insert("eval_episodes".into(), EVAL_EPISODES.into());
    let steps = learner.global_step();
    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    let status = if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    run.finish(status, Counter::EnvSteps(steps), fin)?;
    if interrupted {
        eprintln!("interrupted after {steps} steps; metrics flushed, checkpoint written");
    }
    if !quiet {
        println!(
            "{} on {}: eval return {mean:.1} +- {std:.1} over {EVAL_EPISODES} episodes after {steps} steps",
            args.algo, args.env
        );
        println!("run directory: {}", dir.display());
    }
    Ok(())
}
