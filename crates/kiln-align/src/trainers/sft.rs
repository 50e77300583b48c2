//! Supervised fine-tuning with the prompt-masked next-token loss ([`crate::losses::sft_loss`])
//! on verified reference answers (prompt + answer + end token). When the learning rate or
//! the batch size is not given, it comes from the Step Law (Li et al. 2025, "Predictable
//! Scale: Part I") of the policy's non-embedding parameter count `N` and the run's token
//! count `D = epochs * tokens of the training set`; the resolved values and their source are
//! part of the config written to the run directory.

use burn::optim::GradientsParams;
use kiln_rl::Callback;
use kiln_tensor::{AdamSettings, clip_grad_norm, step_law};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::losses::sft_loss;
use crate::policy::{SequencePolicy, TokenBatch, to_host};
use crate::tasks::Problem;
use crate::vocab::Codec;

/// SFT hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Sequences per step; `None` = Step-Law batch.
    pub batch_size: Option<usize>,
    /// Peak learning rate; `None` = Step-Law learning rate.
    pub lr: Option<f64>,
    /// Global gradient-norm clip (0 disables it).
    pub max_grad_norm: f64,
    /// Adam settings.
    pub adam: AdamSettings,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: None,
            lr: None,
            max_grad_norm: 1.0,
            adam: AdamSettings::default(),
        }
    }
}

/// A hyperparameter value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved<T> {
    /// The value used.
    pub value: T,
    /// `"config"` or the Step-Law inputs, e.g. `"step_law(N=8192, D=4.1e5, extrapolated)"`.
    pub source: String,
}

/// The hyperparameters an SFT run actually used (written next to the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftResolved {
    /// Learning rate.
    pub lr: Resolved<f64>,
    /// Batch size in sequences.
    pub batch_size: Resolved<usize>,
}

impl SftConfig {
    /// Checks ranges, naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(invalid("epochs", 0, "must be at least 1"));
        }
        if self.batch_size == Some(0) {
            return Err(invalid("batch_size", 0, "must be at least 1"));
        }
        if let Some(lr) = self.lr
            && !(lr.is_finite() && lr > 0.0)
        {
            return Err(invalid("lr", lr, "must be positive"));
        }
        self.adam.validate()?;
        Ok(())
    }

    /// Fills in the learning rate and batch size, from the Step Law where not given.
    pub fn resolve(
        &self,
        non_embedding_params: usize,
        examples: &[Vec<u32>],
    ) -> Result<SftResolved> {
        self.validate()?;
        let dataset_tokens: usize = examples.iter().map(Vec::len).sum();
        let tokens = (self.epochs * dataset_tokens).max(1) as f64;
        let seq_len = (dataset_tokens / examples.len().max(1)).max(1);
        let law = step_law(non_embedding_params.max(1) as f64, tokens, seq_len)?;
        let source = format!(
            "step_law(N={}, D={tokens:.3e}, seq_len={seq_len}{})",
            non_embedding_params,
            if law.extrapolated {
                ", extrapolated"
            } else {
                ""
            }
        );
        Ok(SftResolved {
            lr: match self.lr {
                Some(v) => Resolved {
                    value: v,
                    source: "config".into(),
                },
                None => Resolved {
                    value: law.lr,
                    source: source.clone(),
                },
            },
            batch_size: match self.batch_size {
                Some(v) => Resolved {
                    value: v,
                    source: "config".into(),
                },
                None => Resolved {
                    value: (law.batch_seqs.round() as usize).clamp(1, examples.len().max(1)),
                    source,
                },
            },
        })
    }
}

/// Prompt and answer ids of verified references (`answer + end of sequence`) in `codec`.
pub fn sft_examples(codec: &Codec, problems: &[Problem]) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    problems
        .iter()
        .map(|p| {
            Ok((
                codec.encode_prompt(&p.prompt)?,
                codec.encode_answer(&p.answer)?,
            ))
        })
        .collect()
}

