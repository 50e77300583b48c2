//! A host-memory training engine for the Llama of [`crate::model`]: one step of next-token
//! cross-entropy (optionally weighted per token, so SFT's prompt masking fits), the whole
//! backward pass written out by hand, and AdamW in place.
//!
//! Why it exists: a training step of SmolLM2-135M on 8 x 128 tokens is about 0.83 TFLOP of
//! matrix products, and through burn's autodiff on a CPU backend a third of the time goes
//! to fresh allocations (page clearing: the `[1024, 49152]` logits alone are 200 MB, their
//! softmax and gather backward allocate more), packing and per-op dispatch. Here every
//! activation lives in buffers allocated once per batch shape, the parameters and their
//! gradients are two flat `f32` vectors, and all products go to the `gemm` crate on every
//! core with the operands read through their strides (no transposed copies).
//!
//! The step, for ids `x` (`[B, T]`), targets `y` and token weights `w` (default 1):
//! - forward, block by block as in [`crate::model`], keeping each block's input, its two
//!   normalized activations and RMS factors, the rotated queries/keys and the values, the
//!   attention probabilities, the attention output, the gate/up pre-activations and the
//!   SwiGLU output;
//! - the loss `L = sum_i w_i (lse(z_i) - z_i[y_i]) / max(sum_i w_i, 1)` (the normalization of
//!   kiln-align's `sft_loss`; the plain mean when all weights are 1), or any loss
//!   `L = sum_i l_i(logp_i)` given per token as a function of its log-probability
//!   ([`CpuTrainer::token_loss_and_grads`]: the policy-gradient surrogates), **fused with the
//!   unembedding**: rows with a nonzero weight are processed in chunks of [`HEAD_CHUNK`]; per
//!   chunk, logits `z = h W_U^T` -> log-sum-exp -> `logp_i = z_i[y_i] - lse(z_i)` ->
//!   `dz = l_i'(logp_i) (onehot(y) - softmax(z))` (for the cross-entropy
//!   `l_i' = -w_i / W`) -> `dW_U += dz^T h` and `dh = dz W_U`, so neither the `[B T, V]`
//!   logits nor their gradient ever exist in full;
//! - the backward of every block (RMSNorm, SwiGLU, grouped-query causal attention with its
//!   softmax, RoPE, residuals), then the embedding gradient, which for tied embeddings adds
//!   onto the unembedding's share;
//! - AdamW ([`HostAdam`], burn 0.22's update rule in `f32`) over the flat vector, split into
//!   chunks stepped in parallel.
//!
//! Parameters are laid out as Hugging Face names them ([`hf_layer_tensors`] of every layer,
//! then `model.embed_tokens.weight`, `model.norm.weight` and `lm_head.weight` if untied),
//! each `[out, in]` row-major: a layer's q, k and v rows are contiguous, so they form one
//! fused `[d + 2 kv, d]` matrix, and likewise gate and up one `[2 f, d]` matrix.
//! [`CpuTrainer::from_model`] reads a burn [`Llama`]; [`CpuTrainer::load_into`] writes the
//! trained weights back into one, keeping its parameter ids, so checkpoints and generation
//! work on the result.
//!
//! ```
//! use kiln_lm::cpu_train::{CpuTrainer, NextTokenBatch};
//!
//! let device = kiln_tensor::testing::cpu();
//! let model = kiln_lm::testing::tiny_model(1, &device).unwrap();
//! let adam = kiln_tensor::AdamSettings { decoupled: true, weight_decay: 0.01, ..Default::default() };
//! let mut trainer = CpuTrainer::from_model(&model, &adam).unwrap();
//! let ids: Vec<u32> = (0..2 * 9).map(|i| (i * 7 % 50) as u32).collect();
//! let (inputs, targets) = NextTokenBatch::shift(&ids, 2).unwrap();
//! let batch = NextTokenBatch::new(2, &inputs, &targets, None);
//! let first = trainer.train_step(&batch, 1e-2).unwrap();
//! let second = trainer.train_step(&batch, 1e-2).unwrap();
//! assert!(second < first);
//! let trained = trainer.load_into(model).unwrap();
//! # let _ = trained;
//! ```

use rayon::prelude::*;

use kiln_tensor::AdamSettings;
use kiln_tensor::host::{HostAdam, clip_grad_norm_host, grad_norm_host};

use crate::config::LlamaConfig;
use crate::error::{LmError, Result, invalid};
use crate::model::{Llama, WeightFn, hf_layer_tensors};

/// Rows of the fused unembedding + cross-entropy processed at once: the chunk's logits are
/// `HEAD_CHUNK x V` floats (48 MB for SmolLM2's 49152-token vocabulary), large enough that
/// the three products per chunk run near the GEMM's peak, small enough to stay allocated.
pub const HEAD_CHUNK: usize = 256;

/// Parameters per AdamW chunk: each is stepped by its own [`HostAdam`] (all share the step
/// count), so the update streams over the cores.
const ADAM_CHUNK: usize = 1 << 20;

/// Offsets of one block's parameters in the flat vector.
#[derive(Debug, Clone, Copy)]
struct BlockOffsets {
    attn_norm: usize,
    /// `[d + 2 kv, d]`: q, k, v.
    wqkv: usize,
    wo: usize,
    mlp_norm: usize,
    /// `[2 f, d]`: gate, up.
    wgu: usize,
    wdown: usize,
}

/// Where every tensor lies in the flat parameter vector.
#[derive(Debug, Clone)]
struct Layout {
    /// Hugging Face name, shape and offset of every tensor, in storage order.
    tensors: Vec<(String, Vec<usize>, usize)>,
    blocks: Vec<BlockOffsets>,
    embed: usize,
    norm: usize,
    head: Option<usize>,
    len: usize,
}

impl Layout {
    fn new(c: &LlamaConfig) -> Self {
        let mut tensors = Vec::new();
        let mut off = 0;
        let mut push = |name: String, shape: Vec<usize>, tensors: &mut Vec<_>| {
            let at = off;
            off += shape.iter().product::<usize>();
            tensors.push((name, shape, at));
            at
        };
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let at: Vec<usize> = hf_layer_tensors(c, l)
                .into_iter()
                .map(|(n, s)| push(n, s, &mut tensors))
                .collect();
            // The order of `hf_layer_tensors`: norm, q, k, v, o, norm, gate, up, down.
            blocks.push(BlockOffsets {
                attn_norm: at[0],
                wqkv: at[1],
                wo: at[4],
                mlp_norm: at[5],
                wgu: at[6],
                wdown: at[8],
            });
        }
        let (d, v) = (c.hidden_size, c.vocab_size);
        let embed = push("model.embed_tokens.weight".into(), vec![v, d], &mut tensors);
        let norm = push("model.norm.weight".into(), vec![d], &mut tensors);
        let head = (!c.tie_word_embeddings)
            .then(|| push("lm_head.weight".into(), vec![v, d], &mut tensors));
        Self {
            tensors,
            blocks,
            embed,
            norm,
            head,
            len: off,
        }
    }
}

/// One batch of next-token prediction: `inputs` and `targets` are `[rows, T]` row-major
/// (`targets[i]` is the token that should follow `inputs[..=i]` in its row), `weights`
/// (`[rows, T]`, default all 1) scales each position's loss: 0 masks a prompt token out.
#[derive(Debug, Clone, Copy)]
pub struct NextTokenBatch<'a> {
    /// Number of rows `B`.
    pub rows: usize,
    /// Input ids `[B, T]`.
    pub inputs: &'a [u32],
    /// Target ids `[B, T]`.
    pub targets: &'a [u32],
    /// Per-token loss weights `[B, T]`; `None` weighs every token 1.
    pub weights: Option<&'a [f32]>,
}

impl<'a> NextTokenBatch<'a> {
    /// A batch of `rows` rows.
    pub fn new(
        rows: usize,
        inputs: &'a [u32],
        targets: &'a [u32],
        weights: Option<&'a [f32]>,
    ) -> Self {
        Self {
            rows,
            inputs,
            targets,
            weights,
        }
    }

