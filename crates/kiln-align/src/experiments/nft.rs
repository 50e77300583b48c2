//! Row `nft` (Chen et al. 2025, "Bridging Supervised Learning and Reinforcement Learning in
//! Math Reasoning", arXiv 2505.18116; reference note `nft.md` Sec. 2 and 4): from the shared
//! SFT warm start ([`super::warm`]), NFT and GRPO train at an equal number of sampled
//! completions.
//!
//! - **NFT** ([`crate::losses::nft_loss`]): with `R_t = pi_theta / pi_old` per token and the
//!   prompt's correctness rate `r_q`, minimise
//!   `omega(q) [ r(a) (-log R_t) + (1 - r(a)) (-log max_v((1 - r_q R_t)/(1 - r_q), eps)) ]`,
//!   `omega = 1 - r_q` (the official default), `eps = 1`, token sums over a constant,
//!   all-correct / all-wrong prompts filtered and resampled. Strictly on-policy its gradient
//!   is Dr. GRPO's with `A = r - r_q` (the test `nft_gradient_equals_grpo_family_on_policy`
//!   in `losses/nft.rs` checks it parameter by parameter).
//! - **GRPO** (DeepSeekMath eq. 3): group mean/std advantage, clipped surrogate, seq-mean,
//!   k3 KL beta 0.04 — the same preset as row `tricks-or-traps`.
//!
//! The claim checked: NFT's held-out accuracy lies within GRPO's 95% CI (NFT matches GRPO).

use std::path::Path;

use kiln_track::markdown_table;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::Result;
use crate::trainers::grpo::{PgConfig, PgVariant, train_pg_probed};
use crate::trainers::nft::{NftConfig, train_nft_probed};

use super::warm::{
    ArmRun, ArmSchedule, HeldOut, WarmStartConfig, completion_sampling, ensure_dir, eval_curves,
    run_arm, sample_axis, warm_start,
};
use super::{ci, fmt, mean_hw};

/// Method names, in table order.
pub const METHODS: [&str; 2] = ["GRPO", "NFT"];

/// Shape of the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct NftRowConfig {
    /// The shared warm start.
    pub warm: WarmStartConfig,
    /// Seeds, budget and batch shape of every arm.
    pub schedule: ArmSchedule,
    /// Adam learning rate of both methods.
    pub lr: f64,
}

impl NftRowConfig {
    /// The full experiment (3 seeds) or a seconds-long one (1 seed, a short budget).
    pub fn new(quick: bool) -> Self {
        Self {
            warm: WarmStartConfig::addition(quick),
            schedule: ArmSchedule::new(quick, [384, 24_576], [128, 2_048]),
            lr: 2e-3,
        }
    }

    /// GRPO's trainer config.
    pub fn grpo(&self) -> PgConfig {
        self.schedule
            .pg_config(PgVariant::Grpo, self.lr, self.warm.max_new_tokens)
    }

    /// NFT's trainer config (official defaults: `omega = 1 - r_q`, `eps = 1`, filtering).
    pub fn nft(&self) -> NftConfig {
        NftConfig {
            steps: self.schedule.steps(),
            prompts_per_step: self.schedule.prompts_per_step,
            group: self.schedule.group,
            lr: self.lr,
            sampling: completion_sampling(self.warm.max_new_tokens),
            ..NftConfig::default()
        }
    }
}

/// Results: `runs[method][seed]`, methods in [`METHODS`] order.
#[derive(Debug, Clone)]
pub struct NftRowResult {
    /// The configuration run.
    pub config: NftRowConfig,
    /// Greedy held-out accuracy of the warm start.
    pub warm_accuracy: f64,
    /// Per method and seed.
    pub runs: Vec<Vec<ArmRun>>,
}

impl NftRowResult {
    /// Final held-out accuracies of method `m` over seeds.
    pub fn final_accuracy(&self, m: usize) -> Vec<f64> {
        self.runs[m].iter().map(|r| r.last().accuracy).collect()
    }
}

/// Runs both methods for every seed (no files); `progress` gets one line per finished run.
pub fn run_nft_row(config: &NftRowConfig, progress: &mut dyn FnMut(&str)) -> Result<NftRowResult> {
    let warm = warm_start(&config.warm)?;
    progress(&format!(
        "warm start: held-out accuracy {:.3} ({:.1} s)",
        warm.accuracy, warm.seconds
    ));
    let held_out = HeldOut::new(&warm, config.warm.max_new_tokens)?;
    let (grpo, nft) = (config.grpo(), config.nft());
    let mut runs = vec![Vec::new(), Vec::new()];
    for (m, name) in METHODS.iter().enumerate() {
        for s in 0..config.schedule.seeds {
            let seed = config.schedule.seed + s;
            let run = run_arm(
                &warm,
                &held_out,
                config.schedule.budget,
                config.schedule.eval_every,
                |policy, cb, probe| {
                    let mut rng = StdRng::seed_from_u64(seed);
                    let train = &warm.splits.train;
                    if m == 0 {
                        train_pg_probed(policy, train, &grpo, &mut rng, cb, probe)
                    } else {
                        train_nft_probed(policy, train, &nft, &mut rng, cb, probe)
                    }
                },
            )?;
            progress(&format!(
                "{name} seed {seed}: accuracy {:.3} ({:.1} s)",
                run.last().accuracy,
                run.seconds
            ));
            runs[m].push(run);
        }
    }
    Ok(NftRowResult {
        config: config.clone(),
        warm_accuracy: warm.accuracy,
        runs,
    })
}

