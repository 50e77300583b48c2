//! `kiln eval`: reload a trained run's checkpoint, evaluate its deterministic policy and
//! optionally render an episode to a GIF.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kiln_envs::render::{render_episode, save_gif};
use kiln_rl::mean_std;

/// Frames per second of the rendered GIF.
const GIF_FPS: f64 = 30.0;
/// Longest episode rendered (frames are kept in memory).
const GIF_MAX_STEPS: usize = 1_000;

/// `kiln eval` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The run directory written by `kiln train` (holds `checkpoint.json`).
    #[arg(long)]
    pub run: PathBuf,
    /// Evaluation episodes.
    #[arg(long, default_value_t = 20)]
    pub episodes: usize,
    /// Seed of the first episode (episode k uses seed + k); default: the run's seed + 1e6, the
    /// seeds of the evaluation `kiln train` wrote into `summary.json`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also render the first episode to `<run>/eval.gif` (CartPole, Pendulum, PointMaze2D).
    #[arg(long)]
    pub render: bool,
}

/// Runs `kiln eval`: prints the mean and std of the returns and writes `<run>/eval.json`.
pub fn run(args: EvalArgs, quiet: bool) -> Result<()> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let stem = args.run.join("checkpoint");
    if !stem.with_extension("json").is_file() {
        bail!(
            "{}: no checkpoint.json; is this a run directory written by `kiln train`?",
            args.run.display()
        );
    }
    let seed = match args.seed {
        Some(s) => s,
        None => run_seed(&args.run)?.wrapping_add(1_000_000),
    };
    let device = kiln_tensor::select_device()?.device;
    let mut learner = kiln_rl::load_learner(&stem, device)
        .with_context(|| format!("loading {}", stem.display()))?;
    let returns = learner.evaluate(args.episodes, seed)?;
    let (mean, std) = mean_std(&returns);
    let report = serde_json::json!({
        "algo": learner.algo(),
        "env": learner.env_id(),
        "global_step": learner.global_step(),
        "episodes": args.episodes,
        "seed": seed,
        "eval_return_mean": mean,
        "eval_return_std": std,
        "returns": returns,
    });
    kiln_track::write_json_atomic(&args.run.join("eval.json"), &report)?;
    if args.render {
        let gif = args.run.join("eval.gif");
        render_gif(learner.as_mut(), seed, &gif)?;
        if !quiet {
            eprintln!("wrote {}", gif.display());
        }
    }
    println!(
        "{} on {}: eval return {mean:.1} +- {std:.1} over {} episodes (seeds {seed}..)",
        learner.algo(),
        learner.env_id(),
        args.episodes
    );
    Ok(())
}

/// The seed recorded in the run's `config.json`.
fn run_seed(run: &Path) -> Result<u64> {
    let record = kiln_track::read_run(run)?;
    record
        .config
        .get("seed")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("{}: config.json has no integer `seed`", run.display()))
}

fn render_gif(learner: &mut dyn kiln_rl::Learner, seed: u64, path: &Path) -> Result<()> {
    let mut env = kiln_envs::make(learner.env_id())?;
    let mut failure = None;
    let rendered = render_episode(&mut env, Some(seed), GIF_MAX_STEPS, |obs| {
        learner.predict(obs, true).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            kiln_envs::Action::Discrete(0)
        })
    });
    // A failed prediction explains whatever the placeholder action then did to the env.
    if let Some(e) = failure {
        return Err(e).context("predicting while rendering");
    }
    let frames = rendered.with_context(|| format!("rendering {}", learner.env_id()))?;
    save_gif(&frames, GIF_FPS, path)?;
    Ok(())
}
