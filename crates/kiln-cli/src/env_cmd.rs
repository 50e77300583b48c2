//! `kiln env ...`: list, inspect, replay and render environments. Thin: the
//! logic lives in `kiln_envs` (`rollout::replay`, `render::record_episodes`),
//! so what users cross-check is what the tests check.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kiln_envs::render::{RenderPolicy, record_episodes, save_gif};
use kiln_envs::rollout::{Start, parse_actions, parse_state, replay};

/// `kiln env` subcommands.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List registered environments: id, spaces, time limit.
    List,
    /// Describe one environment: spaces, time limit, default parameters.
    Info {
        /// Environment id, e.g. `CartPole-v1`.
        id: String,
    },
    /// Replay a fixed action sequence and print one JSON line per step:
    /// `{"t":..,"obs":[..],"reward":..,"terminated":..,"truncated":..}`.
    /// The rollout stops at termination (or truncation).
    Rollout {
        /// Environment id.
        #[arg(long)]
        env: String,
        /// JSON parameters over the defaults, e.g. '{"length": 0.7}'.
        #[arg(long)]
        params: Option<String>,
        /// Start from `reset(seed)`.
        #[arg(long, conflicts_with = "state")]
        seed: Option<u64>,
        /// Start from this internal state (comma-separated, Gymnasium's order).
        #[arg(long, allow_hyphen_values = true)]
        state: Option<String>,
        /// A JSON file with one action per step (integer for discrete spaces,
        /// array of floats for box spaces) or an inline list `0,1,1,0` (discrete).
        #[arg(long, allow_hyphen_values = true)]
        actions: String,
        /// Do not apply the id's default time limit.
        #[arg(long)]
        no_time_limit: bool,
    },
    /// Roll out a policy and write the frames as an animated GIF (or the first frame as PNG):
    /// to `--out` when it ends in `.gif` or `.png`, else to `<out>/<env>.gif`.
    Render {
        /// Environment id (CartPole-v1, Pendulum-v1, PointMaze2D-v0, PointMaze2DDense-v0).
        #[arg(long)]
        env: String,
        /// `random`, or `expert` (PointMaze2D's bimodal scripted expert).
        #[arg(long, default_value = "random")]
        policy: String,
        /// Number of episodes.
        #[arg(long, default_value_t = 1)]
        episodes: usize,
        /// Seed of the first episode.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// JSON parameters over the defaults.
        #[arg(long)]
        params: Option<String>,
        /// Frames per second of the GIF.
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
    },
}

fn parse_params(params: &Option<String>) -> Result<serde_json::Value> {
    match params {
        None => Ok(serde_json::Value::Null),
        Some(s) => {
            serde_json::from_str(s).with_context(|| format!("--params is not valid JSON: {s}"))
        }
    }
}

/// Run a `kiln env` subcommand.
pub fn run(cmd: EnvCommand, out: &Path) -> Result<()> {
    match cmd {
        EnvCommand::List => {
            println!(
                "{:<26} {:>10}  {:<40} action space",
                "id", "time limit", "observation space"
            );
            for spec in kiln_envs::specs() {
                let env = spec.build(&serde_json::Value::Null)?;
                let limit = spec
                    .max_episode_steps
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<26} {:>10}  {:<40} {}",
                    spec.id,
                    limit,
                    short(env.observation_space()),
                    short(env.action_space())
                );
            }
        }
        EnvCommand::Info { id } => {
            let spec = kiln_envs::spec(&id)?;
            let env = spec.build(&serde_json::Value::Null)?;
            println!("id:                {}", spec.id);
            println!("description:       {}", spec.description);
            println!(
                "time limit:        {}",
                spec.max_episode_steps
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "none".into())
            );
            println!("observation space: {}", env.observation_space().describe());
            println!("action space:      {}", env.action_space().describe());
            println!(
                "state vector:      {}",
                if env.state().is_some() {
                    "yes (--state)"
                } else {
                    "no"
                }
            );
            println!(
                "parameters:        {}",
                serde_json::to_string_pretty(&env.params())?
            );
        }
        EnvCommand::Rollout {
            env,
            params,
            seed,
            state,
            actions,
            no_time_limit,
        } => {
            let params = parse_params(&params)?;
            let start = match (seed, state) {
                (_, Some(s)) => Start::State(parse_state(&s)?),
                (Some(s), None) => Start::Seed(s),
                (None, None) => Start::Seed(0),
            };
            let space = kiln_envs::make_with(&env, &params, false)?
                .action_space()
                .clone();
            let path = PathBuf::from(&actions);
            let text = if path.is_file() {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading actions from {}", path.display()))?
            } else {
                actions.clone()
            };
            let acts = parse_actions(&text, &space)?;
            let roll = replay(&env, &params, &start, &acts, !no_time_limit)?;
            let mut out = std::io::stdout().lock();
            for step in &roll.steps {
                use std::io::Write;
                writeln!(out, "{}", serde_json::to_string(step)?)?;
            }
        }
        EnvCommand::Render {
            env,
            policy,
            episodes,
            seed,
            params,
            fps,
        } => {
            let out = match out.extension().and_then(|e| e.to_str()) {
                Some("gif" | "png") => out.to_path_buf(),
                _ => out.join(format!("{env}.gif")),
            };
            let policy: RenderPolicy = policy.parse().map_err(anyhow::Error::msg)?;
            let params = parse_params(&params)?;
            let frames = record_episodes(&env, &params, policy, episodes, seed)?;
            match out.extension().and_then(|e| e.to_str()) {
                Some("gif") => save_gif(&frames, fps, &out)?,
                Some("png") => frames.first().context("no frames")?.save_png(&out)?,
                _ => bail!("--out must end in .gif or .png: {}", out.display()),
            }
            eprintln!("wrote {} frames to {}", frames.len(), out.display());
        }
    }
    Ok(())
}

fn short(space: &kiln_envs::Space) -> String {
    match space {
        kiln_envs::Space::Box(b) => format!("Box{:?}", b.shape),
        other => other.describe(),
    }
}