/// Trains `policy` (on an autodiff device) on `problems`' reference answers. Every step
/// reports `train/loss`, `train/tokens` and `optim/grad_norm` to `callback`; returns the
/// trained policy and the hyperparameters used.
pub fn train_sft<P: SequencePolicy>(
    mut policy: P,
    problems: &[Problem],
    config: &SftConfig,
    rng: &mut StdRng,
    callback: &mut dyn Callback,
) -> Result<(P, SftResolved)> {
    let examples = sft_examples(policy.codec(), problems)?;
    let joined: Vec<Vec<u32>> = examples
        .iter()
        .map(|(p, a)| p.iter().chain(a).copied().collect())
        .collect();
    let resolved = config.resolve(policy.non_embedding_params(), &joined)?;
    let mut optim = config.adam.build()?;
    let (lr, bs) = (resolved.lr.value, resolved.batch_size.value);
    let mut step = 0u64;
    for _ in 0..config.epochs {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for chunk in order.chunks(bs) {
            let p: Vec<&[u32]> = chunk.iter().map(|&i| examples[i].0.as_slice()).collect();
            let a: Vec<&[u32]> = chunk.iter().map(|&i| examples[i].1.as_slice()).collect();
            let batch = TokenBatch::from_pairs(&p, &a)?;
            let device = policy.device();
            let scores = policy.token_scores(&batch)?;
            let loss = sft_loss(scores.logprobs, batch.mask_tensor(&device));
            let value = f64::from(to_host(loss.clone().detach())[0]);
            let grads = GradientsParams::from_grads(loss.backward(), &policy);
            let (grads, norm) = if config.max_grad_norm > 0.0 {
                clip_grad_norm(&policy, grads, config.max_grad_norm)
            } else {
                let n = kiln_tensor::grad_norm(&policy, &grads);
                (grads, n)
            };
            policy = optim.step(lr, policy, grads);
            step += 1;
            let tokens = batch.completion_lengths().iter().sum::<usize>() as f64;
            if !callback.on_update(
                step,
                &[
                    ("train/loss", value),
                    ("train/tokens", tokens),
                    ("optim/grad_norm", norm),
                ],
            )? {
                return Ok((policy, resolved));
            }
        }
    }
    Ok((policy, resolved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TinyLmConfig;
    use crate::tasks::{TaskKind, TaskSpec, TaskSplits};
    use crate::trainers::greedy_accuracy;
    use kiln_rl::FnCallback;
    use kiln_tensor::testing::cpu;
    use rand::SeedableRng;

    #[test]
    fn step_law_defaults_are_recorded() {
        let examples = vec![vec![1u32; 10]; 100];
        let r = SftConfig {
            epochs: 4,
            ..SftConfig::default()
        }
        .resolve(8192, &examples)
        .unwrap();
        let law = step_law(8192.0, 4000.0, 10).unwrap();
        assert!((r.lr.value - law.lr).abs() < 1e-12);
        assert!(
            r.lr.source.starts_with("step_law(N=8192, D=4.000e3"),
            "{}",
            r.lr.source
        );
        let given = SftConfig {
            lr: Some(1e-3),
            batch_size: Some(7),
            ..SftConfig::default()
        };
        let r = given.resolve(8192, &examples).unwrap();
        assert_eq!((r.lr.source.as_str(), r.batch_size.value), ("config", 7));
        let bad = SftConfig {
            lr: Some(-1.0),
            ..SftConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("`lr`"));
    }

    /// SFT on 1-digit addition drives the masked NLL from ~log(22) to under 0.6 nats.
    #[test]
    fn sft_learns_addition() {
        let device = cpu().autodiff();
        kiln_tensor::Seeds::new(0).seed_device(&device);
        let policy = TinyLmConfig::default().init(&device).unwrap();
        let splits =
            TaskSplits::new(TaskSpec::new(TaskKind::Addition, 1).unwrap(), 0, 80, 20).unwrap();
        let config = SftConfig {
            epochs: 40,
            batch_size: Some(16),
            lr: Some(1e-2),
            ..SftConfig::default()
        };
        let mut losses = vec![];
        let mut cb = FnCallback(|_, m: &[(&str, f64)]| {
            losses.push(m[0].1);
            true
        });
        let mut rng = StdRng::seed_from_u64(0);
        let (policy, _) = train_sft(policy, &splits.train, &config, &mut rng, &mut cb).unwrap();
        let first = losses[0];
        let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
        assert!(first > 2.0 && last < 0.6, "first {first} last {last}");
        let acc = greedy_accuracy(&policy, &splits.train, 4, &mut rng).unwrap();
        assert!(acc > 0.5, "train accuracy {acc}");
    }
}
