//! `cargo xtask`: Kiln's development automation, in Rust so contributors need only cargo.
//!
//! - `cargo xtask test [--slow] [--backend flex|ndarray|wgpu]`
//! - `cargo xtask lint`
//! - `cargo xtask bench [-- criterion args]`
//! - `cargo xtask readme` (runs the README's commands)
//! - `cargo xtask ci` (what CI runs)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Kiln development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// The packages with `wgpu` smoke tests (each has a `wgpu` feature).
const WGPU_TEST_PACKAGES: &[&str] = &["kiln-tensor"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TestBackend {
    /// The default suite on the default CPU backend (with ndarray compiled in for parity tests).
    Flex,
    /// The backend-parity tests only (flex vs ndarray).
    Ndarray,
    /// The GPU-path tests (`wgpu` in their name) with the `wgpu` feature.
    Wgpu,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the test suite (cargo-nextest when installed, else cargo test).
    Test {
        /// Also run the slow learning tests (release build, `#[ignore = "slow: ..."]`).
        #[arg(long)]
        slow: bool,
        /// Which backend's tests to run.
        #[arg(long, value_enum, default_value = "flex")]
        backend: TestBackend,
    },
    /// Check formatting and run clippy with warnings denied.
    Lint,
    /// Run the criterion benchmarks (extra arguments go to criterion).
    Bench {
        /// Arguments passed through to `cargo bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every command shown in README.md's quick-start block (except the test command).
    Readme,
    /// What CI runs: lint, the default suite, the wgpu smoke tests and the README commands.
    Ci,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("failed to start {shown}"))?;
    eprintln!(
        "xtask: finished in {:.1}s: {shown}",
        start.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!("command failed ({status}): {shown}");
    }
    Ok(())
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn test(slow: bool, backend: TestBackend) -> Result<()> {
    let nextest = has_nextest();
    match backend {
        TestBackend::Flex => {
            let mut c = cargo();
            if nextest {
                c.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
            } else {
                c.args(["test", "--workspace", "--no-fail-fast"]);
            }
            c.args(["--features", "kiln-tensor/ndarray"]);
            if slow {
                c.arg("--release");
                if nextest {
                    c.args(["--run-ignored", "all"]);
                } else {
                    c.args(["--", "--include-ignored"]);
                }
            }
            run(c)?;
            // nextest does not run doc-tests.
            if nextest && !slow {
                let mut d = cargo();
                d.args([
                    "test",
                    "--workspace",
                    "--doc",
                    "--features",
                    "kiln-tensor/ndarray",
                ]);
                run(d)?;
            }
        }
        TestBackend::Ndarray => {
            let mut c = cargo();
            c.args([
                "test",
                "-p",
                "kiln-tensor",
                "--features",
                "ndarray",
                "--test",
                "backend_parity",
            ]);
            run(c)?;
        }
        TestBackend::Wgpu => {
            // The GPU smoke tests live in the crates that own device code; building only
            // them keeps this phase to one extra burn build instead of a second workspace.
            let mut c = cargo();
            c.arg("test");
            for package in WGPU_TEST_PACKAGES {
                c.args(["-p", package, "--features", &format!("{package}/wgpu")]);
            }
            c.args(["--", "wgpu"]);
            if slow {
                c.arg("--include-ignored");
            }
            run(c)?;
        }
    }
    Ok(())
}

fn lint() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "kiln-tensor/ndarray",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)
}

/// The commands of README.md's quick-start block: the lines of the first ```sh block that
/// follows the heading containing "Quick start".
fn readme_commands() -> Result<Vec<String>> {
    let path = root().join("README.md");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let start = text
        .find("Quick start")
        .context("README.md has no 'Quick start' section")?;
    let rest = &text[start..];
    let open = rest
        .find("```sh")
        .context("no ```sh block after 'Quick start'")?;
    let body = &rest[open + 5..];
    let close = body.find("```").context("unterminated ```sh block")?;
    Ok(body[..close]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn readme() -> Result<()> {
    let commands = readme_commands()?;
    if commands.is_empty() {
        bail!("README.md's quick-start block has no commands");
    }
    for line in commands {
        if line.starts_with("cargo xtask test") {
            eprintln!("xtask: `{line}` is what CI runs; not re-running it here");
            continue;
        }
        let mut c = Command::new("bash");
        c.current_dir(root())
            .args(["-euo", "pipefail", "-c", &line]);
        run(c)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Test { slow, backend } => test(slow, backend),
        Task::Lint => lint(),
        Task::Bench { args } => {
            let mut c = cargo();
            c.args(["bench", "-p", "kiln-benches"]).args(args);
            run(c)
        }
        Task::Readme => readme(),
        Task::Ci => {
            lint()?;
            test(false, TestBackend::Flex)?;
            test(false, TestBackend::Wgpu)?;
            readme()
        }
    }
}