    /// Splits sequences `ids` (`[rows, T + 1]`) into inputs `ids[:, :T]` and targets
    /// `ids[:, 1:]`.
    pub fn shift(ids: &[u32], rows: usize) -> Result<(Vec<u32>, Vec<u32>)> {
        if rows == 0 || !ids.len().is_multiple_of(rows) || ids.len() / rows < 2 {
            return Err(LmError::Shape {
                what: "ids per row (at least 2, the same in every row)",
                expected: rows.max(1) * 2,
                got: ids.len(),
            });
        }
        let s = ids.len() / rows;
        let mut inputs = Vec::with_capacity(rows * (s - 1));
        let mut targets = Vec::with_capacity(rows * (s - 1));
        for row in ids.chunks_exact(s) {
            inputs.extend_from_slice(&row[..s - 1]);
            targets.extend_from_slice(&row[1..]);
        }
        Ok((inputs, targets))
    }

    /// Sequence length `T`.
    pub fn len(&self) -> usize {
        self.inputs.len() / self.rows.max(1)
    }

    /// Whether the batch holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// Activations of one forward pass (per block, for the backward pass) and the backward
/// pass's scratch, for one batch shape.
struct Workspace {
    rows: usize,
    t: usize,
    /// `[T, D/2]` rotary tables.
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// `[L + 1, N, d]`: the residual stream entering each block, then the last block's output.
    x: Vec<f32>,
    /// `[L, N]` inverse RMS of the attention and MLP norms.
    r1: Vec<f32>,
    r2: Vec<f32>,
    /// `[L, N, d]` normalized block inputs, attention outputs (before `W_o`), mid-block
    /// residual stream and its normalization.
    n1: Vec<f32>,
    y: Vec<f32>,
    h: Vec<f32>,
    n2: Vec<f32>,
    /// `[L, N, d + 2 kv]`: rotated queries and keys, values.
    qkv: Vec<f32>,
    /// `[L, B, H, T, T]` attention probabilities.
    probs: Vec<f32>,
    /// `[L, N, 2 f]` gate and up pre-activations, `[L, N, f]` SwiGLU outputs.
    gu: Vec<f32>,
    act: Vec<f32>,
    /// `[N]`, `[N, d]`: final norm.
    rf: Vec<f32>,
    hf: Vec<f32>,
    /// Backward scratch.
    grad: Vec<f32>,
    dn: Vec<f32>,
    dy: Vec<f32>,
    dqkv: Vec<f32>,
    dact: Vec<f32>,
    dgu: Vec<f32>,
    /// `[B, kv heads, T, T]` gradient of the attention scores.
    dscores: Vec<f32>,
    /// Fused head: `[HEAD_CHUNK, V]` logits, gathered rows and their gradient.
    logits: Vec<f32>,
    head_rows: Vec<f32>,
    head_drows: Vec<f32>,
}

impl Workspace {
    fn new(c: &LlamaConfig, inv_freq: &[f32], rows: usize, t: usize) -> Self {
        let (l, d, f, v) = (
            c.num_hidden_layers,
            c.hidden_size,
            c.intermediate_size,
            c.vocab_size,
        );
        let (h, kvh, dh) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim());
        let w = d + 2 * kvh * dh;
        let n = rows * t;
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for p in 0..t {
            for &fr in inv_freq {
                let a = p as f32 * fr;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let z = |len: usize| vec![0f32; len];
        let chunk = HEAD_CHUNK.min(n);
        Self {
            rows,
            t,
            cos,
            sin,
            x: z((l + 1) * n * d),
            r1: z(l * n),
            r2: z(l * n),
            n1: z(l * n * d),
            y: z(l * n * d),
            h: z(l * n * d),
            n2: z(l * n * d),
            qkv: z(l * n * w),
            probs: z(l * rows * h * t * t),
            gu: z(l * n * 2 * f),
            act: z(l * n * f),
            rf: z(n),
            hf: z(n * d),
            grad: z(n * d),
            dn: z(n * d),
            dy: z(n * d),
            dqkv: z(n * w),
            dact: z(n * f),
            dgu: z(n * 2 * f),
            dscores: z(rows * kvh * t * t),
            logits: z(chunk * v),
            head_rows: z(chunk * d),
            head_drows: z(chunk * d),
        }
    }
}

/// The host training engine; see the module docs.
pub struct CpuTrainer {
    config: LlamaConfig,
    layout: Layout,
    params: Vec<f32>,
    grads: Vec<f32>,
    adam: Vec<HostAdam>,
    inv_freq: Vec<f32>,
    work: Option<Workspace>,
}

impl std::fmt::Debug for CpuTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuTrainer")
            .field("config", &self.config)
            .field("params", &self.params.len())
            .finish()
    }
}