/// Runs the experiment, writes `nft_accuracy.{png,svg}` into `out_dir`, and returns the
/// Markdown report.
pub fn nft_row(out_dir: &Path, quick: bool, progress: &mut dyn FnMut(&str)) -> Result<String> {
    let config = NftRowConfig::new(quick);
    let res = run_nft_row(&config, progress)?;
    ensure_dir(out_dir)?;
    kiln_track::learning_curves(
        &eval_curves(&METHODS, &res.runs, |p| p.accuracy),
        &sample_axis("NFT vs GRPO, 2-digit addition", "greedy held-out accuracy"),
        &out_dir.join("nft_accuracy"),
    )?;
    let mut rows = Vec::new();
    for (m, name) in METHODS.iter().enumerate() {
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
            ci(&pick(&|r| r.mean_metric("train/filtered_groups"))),
            ci(&pick(&|r| r.train.len() as f64)),
            ci(&pick(&|r| r.seconds)),
        ]);
    }
    let (g, g_hw) = mean_hw(&res.final_accuracy(0));
    let (n, _) = mean_hw(&res.final_accuracy(1));
    let verdict = if (n - g).abs() <= g_hw {
        format!(
            "holds: NFT {} lies within GRPO's {} ± {}",
            fmt(n),
            fmt(g),
            fmt(g_hw)
        )
    } else if n > g {
        format!(
            "NFT {} lies above GRPO's interval {} ± {} (matches or beats)",
            fmt(n),
            fmt(g),
            fmt(g_hw)
        )
    } else {
        format!(
            "does **not** hold: NFT {} lies below GRPO's interval {} ± {}",
            fmt(n),
            fmt(g),
            fmt(g_hw)
        )
    };
    let c = &config;
    let mut md = format!(
        "# NFT vs GRPO — `kiln repro nft`\n\n\
         Setting (reference note `nft.md` Sec. 4): the warm start of row `tricks-or-traps` \
         ({}-digit addition, {}-layer width-{} transformer, SFT on {} answers, greedy held-out \
         accuracy {} on {} problems); both methods train from it, {} prompts x {} completions per \
         step, Adam lr {}, until {} completions are sampled. NFT: `omega = 1 - r_q`, `eps = 1`, \
         token sums over a constant 8, all-correct/all-wrong prompts filtered (3 sampling \
         rounds), one gradient step per batch. GRPO: group mean/std, clip 0.2, seq-mean, k3 KL \
         beta 0.04. {} seeds (seed {}..), mean ± 95% Student-t CI.\n\n",
        c.warm.task.difficulty,
        c.warm.model.n_layers,
        c.warm.model.d_model,
        c.warm.sft_problems,
        fmt(res.warm_accuracy),
        c.warm.n_test,
        c.schedule.prompts_per_step,
        c.schedule.group,
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
            "filtered groups",
            "updates",
            "seconds",
        ],
        &rows,
    ));
    md.push_str(&format!(
        "\nClaim (NFT within GRPO's CI): {verdict}.\n\nOn-policy gradient equivalence: the \
         unit test `losses::nft::equivalence::nft_gradient_equals_grpo_family_on_policy` \
         compares the autodiff gradients of both losses on a tiny transformer at one on-policy \
         step (NFT `omega = 1 - r_q` vs Dr. GRPO, `omega = sqrt((1 - r_q)/r_q)` vs GRPO with \
         population std) and checks that they differ once the batch is off-policy.\n\n\
         Plot: `nft_accuracy.png` (held-out accuracy vs sampled completions, mean and 95% band).\n"
    ));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quick mode writes a table with one row per method and the plot.
    #[test]
    fn quick_row_writes_table_and_plot() {
        let dir = tempfile::tempdir().unwrap();
        let md = nft_row(dir.path(), true, &mut |_| {}).unwrap();
        for name in METHODS {
            let row = format!("| {name} ");
            assert!(md.lines().any(|l| l.starts_with(&row)), "{name}:\n{md}");
        }
        assert!(md.contains("Claim (NFT within"), "{md}");
        assert!(dir.path().join("nft_accuracy.png").exists());
        assert!(dir.path().join("nft_accuracy.svg").exists());
    }
}
