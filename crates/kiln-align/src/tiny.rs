//! A small causal transformer implementing [`SequencePolicy`]: learned token and position
//! embeddings, pre-norm blocks of multi-head causal self-attention and a ReLU MLP, a final
//! RMSNorm and an untied linear unembedding. Small enough (tens of thousands of parameters)
//! that the learning tests run in seconds on a CPU, and real enough that every trainer is
//! exercised on autodiff log-probabilities of an actual language model.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::policy::{PolicyForward, SequencePolicy};
use crate::vocab::CharVocab;

/// Shape of a [`TinyLm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TinyLmConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Context window (tokens).
    pub context_len: usize,
    /// Model width.
    pub d_model: usize,
    /// Attention heads (must divide `d_model`).
    pub n_heads: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// MLP hidden width.
    pub d_ff: usize,
}

impl Default for TinyLmConfig {
    fn default() -> Self {
        Self {
            vocab_size: CharVocab::SIZE,
            context_len: 24,
            d_model: 32,
            n_heads: 2,
            n_layers: 1,
            d_ff: 64,
        }
    }
}

impl TinyLmConfig {
    /// Checks the shape, naming the key.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("model.vocab_size", self.vocab_size),
            ("model.context_len", self.context_len),
            ("model.d_model", self.d_model),
            ("model.n_heads", self.n_heads),
            ("model.n_layers", self.n_layers),
            ("model.d_ff", self.d_ff),
        ] {
            if v == 0 {
                return Err(invalid(k, v, "must be at least 1"));
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(invalid(
                "model.n_heads",
                self.n_heads,
                "must divide model.d_model",
            ));
        }
        Ok(())
    }

    /// Builds the model on `device` (seed the device first for reproducible weights).
    pub fn init(&self, device: &Device) -> Result<TinyLm> {
        self.validate()?;
        let d = self.d_model;
        let linear = |i: usize, o: usize| LinearConfig::new(i, o).with_bias(false).init(device);
        let blocks = (0..self.n_layers)
            .map(|_| Block {
                norm1: Param::from_tensor(Tensor::ones([d], device)),
                qkv: linear(d, 3 * d),
                out: linear(d, d),
                norm2: Param::from_tensor(Tensor::ones([d], device)),
                up: linear(d, self.d_ff),
                down: linear(self.d_ff, d),
            })
            .collect();
        let emb = |n: usize| {
            EmbeddingConfig::new(n, d)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.1,
                })
                .init(device)
        };
        Ok(TinyLm {
            tokens: emb(self.vocab_size),
            positions: emb(self.context_len),
            blocks,
            norm: Param::from_tensor(Tensor::ones([d], device)),
            head: linear(d, self.vocab_size),
            config: *self,
        })
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    norm1: Param<Tensor<1>>,
    qkv: Linear,
    out: Linear,
    norm2: Param<Tensor<1>>,
    up: Linear,
    down: Linear,
}

/// The small causal transformer; see the module docs.
#[derive(Module, Debug)]
pub struct TinyLm {
    tokens: Embedding,
    positions: Embedding,
    blocks: Vec<Block>,
    norm: Param<Tensor<1>>,
    head: Linear,
    #[module(skip)]
    config: TinyLmConfig,
}

fn rms_norm(x: Tensor<3>, gain: Tensor<1>) -> Tensor<3> {
    let d = x.dims()[2];
    let rms = (x.clone().powi_scalar(2).mean_dim(2) + 1e-6).sqrt();
    x / rms * gain.reshape([1, 1, d])
}

impl TinyLm {
    /// The model's shape.
    pub fn config(&self) -> TinyLmConfig {
        self.config
    }

    fn attention(&self, block: &Block, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let h = self.config.n_heads;
        let dh = d / h;
        let qkv = block.qkv.forward(x);
        let split = |i: usize| {
            qkv.clone()
                .slice([0..b, 0..t, i * d..(i + 1) * d])
                .reshape([b, t, h, dh])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let device = q.device();
        let causal: Vec<f32> = (0..t * t)
            .map(|i| if i % t > i / t { -1e9 } else { 0.0 })
            .collect();
        let causal =
            Tensor::<2>::from_data(TensorData::new(causal, [t, t]), &device).reshape([1, 1, t, t]);
        let scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt() + causal;
        let y = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, t, d]);
        block.out.forward(y)
    }
}

impl SequencePolicy for TinyLm {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_len(&self) -> usize {
        self.config.context_len
    }

    fn device(&self) -> Device {
        self.norm.val().device()
    }

    fn non_embedding_params(&self) -> usize {
        let c = &self.config;
        c.n_layers * (4 * c.d_model * c.d_model + 2 * c.d_model * c.d_ff)
    }

    fn forward(&self, ids: Tensor<2, Int>) -> PolicyForward {
        let [b, t] = ids.dims();
        let device = ids.device();
        let pos = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
        let mut x = self.tokens.forward(ids)
            + self
                .positions
                .forward(pos)
                .expand([b, t, self.config.d_model]);
        for block in &self.blocks {
            x = x.clone() + self.attention(block, rms_norm(x, block.norm1.val()));
            let hdn = rms_norm(x.clone(), block.norm2.val());
            x = x + block.down.forward(relu(block.up.forward(hdn)));
        }
        let hidden = rms_norm(x, self.norm.val());
        let logits = self.head.forward(hidden.clone());
        PolicyForward { hidden, logits }
    }

    fn unembedding(&self) -> Tensor<2> {
        self.head.weight.val()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::TokenBatch;
    use kiln_tensor::testing::cpu;

    #[test]
    fn causal_and_normalized() {
        let device = cpu();
        kiln_tensor::Seeds::new(1).seed_device(&device);
        let m = TinyLmConfig::default().init(&device).unwrap();
        let a = TokenBatch::from_pairs(&[&[2, 3, 4]], &[&[5, 6]]).unwrap();
        let b = TokenBatch::from_pairs(&[&[2, 3, 4]], &[&[5, 7]]).unwrap();
        let la = crate::policy::to_host(m.token_scores(&a).unwrap().logprobs);
        let lb = crate::policy::to_host(m.token_scores(&b).unwrap().logprobs);
        // Token 3 (first completion token) does not see the future.
        assert!((la[3] - lb[3]).abs() < 1e-6);
        assert!(la[..3].iter().all(|&x| x == 0.0));
        assert!(la[3] < 0.0 && la[4] < 0.0);
        // Log-probs over the vocabulary sum to 1 in probability.
        let ids = a.ids_tensor(&device);
        let logits = m.forward(ids).logits;
        let p = crate::policy::to_host(burn::tensor::activation::softmax(logits, 2).sum_dim(2));
        assert!(p.iter().all(|&s| (s - 1.0).abs() < 1e-5));
    }
}
