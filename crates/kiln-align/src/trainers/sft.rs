//! Supervised fine-tuning with the prompt-masked next-token loss ([`crate::losses::sft_loss`])
//! on verified reference answers (prompt + answer + end token). When the learning rate or
//! the batch size is not given, it comes from the Step Law (Li et al. 2025, "Predictable
//! Scale: Part I") of the policy's non-embedding parameter count `N` and the run's token
//! count `D = epochs * tokens of the training set`; the resolved values and their source are
//! part of the config written to the run directory.
//!
//! Engines ([`SftEngine`]): burn autodiff for any [`SequencePolicy`], or, for a `kiln_lm`
//! Llama on a CPU device, the host training engine [`kiln_lm::cpu_train::CpuTrainer`] (the
//! same loss, gradient clipping and AdamW, with a hand-written backward and the unembedding
//! fused with the cross-entropy; about 1.7x faster on SmolLM2-135M). Both visit the same
//! batches in the same order; their numbers agree to `f32` rounding, not bit for bit.

use burn::optim::GradientsParams;
use kiln_lm::cpu_train::{CpuTrainer, NextTokenBatch};
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
    /// Which implementation trains (default `auto`).
    #[serde(default)]
    pub engine: SftEngine,
}

/// The implementation of the SFT step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SftEngine {
    /// The host engine when the policy is a Llama on a CPU device, burn otherwise.
    #[default]
    Auto,
    /// The host engine (an error for a policy that is not a Llama).
    Host,
    /// burn autodiff on the policy's device.
    Burn,
}

impl SftEngine {
    /// Whether a run on `policy` takes the host engine: `auto` does for a kiln-lm Llama on a
    /// CPU device; `host` on any other policy is an error naming `engine`.
    pub fn use_host<P: SequencePolicy>(self, policy: &P) -> Result<bool> {
        match self {
            Self::Burn => Ok(false),
            Self::Auto => {
                Ok(policy.llama().is_some() && kiln_tensor::is_cpu_device(&policy.device()))
            }
            Self::Host if policy.llama().is_none() => Err(invalid(
                "engine",
                "host",
                "the host engine trains kiln-lm Llama policies only",
            )),
            Self::Host => Ok(true),
        }
    }
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: None,
            lr: None,
            max_grad_norm: 1.0,
            adam: AdamSettings::default(),
            engine: SftEngine::Auto,
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
    let host = config.engine.use_host(&policy)?;
    if host {
        return train_sft_host(policy, &examples, config, resolved, rng, callback);
    }
    let mut optim = config.adam.build()?;
    let (lr, bs) = (resolved.lr.value, resolved.batch_size.value);
    let mut step = 0u64;
    for _ in 0..config.epochs {
        let order = epoch_order(examples.len(), rng);
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

/// Shuffled minibatches of example indices, one epoch at a time (shared by both engines,
/// so they visit the same batches).
fn epoch_order(n: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}

/// [`train_sft`] on the host engine: the masked loss of [`sft_loss`] as per-token weights
/// (`w[r, t - 1] = mask[r, t]`: the weight of predicting token `t` from its prefix), the
/// same clipping and AdamW step, the trained weights written back into the policy's Llama
/// at the end (also when the callback stops the run).
fn train_sft_host<P: SequencePolicy>(
    policy: P,
    examples: &[(Vec<u32>, Vec<u32>)],
    config: &SftConfig,
    resolved: SftResolved,
    rng: &mut StdRng,
    callback: &mut dyn Callback,
) -> Result<(P, SftResolved)> {
    let model_err = |e: kiln_lm::LmError| crate::error::AlignError::Model(e.to_string());
    let Some(llama) = policy.llama() else {
        return Err(invalid(
            "engine",
            "host",
            "the host engine trains kiln-lm Llama policies only",
        ));
    };
    let mut trainer = CpuTrainer::from_model(llama, &config.adam).map_err(model_err)?;
    let (lr, bs) = (resolved.lr.value, resolved.batch_size.value);
    let mut step = 0u64;
    'epochs: for _ in 0..config.epochs {
        let order = epoch_order(examples.len(), rng);
        for chunk in order.chunks(bs) {
            let p: Vec<&[u32]> = chunk.iter().map(|&i| examples[i].0.as_slice()).collect();
            let a: Vec<&[u32]> = chunk.iter().map(|&i| examples[i].1.as_slice()).collect();
            let batch = TokenBatch::from_pairs(&p, &a)?;
            if batch.len > policy.context_len() {
                return Err(crate::error::AlignError::TooLong {
                    len: batch.len,
                    max: policy.context_len(),
                });
            }
            let (value, norm) = if batch.len < 2 {
                (0.0, 0.0)
            } else {
                let (inputs, targets) =
                    NextTokenBatch::shift(&batch.ids, batch.batch).map_err(model_err)?;
                let weights: Vec<f32> = batch
                    .mask
                    .chunks_exact(batch.len)
                    .flat_map(|row| row[1..].iter().copied())
                    .collect();
                let nb = NextTokenBatch::new(batch.batch, &inputs, &targets, Some(&weights));
                let loss = trainer.loss_and_grads(&nb).map_err(model_err)?;
                let norm = if config.max_grad_norm > 0.0 {
                    trainer.clip_grad_norm(config.max_grad_norm)
                } else {
                    trainer.grad_norm()
                };
                trainer.adam_step(lr).map_err(model_err)?;
                (f64::from(loss), norm)
            };
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
                break 'epochs;
            }
        }
    }
    let trained = trainer.load_into(llama.clone()).map_err(model_err)?;
    Ok((policy.with_llama(trained), resolved))
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

