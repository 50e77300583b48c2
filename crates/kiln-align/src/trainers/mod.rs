//! Trainers, one readable file per algorithm family, generic over [`SequencePolicy`]:
//! [`sft`] (prompt-masked SFT, Step-Law defaults) and [`grpo`] (GRPO, DAPO, Dr. GRPO, RLOO,
//! REINFORCE++ and Lite PPO, selected by config). Shared plumbing (rollouts with verifier
//! rewards, evaluation, optimizer settings) lives here so each algorithm file holds only the
//! algorithm. Metrics go to a [`kiln_rl::Callback`]; a [`kiln_track::RunDir`] is one.

pub mod capo;
pub mod dpo;
pub mod grpo;
pub mod nft;
pub mod sft;

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::policy::{Completion, SampleOptions, SequencePolicy, TokenBatch};
use crate::tasks::{Problem, RewardConfig};
use crate::vocab::Codec;

/// Adam settings, learning rate and gradient clipping of a trainer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Learning rate.
    pub lr: f64,
    /// Global gradient-norm clip (0 disables it).
    pub max_grad_norm: f64,
    /// Adam / AdamW settings.
    pub adam: kiln_tensor::AdamSettings,
}

impl OptimConfig {
    /// Checks ranges, naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("optim.lr", self.lr, "must be positive"));
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return Err(invalid(
                "optim.max_grad_norm",
                self.max_grad_norm,
                "must be >= 0",
            ));
        }
        self.adam.validate()?;
        Ok(())
    }
}

/// Prompts encoded once with `codec`.
pub fn encode_prompts(codec: &Codec, problems: &[Problem]) -> Result<Vec<Vec<u32>>> {
    problems
        .iter()
        .map(|p| codec.encode_prompt(&p.prompt))
        .collect()
}

/// A sampled group batch with its verifier outcome.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Prompt ids per row (each prompt repeated `group` times).
    pub prompts: Vec<Vec<u32>>,
    /// Completions per row.
    pub completions: Vec<Completion>,
    /// Reward per row.
    pub rewards: Vec<f64>,
    /// Correctness per row.
    pub correct: Vec<bool>,
}

impl Rollout {
    /// Samples `group` completions for each problem and verifies them.
    pub fn sample<P: SequencePolicy>(
        policy: &P,
        problems: &[&Problem],
        group: usize,
        opts: &SampleOptions,
        reward: &RewardConfig,
        rng: &mut StdRng,
    ) -> Result<Self> {
        let prompts: Vec<Vec<u32>> = problems
            .iter()
            .map(|p| policy.codec().encode_prompt(&p.prompt))
            .collect::<Result<_>>()?;
        let completions = policy.sample(&prompts, group, opts, rng)?;
        let mut rewards = Vec::with_capacity(completions.len());
        let mut correct = Vec::with_capacity(completions.len());
        for (i, c) in completions.iter().enumerate() {
            let v = policy.codec().verify(problems[i / group], &c.tokens);
            rewards.push(reward.reward(v));
            correct.push(v.correct);
        }
        Ok(Self {
            prompts: prompts
                .into_iter()
                .flat_map(|p| std::iter::repeat_n(p, group))
                .collect(),
            completions,
            rewards,
            correct,
        })
    }

    /// Keeps the rows of the groups where `keep[g]` holds.
    pub fn retain_groups(&mut self, group: usize, keep: &[bool]) {
        let rows: Vec<usize> = (0..self.rewards.len())
            .filter(|i| keep[i / group])
            .collect();
        self.prompts = rows.iter().map(|&i| self.prompts[i].clone()).collect();
        self.completions = rows.iter().map(|&i| self.completions[i].clone()).collect();
        self.rewards = rows.iter().map(|&i| self.rewards[i]).collect();
        self.correct = rows.iter().map(|&i| self.correct[i]).collect();
    }

    /// Appends another rollout.
    pub fn extend(&mut self, other: Rollout) {
        self.prompts.extend(other.prompts);
        self.completions.extend(other.completions);
        self.rewards.extend(other.rewards);
        self.correct.extend(other.correct);
    }

    /// The prompt + completion batch.
    pub fn batch(&self) -> Result<TokenBatch> {
        let p: Vec<&[u32]> = self.prompts.iter().map(Vec::as_slice).collect();
        let c: Vec<&[u32]> = self
            .completions
            .iter()
            .map(|c| c.tokens.as_slice())
            .collect();
        TokenBatch::from_pairs(&p, &c)
    }

    /// Mean completion length in tokens.
    pub fn mean_length(&self) -> f64 {
        self.completions
            .iter()
            .map(|c| c.tokens.len())
            .sum::<usize>() as f64
            / self.completions.len().max(1) as f64
    }
}

/// Greedy accuracy of `policy` on `problems`.
pub fn greedy_accuracy<P: SequencePolicy>(
    policy: &P,
    problems: &[Problem],
    max_new_tokens: usize,
    rng: &mut StdRng,
) -> Result<f64> {
    let opts = SampleOptions {
        temperature: 0.0,
        max_new_tokens,
        ..SampleOptions::default()
    };
    let refs: Vec<&Problem> = problems.iter().collect();
    let r = Rollout::sample(policy, &refs, 1, &opts, &RewardConfig::default(), rng)?;
    Ok(r.correct.iter().filter(|&&c| c).count() as f64 / problems.len().max(1) as f64)
}

/// Sees the policy after every update (after the metrics went to the callback), e.g. to
/// evaluate it on held-out problems during training; `Ok(false)` stops the run. `step` is
/// the trainer's step counter.
pub type Probe<'a, P> = &'a mut dyn FnMut(u64, &P) -> Result<bool>;

/// A probe that never stops the run.
pub fn no_probe<P>(_: u64, _: &P) -> Result<bool> {
    Ok(true)
}

/// Broadcasts one value per row over the `[B, T]` layout.
pub(crate) fn per_row(values: &[f64], len: usize) -> Vec<f32> {
    values
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v as f32, len))
        .collect()
}
