//! NFT, Negative-aware Fine-Tuning (Chen et al. 2025; reference note `nft.md` Sec. 2), one
//! iteration in the order of the official trainer:
//! 1. sample `group` answers per prompt from `pi_old` and verify them;
//! 2. drop prompts whose answers are all correct or all wrong (the implicit negative policy
//!    needs `0 < r_q < 1`), resampling up to `max_sampling_rounds` times;
//! 3. `r_q` per prompt (clamped to [0.02, 0.98] as in the code) and old log-probs;
//! 4. `inner_epochs` gradient steps on [`crate::losses::nft_loss`] with prompt weight
//!    `omega = 1 - r_q` (or the GRPO-matched `sqrt((1 - r_q)/r_q)`), straight-through
//!    `max_v` at `eps`, per-sequence token sums over a constant normaliser.
//!
//! `neg_weight = 0` turns it into RFT (SFT on correct samples only).

use burn::optim::GradientsParams;
use kiln_rl::Callback;
use kiln_tensor::{AdamSettings, clip_grad_norm};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::advantages;
use crate::error::{Result, invalid};
use crate::losses::{Aggregation, NftInputs, nft_loss};
use crate::policy::{SampleOptions, SequencePolicy, host_logprobs, host_tensor, to_host};
use crate::tasks::{Problem, RewardConfig};
use crate::trainers::{Probe, Rollout, no_probe, per_row};

/// Prompt weight of NFT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NftWeight {
    /// `omega = 1 - r_q` (on-policy gradient = Dr. GRPO; the official default).
    OneMinusRate,
    /// `omega = sqrt((1 - r_q)/r_q)` (on-policy gradient = GRPO).
    GrpoMatched,
}

/// Hyperparameters of an NFT run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NftConfig {
    /// Training steps.
    pub steps: usize,
    /// Prompts per step.
    pub prompts_per_step: usize,
    /// Answers per prompt.
    pub group: usize,
    /// Gradient steps per rollout.
    pub inner_epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// `max_v` floor `eps` (official: 1.0).
    pub eps: f64,
    /// Weight of the negative term (1 = NFT, 0 = RFT).
    pub neg_weight: f64,
    /// Prompt weight.
    pub weight: NftWeight,
    /// Per-sequence constant normaliser of the token sums.
    pub normalizer: f64,
    /// Sampling.
    pub sampling: SampleOptions,
    /// Resampling rounds for the all-equal filter.
    pub max_sampling_rounds: usize,
    /// Global gradient-norm clip (0 disables it).
    pub max_grad_norm: f64,
    /// Adam settings.
    pub adam: AdamSettings,
}

impl Default for NftConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            prompts_per_step: 16,
            group: 8,
            inner_epochs: 1,
            lr: 1e-3,
            eps: 1.0,
            neg_weight: 1.0,
            weight: NftWeight::OneMinusRate,
            normalizer: 8.0,
            sampling: SampleOptions::default(),
            max_sampling_rounds: 3,
            max_grad_norm: 1.0,
            adam: AdamSettings::default(),
        }
    }
}

impl NftConfig {
    /// Checks ranges, naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(invalid("eps", self.eps, "max_v floor must be positive"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("lr", self.lr, "must be positive"));
        }
        if self.group < 2 {
            return Err(invalid(
                "group",
                self.group,
                "needs at least 2 answers per prompt",
            ));
        }
        if self.normalizer.is_nan() || self.normalizer <= 0.0 {
            return Err(invalid("normalizer", self.normalizer, "must be positive"));
        }
        for (k, v) in [
            ("steps", self.steps),
            ("prompts_per_step", self.prompts_per_step),
            ("inner_epochs", self.inner_epochs),
            ("max_sampling_rounds", self.max_sampling_rounds),
        ] {
            if v == 0 {
                return Err(invalid(k, v, "must be at least 1"));
            }
        }
        self.sampling.validate()?;
        self.adam.validate()?;
        Ok(())
    }
}

/// Trains `policy` (on an autodiff device) with NFT; returns the trained policy.
pub fn train_nft<P: SequencePolicy>(
    policy: P,
    problems: &[Problem],
    config: &NftConfig,
    rng: &mut StdRng,
    callback: &mut dyn Callback,
) -> Result<P> {
    train_nft_probed(policy, problems, config, rng, callback, &mut no_probe)
}

