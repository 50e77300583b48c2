//! The sequence-policy interface every trainer is written against, and the host-side pieces
//! around it (batches of prompt + completion ids with a completion mask, seeded sampling).
//!
//! A [`SequencePolicy`] is a burn [`Module`] (so optimizers update it and `valid()` gives a
//! frozen copy for the KL reference) that maps token ids to final hidden states and
//! next-token logits through a linear unembedding (the Llama shape: `logits = h W`). Every
//! quantity the trainers need is derived from that one forward pass:
//! per-token log-probabilities of given completions ([`SequencePolicy::token_scores`]),
//! entropies, and the last-layer quantities of CAPO. Sampling has a default implementation
//! that recomputes the whole prefix each step; a model with a KV cache overrides
//! [`SequencePolicy::sample`].

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{AlignError, Result, invalid};
use crate::vocab::{CHAR_CODEC, Codec, PAD};

/// Prompt + completion ids of `batch` rows, right-padded to `len`, with the mask of the
/// completion tokens that are scored.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// Row-major `[batch, len]` token ids (padding = [`PAD`]).
    pub ids: Vec<u32>,
    /// Row-major `[batch, len]`: 1 where token `t` is a completion token whose
    /// log-probability `log pi(x_t | x_<t)` enters the loss, else 0. Column 0 is always 0.
    pub mask: Vec<f32>,
    /// Number of rows.
    pub batch: usize,
    /// Padded length.
    pub len: usize,
}

impl TokenBatch {
    /// Concatenates each prompt with its completion. Prompts must be non-empty.
    pub fn from_pairs(prompts: &[&[u32]], completions: &[&[u32]]) -> Result<Self> {
        if prompts.len() != completions.len() {
            return Err(AlignError::Shape {
                what: "completions per prompt",
                expected: prompts.len(),
                got: completions.len(),
            });
        }
        if let Some(p) = prompts.iter().find(|p| p.is_empty()) {
            return Err(AlignError::Shape {
                what: "prompt length",
                expected: 1,
                got: p.len(),
            });
        }
        let len = prompts
            .iter()
            .zip(completions)
            .map(|(p, c)| p.len() + c.len())
            .max()
            .unwrap_or(1);
        let batch = prompts.len();
        let mut ids = vec![PAD; batch * len];
        let mut mask = vec![0.0; batch * len];
        for (r, (p, c)) in prompts.iter().zip(completions).enumerate() {
            let row = &mut ids[r * len..(r + 1) * len];
            row[..p.len()].copy_from_slice(p);
            row[p.len()..p.len() + c.len()].copy_from_slice(c);
            mask[r * len + p.len()..r * len + p.len() + c.len()].fill(1.0);
        }
        Ok(Self {
            ids,
            mask,
            batch,
            len,
        })
    }

    /// Number of scored tokens per row.
    pub fn completion_lengths(&self) -> Vec<usize> {
        self.mask
            .chunks(self.len)
            .map(|row| row.iter().filter(|&&m| m > 0.0).count())
            .collect()
    }

    /// The ids as an int tensor `[batch, len]`.
    pub fn ids_tensor(&self, device: &Device) -> Tensor<2, Int> {
        let data: Vec<i64> = self.ids.iter().map(|&t| i64::from(t)).collect();
        Tensor::from_data(TensorData::new(data, [self.batch, self.len]), device)
    }

    /// The mask as a float tensor `[batch, len]`.
    pub fn mask_tensor(&self, device: &Device) -> Tensor<2> {
        host_tensor(&self.mask, self.batch, self.len, device)
    }
}

/// Uploads a row-major `[rows, cols]` host buffer.
pub fn host_tensor(values: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
}

/// Reads a tensor back as a flat `f32` vector.
pub fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// One forward pass: final hidden states (after the last norm) and next-token logits.
#[derive(Debug, Clone)]
pub struct PolicyForward {
    /// `[B, T, H]`: the input of the unembedding.
    pub hidden: Tensor<3>,
    /// `[B, T, V]`: row `t` scores token `t + 1`.
    pub logits: Tensor<3>,
}

/// Per-token quantities of the completion tokens of a [`TokenBatch`], zero where the mask is 0.
#[derive(Debug, Clone)]
pub struct TokenScores {
    /// `[B, T]`: `log pi(x_t | x_<t)` (differentiable).
    pub logprobs: Tensor<2>,
    /// `[B, T]`: entropy of `pi(. | x_<t)` (differentiable).
    pub entropy: Tensor<2>,
}

