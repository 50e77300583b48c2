//! Row `tricks-or-traps` (Liu et al. 2025, "Part I: Tricks or Traps? A Deep Dive into RL for
//! LLM Reasoning", arXiv 2508.08221; reference notes `lite-ppo.md` Sec. 2 and 4,
//! `grpo-family.md` Sec. 2): from one SFT-warmed tiny transformer on 2-digit addition
//! ([`super::warm`]), three critic-free clipped-surrogate methods train at an equal number of
//! sampled completions:
//!
//! - **GRPO** (DeepSeekMath eq. 3): `A_i = (R_i - mean_g R) / (std_g R + 1e-4)` (unbiased
//!   std), per-sequence token mean then group mean, k3 KL to the warm policy with beta 0.04;
//! - **DAPO** (`grpo-family.md` Sec. 2.2): rewards +-1, the same group advantage,
//!   clip-higher (`eps_low = 0.2`, `eps_high = 0.28`), token mean over the batch, dynamic
//!   sampling (all-equal groups dropped and resampled) and the soft overlong punishment;
//! - **Lite PPO** (`lite-ppo.md` Sec. 2): `A_i = (R_i - mean_g R) / (std_B R + 1e-6)` (group
//!   mean, batch std of the raw rewards) and token-level aggregation
//!   `L = -sum_{i,t} min(r A, clip(r, 0.8, 1.2) A) / sum_i |o_i|`, no KL.
//!
//! The claim checked: Lite PPO reaches at least GRPO's and DAPO's held-out accuracy.
//! Reported per method over seeds (mean ± 95% Student-t CI): greedy held-out accuracy at the
//! budget, its gain over the warm start, entropy and drift from the warm policy.

use std::path::Path;

use kiln_track::markdown_table;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::Result;
use crate::trainers::grpo::{PgConfig, PgVariant, train_pg_probed};

use super::warm::{
    ArmRun, ArmSchedule, HeldOut, WarmStartConfig, ensure_dir, eval_curves, run_arm, sample_axis,
    warm_start,
};
use super::{ci, fmt, mean_hw};

/// The three methods, in table order.
pub const METHODS: [(&str, PgVariant); 3] = [
    ("GRPO", PgVariant::Grpo),
    ("DAPO", PgVariant::Dapo),
    ("Lite PPO", PgVariant::LitePpo),
];

/// Shape of the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct TricksConfig {
    /// The shared warm start.
    pub warm: WarmStartConfig,
    /// Seeds, budget and batch shape of every arm.
    pub schedule: ArmSchedule,
    /// Adam learning rate, the same for every method.
    pub lr: f64,
}

impl TricksConfig {
    /// The full experiment (3 seeds) or a seconds-long one (1 seed, a short budget).
    pub fn new(quick: bool) -> Self {
        Self {
            warm: WarmStartConfig::addition(quick),
            schedule: ArmSchedule::new(quick, [384, 24_576], [128, 2_048]),
            lr: 2e-3,
        }
    }

    /// The trainer config of `variant`: its paper preset at this row's scale.
    pub fn pg_config(&self, variant: PgVariant) -> PgConfig {
        self.schedule
            .pg_config(variant, self.lr, self.warm.max_new_tokens)
    }
}

/// Results: `runs[method][seed]`, methods in [`METHODS`] order.
#[derive(Debug, Clone)]
pub struct TricksResult {
    /// The configuration run.
    pub config: TricksConfig,
    /// Greedy held-out accuracy of the warm start.
    pub warm_accuracy: f64,
    /// Seconds of the SFT warm start.
    pub warm_seconds: f64,
    /// Per method and seed.
    pub runs: Vec<Vec<ArmRun>>,
}

impl TricksResult {
    /// Final held-out accuracies of method `m` over seeds.
    pub fn final_accuracy(&self, m: usize) -> Vec<f64> {
        self.runs[m].iter().map(|r| r.last().accuracy).collect()
    }
}

/// Runs every method and seed (no files); `progress` gets one line per finished run.
pub fn run_tricks(config: &TricksConfig, progress: &mut dyn FnMut(&str)) -> Result<TricksResult> {
    let warm = warm_start(&config.warm)?;
    progress(&format!(
        "warm start: held-out accuracy {:.3} ({:.1} s)",
        warm.accuracy, warm.seconds
    ));
    let held_out = HeldOut::new(&warm, config.warm.max_new_tokens)?;
    let mut runs = Vec::with_capacity(METHODS.len());
    for (name, variant) in METHODS {
        let pg = config.pg_config(variant);
        let mut per_seed = Vec::new();
        for s in 0..config.schedule.seeds {
            let seed = config.schedule.seed + s;
            let run = run_arm(
                &warm,
                &held_out,
                config.schedule.budget,
                config.schedule.eval_every,
                |policy, cb, probe| {
                    let mut rng = StdRng::seed_from_u64(seed);
                    train_pg_probed(policy, &warm.splits.train, &pg, &mut rng, cb, probe)
                },
            )?;
            progress(&format!(
                "{name} seed {seed}: accuracy {:.3} ({:.1} s)",
                run.last().accuracy,
                run.seconds
            ));
            per_seed.push(run);
        }
        runs.push(per_seed);
    }
    Ok(TricksResult {
        config: config.clone(),
        warm_accuracy: warm.accuracy,
        warm_seconds: warm.seconds,
        runs,
    })
}

