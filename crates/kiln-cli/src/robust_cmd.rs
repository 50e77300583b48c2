//! `kiln robust ...`: robust MDP solving, and the reproductions of the
//! robust-RL, causal and bandit rows that live in `kiln-robust` /
//! `kiln-bandits`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_robust::{
    Distance, Rectangularity, RobustValueIterationConfig, UncertaintySet, load_mdp,
    robust_value_iteration, solution_json,
};

/// Uncertainty-set divergence on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SetArg {
    /// `||q - p||_1 <= radius`.
    L1,
    /// `||q - p||_inf <= radius`.
    Linf,
    /// `KL(q || p) <= radius`.
    Kl,
}

/// Rectangularity on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RectArg {
    /// One ball per state-action pair.
    Sa,
    /// One budget per state, shared by its actions (randomised policies).
    S,
}

/// Robust MDP commands.
#[derive(Debug, clap::Subcommand)]
pub enum RobustCommand {
    /// Solve a tabular robust MDP by robust value iteration and print one JSON
    /// object with `value`, `policy` and `worst_kernel`.
    Solve {
        /// Tabular MDP JSON file (`n_states`, `n_actions`, `gamma`,
        /// `transitions[s][a][s']`, `rewards[s][a]`, `initial[s]`).
        #[arg(long)]
        mdp: PathBuf,
        /// Uncertainty-set divergence.
        #[arg(long, value_enum)]
        set: SetArg,
        /// Ball radius (budget), >= 0.
        #[arg(long)]
        radius: f64,
        /// Rectangularity.
        #[arg(long, value_enum, default_value = "sa")]
        rect: RectArg,
        /// Discount, overriding the file's.
        #[arg(long)]
        gamma: Option<f64>,
        /// Suboptimality target of the returned policy.
        #[arg(long, default_value_t = 1e-8)]
        epsilon: f64,
    },
}

/// Runs a `kiln robust` command.
pub fn run(cmd: RobustCommand) -> anyhow::Result<()> {
    match cmd {
        RobustCommand::Solve {
            mdp,
            set,
            radius,
            rect,
            gamma,
            epsilon,
        } => {
            let json = solve(&mdp, set, radius, rect, gamma, epsilon)?;
            println!("{json}");
            Ok(())
        }
    }
}

/// `kiln robust solve` as a function returning the printed JSON.
pub fn solve(
    mdp_path: &Path,
    set: SetArg,
    radius: f64,
    rect: RectArg,
    gamma: Option<f64>,
    epsilon: f64,
) -> anyhow::Result<serde_json::Value> {
    let mut mdp =
        load_mdp(mdp_path).with_context(|| format!("loading MDP {}", mdp_path.display()))?;
    if let Some(g) = gamma {
        mdp.gamma = g;
        mdp.validate()
            .with_context(|| format!("--gamma {g} for MDP {}", mdp_path.display()))?;
    }
    let distance = match set {
        SetArg::L1 => Distance::L1,
        SetArg::Linf => Distance::Linf,
        SetArg::Kl => Distance::Kl,
    };
    let rectangularity = match rect {
        RectArg::Sa => Rectangularity::Sa,
        RectArg::S => Rectangularity::S,
    };
    let set = UncertaintySet::new(distance, radius, rectangularity)?;
    let sol = robust_value_iteration(
        &mdp,
        &set,
        &RobustValueIterationConfig {
            epsilon,
            ..Default::default()
        },
    )?;
    Ok(solution_json(&sol, &mdp, serde_json::json!({ "set": set })))
}

/// The rows this module reproduces.
pub const ROWS: [&str; 6] = [
    "iwocs",
    "dr-rpo",
    "agnostic-rl",
    "causal-ivl",
    "beyond-worst-case",
    "recovering-rewards",
];

