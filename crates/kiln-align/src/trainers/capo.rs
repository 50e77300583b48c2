//! CAPO, curvature-aware policy optimization (Melo, Abate, Gal 2025; reference note
//! `capo.md` Sec. 2): GRPO whose completion tokens are screened, before the step, by the
//! last-layer curvature model of [`crate::losses::capo`]; tokens predicted to shift the
//! objective by more than `tau_objective` or the policy (KL) by more than `tau_kl` are
//! removed from the loss (numerator and denominator). One step:
//! 1. rollout and GRPO advantages `(R - mean_g)/(std_g + 1e-4)`;
//! 2. one forward pass of `pi_old` for final hidden states and probabilities;
//! 3. per token, the optimizer model's direction (Adam with prospective moments that fold
//!    in the token's own gradient, or SGD), the predicted shifts and the keep mask;
//! 4. the GRPO loss (seq-mean, no KL, mu = 1) on the kept tokens and the real step;
//! 5. the moment model absorbs the mean gradient of the *kept* tokens.
//!
//! Metrics add `train/masked_token_fraction` (the paper reports under 8%) and
//! `train/masked_positive_fraction`, the share of masked tokens whose advantage is positive.
//!
//! As in the official code, a sequence whose tokens are all masked still counts in the
//! sequence mean (its contribution is zero), and `eta` is the step's learning rate.

use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use kiln_rl::Callback;
use kiln_tensor::{AdamSettings, clip_grad_norm};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::advantages;
use crate::error::{Result, invalid};
use crate::losses::capo::{
    CapoThresholds, CapoToken, Direction, MomentModel, OptimizerModel, predict_token,
};
use crate::losses::{Aggregation, PgLossConfig, PgLossInputs, pg_loss};
use crate::policy::{SampleOptions, SequencePolicy, host_logprobs, host_tensor, to_host};
use crate::tasks::{Problem, RewardConfig};
use crate::trainers::{Probe, Rollout, no_probe, per_row};

/// Hyperparameters of a CAPO run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapoConfig {
    /// Training steps.
    pub steps: usize,
    /// Prompts per step.
    pub prompts_per_step: usize,
    /// Completions per prompt.
    pub group: usize,
    /// Learning rate (also the `eta` of the curvature model).
    pub lr: f64,
    /// PPO clip epsilon.
    pub eps_clip: f64,
    /// Masking thresholds.
    pub thresholds: CapoThresholds,
    /// Optimizer model.
    pub optimizer_model: OptimizerModel,
    /// Sampling.
    pub sampling: SampleOptions,
    /// Global gradient-norm clip (0 disables it).
    pub max_grad_norm: f64,
    /// Adam settings of the real optimizer.
    pub adam: AdamSettings,
}

impl Default for CapoConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            prompts_per_step: 16,
            group: 8,
            lr: 1e-3,
            eps_clip: 0.2,
            thresholds: CapoThresholds {
                tau_objective: 0.01,
                tau_kl: 1e-4,
                symmetric: true,
            },
            optimizer_model: OptimizerModel::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            sampling: SampleOptions::default(),
            max_grad_norm: 1.0,
            adam: AdamSettings::default(),
        }
    }
}

impl CapoConfig {
    /// Checks ranges, naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.eps_clip.is_finite() && self.eps_clip > 0.0) {
            return Err(invalid(
                "eps_clip",
                self.eps_clip,
                "clip epsilon must be positive",
            ));
        }
        if self.thresholds.tau_objective.is_nan() || self.thresholds.tau_objective <= 0.0 {
            return Err(invalid(
                "thresholds.tau_objective",
                self.thresholds.tau_objective,
                "must be positive",
            ));
        }
        if self.thresholds.tau_kl.is_nan() || self.thresholds.tau_kl <= 0.0 {
            return Err(invalid(
                "thresholds.tau_kl",
                self.thresholds.tau_kl,
                "must be positive",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("lr", self.lr, "must be positive"));
        }
        if self.group < 2 || self.steps == 0 || self.prompts_per_step == 0 {
            return Err(invalid(
                "group",
                self.group,
                "group >= 2, steps and prompts_per_step >= 1",
            ));
        }
        self.sampling.validate()?;
        self.adam.validate()?;
        Ok(())
    }
}

/// Trains `policy` (on an autodiff device) with CAPO; returns the trained policy.
pub fn train_capo<P: SequencePolicy>(
    policy: P,
    problems: &[Problem],
    config: &CapoConfig,
    rng: &mut StdRng,
    callback: &mut dyn Callback,
) -> Result<P> {
    train_capo_probed(policy, problems, config, rng, callback, &mut no_probe)
}