/// Runs the experiment, writes `tricks-or-traps_accuracy.{png,svg}` and
/// `tricks-or-traps_entropy.{png,svg}` into `out_dir`, and returns the Markdown report.
pub fn tricks_or_traps(
    out_dir: &Path,
    quick: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<String> {
    let config = TricksConfig::new(quick);
    let res = run_tricks(&config, progress)?;
    ensure_dir(out_dir)?;
    let labels: Vec<&str> = METHODS.iter().map(|m| m.0).collect();
    kiln_track::learning_curves(
        &eval_curves(&labels, &res.runs, |p| p.accuracy),
        &sample_axis(
            "GRPO vs DAPO vs Lite PPO, 2-digit addition",
            "greedy held-out accuracy",
        ),
        &out_dir.join("tricks-or-traps_accuracy"),
    )?;
    kiln_track::learning_curves(
        &eval_curves(&labels, &res.runs, |p| p.entropy),
        &sample_axis(
            "GRPO vs DAPO vs Lite PPO, 2-digit addition",
            "next-token entropy on held-out answers (nats)",
        ),
        &out_dir.join("tricks-or-traps_entropy"),
    )?;
    let mut rows = Vec::new();
    for (m, name) in labels.iter().enumerate() {
        let runs = &res.runs[m];
        let pick = |g: &dyn Fn(&ArmRun) -> f64| runs.iter().map(g).collect::<Vec<_>>();
        let acc = res.final_accuracy(m);
        rows.push(vec![
            (*name).to_string(),
            ci(&acc),
            acc.iter().map(|a| fmt(*a)).collect::<Vec<_>>().join(", "),
            ci(&pick(&|r| r.last().accuracy - res.warm_accuracy)),
            ci(&pick(&|r| r.last().entropy)),
            ci(&pick(&|r| r.last().kl_to_warm)),
            ci(&pick(&|r| r.train.len() as f64)),
            ci(&pick(&|r| r.seconds)),
        ]);
    }
    let (lite, lite_hw) = mean_hw(&res.final_accuracy(2));
    let verdict = |m: usize| {
        let (other, hw) = mean_hw(&res.final_accuracy(m));
        let slack = hw.max(lite_hw);
        if lite >= other - slack {
            format!(
                "holds against {} ({} vs {}, slack {})",
                labels[m],
                fmt(lite),
                fmt(other),
                fmt(slack)
            )
        } else {
            format!(
                "does **not** hold against {} ({} vs {}, slack {})",
                labels[m],
                fmt(lite),
                fmt(other),
                fmt(slack)
            )
        }
    };
    let c = &config;
    let mut md = format!(
        "# Tricks or Traps? Lite PPO vs GRPO and DAPO — `kiln repro tricks-or-traps`\n\n\
         Setting (reference note `lite-ppo.md` Sec. 4): {}-digit addition, a {}-layer width-{} \
         transformer SFT-warmed on {} reference answers ({} epochs) to a greedy held-out accuracy \
         of {} on {} held-out problems; every method then trains from that checkpoint on {} \
         training problems, {} prompts x G = {} completions per step (temperature 1, at most {} \
         tokens), Adam lr {}, until {} completions have been sampled (DAPO's dynamic sampling \
         spends its budget in fewer updates). Presets: GRPO k3 KL beta 0.04, seq-mean; DAPO \
         +-1 reward, clip 0.2/0.28, token-mean, dynamic sampling (3 rounds), overlong buffer 2; \
         Lite PPO group-mean/batch-std advantage, token-mean, clip 0.2. {} seeds (seed {}..), \
         mean ± 95% Student-t CI. Entropy and drift `KL(pi || pi_warm)` are per-token means on \
         the held-out reference answers at the end of the budget.\n\n",
        c.warm.task.difficulty,
        c.warm.model.n_layers,
        c.warm.model.d_model,
        c.warm.sft_problems,
        c.warm.sft.epochs,
        fmt(res.warm_accuracy),
        c.warm.n_test,
        c.warm.n_train,
        c.schedule.prompts_per_step,
        c.schedule.group,
        c.warm.max_new_tokens,
        c.lr,
        c.schedule.budget,
        c.schedule.seeds,
        c.schedule.seed,
    );
    md.push_str(&markdown_table(
        &[
            "method",
            "held-out accuracy",
            "per seed",
            "gain over warm start",
            "entropy",
            "KL to warm",
            "updates",
            "seconds",
        ],
        &rows,
    ));
    md.push_str(&format!(
        "\nClaim (Lite PPO >= GRPO and DAPO, within the larger CI half-width): {}; {}.\n",
        verdict(0),
        verdict(1)
    ));
    md.push_str(&format!(
        "\nSFT warm start: {:.1} s. Plots: `tricks-or-traps_accuracy.png` (held-out accuracy vs \
         sampled completions, mean and 95% band over seeds), `tricks-or-traps_entropy.png`.\n",
        res.warm_seconds
    ));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quick mode writes a table with one row per method and both plots.
    #[test]
    fn quick_row_writes_table_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let md = tricks_or_traps(dir.path(), true, &mut |_| {}).unwrap();
        for name in ["GRPO", "DAPO", "Lite PPO"] {
            let row = format!("| {name} ");
            assert!(md.lines().any(|l| l.starts_with(&row)), "{name}:\n{md}");
        }
        assert!(md.contains("Claim (Lite PPO"), "{md}");
        for f in ["tricks-or-traps_accuracy", "tricks-or-traps_entropy"] {
            assert!(dir.path().join(format!("{f}.png")).exists(), "{f}.png");
            assert!(dir.path().join(format!("{f}.svg")).exists(), "{f}.svg");
        }
    }
}
