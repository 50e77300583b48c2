//! `kiln`: train, evaluate, reproduce and inspect parameterized policies.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod align_cmd;
mod env_cmd;
mod eval_cmd;
mod generate_cmd;
mod info;
mod robust_cmd;
mod runs;
mod train_cmd;

/// Kiln: fast, reproducible learning and optimization of parameterized policies.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
struct Cli {
    /// Hide progress bars and informational output.
    #[arg(long, global = true)]
    quiet: bool,
    /// Root directory of run directories.
    #[arg(long, global = true, default_value = "runs")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the Kiln version, the compiled backends and the device Kiln would use (and why).
    Info {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Train a learner: `kiln train --algo ppo --env CartPole-v1 --steps 100000 --seed 1`.
    Train(train_cmd::TrainArgs),
    /// Align a character-vocabulary Llama on a verifiable task:
    /// `kiln align sft|grpo|dapo|lite-ppo|nft|capo|dpo|rdpo --config file.json`.
    #[command(subcommand)]
    Align(align_cmd::AlignCommand),
    /// Evaluate a trained run: `kiln eval --run runs/<id> --episodes 20 [--render]`.
    Eval(eval_cmd::EvalArgs),
    /// Continue a prompt with a language model: `kiln generate --model model.gguf --prompt "..."
    /// [--chat] [--greedy] [--max-tokens N] [--temperature T --top-p P --seed S]`.
    Generate(generate_cmd::GenerateArgs),
    /// Environments: list, info, rollout (cross-check against another simulator), render.
    #[command(subcommand)]
    Env(env_cmd::EnvCommand),
    /// Robust MDP solvers: `kiln robust solve --mdp mdp.json --set l1 --radius 0.1`.
    #[command(subcommand)]
    Robust(robust_cmd::RobustCommand),
    /// Reproduce a paper's headline claim in miniature: writes `<row>.md` (the table) and its
    /// plot to `<out>/repro/` (`kiln --out docs repro iwocs` refreshes `docs/repro/`;
    /// `kiln repro --list` lists the rows).
    Repro {
        /// The row, e.g. `iwocs`.
        row: Option<String>,
        /// List the rows that have a reproduction.
        #[arg(long)]
        list: bool,
        /// A seconds-long smoke version instead of the full miniature.
        #[arg(long)]
        quick: bool,
    },
    /// Inspect and compare run directories.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
}

/// Options every subcommand sees.
#[derive(Debug, Clone)]
pub struct Global {
    /// `--quiet`.
    pub quiet: bool,
    /// `--out`.
    pub out: PathBuf,
}

/// Rows with a `kiln repro` reproduction, by crate.
fn repro_rows() -> Vec<&'static str> {
    let mut rows = robust_cmd::ROWS.to_vec();
    rows.extend_from_slice(RL_ROWS);
    rows.extend_from_slice(kiln_align::experiments::ROWS);
    rows
}

/// Rows whose reproduction lives in `kiln-rl`.
const RL_ROWS: &[&str] = &["fishery", "stochastic-pg"];

/// Runs a `kiln-rl` row; `None` if `row` is not one.
fn rl_repro(
    row: &str,
    out_dir: &std::path::Path,
    quick: bool,
    quiet: bool,
) -> anyhow::Result<Option<String>> {
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("{row}: {line}");
        }
    };
    Ok(match row {
        "fishery" => {
            use kiln_rl::experiments::fishery::{FisheryRepro, fishery_with};
            let cfg = if quick {
                FisheryRepro::quick()
            } else {
                FisheryRepro::full()
            };
            Some(fishery_with(&cfg, out_dir, &mut progress)?)
        }
        "stochastic-pg" => Some(kiln_rl::experiments::stochastic_pg::stochastic_pg(
            out_dir,
            quick,
            &mut progress,
        )?),
        _ => None,
    })
}

fn repro(row: Option<String>, list: bool, quick: bool, global: &Global) -> anyhow::Result<()> {
    let rows = repro_rows();
    let Some(row) = row.filter(|_| !list) else {
        for r in rows {
            println!("{r}");
        }
        return Ok(());
    };
    let out_dir = global.out.join("repro");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", out_dir.display()))?;
    let markdown = match robust_cmd::repro(&row, &out_dir, quick)? {
        Some(markdown) => Some(markdown),
        None => match rl_repro(&row, &out_dir, quick, global.quiet)? {
            Some(markdown) => Some(markdown),
            None => {
                let quiet = global.quiet;
                let mut progress = |line: &str| {
                    if !quiet {
                        eprintln!("{row}: {line}");
                    }
                };
                kiln_align::experiments::repro(&row, &out_dir, quick, &mut progress)?
            }
        },
    };
    match markdown {
        Some(markdown) => {
            println!("{markdown}");
            if !global.quiet {
                eprintln!("wrote the table and plot to {}", out_dir.display());
            }
            Ok(())
        }
        None => anyhow::bail!("no reproduction for row `{row}`; rows: {}", rows.join(", ")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global {
        quiet: cli.quiet,
        out: cli.out,
    };
    let result = match cli.command {
        Command::Info { json } => info::run(json),
        Command::Train(args) => train_cmd::run(args, &global.out, global.quiet),
        Command::Align(cmd) => align_cmd::run(cmd, &global.out, global.quiet),
        Command::Eval(args) => eval_cmd::run(args, global.quiet),
        Command::Generate(args) => generate_cmd::run(args, global.quiet),
        Command::Env(cmd) => env_cmd::run(cmd, &global.out),
        Command::Robust(cmd) => robust_cmd::run(cmd),
        Command::Repro { row, list, quick } => repro(row, list, quick, &global),
        Command::Runs(cmd) => runs::run(cmd, &global),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
