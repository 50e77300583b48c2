//! Row `capo` (Melo, Abate, Gal 2025, "Stabilizing Policy Gradients for Sample-Efficient
//! Reinforcement Learning in LLM Reasoning", arXiv 2510.00819; reference note `capo.md`
//! Sec. 2 and 4): GRPO at an aggressive learning rate collapses; CAPO at the same rate
//! screens every completion token with the last-layer curvature model before the step,
//!
//! `dJ_t = eta <g_t, d_t> + eta^2/2 A [(v_t.u_t)^2 - u_t^T (diag pi - pi pi^T) u_t]`,
//! `KL_t = eta^2/2 (v_t.u_t)^2`, keep iff `|dJ_t| < tau_H` and `KL_t < tau_F`
//!
//! (`v = e_a - pi`, `g = A v h^T`, `d = P(g)` the Adam-model direction, `u = d h`), and is
//! claimed to train stably while masking under 8% of the tokens.
//!
//! From the shared warm start ([`super::warm`]) the row first sweeps GRPO's learning rate
//! (CAPO's base: group mean/std advantage, seq-mean, no KL, one step per batch) to show
//! where it collapses, then runs, at the fixed conservative and collapse rates, GRPO and
//! CAPO with the paper's recipe (Adam model, `tau_H = 0.01`, `tau_F = 1e-4`, symmetric).
//! Collapse shows as held-out accuracy falling below the warm start and as drift
//! `KL(pi || pi_warm)` blowing up; the masked-token fraction is reported per seed.

use std::path::Path;

use kiln_track::markdown_table;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::Result;
use crate::trainers::capo::{CapoConfig, train_capo_probed};
use crate::trainers::grpo::{PgConfig, PgVariant, train_pg_probed};

use super::warm::{
    ArmRun, ArmSchedule, HeldOut, WarmStart, WarmStartConfig, completion_sampling, ensure_dir,
    eval_curves, run_arm, sample_axis, warm_start,
};
use super::{ci, fmt, mean_hw};

/// One arm of the row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapoArm {
    /// Table label.
    pub label: &'static str,
    /// CAPO (true) or plain GRPO.
    pub capo: bool,
    /// Learning rate.
    pub lr: f64,
}

/// Shape of the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct CapoRowConfig {
    /// The shared warm start.
    pub warm: WarmStartConfig,
    /// Seeds, budget and batch shape of every arm.
    pub schedule: ArmSchedule,
    /// GRPO learning rates of the sweep (empty: no sweep).
    pub sweep_lrs: Vec<f64>,
    /// The stable rate, fixed from the sweep.
    pub conservative_lr: f64,
    /// The rate where GRPO collapses, fixed from the sweep.
    pub collapse_lr: f64,
    /// CAPO's settings other than the rate (the paper's recipe).
    pub capo: CapoConfig,
    /// `(tau_H, tau_F)` pairs run at both rates besides the recipe's (the note asks to
    /// calibrate the thresholds on the miniature; empty: none).
    pub threshold_grid: Vec<(f64, f64)>,
}

impl CapoRowConfig {
    /// The full experiment (3 seeds, with the sweep) or a seconds-long one (1 seed, no sweep).
    pub fn new(quick: bool) -> Self {
        Self {
            warm: WarmStartConfig::addition(quick),
            schedule: ArmSchedule::new(quick, [256, 12_288], [128, 1_024]),
            sweep_lrs: if quick {
                Vec::new()
            } else {
                vec![2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2]
            },
            conservative_lr: 3e-3,
            collapse_lr: 1e-2,
            capo: CapoConfig::default(),
            threshold_grid: if quick {
                Vec::new()
            } else {
                [0.01, 0.1, 1.0]
                    .iter()
                    .flat_map(|&h| [1e-4, 1e-2, f64::INFINITY].map(|f| (h, f)))
                    .collect()
            },
        }
    }

    /// The arms, in table order.
    pub fn arms(&self) -> [CapoArm; 4] {
        [
            CapoArm {
                label: "GRPO, conservative lr",
                capo: false,
                lr: self.conservative_lr,
            },
            CapoArm {
                label: "CAPO, conservative lr",
                capo: true,
                lr: self.conservative_lr,
            },
            CapoArm {
                label: "GRPO, collapse lr",
                capo: false,
                lr: self.collapse_lr,
            },
            CapoArm {
                label: "CAPO, collapse lr",
                capo: true,
                lr: self.collapse_lr,
            },
        ]
    }

