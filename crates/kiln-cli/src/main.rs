//! `kiln`: train, evaluate, reproduce and inspect parameterized policies.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod env_cmd;
mod info;
mod runs;

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
    /// Environments: list, info, rollout (cross-check against another simulator), render.
    #[command(subcommand)]
    Env(env_cmd::EnvCommand),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global {
        quiet: cli.quiet,
        out: cli.out,
    };
    let result = match cli.command {
        Command::Info { json } => info::run(json),
        Command::Env(cmd) => env_cmd::run(cmd, &global.out),
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