/// [`train_capo`] with a [`Probe`] that sees the policy after every step; every step reports
/// `train/samples` (`prompts_per_step * group`).
pub fn train_capo_probed<P: SequencePolicy>(
    mut policy: P,
    problems: &[Problem],
    config: &CapoConfig,
    rng: &mut StdRng,
    callback: &mut dyn Callback,
    probe: Probe<'_, P>,
) -> Result<P> {
    config.validate()?;
    let mut optim = config.adam.build()?;
    let g = config.group;
    let v_size = policy.vocab_size();
    let h_size = policy.unembedding().dims()[0];
    let mut moments = MomentModel::new(v_size, h_size);
    for step in 1..=config.steps as u64 {
        let sampler = policy.valid();
        let picks: Vec<&Problem> = (0..config.prompts_per_step)
            .map(|_| &problems[rng.random_range(0..problems.len())])
            .collect();
        let rollout = Rollout::sample(
            &sampler,
            &picks,
            g,
            &config.sampling,
            &RewardConfig::default(),
            rng,
        )?;
        let adv = advantages::grpo(&rollout.rewards, g, 1e-4);
        let batch = rollout.batch()?;
        let (b, t) = (batch.batch, batch.len);
        let old = host_logprobs(&sampler, &batch)?;

        // Curvature model inputs from one forward pass of pi_old.
        let fwd = sampler.forward(batch.ids_tensor(&sampler.device()));
        let hidden: Vec<f64> = to_host(fwd.hidden).into_iter().map(f64::from).collect();
        let probs: Vec<f64> = to_host(softmax(fwd.logits, 2))
            .into_iter()
            .map(f64::from)
            .collect();
        let tokens: Vec<(usize, usize)> = (0..b)
            .flat_map(|i| (1..t).map(move |j| (i, j)))
            .filter(|&(i, j)| batch.mask[i * t + j] > 0.0)
            .collect();
        let token_of = |i: usize, j: usize| CapoToken {
            hidden: &hidden[(i * t + j - 1) * h_size..(i * t + j) * h_size],
            probs: &probs[(i * t + j - 1) * v_size..(i * t + j) * v_size],
            token: batch.ids[i * t + j] as usize,
            advantage: adv[i],
        };
        // Mean over the given tokens of the per-token surrogate gradient g = A v h^T of W.
        let mean_grad = |keep: &dyn Fn(usize, usize) -> bool| {
            let mut grad = vec![0.0; v_size * h_size];
            let mut count = 0usize;
            for &(i, j) in &tokens {
                if !keep(i, j) {
                    continue;
                }
                count += 1;
                let tok = token_of(i, j);
                for vi in 0..v_size {
                    let s =
                        tok.advantage * (if vi == tok.token { 1.0 } else { 0.0 } - tok.probs[vi]);
                    for hj in 0..h_size {
                        grad[vi * h_size + hj] += s * tok.hidden[hj];
                    }
                }
            }
            let scale = 1.0 / count.max(1) as f64;
            grad.iter_mut().for_each(|g| *g *= scale);
            grad
        };
        let direction = match config.optimizer_model {
            OptimizerModel::Sgd => Direction::Sgd,
            OptimizerModel::Adam { beta1, beta2, eps } => Direction::Adam {
                moments: &moments,
                beta1,
                beta2,
                eps,
            },
        };
        let mut keep = vec![0.0f32; b * t];
        let (mut masked, mut masked_positive) = (0usize, 0usize);
        for &(i, j) in &tokens {
            let pred = predict_token(token_of(i, j), direction, config.lr, &config.thresholds);
            if pred.keep {
                keep[i * t + j] = 1.0;
            } else {
                masked += 1;
                masked_positive += usize::from(adv[i] > 0.0);
            }
        }
        if let OptimizerModel::Adam { beta1, beta2, .. } = config.optimizer_model {
            let kept = mean_grad(&|i, j| keep[i * t + j] > 0.0);
            moments.update(&kept, beta1, beta2);
        }

        // GRPO loss on the kept tokens.
        let device = policy.device();
        let scores = policy.token_scores(&batch)?;
        let mask = host_tensor(&keep, b, t, &device);
        let out = pg_loss(
            PgLossInputs {
                logprobs: scores.logprobs,
                old_logprobs: host_tensor(&old, b, t, &device),
                ref_logprobs: None,
                advantages: host_tensor(&per_row(&adv, t), b, t, &device),
                mask: mask.clone(),
            },
            &PgLossConfig {
                eps_low: config.eps_clip,
                eps_high: config.eps_clip,
                beta: 0.0,
                aggregation: Aggregation::SequenceMean,
            },
        );
        let full_mask = batch.mask_tensor(&device);
        let entropy =
            (scores.entropy.detach() * full_mask.clone()).sum() / full_mask.sum().clamp_min(1.0);
        let d = to_host(burn::tensor::Tensor::cat(
            vec![out.loss.clone().detach(), out.clip_fraction, entropy],
            0,
        ));
        let grads = GradientsParams::from_grads(out.loss.backward(), &policy);
        let grads = if config.max_grad_norm > 0.0 {
            clip_grad_norm(&policy, grads, config.max_grad_norm).0
        } else {
            grads
        };
        policy = optim.step(config.lr, policy, grads);
        let n = rollout.rewards.len() as f64;
        let metrics = [
            ("train/reward", rollout.rewards.iter().sum::<f64>() / n),
            (
                "train/accuracy",
                rollout.correct.iter().filter(|c| **c).count() as f64 / n,
            ),
            ("train/clip_fraction", f64::from(d[1])),
            ("train/entropy", f64::from(d[2])),
            ("train/response_length", rollout.mean_length()),
            (
                "train/masked_token_fraction",
                masked as f64 / tokens.len().max(1) as f64,
            ),
            (
                "train/masked_positive_fraction",
                masked_positive as f64 / masked.max(1) as f64,
            ),
            ("train/loss", f64::from(d[0])),
            ("train/samples", n),
        ];
        if !callback.on_update(step, &metrics)? || !probe(step, &policy)? {
            break;
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TinyLmConfig;
    use crate::losses::capo::OptimizerModel;
    use crate::tasks::{TaskKind, TaskSpec, TaskSplits};
    use crate::trainers::grpo::{PgConfig, PgVariant, train_pg};
    use crate::trainers::sft::{SftConfig, train_sft};
    use kiln_rl::{FnCallback, NoCallback};
    use kiln_tensor::testing::cpu;
    use rand::SeedableRng;

    fn accuracy_series<F: FnOnce(&mut dyn Callback)>(run: F) -> Vec<(f64, f64)> {
        let mut out = vec![];
        let mut cb = FnCallback(|_, m: &[(&str, f64)]| {
            let get = |k: &str| m.iter().find(|(n, _)| *n == k).map_or(0.0, |x| x.1);
            out.push((get("train/accuracy"), get("train/masked_token_fraction")));
            true
        });
        run(&mut cb);
        out
    }

    /// With thresholds that mask nothing CAPO is exactly GRPO without KL (same samples, same
    /// updates); with the paper's thresholds it masks a small, non-zero fraction of tokens.
    #[test]
    fn capo_reduces_to_grpo_and_masks_few_tokens() {
        let splits =
            TaskSplits::new(TaskSpec::new(TaskKind::Addition, 1).unwrap(), 1, 90, 10).unwrap();
        let device = cpu().autodiff();
        kiln_tensor::Seeds::new(5).seed_device(&device);
        let policy = TinyLmConfig::default().init(&device).unwrap();
        let sft = SftConfig {
            epochs: 6,
            batch_size: Some(16),
            lr: Some(1e-2),
            ..SftConfig::default()
        };
        let (warm, _) = train_sft(
            policy,
            &splits.train,
            &sft,
            &mut StdRng::seed_from_u64(5),
            &mut NoCallback,
        )
        .unwrap();
        let sampling = SampleOptions {
            max_new_tokens: 4,
            ..SampleOptions::default()
        };
        let capo = CapoConfig {
            steps: 20,
            prompts_per_step: 8,
            group: 6,
            lr: 5e-3,
            sampling,
            ..CapoConfig::default()
        };
        let unmasked = CapoConfig {
            thresholds: CapoThresholds {
                tau_objective: f64::MAX,
                tau_kl: f64::MAX,
                symmetric: true,
            },
            ..capo.clone()
        };
        let grpo = PgConfig {
            steps: 20,
            prompts_per_step: 8,
            group: 6,
            lr: 5e-3,
            beta: 0.0,
            sampling,
            ..PgConfig::preset(PgVariant::Grpo)
        };
        let a = accuracy_series(|cb| {
            train_capo(
                warm.clone(),
                &splits.train,
                &unmasked,
                &mut StdRng::seed_from_u64(9),
                cb,
            )
            .unwrap();
        });
        let b = accuracy_series(|cb| {
            train_pg(
                warm.clone(),
                &splits.train,
                &grpo,
                &mut StdRng::seed_from_u64(9),
                cb,
            )
            .unwrap();
        });
        let acc = |v: &[(f64, f64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(acc(&a), acc(&b));
        assert!(a.iter().all(|x| x.1 == 0.0));
        for model in [
            OptimizerModel::Sgd,
            OptimizerModel::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        ] {
            let cfg = CapoConfig {
                optimizer_model: model.clone(),
                ..capo.clone()
            };
            let c = accuracy_series(|cb| {
                train_capo(
                    warm.clone(),
                    &splits.train,
                    &cfg,
                    &mut StdRng::seed_from_u64(9),
                    cb,
                )
                .unwrap();
            });
            let masked = c.iter().map(|x| x.1).sum::<f64>() / c.len() as f64;
            println!("{model:?}: mean masked-token fraction {masked}");
            assert!(masked > 0.0 && masked < 0.5, "{model:?}: {masked}");
        }
    }
}