    /// GRPO as CAPO's base at rate `lr`: no KL, seq-mean, clip 0.2.
    pub fn grpo(&self, lr: f64) -> PgConfig {
        PgConfig {
            beta: 0.0,
            ..self
                .schedule
                .pg_config(PgVariant::Grpo, lr, self.warm.max_new_tokens)
        }
    }

    /// CAPO at rate `lr` with thresholds `(tau_H, tau_F)`.
    pub fn capo_with(&self, lr: f64, tau_objective: f64, tau_kl: f64) -> CapoConfig {
        let mut c = self.capo_at(lr);
        c.thresholds.tau_objective = tau_objective;
        c.thresholds.tau_kl = tau_kl;
        c
    }

    /// CAPO at rate `lr`.
    pub fn capo_at(&self, lr: f64) -> CapoConfig {
        CapoConfig {
            steps: self.schedule.steps(),
            prompts_per_step: self.schedule.prompts_per_step,
            group: self.schedule.group,
            lr,
            sampling: completion_sampling(self.warm.max_new_tokens),
            ..self.capo.clone()
        }
    }
}

/// Results of the row.
#[derive(Debug, Clone)]
pub struct CapoRowResult {
    /// The configuration run.
    pub config: CapoRowConfig,
    /// Greedy held-out accuracy of the warm start.
    pub warm_accuracy: f64,
    /// `sweep[lr][seed]`: GRPO at each sweep rate.
    pub sweep: Vec<Vec<ArmRun>>,
    /// `runs[arm][seed]`, arms in [`CapoRowConfig::arms`] order.
    pub runs: Vec<Vec<ArmRun>>,
    /// `grid[rate][pair][seed]`: CAPO at the conservative (0) and collapse (1) rate for
    /// each pair of [`CapoRowConfig::threshold_grid`].
    pub grid: Vec<Vec<Vec<ArmRun>>>,
}

impl CapoRowResult {
    /// Final held-out accuracies of arm `a` over seeds.
    pub fn final_accuracy(&self, a: usize) -> Vec<f64> {
        self.runs[a].iter().map(|r| r.last().accuracy).collect()
    }

    /// Mean masked-token fraction of each seed of arm `a` (NaN for GRPO arms).
    pub fn masked_fraction(&self, a: usize) -> Vec<f64> {
        self.runs[a]
            .iter()
            .map(|r| r.mean_metric("train/masked_token_fraction"))
            .collect()
    }
}

fn run_one(
    config: &CapoRowConfig,
    warm: &WarmStart,
    held_out: &HeldOut,
    capo: Option<CapoConfig>,
    lr: f64,
    seed: u64,
) -> Result<ArmRun> {
    let grpo = config.grpo(lr);
    run_arm(
        warm,
        held_out,
        config.schedule.budget,
        config.schedule.eval_every,
        |policy, cb, probe| {
            let mut rng = StdRng::seed_from_u64(seed);
            let train = &warm.splits.train;
            if let Some(capo_cfg) = &capo {
                train_capo_probed(policy, train, capo_cfg, &mut rng, cb, probe)
            } else {
                train_pg_probed(policy, train, &grpo, &mut rng, cb, probe)
            }
        },
    )
}