impl CpuTrainer {
    /// The engine for weights in Hugging Face names and layout (as [`Llama::from_weights`]),
    /// with AdamW (or Adam) settings `adam`.
    pub fn from_weights(
        config: &LlamaConfig,
        get: &mut WeightFn<'_>,
        adam: &AdamSettings,
    ) -> Result<Self> {
        config.validate()?;
        let layout = Layout::new(config);
        let mut params = vec![0f32; layout.len];
        for (name, shape, at) in &layout.tensors {
            let w = get(name, shape)?;
            let len = shape.iter().product::<usize>();
            if w.len() != len {
                return Err(LmError::Shape {
                    what: "weight values",
                    expected: len,
                    got: w.len(),
                });
            }
            params[*at..*at + len].copy_from_slice(&w);
        }
        let adam = (0..layout.len.div_ceil(ADAM_CHUNK))
            .map(|i| HostAdam::new(adam, ADAM_CHUNK.min(layout.len - i * ADAM_CHUNK)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| invalid("adam", "settings", e.to_string()))?;
        let dh = config.head_dim();
        let inv_freq = (0..dh / 2)
            .map(|i| 1.0 / (config.rope_theta as f32).powf((2 * i) as f32 / dh as f32))
            .collect();
        Ok(Self {
            config: *config,
            grads: vec![0f32; layout.len],
            layout,
            params,
            adam,
            inv_freq,
            work: None,
        })
    }

    /// The engine for a burn model's current weights.
    pub fn from_model(model: &Llama, adam: &AdamSettings) -> Result<Self> {
        let weights = model.hf_weights();
        let mut get = |name: &str, _shape: &[usize]| -> Result<Vec<f32>> {
            weights
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, v)| v.clone())
                .ok_or_else(|| invalid("weight", name, "missing from the model"))
        };
        Self::from_weights(model.config(), &mut get, adam)
    }

    /// `model` (of the same shape) with its weights replaced by this engine's, keeping
    /// every parameter's id, device and autodiff flag.
    pub fn load_into(&self, model: Llama) -> Result<Llama> {
        if model.config() != &self.config {
            return Err(invalid(
                "model",
                "config",
                "differs from the training engine's",
            ));
        }
        model.load_hf_weights(&mut |name: &str, _shape: &[usize]| {
            self.tensor(name)
                .map(<[f32]>::to_vec)
                .ok_or_else(|| invalid("weight", name, "not in the training engine"))
        })
    }

    /// A new burn model on `device` with this engine's weights.
    pub fn to_model(&self, device: &burn::tensor::Device) -> Result<Llama> {
        Llama::from_weights(&self.config, device, &mut |name: &str, _shape: &[usize]| {
            self.tensor(name)
                .map(<[f32]>::to_vec)
                .ok_or_else(|| invalid("weight", name, "not in the training engine"))
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// All parameters, flat (see the module docs for the layout).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The gradient of the last [`CpuTrainer::loss_and_grads`], in the layout of
    /// [`CpuTrainer::params`].
    pub fn grads(&self) -> &[f32] {
        &self.grads
    }

    /// Hugging Face name, shape and offset in [`CpuTrainer::params`] of every tensor.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &[usize], usize)> {
        self.layout
            .tensors
            .iter()
            .map(|(n, s, at)| (n.as_str(), s.as_slice(), *at))
    }

    /// The values of the tensor named `name` (Hugging Face name, `[out, in]` layout).
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        self.span(name).map(|(a, b)| &self.params[a..b])
    }

    /// The gradient of the tensor named `name`.
    pub fn tensor_grad(&self, name: &str) -> Option<&[f32]> {
        self.span(name).map(|(a, b)| &self.grads[a..b])
    }

    fn span(&self, name: &str) -> Option<(usize, usize)> {
        self.layout
            .tensors
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, at)| (*at, *at + s.iter().product::<usize>()))
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> i32 {
        self.adam.first().map_or(0, HostAdam::time)
    }

    /// The global L2 norm of the current gradient.
    pub fn grad_norm(&self) -> f64 {
        grad_norm_host(&[&self.grads])
    }

    /// Rescales the gradient to global norm `max_norm` if it is larger
    /// ([`kiln_tensor::clip_grad_norm`]'s rule); returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        clip_grad_norm_host(&mut [&mut self.grads], max_norm)
    }

    /// One optimizer step with learning rate `lr` on the current gradient.
    pub fn adam_step(&mut self, lr: f64) -> Result<()> {
        self.params
            .par_chunks_mut(ADAM_CHUNK)
            .zip(self.grads.par_chunks(ADAM_CHUNK))
            .zip(self.adam.par_iter_mut())
            .try_for_each(|((p, g), a)| a.step(lr, p, g))
            .map_err(|e| invalid("adam", "step", e.to_string()))
    }

    /// [`CpuTrainer::loss_and_grads`] then [`CpuTrainer::adam_step`]; returns the loss.
    pub fn train_step(&mut self, batch: &NextTokenBatch<'_>, lr: f64) -> Result<f32> {
        let loss = self.loss_and_grads(batch)?;
        self.adam_step(lr)?;
        Ok(loss)
    }

    fn check(&self, b: &NextTokenBatch<'_>) -> Result<()> {
        let c = &self.config;
        if b.rows == 0 || b.inputs.is_empty() || !b.inputs.len().is_multiple_of(b.rows) {
            return Err(LmError::Shape {
                what: "input ids (a positive multiple of the rows)",
                expected: b.rows.max(1),
                got: b.inputs.len(),
            });
        }
        if b.targets.len() != b.inputs.len() {
            return Err(LmError::Shape {
                what: "target ids",
                expected: b.inputs.len(),
                got: b.targets.len(),
            });
        }
        if let Some(w) = b.weights {
            if w.len() != b.inputs.len() {
                return Err(LmError::Shape {
                    what: "loss weights",
                    expected: b.inputs.len(),
                    got: w.len(),
                });
            }
            if let Some(bad) = w.iter().find(|x| !x.is_finite()) {
                return Err(invalid("loss weight", bad, "must be finite"));
            }
        }
        let t = b.len();
        if t > c.max_position_embeddings {
            return Err(LmError::TooLong {
                len: t,
                max: c.max_position_embeddings,
            });
        }
        if let Some(&bad) = b
            .inputs
            .iter()
            .chain(b.targets)
            .find(|&&i| i as usize >= c.vocab_size)
        {
            return Err(invalid(
                "token id",
                bad,
                format!("must be below vocab_size = {}", c.vocab_size),
            ));
        }
        Ok(())
    }

    /// Forward and backward pass of `batch`: returns the loss (see the module docs) and
    /// leaves its gradient in [`CpuTrainer::grads`] (overwritten, not accumulated).
    ///
    /// The weighted cross-entropy is the per-token loss
    /// `l_i(logp_i) = -w_i logp_i / max(sum_j w_j, 1)` of [`CpuTrainer::token_loss_and_grads`]
    /// (derivative `-w_i / max(sum_j w_j, 1)`), so both share one head.
    pub fn loss_and_grads(&mut self, batch: &NextTokenBatch<'_>) -> Result<f32> {
        self.check(batch)?;
        let weights = batch.weights;
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let denom = (0..batch.inputs.len()).map(weight).sum::<f32>().max(1.0);
        let nll = |i: usize, logp: f32| {
            let c = -weight(i) / denom;
            (c * logp, c)
        };
        Ok(self.token_loss_and_grads(batch, &nll, false)?.loss)
    }

    /// Forward and backward pass of a loss that is a sum over predicted tokens of a function
    /// of each token's log-probability, `L = sum_i l_i(logp_i)` with
    /// `logp_i = log softmax(z_i)[y_i]`: `loss(i, logp_i)` returns `(l_i, dl_i/dlogp_i)` for
    /// token `i` (its index in `[B, T]` order). The policy-gradient surrogates (clipped ratio,
    /// k3 KL, any aggregation) are of this form, and since
    /// `d logp_i / d z_i = onehot(y_i) - softmax(z_i)`, the logits' gradient is
    /// `dz_i = (dl_i/dlogp_i) (onehot(y_i) - softmax(z_i))`: the head needs nothing else.
    ///
    /// Only the tokens with a nonzero `batch.weights` entry (all tokens without weights) are
    /// *active*: `loss` is called for them alone, and the others neither enter the
    /// unembedding nor get a gradient (the weights' values are `loss`'s business; here they
    /// only select). With `entropy`, the report carries the mean over active tokens of the
    /// softmax's entropy `H_i = lse(z_i) - sum_v p_v z_v`, computed in the same pass over each
    /// logits row. The gradient is left in [`CpuTrainer::grads`] (overwritten).
    pub fn token_loss_and_grads(
        &mut self,
        batch: &NextTokenBatch<'_>,
        loss: &TokenLoss<'_>,
        entropy: bool,
    ) -> Result<TokenLossReport> {
        self.check(batch)?;
        let (rows, t) = (batch.rows, batch.len());
        if self
            .work
            .as_ref()
            .is_none_or(|w| w.rows != rows || w.t != t)
        {
            // Drop the old buffers first: two sets of SmolLM2 activations need not coexist.
            self.work = None;
            self.work = Some(Workspace::new(&self.config, &self.inv_freq, rows, t));
        }
        let Self {
            config,
            layout,
            params,
            grads,
            work,
            ..
        } = self;
        let ws = work
            .as_mut()
            .ok_or_else(|| invalid("workspace", "missing", "allocated above"))?;
        let dims = Dims::new(config, rows, t);
        forward(config, layout, params, batch.inputs, &dims, ws);
        let mut logprobs = vec![0f32; dims.n];
        let head = Head {
            batch,
            loss,
            entropy,
        };
        let (value, entropy_sum, active) = head_loss_and_backward(
            config,
            layout,
            params,
            grads,
            &head,
            &dims,
            ws,
            &mut logprobs,
        );
        backward(config, layout, params, grads, batch.inputs, &dims, ws);
        Ok(TokenLossReport {
            loss: value as f32,
            entropy: entropy.then(|| (entropy_sum / active.max(1) as f64) as f32),
            logprobs,
        })
    }
}

/// The loss of one predicted token as a function of its log-probability (see
/// [`CpuTrainer::token_loss_and_grads`]): called with the token's index in `[B, T]` order
/// and `logp_i`, returns `(l_i, dl_i/dlogp_i)`. Called from several threads at once.
pub type TokenLoss<'a> = dyn Fn(usize, f32) -> (f32, f32) + Sync + 'a;

/// What [`CpuTrainer::token_loss_and_grads`] measured before the gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLossReport {
    /// `L = sum_i l_i(logp_i)` over the active tokens (summed in `f64`).
    pub loss: f32,
    /// Mean softmax entropy (nats) over the active tokens, when asked for.
    pub entropy: Option<f32>,
    /// `[B, T]`: `logp_i` of every active token, 0 elsewhere.
    pub logprobs: Vec<f32>,
}

/// The per-token loss of one head pass and what it reports.
struct Head<'a, 'b> {
    batch: &'a NextTokenBatch<'a>,
    loss: &'a TokenLoss<'b>,
    entropy: bool,
}

/// Shapes of one step.
#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    n: usize,
    d: usize,
    f: usize,
    heads: usize,
    kv_heads: usize,
    dh: usize,
    /// `d + 2 kv`: width of a fused q/k/v row.
    w: usize,
}

impl Dims {
    fn new(c: &LlamaConfig, b: usize, t: usize) -> Self {
        let dh = c.head_dim();
        Self {
            b,
            t,
            n: b * t,
            d: c.hidden_size,
            f: c.intermediate_size,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            dh,
            w: c.hidden_size + 2 * c.num_key_value_heads * dh,
        }
    }
}