    /// Both engines run the same SFT on a tiny Llama: the same batches, losses, gradient
    /// norms and final weights to `f32` rounding; the host engine needs a Llama.
    #[test]
    fn host_engine_equals_burn_engine() {
        use crate::llama::tiny_char_llama;
        let device = cpu().autodiff();
        let splits =
            TaskSplits::new(TaskSpec::new(TaskKind::Addition, 1).unwrap(), 0, 24, 4).unwrap();
        let mut runs = Vec::new();
        for engine in [SftEngine::Burn, SftEngine::Host] {
            kiln_tensor::Seeds::new(4).seed_device(&device);
            let policy = tiny_char_llama(16, 1, &device).unwrap();
            let config = SftConfig {
                epochs: 2,
                batch_size: Some(8),
                lr: Some(3e-3),
                max_grad_norm: 0.5,
                engine,
                ..SftConfig::default()
            };
            let mut log = vec![];
            let mut cb = FnCallback(|_, m: &[(&str, f64)]| {
                log.push((m[0].1, m[1].1, m[2].1));
                true
            });
            let mut rng = StdRng::seed_from_u64(3);
            let (trained, _) =
                train_sft(policy, &splits.train, &config, &mut rng, &mut cb).unwrap();
            runs.push((log, trained.hf_weights()));
        }
        let ((burn_log, burn_w), (host_log, host_w)) = (&runs[0], &runs[1]);
        assert_eq!(burn_log.len(), 6);
        for (b, h) in burn_log.iter().zip(host_log) {
            assert!(
                (b.0 - h.0).abs() < 1e-4 * b.0.abs().max(1.0),
                "loss {b:?} {h:?}"
            );
            assert_eq!(b.1, h.1, "tokens");
            assert!(
                (b.2 - h.2).abs() < 1e-3 * b.2.max(1e-3),
                "grad norm {b:?} {h:?}"
            );
        }
        // Adam moves an entry by about lr whatever its gradient's size, so an entry whose
        // gradient is rounding noise may step either way on the two engines: allow a few
        // such entries, bounded by the total step length.
        for ((name, _, b), (_, _, h)) in burn_w.iter().zip(host_w) {
            let off = b
                .iter()
                .zip(h)
                .filter(|(x, y)| (*x - *y).abs() > 1e-4)
                .count();
            let worst = b
                .iter()
                .zip(h)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                off * 200 <= b.len() && worst < 2.0 * 3e-3 * 6.0,
                "{name}: {off} {worst}"
            );
        }
        let tiny = TinyLmConfig::default().init(&device).unwrap();
        let host = SftConfig {
            engine: SftEngine::Host,
            ..SftConfig::default()
        };
        let mut rng = StdRng::seed_from_u64(0);
        let err = train_sft(
            tiny,
            &splits.train,
            &host,
            &mut rng,
            &mut kiln_rl::NoCallback,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`engine`"), "{err}");
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