/// [`train_nft`] with a [`Probe`] that sees the policy after every step; every step reports
/// `train/samples`, the answers it drew (the all-equal filter resamples).
pub fn train_nft_probed<P: SequencePolicy>(
    mut policy: P,
    problems: &[Problem],
    config: &NftConfig,
    rng: &mut StdRng,
    callback: &mut dyn Callback,
    probe: Probe<'_, P>,
) -> Result<P> {
    config.validate()?;
    let mut optim = config.adam.build()?;
    let g = config.group;
    let reward = RewardConfig::default();
    for step in 1..=config.steps as u64 {
        let sampler = policy.valid();
        let mut rollout: Option<Rollout> = None;
        let (mut drawn, mut filtered, mut samples) = (0usize, 0usize, 0usize);
        for _ in 0..config.max_sampling_rounds {
            let need =
                config.prompts_per_step - rollout.as_ref().map_or(0, |r| r.rewards.len() / g);
            let picks: Vec<&Problem> = (0..need)
                .map(|_| &problems[rng.random_range(0..problems.len())])
                .collect();
            let mut r = Rollout::sample(&sampler, &picks, g, &config.sampling, &reward, rng)?;
            samples += r.rewards.len();
            let keep = advantages::informative_groups(&r.rewards, g);
            drawn += keep.len();
            filtered += keep.iter().filter(|k| !**k).count();
            r.retain_groups(g, &keep);
            match rollout.as_mut() {
                Some(all) => all.extend(r),
                None => rollout = Some(r),
            }
            if rollout.as_ref().map_or(0, |r| r.rewards.len() / g) >= config.prompts_per_step {
                break;
            }
        }
        let Some(rollout) = rollout.filter(|r| !r.rewards.is_empty()) else {
            let metrics = [
                ("train/filtered_groups", 1.0),
                ("train/samples", samples as f64),
            ];
            if !callback.on_update(step, &metrics)? || !probe(step, &policy)? {
                break;
            }
            continue;
        };
        let batch = rollout.batch()?;
        let (b, t) = (batch.batch, batch.len);
        let old = host_logprobs(&sampler, &batch)?;
        let r_q: Vec<f64> = rollout
            .rewards
            .chunks(g)
            .flat_map(|grp| {
                let m = (grp.iter().sum::<f64>() / g as f64).clamp(0.02, 0.98);
                std::iter::repeat_n(m, g)
            })
            .collect();
        let omega: Vec<f64> = r_q
            .iter()
            .map(|r| match config.weight {
                NftWeight::OneMinusRate => 1.0 - r,
                NftWeight::GrpoMatched => ((1.0 - r) / r).sqrt(),
            })
            .collect();
        let correct: Vec<f64> = rollout
            .correct
            .iter()
            .map(|&c| f64::from(u8::from(c)))
            .collect();
        let mut loss_value = 0.0;
        for _ in 0..config.inner_epochs {
            let device = policy.device();
            let scores = policy.token_scores(&batch)?;
            let row = |v: &[f64]| host_tensor(&per_row(v, t), b, t, &device);
            let neg_scale: Vec<f64> = correct
                .iter()
                .zip(&omega)
                .map(|(c, w)| w * if *c > 0.0 { 1.0 } else { config.neg_weight })
                .collect();
            let loss = nft_loss(
                NftInputs {
                    logprobs: scores.logprobs,
                    old_logprobs: host_tensor(&old, b, t, &device),
                    correct: row(&correct),
                    r_q: row(&r_q),
                    omega: row(&neg_scale),
                    mask: batch.mask_tensor(&device),
                },
                config.eps,
                Aggregation::ConstantNorm {
                    max_len: config.normalizer,
                },
            );
            loss_value = f64::from(to_host(loss.clone().detach())[0]);
            let grads = GradientsParams::from_grads(loss.backward(), &policy);
            let grads = if config.max_grad_norm > 0.0 {
                clip_grad_norm(&policy, grads, config.max_grad_norm).0
            } else {
                grads
            };
            policy = optim.step(config.lr, policy, grads);
        }
        let n = rollout.rewards.len() as f64;
        let metrics = [
            ("train/reward", rollout.rewards.iter().sum::<f64>() / n),
            ("train/accuracy", correct.iter().sum::<f64>() / n),
            ("train/response_length", rollout.mean_length()),
            (
                "train/filtered_groups",
                filtered as f64 / drawn.max(1) as f64,
            ),
            ("train/loss", loss_value),
            ("train/samples", samples as f64),
        ];
        if !callback.on_update(step, &metrics)? || !probe(step, &policy)? {
            break;
        }
    }
    Ok(policy)
}