fn forward(c: &LlamaConfig, lay: &Layout, p: &[f32], ids: &[u32], s: &Dims, ws: &mut Workspace) {
    let (n, d, f, w) = (s.n, s.d, s.f, s.w);
    let eps = c.rms_norm_eps as f32;
    for (row, &id) in ws.x[..n * d].chunks_exact_mut(d).zip(ids) {
        let e = lay.embed + id as usize * d;
        row.copy_from_slice(&p[e..e + d]);
    }
    let tt = s.t * s.t;
    for (l, o) in lay.blocks.iter().enumerate() {
        let (nd, nw) = (l * n * d, l * n * w);
        let (x_prev, x_rest) = ws.x.split_at_mut((l + 1) * n * d);
        let x_in = &x_prev[nd..];
        let x_out = &mut x_rest[..n * d];
        let n1 = &mut ws.n1[nd..nd + n * d];
        rms_norm(
            x_in,
            &p[o.attn_norm..o.attn_norm + d],
            eps,
            n1,
            &mut ws.r1[l * n..(l + 1) * n],
        );
        let qkv = &mut ws.qkv[nw..nw + n * w];
        mm_nt(n, w, d, n1, &p[o.wqkv..o.wqkv + w * d], qkv, false);
        rope_rows(qkv, s, &ws.cos, &ws.sin, false);
        let y = &mut ws.y[nd..nd + n * d];
        let probs = &mut ws.probs[l * s.b * s.heads * tt..(l + 1) * s.b * s.heads * tt];
        attention_forward(qkv, probs, y, s);
        let h = &mut ws.h[nd..nd + n * d];
        h.copy_from_slice(x_in);
        mm_nt(n, d, d, y, &p[o.wo..o.wo + d * d], h, true);
        let n2 = &mut ws.n2[nd..nd + n * d];
        rms_norm(
            h,
            &p[o.mlp_norm..o.mlp_norm + d],
            eps,
            n2,
            &mut ws.r2[l * n..(l + 1) * n],
        );
        let gu = &mut ws.gu[l * n * 2 * f..(l + 1) * n * 2 * f];
        mm_nt(n, 2 * f, d, n2, &p[o.wgu..o.wgu + 2 * f * d], gu, false);
        let act = &mut ws.act[l * n * f..(l + 1) * n * f];
        act.par_chunks_mut(f)
            .zip(gu.par_chunks(2 * f))
            .with_min_len(16)
            .for_each(|(a, g)| {
                let (gate, up) = g.split_at(f);
                for ((a, &gv), &uv) in a.iter_mut().zip(gate).zip(up) {
                    *a = gv / (1.0 + (-gv).exp()) * uv;
                }
            });
        x_out.copy_from_slice(h);
        mm_nt(n, d, f, act, &p[o.wdown..o.wdown + d * f], x_out, true);
    }
    let last = lay.blocks.len() * n * d;
    rms_norm(
        &ws.x[last..last + n * d],
        &p[lay.norm..lay.norm + d],
        eps,
        &mut ws.hf,
        &mut ws.rf,
    );
}

/// The fused unembedding and per-token loss (see the module docs and
/// [`CpuTrainer::token_loss_and_grads`]): returns the loss, the sum of the active tokens'
/// entropies (0 unless asked for) and their count; writes each active token's
/// log-probability into `logprobs`, the unembedding's gradient (overwriting it) and the
/// gradient of the final normalized hidden states into `ws.grad`.
#[allow(clippy::too_many_arguments)]
fn head_loss_and_backward(
    c: &LlamaConfig,
    lay: &Layout,
    p: &[f32],
    g: &mut [f32],
    head_loss: &Head<'_, '_>,
    s: &Dims,
    ws: &mut Workspace,
    logprobs: &mut [f32],
) -> (f64, f64, usize) {
    let (n, d, v) = (s.n, s.d, c.vocab_size);
    let Head {
        batch,
        loss,
        entropy,
    } = *head_loss;
    let active: Vec<usize> = (0..n)
        .filter(|&i| batch.weights.is_none_or(|w| w[i] != 0.0))
        .collect();
    let head = lay.head.unwrap_or(lay.embed);
    let wu = &p[head..head + v * d];
    let gu = &mut g[head..head + v * d];
    let dh = &mut ws.grad;
    dh.fill(0.0);
    if active.is_empty() {
        gu.fill(0.0);
        return (0.0, 0.0, 0);
    }
    let (mut total, mut entropy_sum) = (0f64, 0f64);
    for (ci, chunk) in active.chunks(HEAD_CHUNK).enumerate() {
        let r = chunk.len();
        let rows = &mut ws.head_rows[..r * d];
        for (dst, &i) in rows.chunks_exact_mut(d).zip(chunk) {
            dst.copy_from_slice(&ws.hf[i * d..(i + 1) * d]);
        }
        let z = &mut ws.logits[..r * v];
        mm_nt(r, v, d, rows, wu, z, false);
        let per_row: Vec<(f64, f64, f32)> = z
            .par_chunks_mut(v)
            .zip(chunk.par_iter())
            .map(|(zr, &i)| {
                let tgt = batch.targets[i] as usize;
                let zt = zr[tgt];
                let mx = zr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let (mut sum, mut dot) = (0f32, 0f32);
                if entropy {
                    // sum_v e^{z_v - max} (z_v - max), for H = log(sum) - dot / sum.
                    for x in zr.iter_mut() {
                        let u = *x - mx;
                        *x = u.exp();
                        sum += *x;
                        dot += *x * u;
                    }
                } else {
                    for x in zr.iter_mut() {
                        *x = (*x - mx).exp();
                        sum += *x;
                    }
                }
                let lse = sum.ln();
                // log softmax(z)[tgt] = z_t - max - log(sum e^{z - max}).
                let logp = zt - mx - lse;
                let (l, dl) = loss(i, logp);
                // dz = dl (onehot(y) - softmax(z)).
                let inv = -dl / sum;
                zr.iter_mut().for_each(|x| *x *= inv);
                zr[tgt] += dl;
                let h = if entropy {
                    f64::from(lse) - f64::from(dot) / f64::from(sum)
                } else {
                    0.0
                };
                (f64::from(l), h, logp)
            })
            .collect();
        for ((l, h, logp), &i) in per_row.into_iter().zip(chunk) {
            total += l;
            entropy_sum += h;
            logprobs[i] = logp;
        }
        // dW_U (+)= dz^T h_rows; dh_rows = dz W_U.
        let drows = &mut ws.head_drows[..r * d];
        linear_backward((r, v, d), z, rows, wu, gu, ci > 0, drows);
        for (src, &i) in drows.chunks_exact(d).zip(chunk) {
            dh[i * d..(i + 1) * d].copy_from_slice(src);
        }
    }
    (total, entropy_sum, active.len())
}