/// Runs the sweep and the arms (no files); `progress` gets one line per finished run.
pub fn run_capo_row(
    config: &CapoRowConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<CapoRowResult> {
    let warm = warm_start(&config.warm)?;
    progress(&format!(
        "warm start: held-out accuracy {:.3} ({:.1} s)",
        warm.accuracy, warm.seconds
    ));
    let held_out = HeldOut::new(&warm, config.warm.max_new_tokens)?;
    let mut sweep = Vec::with_capacity(config.sweep_lrs.len());
    for &lr in &config.sweep_lrs {
        let mut per_seed = Vec::new();
        for s in 0..config.schedule.seeds {
            let run = run_one(config, &warm, &held_out, None, lr, config.schedule.seed + s)?;
            progress(&format!(
                "sweep GRPO lr {lr} seed {}: accuracy {:.3}",
                config.schedule.seed + s,
                run.last().accuracy
            ));
            per_seed.push(run);
        }
        sweep.push(per_seed);
    }
    let mut runs = Vec::new();
    for arm in config.arms() {
        let mut per_seed = Vec::new();
        for s in 0..config.schedule.seeds {
            let seed = config.schedule.seed + s;
            let capo = arm.capo.then(|| config.capo_at(arm.lr));
            let run = run_one(config, &warm, &held_out, capo, arm.lr, seed)?;
            progress(&format!(
                "{} seed {seed}: accuracy {:.3} ({:.1} s)",
                arm.label,
                run.last().accuracy,
                run.seconds
            ));
            per_seed.push(run);
        }
        runs.push(per_seed);
    }
    let mut grid = Vec::new();
    for lr in [config.conservative_lr, config.collapse_lr] {
        let mut per_pair = Vec::new();
        for &(th, tf) in &config.threshold_grid {
            let mut per_seed = Vec::new();
            for s in 0..config.schedule.seeds {
                let seed = config.schedule.seed + s;
                let capo = Some(config.capo_with(lr, th, tf));
                per_seed.push(run_one(config, &warm, &held_out, capo, lr, seed)?);
            }
            progress(&format!(
                "CAPO lr {lr} tau_H {th} tau_F {tf}: accuracy {:.3}",
                per_seed.iter().map(|r| r.last().accuracy).sum::<f64>() / per_seed.len() as f64
            ));
            per_pair.push(per_seed);
        }
        grid.push(per_pair);
    }
    Ok(CapoRowResult {
        config: config.clone(),
        warm_accuracy: warm.accuracy,
        sweep,
        runs,
        grid,
    })
}

/// Runs the experiment, writes `capo_accuracy.{png,svg}` and `capo_kl.{png,svg}` into
/// `out_dir`, and returns the Markdown report.
pub fn capo_row(out_dir: &Path, quick: bool, progress: &mut dyn FnMut(&str)) -> Result<String> {
    let config = CapoRowConfig::new(quick);
    let res = run_capo_row(&config, progress)?;
    ensure_dir(out_dir)?;
    let arms = config.arms();
    let labels: Vec<String> = arms
        .iter()
        .map(|a| format!("{} {}", a.label, a.lr))
        .collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    kiln_track::learning_curves(
        &eval_curves(&label_refs, &res.runs, |p| p.accuracy),
        &sample_axis("GRPO vs CAPO, 2-digit addition", "greedy held-out accuracy"),
        &out_dir.join("capo_accuracy"),
    )?;
    kiln_track::learning_curves(
        &eval_curves(&label_refs, &res.runs, |p| p.kl_to_warm),
        &sample_axis(
            "GRPO vs CAPO, 2-digit addition",
            "KL(pi || pi_warm) per token on held-out answers",
        ),
        &out_dir.join("capo_kl"),
    )?;
    let mut md = format!(
        "# CAPO vs GRPO at an aggressive learning rate — `kiln repro capo`\n\n\
         Setting (reference note `capo.md` Sec. 4): the warm start of row `tricks-or-traps` \
         ({}-digit addition, {}-layer width-{} transformer, greedy held-out accuracy {} on {} \
         problems); {} prompts x {} completions per step, one Adam step per batch, {} sampled \
         completions per run. GRPO is CAPO's base (group mean/std, clip 0.2, seq-mean, no KL). \
         CAPO: Adam optimizer model, tau_H = {}, tau_F = {}, symmetric objective clipping, the \
         full vocabulary as top-K. {} seeds (seed {}..), mean ± 95% Student-t CI. Drift is \
         `KL(pi || pi_warm)` per token on the held-out reference answers; min accuracy is the \
         lowest held-out accuracy over the run's evaluations.\n\n",
        config.warm.task.difficulty,
        config.warm.model.n_layers,
        config.warm.model.d_model,
        fmt(res.warm_accuracy),
        config.warm.n_test,
        config.schedule.prompts_per_step,
        config.schedule.group,
        config.schedule.budget,
        config.capo.thresholds.tau_objective,
        config.capo.thresholds.tau_kl,
        config.schedule.seeds,
        config.schedule.seed,
    );
    if !res.sweep.is_empty() {
        let rows: Vec<Vec<String>> = config
            .sweep_lrs
            .iter()
            .zip(&res.sweep)
            .map(|(lr, runs)| {
                let pick = |g: &dyn Fn(&ArmRun) -> f64| runs.iter().map(g).collect::<Vec<_>>();
                vec![
                    format!("{lr}"),
                    ci(&pick(&|r| r.last().accuracy)),
                    ci(&pick(&|r| r.min_accuracy())),
                    ci(&pick(&|r| r.last().kl_to_warm)),
                ]
            })
            .collect();
        md.push_str("GRPO learning-rate sweep (fixes the two rates below):\n\n");
        md.push_str(&markdown_table(
            &["lr", "held-out accuracy", "min accuracy", "KL to warm"],
            &rows,
        ));
        md.push('\n');
    }
    let mut rows = Vec::new();
    for (a, arm) in arms.iter().enumerate() {
        let runs = &res.runs[a];
        let pick = |g: &dyn Fn(&ArmRun) -> f64| runs.iter().map(g).collect::<Vec<_>>();
        let acc = res.final_accuracy(a);
        let masked = if arm.capo {
            res.masked_fraction(a)
                .iter()
                .map(|m| fmt(*m))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            "-".into()
        };
        rows.push(vec![
            arm.label.to_string(),
            format!("{}", arm.lr),
            ci(&acc),
            acc.iter().map(|x| fmt(*x)).collect::<Vec<_>>().join(", "),
            ci(&pick(&|r| r.min_accuracy())),
            ci(&pick(&|r| r.last().entropy)),
            ci(&pick(&|r| r.last().kl_to_warm)),
            masked,
        ]);
    }
    md.push_str(&markdown_table(
        &[
            "arm",
            "lr",
            "held-out accuracy",
            "per seed",
            "min accuracy",
            "entropy",
            "KL to warm",
            "masked-token fraction per seed",
        ],
        &rows,
    ));
    let (grpo_c, _) = mean_hw(&res.final_accuracy(2));
    let (capo_c, _) = mean_hw(&res.final_accuracy(3));
    let masked_max = res
        .masked_fraction(3)
        .iter()
        .copied()
        .fold(0.0f64, f64::max);
    let collapse = grpo_c < res.warm_accuracy - 0.1;
    let stable = capo_c >= res.warm_accuracy - 0.05;
    md.push_str(&format!(
        "\nAt the collapse rate {}: GRPO {} the warm start ({} -> {}); CAPO ends at {} ({}), \
         masking at most {} of the tokens per run (claim: under 0.08). The claim that CAPO \
         trains stably where GRPO collapses {}.\n",
        config.collapse_lr,
        if collapse {
            "falls below"
        } else {
            "stays near"
        },
        fmt(res.warm_accuracy),
        fmt(grpo_c),
        fmt(capo_c),
        if stable {
            "stable"
        } else {
            "collapsed as well"
        },
        fmt(masked_max),
        if collapse && stable && capo_c > grpo_c && masked_max < 0.08 {
            "holds"
        } else {
            "does **not** hold in this miniature"
        },
    ));
    if !config.threshold_grid.is_empty() {
        let mut rows = Vec::new();
        for (r, lr) in [config.conservative_lr, config.collapse_lr]
            .iter()
            .enumerate()
        {
            for (k, &(th, tf)) in config.threshold_grid.iter().enumerate() {
                let runs = &res.grid[r][k];
                let pick = |g: &dyn Fn(&ArmRun) -> f64| runs.iter().map(g).collect::<Vec<_>>();
                rows.push(vec![
                    format!("{lr}"),
                    format!("{th}"),
                    if tf.is_finite() {
                        format!("{tf}")
                    } else {
                        "off".into()
                    },
                    ci(&pick(&|r| r.last().accuracy)),
                    ci(&pick(&|r| r.min_accuracy())),
                    ci(&pick(&|r| r.mean_metric("train/masked_token_fraction"))),
                    ci(&pick(&|r| r.mean_metric("train/masked_positive_fraction"))),
                ]);
            }
        }
        md.push_str(
            "\nThreshold grid (the reference note asks to calibrate tau_H and tau_F on the \
             miniature, since the recipe's values are tied to Qwen's scale): CAPO at both rates; \
             masked = mean share of completion tokens removed per step, positive = share of the \
             masked tokens whose advantage is positive.\n\n",
        );
        md.push_str(&markdown_table(
            &[
                "lr",
                "tau_H",
                "tau_F",
                "held-out accuracy",
                "min accuracy",
                "masked",
                "positive",
            ],
            &rows,
        ));
        // The pair with the best mean accuracy at rate `r`, with its mean masked fraction.
        let best = |r: usize| {
            res.grid[r]
                .iter()
                .enumerate()
                .map(|(k, runs)| {
                    let acc = runs.iter().map(|x| x.last().accuracy).collect::<Vec<_>>();
                    let masked = runs
                        .iter()
                        .map(|x| x.mean_metric("train/masked_token_fraction"))
                        .sum::<f64>()
                        / runs.len().max(1) as f64;
                    (mean_hw(&acc).0, k, masked)
                })
                .fold(
                    (f64::NEG_INFINITY, 0, 0.0),
                    |a, b| if b.0 > a.0 { b } else { a },
                )
        };
        let (grpo_s, _) = mean_hw(&res.final_accuracy(0));
        let (best_c, kc, mc) = best(0);
        let (best_a, ka, ma) = best(1);
        let th = config.capo.thresholds;
        let recipe = config
            .threshold_grid
            .iter()
            .position(|&(h, f)| h == th.tau_objective && f == th.tau_kl)
            .unwrap_or(0);
        let runs = &res.grid[0][recipe];
        let recipe_acc = mean_hw(&runs.iter().map(|x| x.last().accuracy).collect::<Vec<_>>()).0;
        let recipe_masked = runs
            .iter()
            .map(|x| x.mean_metric("train/masked_token_fraction"))
            .sum::<f64>()
            / runs.len().max(1) as f64;
        let pair = |k: usize| {
            let (h, f) = config.threshold_grid[k];
            format!(
                "tau_H = {h}, tau_F = {}",
                if f.is_finite() {
                    format!("{f}")
                } else {
                    "off".into()
                }
            )
        };
        md.push_str(&format!(
            "\nBest pair at the collapse rate: {} reaches {} (GRPO {}, warm start {}), masking {} \
             of the tokens: {}. Best pair \
             at the conservative rate: {} reaches {} (GRPO {}), masking {}; the recipe's pair \
             ({}) masks {} there and ends at {}.\n",
            pair(ka),
            fmt(best_a),
            fmt(grpo_c),
            fmt(res.warm_accuracy),
            fmt(ma),
            if best_a >= res.warm_accuracy - 0.05 {
                "a threshold pair keeps CAPO near its warm start where GRPO collapses"
            } else {
                "no threshold pair keeps CAPO stable where GRPO collapses"
            },
            pair(kc),
            fmt(best_c),
            fmt(grpo_s),
            fmt(mc),
            pair(recipe),
            fmt(recipe_masked),
            fmt(recipe_acc),
        ));
    }
    md.push_str(
        "\nPlots: `capo_accuracy.png` (held-out accuracy vs sampled completions, mean and 95% \
         band), `capo_kl.png` (drift from the warm policy).\n",
    );
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quick mode writes a table with one row per arm and both plots.
    #[test]
    fn quick_row_writes_table_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let md = capo_row(dir.path(), true, &mut |_| {}).unwrap();
        for arm in CapoRowConfig::new(true).arms() {
            let row = format!("| {} ", arm.label);
            assert!(
                md.lines().any(|l| l.starts_with(&row)),
                "{}:\n{md}",
                arm.label
            );
        }
        assert!(md.contains("masking at most"), "{md}");
        for f in ["capo_accuracy", "capo_kl"] {
            assert!(dir.path().join(format!("{f}.png")).exists(), "{f}.png");
            assert!(dir.path().join(format!("{f}.svg")).exists(), "{f}.svg");
        }
    }
}