/// `kiln repro <row>` for the rows of `kiln-robust` / `kiln-bandits`: runs
/// the row's miniature experiment, writes `<row>.md` and its plot
/// (`<row>.png`, `<row>.svg`) into `out_dir` and returns the Markdown.
/// `Ok(None)` for rows that are not ours. `quick` shrinks the experiment to
/// seconds (tests).
pub fn repro(row: &str, out_dir: &Path, quick: bool) -> anyhow::Result<Option<String>> {
    use kiln_robust::experiments;
    if !ROWS.contains(&row) {
        return Ok(None);
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let markdown = match row {
        "iwocs" => experiments::iwocs::run(out_dir, quick)?,
        "causal-ivl" => experiments::causal_ivl::run(out_dir, quick)?,
        "dr-rpo" => experiments::dr_rpo::run(out_dir, quick)?,
        "beyond-worst-case" => experiments::beyond_worst_case::run(out_dir, quick)?,
        "agnostic-rl" => experiments::agnostic_rl::run(out_dir, quick)?,
        "recovering-rewards" => experiments::recovering_rewards::run(out_dir, quick)?,
        _ => anyhow::bail!("kiln repro {row}: unknown kiln-robust row"),
    };
    kiln_track::write_bytes_atomic(&out_dir.join(format!("{row}.md")), markdown.as_bytes())?;
    Ok(Some(markdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_prints_value_policy_and_worst_kernel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mdp.json");
        std::fs::write(
            &path,
            r#"{"n_states": 2, "n_actions": 2, "gamma": 0.5, "name": "doc",
               "transitions": [[[1.0, 0.0], [0.9, 0.1]], [[0.0, 1.0], [0.0, 1.0]]],
               "rewards": [[0.5, 1.0], [0.0, 0.0]], "initial": [1.0, 0.0]}"#,
        )
        .expect("write");
        let out = solve(&path, SetArg::L1, 0.4, RectArg::Sa, Some(0.9), 1e-9).expect("solve");
        let v0 = out["value"][0].as_f64().expect("value");
        assert!((v0 - 1.0 / 0.37).abs() < 1e-6, "{out}");
        assert_eq!(out["policy"], serde_json::json!([1, 0]));
        assert_eq!(
            out["worst_kernel"][0][1][1]
                .as_f64()
                .map(|x| (x - 0.3).abs() < 1e-9),
            Some(true)
        );
        let s = solve(&path, SetArg::Kl, 0.1, RectArg::S, None, 1e-6).expect("s-rect");
        assert!(
            s["policy"][0].is_array(),
            "s-rectangular policies are distributions: {s}"
        );
    }

    #[test]
    fn malformed_mdp_names_state_and_action() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.json");
        std::fs::write(
            &path,
            r#"{"n_states": 2, "n_actions": 1, "gamma": 0.9,
               "transitions": [[[1.0, 0.0]], [[0.3, 0.3]]],
               "rewards": [[1.0], [0.0]], "initial": [1.0, 0.0]}"#,
        )
        .expect("write");
        let e = format!(
            "{:#}",
            solve(&path, SetArg::L1, 0.1, RectArg::Sa, None, 1e-6).expect_err("bad")
        );
        assert!(
            e.contains("s=1") && e.contains("a=0") && e.contains("bad.json"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            solve(&path, SetArg::L1, -1.0, RectArg::Sa, None, 1e-6).expect_err("bad")
        );
        assert!(e.contains("s=1"), "{e}");
    }

    #[test]
    fn quick_repro_of_every_row_writes_markdown_and_a_plot() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(repro("not-ours", dir.path(), true).expect("ok").is_none());
        for row in ROWS {
            let md = repro(row, dir.path(), true).expect("repro").expect("ours");
            assert!(md.contains('|'), "{row}: {md}");
            assert!(dir.path().join(format!("{row}.png")).exists(), "{row}");
        }
        // agnostic RL has a second plot and table: PSDP against brute force
        assert!(dir.path().join("agnostic-rl-psdp.png").exists());
        let md = std::fs::read_to_string(dir.path().join("agnostic-rl.md")).expect("md");
        assert!(
            md.contains("PSDP (oracle mu)") && md.contains("brute force"),
            "{md}"
        );
    }
}