fn backward(
    c: &LlamaConfig,
    lay: &Layout,
    p: &[f32],
    g: &mut [f32],
    ids: &[u32],
    s: &Dims,
    ws: &mut Workspace,
) {
    let (n, d, f, w) = (s.n, s.d, s.f, s.w);
    let tt = s.t * s.t;
    let last = lay.blocks.len() * n * d;
    // The final norm: ws.grad holds d hf; the residual gradient starts from its backward.
    ws.dn.copy_from_slice(&ws.grad);
    ws.grad.fill(0.0);
    rms_norm_backward(
        &ws.x[last..last + n * d],
        &ws.rf,
        &p[lay.norm..lay.norm + d],
        &ws.dn,
        &mut ws.grad,
        &mut g[lay.norm..lay.norm + d],
    );
    for (l, o) in lay.blocks.iter().enumerate().rev() {
        let nd = l * n * d;
        // MLP: x_{l+1} = h + W_down (silu(gate) * up).
        let act = &ws.act[l * n * f..(l + 1) * n * f];
        linear_backward(
            (n, d, f),
            &ws.grad,
            act,
            &p[o.wdown..o.wdown + d * f],
            &mut g[o.wdown..o.wdown + d * f],
            false,
            &mut ws.dact,
        );
        let gu = &ws.gu[l * n * 2 * f..(l + 1) * n * 2 * f];
        ws.dgu
            .par_chunks_mut(2 * f)
            .zip(ws.dact.par_chunks(f))
            .zip(gu.par_chunks(2 * f))
            .with_min_len(16)
            .for_each(|((dg, da), g)| {
                let (gate, up) = g.split_at(f);
                let (dgate, dup) = dg.split_at_mut(f);
                for i in 0..f {
                    let (gv, uv) = (gate[i], up[i]);
                    let sg = 1.0 / (1.0 + (-gv).exp());
                    let silu = gv * sg;
                    dgate[i] = da[i] * uv * sg * (1.0 + gv * (1.0 - sg));
                    dup[i] = da[i] * silu;
                }
            });
        let n2 = &ws.n2[nd..nd + n * d];
        linear_backward(
            (n, 2 * f, d),
            &ws.dgu,
            n2,
            &p[o.wgu..o.wgu + 2 * f * d],
            &mut g[o.wgu..o.wgu + 2 * f * d],
            false,
            &mut ws.dn,
        );
        rms_norm_backward(
            &ws.h[nd..nd + n * d],
            &ws.r2[l * n..(l + 1) * n],
            &p[o.mlp_norm..o.mlp_norm + d],
            &ws.dn,
            &mut ws.grad,
            &mut g[o.mlp_norm..o.mlp_norm + d],
        );
        // Attention: h = x_l + W_o Attn(..).
        let y = &ws.y[nd..nd + n * d];
        linear_backward(
            (n, d, d),
            &ws.grad,
            y,
            &p[o.wo..o.wo + d * d],
            &mut g[o.wo..o.wo + d * d],
            false,
            &mut ws.dy,
        );
        let qkv = &ws.qkv[l * n * w..(l + 1) * n * w];
        let probs = &ws.probs[l * s.b * s.heads * tt..(l + 1) * s.b * s.heads * tt];
        attention_backward(qkv, probs, &ws.dy, &mut ws.dscores, &mut ws.dqkv, s);
        rope_rows(&mut ws.dqkv, s, &ws.cos, &ws.sin, true);
        let n1 = &ws.n1[nd..nd + n * d];
        linear_backward(
            (n, w, d),
            &ws.dqkv,
            n1,
            &p[o.wqkv..o.wqkv + w * d],
            &mut g[o.wqkv..o.wqkv + w * d],
            false,
            &mut ws.dn,
        );
        rms_norm_backward(
            &ws.x[nd..nd + n * d],
            &ws.r1[l * n..(l + 1) * n],
            &p[o.attn_norm..o.attn_norm + d],
            &ws.dn,
            &mut ws.grad,
            &mut g[o.attn_norm..o.attn_norm + d],
        );
    }
    // Embedding rows: onto the unembedding's share when tied, onto zero otherwise.
    let emb = &mut g[lay.embed..lay.embed + c.vocab_size * d];
    if lay.head.is_some() {
        emb.fill(0.0);
    }
    for (row, &id) in ws.grad.chunks_exact(d).zip(ids) {
        let e = id as usize * d;
        emb[e..e + d].iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
}

/// `out = w * x / sqrt(mean(x^2) + eps)` per row of `x`; `inv` receives the inverse RMS.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32], inv: &mut [f32]) {
    let d = w.len();
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .zip(inv.par_iter_mut())
        .with_min_len(16)
        .for_each(|((o, row), r)| {
            let ms = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
            *r = 1.0 / (ms + eps).sqrt();
            for ((o, v), g) in o.iter_mut().zip(row).zip(w) {
                *o = v * *r * g;
            }
        });
}

/// Backward of [`rms_norm`] given `dout`: with `r` the inverse RMS and `u = dout * w`,
/// `dx = r u - x r^3 mean(u x)` is **added** to `dx`; `dw = sum over rows dout x r` is
/// written (overwritten) into `dw`.
fn rms_norm_backward(
    x: &[f32],
    inv: &[f32],
    w: &[f32],
    dout: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
) {
    let d = w.len();
    dx.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .zip(dout.par_chunks(d))
        .zip(inv.par_iter())
        .with_min_len(16)
        .for_each(|(((dx, x), dy), &r)| {
            let dot: f32 = dy.iter().zip(w).zip(x).map(|((a, b), c)| a * b * c).sum();
            let k = r * r * r * dot / d as f32;
            for i in 0..d {
                dx[i] += r * dy[i] * w[i] - x[i] * k;
            }
        });
    dw.fill(0.0);
    for ((x, dy), &r) in x.chunks_exact(d).zip(dout.chunks_exact(d)).zip(inv) {
        for i in 0..d {
            dw[i] += dy[i] * x[i] * r;
        }
    }
}

/// Rotary embedding of the query and key columns of every fused q/k/v row (position
/// `row % T`), in place; `inverse` applies the transposed rotation (the backward pass).
fn rope_rows(qkv: &mut [f32], s: &Dims, cos: &[f32], sin: &[f32], inverse: bool) {
    let half = s.dh / 2;
    let rotated = s.d + s.kv_heads * s.dh;
    qkv.par_chunks_mut(s.w)
        .enumerate()
        .with_min_len(16)
        .for_each(|(i, row)| {
            let pos = i % s.t;
            let (c, sn) = (
                &cos[pos * half..(pos + 1) * half],
                &sin[pos * half..(pos + 1) * half],
            );
            for head in row[..rotated].chunks_exact_mut(s.dh) {
                let (x1, x2) = head.split_at_mut(half);
                for j in 0..half {
                    let (a, b) = (x1[j], x2[j]);
                    if inverse {
                        x1[j] = a * c[j] + b * sn[j];
                        x2[j] = b * c[j] - a * sn[j];
                    } else {
                        x1[j] = a * c[j] - b * sn[j];
                        x2[j] = b * c[j] + a * sn[j];
                    }
                }
            }
        });
}

/// A raw pointer that may cross into rayon tasks, each of which writes a disjoint region.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: every user writes through it only to a region no other task touches (documented
// at each use).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Causal grouped-query attention of every (row, head): from the rotated queries/keys and
/// the values in `qkv` (`[N, w]`), writes the probabilities `softmax(q k^T / sqrt(D))` into
/// `probs` (`[B, H, T, T]`, zero above the diagonal) and `P v` into the head's columns of
/// `y` (`[N, d]`).
fn attention_forward(qkv: &[f32], probs: &mut [f32], y: &mut [f32], s: &Dims) {
    let (t, dh, w, d) = (s.t, s.dh, s.w, s.d);
    let g = s.heads / s.kv_heads;
    let kv = s.kv_heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    assert!(qkv.len() >= s.n * w && y.len() >= s.n * d && probs.len() >= s.b * s.heads * t * t);
    let yp = SharedMut(y.as_mut_ptr());
    probs
        .par_chunks_mut(t * t)
        .enumerate()
        .for_each(|(bh, pm)| {
            let (b, hh) = (bh / s.heads, bh % s.heads);
            let kh = hh / g;
            let base = b * t * w;
            let q = &qkv[base + hh * dh..];
            let k = &qkv[base + d + kh * dh..];
            let v = &qkv[base + d + kv + kh * dh..];
            // SAFETY: q/k/v are (t x dh) blocks of row stride w inside `qkv` (asserted length);
            // `pm` is t x t.
            unsafe {
                gemm_raw(
                    t,
                    t,
                    dh,
                    pm.as_mut_ptr(),
                    t as isize,
                    false,
                    (q.as_ptr(), w as isize, 1),
                    (k.as_ptr(), 1, w as isize),
                    gemm::Parallelism::None,
                );
            }
            for (i, row) in pm.chunks_exact_mut(t).enumerate() {
                let (seen, future) = row.split_at_mut(i + 1);
                let mut mx = f32::NEG_INFINITY;
                for x in seen.iter_mut() {
                    *x *= scale;
                    mx = mx.max(*x);
                }
                let mut sum = 0f32;
                for x in seen.iter_mut() {
                    *x = (*x - mx).exp();
                    sum += *x;
                }
                let inv = 1.0 / sum;
                seen.iter_mut().for_each(|x| *x *= inv);
                future.fill(0.0);
            }
            // SAFETY: task (b, h) alone writes rows b*t..(b+1)*t, columns h*dh..(h+1)*dh of
            // `y` (row stride d), inside its asserted length.
            unsafe {
                gemm_raw(
                    t,
                    dh,
                    t,
                    yp.at(b * t * d + hh * dh),
                    d as isize,
                    false,
                    (pm.as_ptr(), t as isize, 1),
                    (v.as_ptr(), w as isize, 1),
                    gemm::Parallelism::None,
                );
            }
        });
}