/// Sampling settings (seeded through the caller's random stream).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleOptions {
    /// Softmax temperature; 0 means greedy decoding.
    pub temperature: f64,
    /// Keep only the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Nucleus sampling: the smallest set of tokens with probability at least `top_p`.
    pub top_p: f64,
    /// Longest completion (tokens, including the end token).
    pub max_new_tokens: usize,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: 8,
        }
    }
}

impl SampleOptions {
    /// Checks ranges, naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(invalid(
                "sampling.temperature",
                self.temperature,
                "must be finite and >= 0",
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(invalid("sampling.top_p", self.top_p, "must lie in (0, 1]"));
        }
        if self.max_new_tokens == 0 {
            return Err(invalid("sampling.max_new_tokens", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// A sampled completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Generated ids, ending with the codec's end-of-sequence id when `finished`.
    pub tokens: Vec<u32>,
    /// The policy emitted the end-of-sequence id (false: truncated at `max_new_tokens` or the context).
    pub finished: bool,
}

/// Draws one token id from logits with temperature, top-k and top-p (host side, seeded);
/// never [`PAD`].
pub fn sample_token(logits: &[f32], opts: &SampleOptions, rng: &mut StdRng) -> u32 {
    sample_token_except(logits, opts, Some(PAD), rng)
}

/// [`sample_token`] that never draws `never` (none when `None`; see
/// [`Codec::never_sampled`]).
pub fn sample_token_except(
    logits: &[f32],
    opts: &SampleOptions,
    never: Option<u32>,
    rng: &mut StdRng,
) -> u32 {
    kiln_lm::generate::sample_filtered(logits, opts.temperature, opts.top_k, opts.top_p, never, rng)
}

/// A causal language-model policy: see the module docs.
pub trait SequencePolicy: Module + Sized {
    /// Number of token ids.
    fn vocab_size(&self) -> usize;
    /// Longest sequence (prompt + completion) the model accepts.
    fn context_len(&self) -> usize;
    /// The device of the parameters.
    fn device(&self) -> Device;
    /// Non-embedding parameter count (the Step-Law `N`).
    fn non_embedding_params(&self) -> usize;
    /// Hidden states and logits for ids `[B, T]` (causal: position `t` sees `x_0..=x_t`).
    fn forward(&self, ids: Tensor<2, Int>) -> PolicyForward;
    /// The unembedding `W` `[H, V]` with `logits = hidden W` (CAPO's last-layer model).
    fn unembedding(&self) -> Tensor<2>;
    /// How task text maps to this policy's ids (the character vocabulary unless the policy
    /// carries a pretrained tokenizer).
    fn codec(&self) -> &Codec {
        &CHAR_CODEC
    }
    /// The `kiln_lm` Llama this policy is, if it is one: trainers with a host engine for the
    /// Llama ([`kiln_lm::cpu_train`]) take it from here.
    fn llama(&self) -> Option<&kiln_lm::Llama> {
        None
    }
    /// This policy with its Llama replaced by `model` (trained weights coming back from a
    /// host engine); only called when [`SequencePolicy::llama`] is `Some`.
    fn with_llama(self, model: kiln_lm::Llama) -> Self {
        let _ = model;
        self
    }

    /// Log-probabilities and entropies of the completion tokens of `batch` in one forward
    /// pass: entry `[b, t]` is `log pi(x_t | x_<t)` where `mask[b, t] = 1`, else 0.
    fn token_scores(&self, batch: &TokenBatch) -> Result<TokenScores> {
        if batch.len > self.context_len() {
            return Err(AlignError::TooLong {
                len: batch.len,
                max: self.context_len(),
            });
        }
        let device = self.device();
        let (b, t) = (batch.batch, batch.len);
        let ids = batch.ids_tensor(&device);
        let mask = batch.mask_tensor(&device);
        if t < 2 {
            return Ok(TokenScores {
                logprobs: mask.clone() * 0.0,
                entropy: mask * 0.0,
            });
        }
        let inputs = ids.clone().slice([0..b, 0..t - 1]);
        let targets = ids.slice([0..b, 1..t]);
        let logp = log_softmax(self.forward(inputs).logits, 2);
        let picked = logp
            .clone()
            .gather(2, targets.reshape([b, t - 1, 1]))
            .reshape([b, t - 1]);
        let entropy = (logp.clone().exp() * logp)
            .sum_dim(2)
            .reshape([b, t - 1])
            .neg();
        let zero = Tensor::<2>::zeros([b, 1], &device);
        Ok(TokenScores {
            logprobs: Tensor::cat(vec![zero.clone(), picked], 1) * mask.clone(),
            entropy: Tensor::cat(vec![zero, entropy], 1) * mask,
        })
    }

    /// Draws `n` completions for each prompt (rows in prompt-major order: prompt 0's `n`
    /// completions first). The default recomputes the prefix every step.
    fn sample(
        &self,
        prompts: &[Vec<u32>],
        n: usize,
        opts: &SampleOptions,
        rng: &mut StdRng,
    ) -> Result<Vec<Completion>> {
        opts.validate()?;
        let device = self.device();
        let mut rows: Vec<Vec<u32>> = prompts
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.clone(), n))
            .collect();
        if let Some(p) = rows
            .iter()
            .find(|p| p.is_empty() || p.len() >= self.context_len())
        {
            return Err(AlignError::TooLong {
                len: p.len().max(1),
                max: self.context_len().saturating_sub(1),
            });
        }
        let starts: Vec<usize> = rows.iter().map(Vec::len).collect();
        let mut done = vec![false; rows.len()];
        let v = self.vocab_size();
        for _ in 0..opts.max_new_tokens {
            let active: Vec<usize> = (0..rows.len())
                .filter(|&r| !done[r] && rows[r].len() < self.context_len())
                .collect();
            if active.is_empty() {
                break;
            }
            let len = active.iter().map(|&r| rows[r].len()).max().unwrap_or(1);
            let mut ids = vec![i64::from(self.codec().pad()); active.len() * len];
            for (i, &r) in active.iter().enumerate() {
                for (j, &tok) in rows[r].iter().enumerate() {
                    ids[i * len + j] = i64::from(tok);
                }
            }
            let ids =
                Tensor::<2, Int>::from_data(TensorData::new(ids, [active.len(), len]), &device);
            let logits = to_host(self.forward(ids).logits);
            for (i, &r) in active.iter().enumerate() {
                let at = (i * len + rows[r].len() - 1) * v;
                let tok = sample_token_except(
                    &logits[at..at + v],
                    opts,
                    self.codec().never_sampled(),
                    rng,
                );
                rows[r].push(tok);
                if tok == self.codec().eos() {
                    done[r] = true;
                }
            }
        }
        Ok(rows
            .into_iter()
            .zip(starts)
            .zip(done)
            .map(|((row, s), finished)| Completion {
                tokens: row[s..].to_vec(),
                finished,
            })
            .collect())
    }
}