/// Backward of [`attention_forward`] given `dy` (`[N, d]`, the gradient of its output):
/// writes the gradients of the rotated queries, keys and values into `dqkv` (`[N, w]`),
/// one task per (row, key/value head) so that the query heads sharing a key/value head add
/// their shares in turn. `dscores` is `[B, kv heads, T, T]` scratch.
fn attention_backward(
    qkv: &[f32],
    probs: &[f32],
    dy: &[f32],
    dscores: &mut [f32],
    dqkv: &mut [f32],
    s: &Dims,
) {
    let (t, dh, w, d) = (s.t, s.dh, s.w, s.d);
    let g = s.heads / s.kv_heads;
    let kv = s.kv_heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    assert!(
        qkv.len() >= s.n * w
            && dqkv.len() >= s.n * w
            && dy.len() >= s.n * d
            && probs.len() >= s.b * s.heads * t * t
            && dscores.len() >= s.b * s.kv_heads * t * t
    );
    let dp = SharedMut(dqkv.as_mut_ptr());
    dscores
        .par_chunks_mut(t * t)
        .enumerate()
        .for_each(|(bk, ds)| {
            let (b, kh) = (bk / s.kv_heads, bk % s.kv_heads);
            let base = b * t * w;
            let k = &qkv[base + d + kh * dh..];
            let v = &qkv[base + d + kv + kh * dh..];
            let (dk, dv) = (dp.at(base + d + kh * dh), dp.at(base + d + kv + kh * dh));
            for gi in 0..g {
                let hh = kh * g + gi;
                let pm = &probs[(b * s.heads + hh) * t * t..(b * s.heads + hh + 1) * t * t];
                let q = &qkv[base + hh * dh..];
                let dout = &dy[b * t * d + hh * dh..];
                // SAFETY (all four products): operands are t x t blocks (`pm`, `ds`) or
                // t x dh blocks of row stride w (`qkv`, `dqkv`) / d (`dy`) inside their
                // asserted lengths; task (b, kh) alone writes rows b*t..(b+1)*t of `dqkv`
                // in the columns of query heads kh*g..(kh+1)*g and of key/value head kh.
                unsafe {
                    // dP = dO V^T.
                    gemm_raw(
                        t,
                        t,
                        dh,
                        ds.as_mut_ptr(),
                        t as isize,
                        false,
                        (dout.as_ptr(), d as isize, 1),
                        (v.as_ptr(), 1, w as isize),
                        gemm::Parallelism::None,
                    );
                    // dV += P^T dO.
                    gemm_raw(
                        t,
                        dh,
                        t,
                        dv,
                        w as isize,
                        gi > 0,
                        (pm.as_ptr(), 1, t as isize),
                        (dout.as_ptr(), d as isize, 1),
                        gemm::Parallelism::None,
                    );
                }
                // dS = P (dP - rowsum(dP P)) / sqrt(D).
                for (prow, drow) in pm.chunks_exact(t).zip(ds.chunks_exact_mut(t)) {
                    let dot: f32 = prow.iter().zip(drow.iter()).map(|(a, b)| a * b).sum();
                    for (dv, &pv) in drow.iter_mut().zip(prow) {
                        *dv = pv * (*dv - dot) * scale;
                    }
                }
                unsafe {
                    // dQ = dS K.
                    gemm_raw(
                        t,
                        dh,
                        t,
                        dp.at(base + hh * dh),
                        w as isize,
                        false,
                        (ds.as_ptr(), t as isize, 1),
                        (k.as_ptr(), w as isize, 1),
                        gemm::Parallelism::None,
                    );
                    // dK += dS^T Q.
                    gemm_raw(
                        t,
                        dh,
                        t,
                        dk,
                        w as isize,
                        gi > 0,
                        (ds.as_ptr(), 1, t as isize),
                        (q.as_ptr(), w as isize, 1),
                        gemm::Parallelism::None,
                    );
                }
            }
        });
}

/// The backward of a linear layer `y = x W^T` (`x`: `rows x inp`, `W`: `out x inp`) given
/// `dy`: `dW [+]= dy^T x` and `dx = dy W`. The two products are independent and of equal
/// size, so they run side by side on two threads, each as one single-threaded product:
/// that keeps both cores busy without splitting either product (5-15 % more GFLOP/s than
/// each product split over both threads in turn, at SmolLM2's shapes on 2 cores).
#[allow(clippy::too_many_arguments)]
fn linear_backward(
    (rows, out, inp): (usize, usize, usize),
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dw: &mut [f32],
    accumulate_dw: bool,
    dx: &mut [f32],
) {
    rayon::join(
        || serial(|| mm_tn(out, inp, rows, dy, x, dw, accumulate_dw)),
        || serial(|| mm_nn(rows, inp, out, dy, w, dx, false)),
    );
}

thread_local! {
    /// Set while [`serial`] runs: the matrix products of this thread stay on it.
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every matrix product it makes on the calling thread alone.
fn serial<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|s| s.replace(true));
    let r = f();
    SERIAL.with(|s| s.set(before));
    r
}

/// A matrix operand: pointer to element (0, 0), row stride, column stride.
type Operand = (*const f32, isize, isize);

/// `dst (m x n, row stride dst_rs) = [dst +] lhs (m x k) rhs (k x n)`.
///
/// # Safety
/// Every element `(r, c)` of each operand, at `ptr + r * rs + c * cs`, must be readable
/// (writable for `dst`) for `r`, `c` within its extents, and `dst` must not overlap the
/// inputs.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    accumulate: bool,
    lhs: Operand,
    rhs: Operand,
    par: gemm::Parallelism,
) {
    let par = if SERIAL.with(std::cell::Cell::get) {
        gemm::Parallelism::None
    } else {
        par
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs,
            accumulate,
            lhs.0,
            lhs.2,
            lhs.1,
            rhs.0,
            rhs.2,
            rhs.1,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// `c (m x n) [+]= a (m x k) b^T` with `b` stored `n x k` (a linear layer's forward with
/// `[out, in]` weights).
fn mm_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    let parts = if SERIAL.with(std::cell::Cell::get) {
        1
    } else {
        rayon::current_num_threads().clamp(1, (n / 64).max(1))
    };
    let cp = SharedMut(c.as_mut_ptr());
    // Each part computes the columns `lo..hi` (rows `lo..hi` of `b`) on one thread: at
    // these shapes that beats one product split by the library (see `linear_backward`).
    let part = |i: usize| {
        let (lo, hi) = (n * i / parts, n * (i + 1) / parts);
        // SAFETY: extents asserted above; part `i` alone writes columns `lo..hi` of `c`
        // (row stride n), a distinct `&mut` that overlaps neither input.
        unsafe {
            gemm_raw(
                m,
                hi - lo,
                k,
                cp.at(lo),
                n as isize,
                acc,
                (a.as_ptr(), k as isize, 1),
                (b.as_ptr().wrapping_add(lo * k), 1, k as isize),
                gemm::Parallelism::None,
            );
        }
    };
    if parts == 1 {
        part(0);
    } else {
        (0..parts).into_par_iter().for_each(part);
    }
}

/// `c (m x n) [+]= a (m x k) b` with `b` stored `k x n` (an input gradient `dy W`).
fn mm_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: extents asserted above; `c` is a distinct `&mut`.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            c.as_mut_ptr(),
            n as isize,
            acc,
            (a.as_ptr(), k as isize, 1),
            (b.as_ptr(), n as isize, 1),
            gemm::Parallelism::Rayon(0),
        );
    }
}

/// `c (m x n) [+]= a^T b` with `a` stored `k x m`, `b` stored `k x n` (a weight gradient
/// `dy^T x`).
fn mm_tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: extents asserted above; `c` is a distinct `&mut`.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            c.as_mut_ptr(),
            n as isize,
            acc,
            (a.as_ptr(), 1, m as isize),
            (b.as_ptr(), n as isize, 1),
            gemm::Parallelism::Rayon(0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::GradientsParams;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Int, Tensor, TensorData};
    use kiln_tensor::testing::cpu;

    /// Deterministic values in `[-1, 1)`.
    fn noise(seed: u64, len: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// A model with weights large enough that attention is far from uniform and the norms
    /// are not all 1 (so every gradient term matters).
    fn random_model(c: &LlamaConfig, seed: u64, device: &burn::tensor::Device) -> Llama {
        let mut k = seed;
        let mut get = |_: &str, shape: &[usize]| -> Result<Vec<f32>> {
            k += 1;
            let len = shape.iter().product();
            let scale = if shape.len() == 1 {
                0.3
            } else {
                1.5 / (shape[1] as f32).sqrt()
            };
            Ok(noise(k, len)
                .into_iter()
                .map(|x| {
                    if shape.len() == 1 {
                        1.0 + scale * x
                    } else {
                        scale * x
                    }
                })
                .collect())
        };
        Llama::from_weights(c, device, &mut get).unwrap()
    }

    fn burn_loss(m: &Llama, b: &NextTokenBatch<'_>) -> Tensor<1> {
        let (rows, t) = (b.rows, b.len());
        let device = m.device();
        let ints = |v: &[u32], shape: Vec<usize>| {
            let data: Vec<i64> = v.iter().map(|&x| i64::from(x)).collect();
            TensorData::new(data, shape)
        };
        let inputs = Tensor::<2, Int>::from_data(ints(b.inputs, vec![rows, t]), &device);
        let targets = Tensor::<3, Int>::from_data(ints(b.targets, vec![rows, t, 1]), &device);
        let w: Vec<f32> = b.weights.map_or(vec![1.0; rows * t], <[f32]>::to_vec);
        let total = w.iter().sum::<f32>().max(1.0);
        let w = Tensor::<3>::from_data(TensorData::new(w, [rows, t, 1]), &device);
        (log_softmax(m.forward(inputs), 2).gather(2, targets) * w)
            .sum()
            .neg()
            .div_scalar(total)
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().iter::<f32>().next().unwrap()
    }

    struct Case {
        tied: bool,
        rows: usize,
        t: usize,
        masked: bool,
    }

    fn batch_data(c: &LlamaConfig, case: &Case, seed: u64) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
        let n = case.rows * (case.t + 1);
        let ids: Vec<u32> = noise(seed, n)
            .iter()
            .map(|x| ((x + 1.0) * 0.5 * c.vocab_size as f32) as u32 % c.vocab_size as u32)
            .collect();
        let (inputs, targets) = NextTokenBatch::shift(&ids, case.rows).unwrap();
        // A prompt mask: the first 3 positions of every row out, row 0 weighted 0.5 after.
        let weights = (0..case.rows * case.t)
            .map(|i| match (i / case.t, i % case.t) {
                (_, j) if j < 3 => 0.0,
                (0, _) => 0.5,
                _ => 1.0,
            })
            .collect();
        (inputs, targets, weights)
    }

    fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let err = got
            .iter()
            .zip(want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= rel * scale + 1e-7,
            "{what}: max error {err} against max magnitude {scale}"
        );
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                tied: true,
                rows: 2,
                t: 9,
                masked: false,
            },
            Case {
                tied: false,
                rows: 3,
                t: 6,
                masked: true,
            },
            Case {
                tied: true,
                rows: 2,
                t: 17,
                masked: true,
            },
        ]
    }

    fn config(tied: bool) -> LlamaConfig {
        // GQA with 2 query heads per key/value head (tiny: 4 / 2).
        LlamaConfig {
            tie_word_embeddings: tied,
            ..LlamaConfig::tiny(61)
        }
    }

    #[test]
    fn loss_and_every_gradient_equal_burn_autodiff() {
        let device = cpu().autodiff();
        for (ci, case) in cases().iter().enumerate() {
            let c = config(case.tied);
            let m = random_model(&c, 10 * ci as u64, &device);
            let (inputs, targets, weights) = batch_data(&c, case, ci as u64 + 100);
            let batch = NextTokenBatch::new(
                case.rows,
                &inputs,
                &targets,
                case.masked.then_some(weights.as_slice()),
            );
            let loss = burn_loss(&m, &batch);
            let want = scalar(loss.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let mut e = CpuTrainer::from_model(&m, &AdamSettings::default()).unwrap();
            let got = e.loss_and_grads(&batch).unwrap();
            assert!(
                (got - want).abs() < 1e-5 * want.abs().max(1.0),
                "case {ci}: {got} vs {want}"
            );
            for (name, _, g) in m.hf_grads(&grads) {
                let mine = e.tensor_grad(&name).unwrap();
                assert_close(&format!("case {ci}: {name}"), mine, &g, 1e-3);
            }
            // A second pass overwrites rather than accumulates.
            e.loss_and_grads(&batch).unwrap();
            let g = m.hf_grads(&grads);
            assert_close(
                "second pass",
                e.tensor_grad(&g[1].0).unwrap(),
                &g[1].2,
                1e-3,
            );
        }
    }

    /// The clipped surrogate with a k3 KL term (kiln-align's `pg_loss` per token, with
    /// per-token aggregation weights `coef`), written in burn ops.
    #[allow(clippy::too_many_arguments)]
    fn burn_pg_loss(
        m: &Llama,
        b: &NextTokenBatch<'_>,
        old: &[f32],
        reference: &[f32],
        adv: &[f32],
        coef: &[f32],
        (lo, hi, beta): (f32, f32, f32),
    ) -> (Tensor<1>, Tensor<1>, Vec<f32>) {
        let (rows, t) = (b.rows, b.len());
        let device = m.device();
        let ints = |v: &[u32], shape: Vec<usize>| {
            let data: Vec<i64> = v.iter().map(|&x| i64::from(x)).collect();
            TensorData::new(data, shape)
        };
        let host =
            |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [rows, t]), &device);
        let inputs = Tensor::<2, Int>::from_data(ints(b.inputs, vec![rows, t]), &device);
        let targets = Tensor::<3, Int>::from_data(ints(b.targets, vec![rows, t, 1]), &device);
        let logp_all = log_softmax(m.forward(inputs), 2);
        let entropy = (logp_all.clone().exp() * logp_all.clone())
            .sum_dim(2)
            .reshape([rows, t])
            .neg();
        let logp = logp_all.gather(2, targets).reshape([rows, t]);
        let ratio = (logp.clone() - host(old)).exp();
        let unclipped = ratio.clone() * host(adv);
        let clipped = ratio.clamp(lo, hi) * host(adv);
        let x = host(reference) - logp.clone();
        let k3 = x.clone().exp() - x - 1.0;
        let per_token = unclipped.min_pair(clipped).neg() + k3 * beta;
        let active: Vec<f32> = b.weights.map_or(vec![1.0; rows * t], |w| {
            w.iter().map(|&x| f32::from(u8::from(x != 0.0))).collect()
        });
        let mean_entropy = (entropy * host(&active)).sum() / active.iter().sum::<f32>().max(1.0);
        let logp_host: Vec<f32> = (logp.detach() * host(&active))
            .into_data()
            .iter::<f32>()
            .collect();
        ((per_token * host(coef)).sum(), mean_entropy, logp_host)
    }

    /// The per-token entry point on GRPO's loss: ratios spread over both clip bounds,
    /// advantages of both signs, a KL term and sequence-mean weights; the loss, the entropy,
    /// the log-probabilities and every parameter's gradient equal burn autodiff of the same
    /// loss.
    #[test]
    fn token_loss_gradients_equal_burn_autodiff() {
        let device = cpu().autodiff();
        let (lo, hi, beta) = (0.8f32, 1.28f32, 0.1f32);
        for (ci, case) in cases().iter().enumerate().skip(1) {
            let c = config(case.tied);
            let m = random_model(&c, 20 + ci as u64, &device);
            let (inputs, targets, weights) = batch_data(&c, case, ci as u64 + 200);
            let mask: Vec<f32> = weights
                .iter()
                .map(|&w| f32::from(u8::from(w != 0.0)))
                .collect();
            let batch = NextTokenBatch::new(case.rows, &inputs, &targets, Some(&mask));
            let n = mask.len();
            // logp of the model itself, shifted by noise: ratios exp(-0.5 u) in [0.6, 1.65].
            let (_, _, logp0) = burn_pg_loss(
                &m,
                &batch,
                &vec![0.0; n],
                &vec![0.0; n],
                &vec![0.0; n],
                &vec![0.0; n],
                (lo, hi, beta),
            );
            let old: Vec<f32> = logp0
                .iter()
                .zip(noise(ci as u64 + 300, n))
                .map(|(l, u)| l + 0.5 * u)
                .collect();
            let reference: Vec<f32> = logp0
                .iter()
                .zip(noise(ci as u64 + 400, n))
                .map(|(l, u)| l + 0.3 * u)
                .collect();
            let adv = noise(ci as u64 + 500, n);
            let lens: Vec<f32> = mask
                .chunks(case.t)
                .map(|r| r.iter().sum::<f32>().max(1.0))
                .collect();
            let coef: Vec<f32> = (0..n)
                .map(|i| mask[i] / (case.rows as f32 * lens[i / case.t]))
                .collect();
            let (loss, entropy, logp) =
                burn_pg_loss(&m, &batch, &old, &reference, &adv, &coef, (lo, hi, beta));
            let want = scalar(loss.clone());
            let want_entropy = scalar(entropy);
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let pg = |i: usize, lp: f32| {
                let r = (lp - old[i]).exp();
                let (unclipped, clipped) = (r * adv[i], r.clamp(lo, hi) * adv[i]);
                // burn's min_pair keeps the unclipped side on ties; clamp passes the gradient
                // inside [lo, hi] inclusive.
                let (surr, dsurr) = if clipped < unclipped {
                    (
                        clipped,
                        if (lo..=hi).contains(&r) {
                            r * adv[i]
                        } else {
                            0.0
                        },
                    )
                } else {
                    (unclipped, r * adv[i])
                };
                let x = reference[i] - lp;
                (
                    coef[i] * (-surr + beta * (x.exp() - x - 1.0)),
                    coef[i] * (-dsurr + beta * (1.0 - x.exp())),
                )
            };
            let mut e = CpuTrainer::from_model(&m, &AdamSettings::default()).unwrap();
            let got = e.token_loss_and_grads(&batch, &pg, true).unwrap();
            let clipped = (0..n)
                .filter(|&i| mask[i] != 0.0 && !(lo..=hi).contains(&(logp[i] - old[i]).exp()))
                .count();
            assert!(
                clipped > 0 && clipped < n / 2,
                "case {ci}: {clipped} clipped"
            );
            assert!(
                (got.loss - want).abs() < 1e-5 * want.abs().max(1.0),
                "case {ci}: {} vs {want}",
                got.loss
            );
            let h = got.entropy.unwrap();
            assert!(
                (h - want_entropy).abs() < 1e-5 * want_entropy.abs().max(1.0),
                "{h} vs {want_entropy}"
            );
            assert_close(&format!("case {ci}: logprobs"), &got.logprobs, &logp, 1e-5);
            for (name, _, g) in m.hf_grads(&grads) {
                assert_close(
                    &format!("case {ci}: {name}"),
                    e.tensor_grad(&name).unwrap(),
                    &g,
                    1e-3,
                );
            }
        }
    }

    #[test]
    fn one_adamw_step_equals_burn_optimizer() {
        let device = cpu().autodiff();
        let settings = AdamSettings {
            decoupled: true,
            weight_decay: 0.01,
            ..Default::default()
        };
        for (ci, case) in cases().iter().take(2).enumerate() {
            let c = config(case.tied);
            let m = random_model(&c, 7 + ci as u64, &device);
            let (inputs, targets, weights) = batch_data(&c, case, ci as u64);
            let batch = NextTokenBatch::new(
                case.rows,
                &inputs,
                &targets,
                case.masked.then_some(weights.as_slice()),
            );
            let mut e = CpuTrainer::from_model(&m, &settings).unwrap();
            let lr = 1e-3;
            let grads = GradientsParams::from_grads(burn_loss(&m, &batch).backward(), &m);
            let g_burn = m.hf_grads(&grads);
            let mut optim = settings.build().unwrap();
            let m = optim.step(lr, m, grads);
            e.train_step(&batch, lr).unwrap();
            assert_eq!(e.steps(), 1);
            for ((name, _, w), (_, _, g)) in m.hf_weights().into_iter().zip(g_burn) {
                let mine = e.tensor(&name).unwrap();
                // The first step moves a weight by lr * g / (|g| + eps) (plus the decay):
                // where g is within the engines' rounding of 0 its sign is noise, elsewhere
                // the moves must agree.
                let big = 1e-2 * g.iter().fold(0f32, |a, x| a.max(x.abs()));
                for ((x, y), g) in mine.iter().zip(&w).zip(&g) {
                    let tol = if g.abs() >= big { 1e-3 } else { 2.0 } * lr as f32;
                    assert!((x - y).abs() <= tol, "{name}: {x} vs {y} (gradient {g})");
                }
            }
        }
    }

    /// Finite differences of `sum(u * attention(qkv))` in each query, key and value entry.
    #[test]
    fn attention_backward_matches_finite_differences() {
        let c = LlamaConfig {
            hidden_size: 32,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            ..LlamaConfig::tiny(10)
        };
        let s = Dims::new(&c, 2, 5);
        let qkv = noise(1, s.n * s.w);
        let u = noise(2, s.n * s.d);
        let objective = |qkv: &[f32]| -> f64 {
            let mut probs = vec![0f32; s.b * s.heads * s.t * s.t];
            let mut y = vec![0f32; s.n * s.d];
            attention_forward(qkv, &mut probs, &mut y, &s);
            y.iter().zip(&u).map(|(a, b)| f64::from(a * b)).sum()
        };
        let mut probs = vec![0f32; s.b * s.heads * s.t * s.t];
        let mut y = vec![0f32; s.n * s.d];
        attention_forward(&qkv, &mut probs, &mut y, &s);
        let mut dscores = vec![0f32; s.b * s.kv_heads * s.t * s.t];
        let mut dqkv = vec![0f32; s.n * s.w];
        attention_backward(&qkv, &probs, &u, &mut dscores, &mut dqkv, &s);
        let h = 1e-2f32;
        for k in 0..qkv.len() {
            let (mut a, mut b) = (qkv.clone(), qkv.clone());
            a[k] += h;
            b[k] -= h;
            let want = (objective(&a) - objective(&b)) / (2.0 * f64::from(h));
            let got = f64::from(dqkv[k]);
            assert!(
                (got - want).abs() < 2e-3 * (1.0 + want.abs()),
                "entry {k}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn trained_weights_load_back_into_the_burn_model() {
        let device = cpu().autodiff();
        let case = &cases()[1];
        let c = config(case.tied);
        let m = random_model(&c, 3, &device);
        let (inputs, targets, _) = batch_data(&c, case, 5);
        let batch = NextTokenBatch::new(case.rows, &inputs, &targets, None);
        let settings = AdamSettings {
            decoupled: true,
            ..Default::default()
        };
        let mut e = CpuTrainer::from_model(&m, &settings).unwrap();
        let before = e.train_step(&batch, 1e-2).unwrap();
        let m = e.load_into(m).unwrap();
        for (name, _, w) in m.hf_weights() {
            assert_eq!(e.tensor(&name).unwrap(), w.as_slice(), "{name}");
        }
        let after = scalar(burn_loss(&m, &batch));
        assert!(after < before, "{after} !< {before}");
        let fresh = e.to_model(&cpu()).unwrap();
        let again = CpuTrainer::from_model(&fresh, &settings).unwrap();
        assert_eq!(again.params(), e.params());
    }

    #[test]
    fn bad_batches_are_typed_errors() {
        let device = cpu();
        let m = Llama::init(&config(true), &device).unwrap();
        let mut e = CpuTrainer::from_model(&m, &AdamSettings::default()).unwrap();
        let ok = [1u32, 2, 3, 4];
        let cases: [(NextTokenBatch<'_>, &str); 4] = [
            (NextTokenBatch::new(3, &ok, &ok, None), "multiple"),
            (NextTokenBatch::new(2, &ok, &ok[..3], None), "target"),
            (
                NextTokenBatch::new(2, &ok, &[1, 2, 3, 61], None),
                "vocab_size",
            ),
            (
                NextTokenBatch::new(2, &ok, &ok, Some(&[1.0, f32::NAN, 1.0, 1.0])),
                "finite",
            ),
        ];
        for (b, what) in cases {
            let err = e.loss_and_grads(&b).unwrap_err().to_string();
            assert!(err.contains(what), "{err}");
        }
        assert!(NextTokenBatch::shift(&[1, 2, 3], 2).is_err());
        // All weights zero: no loss, no gradient.
        let z = [0.0f32; 4];
        assert_eq!(
            e.loss_and_grads(&NextTokenBatch::new(2, &ok, &ok, Some(&z)))
                .unwrap(),
            0.0
        );
        assert!(e.grads().iter().all(|&g| g == 0.0));
    }
}