/// Per-token log-probabilities on the host (`[B * T]`, zero off the mask): old-policy and
/// reference-policy values that enter the losses as constants.
pub fn host_logprobs<P: SequencePolicy>(policy: &P, batch: &TokenBatch) -> Result<Vec<f32>> {
    Ok(to_host(policy.token_scores(batch)?.logprobs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn batch_layout() {
        let b = TokenBatch::from_pairs(&[&[5, 6], &[7]], &[&[8, 1], &[9, 10, 1]]).unwrap();
        assert_eq!(b.len, 4);
        assert_eq!(b.ids, vec![5, 6, 8, 1, 7, 9, 10, 1]);
        assert_eq!(b.mask, vec![0., 0., 1., 1., 0., 1., 1., 1.]);
        assert_eq!(b.completion_lengths(), vec![2, 3]);
        assert!(TokenBatch::from_pairs(&[&[]], &[&[1]]).is_err());
    }

    #[test]
    fn sampling_rules() {
        let mut rng = StdRng::seed_from_u64(0);
        let logits = [0.0f32, 1.0, 3.0, 2.0];
        let greedy = SampleOptions {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(sample_token(&logits, &greedy, &mut rng), 2);
        let top1 = SampleOptions {
            top_k: 1,
            ..Default::default()
        };
        assert!((0..50).all(|_| sample_token(&logits, &top1, &mut rng) == 2));
        // top_p 0.5: token 2 alone has p = e^3/(e+e^3+e^2) = 0.665 >= 0.5.
        let nucleus = SampleOptions {
            top_p: 0.5,
            ..Default::default()
        };
        assert!((0..50).all(|_| sample_token(&logits, &nucleus, &mut rng) == 2));
        // Plain sampling: frequencies follow the softmax (PAD = id 0 is never drawn).
        let plain = SampleOptions::default();
        let mut counts = [0usize; 4];
        for _ in 0..20_000 {
            counts[sample_token(&logits, &plain, &mut rng) as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        let z = 1f64.exp() + 3f64.exp() + 2f64.exp();
        let p2 = counts[2] as f64 / 20_000.0;
        assert!((p2 - 3f64.exp() / z).abs() < 0.015, "{p2}");
    }
}
