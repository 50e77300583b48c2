//! The Llama-architecture causal transformer (Touvron et al. 2023, "LLaMA"; the same block
//! as Hugging Face's `LlamaForCausalLM`), as a burn [`Module`] on the backend chosen at build
//! time.
//!
//! Block `l` (pre-norm, residual):
//! `h = x + W_o Attn(RoPE(W_q n), RoPE(W_k n), W_v n)` with `n = RMSNorm(x)`, then
//! `x' = h + W_down (silu(W_gate m) * (W_up m))` with `m = RMSNorm(h)` (SwiGLU, Shazeer
//! 2020, eq. 6). `RMSNorm(x) = w * x / sqrt(mean(x^2) + eps)` (Zhang & Sennrich 2019, eq. 4).
//! Rotary embeddings (Su et al. 2021, eq. 34) in the "rotate half" layout: for head width
//! `D`, `inv_freq_i = theta^(-2i/D)`, and `RoPE(x) = x cos(p f) + rotate_half(x) sin(p f)`
//! with `rotate_half([x1, x2]) = [-x2, x1]`. Grouped-query attention (Ainslie et al. 2023):
//! query head `h` reads key/value head `h / (H / H_kv)`. The logits are `RMSNorm(x_L) W_U`
//! with `W_U` the transposed token embedding when the embeddings are tied.
//!
//! Weights are kept as burn `Linear` layers (`[in, out]`); loaders convert from the
//! `[out, in]` layout of Hugging Face and GGUF files.

use burn::module::{Module, Param};
use burn::nn::{Embedding, Initializer, Linear};
use burn::optim::GradientsParams;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::LlamaConfig;
use crate::error::{LmError, Result};

/// One transformer block.
#[derive(Module, Debug)]
pub struct LlamaLayer {
    attn_norm: Param<Tensor<1>>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    mlp_norm: Param<Tensor<1>>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The model; see the module docs.
#[derive(Module, Debug)]
pub struct Llama {
    embed: Embedding,
    layers: Vec<LlamaLayer>,
    norm: Param<Tensor<1>>,
    lm_head: Option<Linear>,
    #[module(skip)]
    config: LlamaConfig,
}

/// Keys and values of every layer for the tokens seen so far, with the padding mask, so
/// that decoding one more token costs one position instead of the whole prefix.
#[derive(Debug, Clone)]
pub struct KvCache {
    keys: Vec<Option<Tensor<4>>>,
    values: Vec<Option<Tensor<4>>>,
    /// `[batch * len]`: 1 where the cached position holds a real token, 0 for padding.
    valid: Vec<bool>,
    batch: usize,
    len: usize,
    /// Position id of each row's next real token.
    next_pos: Vec<usize>,
}

impl KvCache {
    /// An empty cache for `batch` rows of `model`.
    pub fn new(model: &Llama, batch: usize) -> Self {
        let n = model.config.num_hidden_layers;
        Self {
            keys: vec![None; n],
            values: vec![None; n],
            valid: Vec::new(),
            batch,
            len: 0,
            next_pos: vec![0; batch],
        }
    }

    /// Cached positions (including padding).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// `[B, 1, T, D/2]` cos and sin tables for position ids `pos` (`[B * T]`), computed in
/// `f32` as Hugging Face does.
fn rope_tables(
    pos: &[usize],
    b: usize,
    t: usize,
    dh: usize,
    theta: f64,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let half = dh / 2;
    let inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / dh as f32))
        .collect();
    let mut cos = Vec::with_capacity(b * t * half);
    let mut sin = Vec::with_capacity(b * t * half);
    for &p in pos {
        for &f in &inv {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    let up = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [b, 1, t, half]), device);
    (up(cos), up(sin))
}

fn rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().slice([0..b, 0..h, 0..t, 0..half]);
    let x2 = x.slice([0..b, 0..h, 0..t, half..d]);
    Tensor::cat(
        vec![
            x1.clone() * cos.clone() - x2.clone() * sin.clone(),
            x2 * cos.clone() + x1 * sin.clone(),
        ],
        3,
    )
}

fn rms_norm(x: Tensor<3>, w: &Param<Tensor<1>>, eps: f64) -> Tensor<3> {
    let d = x.dims()[2];
    let inv = (x.clone().powi_scalar(2).mean_dim(2) + eps).sqrt().recip();
    x * inv * w.val().reshape([1, 1, d])
}

fn linear_from(w: Tensor<2>) -> Linear {
    Linear {
        weight: Param::from_tensor(w),
        bias: None,
    }
}

/// Host transpose of a row-major `[rows, cols]` matrix.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// A source of named weights in Hugging Face's names and layouts (`[out, in]` matrices):
/// `get(name, shape)` returns the row-major values or an error naming the tensor and file.
pub type WeightFn<'a> = dyn FnMut(&str, &[usize]) -> Result<Vec<f32>> + 'a;

/// Hugging Face parameter names of layer `l`, with the shape (`[out, in]`) of each.
pub fn hf_layer_tensors(c: &LlamaConfig, l: usize) -> Vec<(String, Vec<usize>)> {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let kv = c.num_key_value_heads * c.head_dim();
    let p = format!("model.layers.{l}");
    vec![
        (format!("{p}.input_layernorm.weight"), vec![d]),
        (format!("{p}.self_attn.q_proj.weight"), vec![d, d]),
        (format!("{p}.self_attn.k_proj.weight"), vec![kv, d]),
        (format!("{p}.self_attn.v_proj.weight"), vec![kv, d]),
        (format!("{p}.self_attn.o_proj.weight"), vec![d, d]),
        (format!("{p}.post_attention_layernorm.weight"), vec![d]),
        (format!("{p}.mlp.gate_proj.weight"), vec![f, d]),
        (format!("{p}.mlp.up_proj.weight"), vec![f, d]),
        (format!("{p}.mlp.down_proj.weight"), vec![d, f]),
    ]
}

impl Llama {
    /// A freshly initialized model (weights `N(0, 0.02^2)`, norms 1, as Hugging Face
    /// initializes Llama); seed the device first for reproducible weights.
    pub fn init(config: &LlamaConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let mat = |i: usize, o: usize| linear_from(init.init([i, o], device).val());
        let (d, f) = (config.hidden_size, config.intermediate_size);
        let kv = config.num_key_value_heads * config.head_dim();
        let ones = || Param::from_tensor(Tensor::<1>::ones([d], device));
        let layers = (0..config.num_hidden_layers)
            .map(|_| LlamaLayer {
                attn_norm: ones(),
                q: mat(d, d),
                k: mat(d, kv),
                v: mat(d, kv),
                o: mat(d, d),
                mlp_norm: ones(),
                gate: mat(d, f),
                up: mat(d, f),
                down: mat(f, d),
            })
            .collect();
        Ok(Self {
            embed: Embedding {
                weight: init.init([config.vocab_size, d], device),
            },
            layers,
            norm: ones(),
            lm_head: (!config.tie_word_embeddings).then(|| mat(d, config.vocab_size)),
            config: *config,
        })
    }

    /// Builds the model from weights named and laid out as in Hugging Face's
    /// `LlamaForCausalLM` (see [`hf_layer_tensors`]).
    pub fn from_weights(
        config: &LlamaConfig,
        device: &Device,
        get: &mut WeightFn<'_>,
    ) -> Result<Self> {
        config.validate()?;
        let (d, v) = (config.hidden_size, config.vocab_size);
        let mat = |get: &mut WeightFn<'_>, name: &str, shape: &[usize]| -> Result<Linear> {
            let w = get(name, shape)?;
            let t = transpose(&w, shape[0], shape[1]);
            Ok(linear_from(Tensor::from_data(
                TensorData::new(t, [shape[1], shape[0]]),
                device,
            )))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let names = hf_layer_tensors(config, l);
            let mut lin = Vec::with_capacity(7);
            let mut norms = Vec::with_capacity(2);
            for (name, shape) in &names {
                if shape.len() == 1 {
                    let w = get(name, shape)?;
                    norms.push(Param::from_tensor(Tensor::<1>::from_data(
                        TensorData::new(w, [shape[0]]),
                        device,
                    )));
                } else {
                    lin.push(mat(get, name, shape)?);
                }
            }
            let mut lin = lin.into_iter();
            let mut norms = norms.into_iter();
            let mut next = || lin.next().expect("seven matrices per layer");
            layers.push(LlamaLayer {
                attn_norm: norms.next().expect("two norms per layer"),
                q: next(),
                k: next(),
                v: next(),
                o: next(),
                mlp_norm: norms.next().expect("two norms per layer"),
                gate: next(),
                up: next(),
                down: next(),
            });
        }
        let emb = get("model.embed_tokens.weight", &[v, d])?;
        let norm = get("model.norm.weight", &[d])?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(mat(get, "lm_head.weight", &[v, d])?)
        };
        Ok(Self {
            embed: Embedding {
                weight: Param::from_tensor(Tensor::from_data(TensorData::new(emb, [v, d]), device)),
            },
            layers,
            norm: Param::from_tensor(Tensor::from_data(TensorData::new(norm, [d]), device)),
            lm_head,
            config: *config,
        })
    }

    /// Every weight in Hugging Face's names and `[out, in]` layout (what
    /// [`Llama::from_weights`] reads back).
    pub fn hf_weights(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let c = &self.config;
        let host = |t: Tensor<2>| -> (Vec<usize>, Vec<f32>) {
            let [i, o] = t.dims();
            let v: Vec<f32> = t.into_data().iter::<f32>().collect();
            (vec![o, i], transpose(&v, i, o))
        };
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let names = hf_layer_tensors(c, l);
            let mats = [
                &layer.q,
                &layer.k,
                &layer.v,
                &layer.o,
                &layer.gate,
                &layer.up,
                &layer.down,
            ];
            let mut mats = mats.iter();
            for (name, shape) in names {
                if shape.len() == 1 {
                    let w = if name.contains("input_layernorm") {
                        &layer.attn_norm
                    } else {
                        &layer.mlp_norm
                    };
                    out.push((name, shape, w.val().into_data().iter::<f32>().collect()));
                } else {
                    let (s, v) = host(mats.next().expect("seven matrices").weight.val());
                    out.push((name, s, v));
                }
            }
        }
        let e = self.embed.weight.val();
        let dims = e.dims().to_vec();
        out.push((
            "model.embed_tokens.weight".into(),
            dims,
            e.into_data().iter::<f32>().collect(),
        ));
        out.push((
            "model.norm.weight".into(),
            vec![c.hidden_size],
            self.norm.val().into_data().iter::<f32>().collect(),
        ));
        if let Some(h) = &self.lm_head {
            let (s, v) = host(h.weight.val());
            out.push(("lm_head.weight".into(), s, v));
        }
        out
    }

    /// The gradients in `grads` of every weight, in the names, order and layout of
    /// [`Llama::hf_weights`] (zeros for a weight without a gradient): compares burn's
    /// autodiff with the host training engine.
    pub fn hf_grads(&self, grads: &GradientsParams) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mat = |w: &Param<Tensor<2>>| -> Vec<f32> {
            let [i, o] = w.val().dims();
            grads.get::<2>(w.id).map_or_else(
                || vec![0.0; i * o],
                |g| transpose(&g.into_data().iter::<f32>().collect::<Vec<_>>(), i, o),
            )
        };
        let vec1 = |w: &Param<Tensor<1>>| -> Vec<f32> {
            let [d] = w.val().dims();
            grads
                .get::<1>(w.id)
                .map_or_else(|| vec![0.0; d], |g| g.into_data().iter::<f32>().collect())
        };
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let values = [
                vec1(&layer.attn_norm),
                mat(&layer.q.weight),
                mat(&layer.k.weight),
                mat(&layer.v.weight),
                mat(&layer.o.weight),
                vec1(&layer.mlp_norm),
                mat(&layer.gate.weight),
                mat(&layer.up.weight),
                mat(&layer.down.weight),
            ];
            for ((name, shape), v) in hf_layer_tensors(&self.config, l).into_iter().zip(values) {
                out.push((name, shape, v));
            }
        }
        let e = &self.embed.weight;
        let dims = e.val().dims().to_vec();
        let ge = grads.get::<2>(e.id).map_or_else(
            || vec![0.0; dims[0] * dims[1]],
            |g| g.into_data().iter::<f32>().collect(),
        );
        out.push(("model.embed_tokens.weight".into(), dims, ge));
        out.push((
            "model.norm.weight".into(),
            vec![self.config.hidden_size],
            vec1(&self.norm),
        ));
        if let Some(h) = &self.lm_head {
            let [d, v] = h.weight.val().dims();
            out.push(("lm_head.weight".into(), vec![v, d], mat(&h.weight)));
        }
        out
    }

    /// This model with every weight replaced by `get`'s (Hugging Face names and layout, as
    /// [`Llama::from_weights`] reads them), keeping each parameter's id, device and
    /// autodiff flag, so optimizer state and checkpoints keep lining up.
    pub fn load_hf_weights(self, get: &mut WeightFn<'_>) -> Result<Self> {
        let c = self.config;
        let replace = |t: Tensor<2>, v: Vec<f32>, transposed: bool| -> Tensor<2> {
            let [a, b] = t.dims();
            let v = if transposed { transpose(&v, b, a) } else { v };
            let require_grad = t.is_require_grad();
            Tensor::from_data(TensorData::new(v, [a, b]), &t.device())
                .set_require_grad(require_grad)
        };
        let replace1 = |t: Tensor<1>, v: Vec<f32>| -> Tensor<1> {
            let require_grad = t.is_require_grad();
            let d = t.dims()[0];
            Tensor::from_data(TensorData::new(v, [d]), &t.device()).set_require_grad(require_grad)
        };
        let mut fetch = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let v = get(name, shape)?;
            let len = shape.iter().product::<usize>();
            if v.len() == len {
                Ok(v)
            } else {
                Err(LmError::Shape {
                    what: "weight values",
                    expected: len,
                    got: v.len(),
                })
            }
        };
        let mut layers = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.into_iter().enumerate() {
            let names = hf_layer_tensors(&c, l);
            let mut vals = Vec::with_capacity(names.len());
            for (name, shape) in &names {
                vals.push(fetch(name, shape)?);
            }
            let mut vals = vals.into_iter();
            let mut next = || vals.next().unwrap_or_default();
            let lin = |lin: Linear, v: Vec<f32>| Linear {
                weight: lin.weight.map(|t| replace(t, v, true)),
                bias: lin.bias,
            };
            let attn_norm = layer.attn_norm.map(|t| replace1(t, next()));
            let q = lin(layer.q, next());
            let k = lin(layer.k, next());
            let v = lin(layer.v, next());
            let o = lin(layer.o, next());
            let mlp_norm = layer.mlp_norm.map(|t| replace1(t, next()));
            layers.push(LlamaLayer {
                attn_norm,
                q,
                k,
                v,
                o,
                mlp_norm,
                gate: lin(layer.gate, next()),
                up: lin(layer.up, next()),
                down: lin(layer.down, next()),
            });
        }
        let (d, vocab) = (c.hidden_size, c.vocab_size);
        let emb = fetch("model.embed_tokens.weight", &[vocab, d])?;
        let norm = fetch("model.norm.weight", &[d])?;
        let lm_head = match self.lm_head {
            Some(h) => {
                let v = fetch("lm_head.weight", &[vocab, d])?;
                Some(Linear {
                    weight: h.weight.map(|t| replace(t, v, true)),
                    bias: h.bias,
                })
            }
            None => None,
        };
        Ok(Self {
            embed: Embedding {
                weight: self.embed.weight.map(|t| replace(t, emb, false)),
            },
            layers,
            norm: self.norm.map(|t| replace1(t, norm)),
            lm_head,
            config: c,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The device of the parameters.
    pub fn device(&self) -> Device {
        self.norm.val().device()
    }

    /// The unembedding `W_U` `[hidden, vocab]` (`logits = h W_U`).
    pub fn unembedding(&self) -> Tensor<2> {
        match &self.lm_head {
            Some(h) => h.weight.val(),
            None => self.embed.weight.val().transpose(),
        }
    }

    /// Logits `[B, T, V]` of final hidden states `[B, T, H]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        // A 2-D matmul reads the transposed embedding through its strides; the batched
        // `linear` would first copy the whole `[H, V]` view into a contiguous buffer.
        let [b, t, h] = hidden.dims();
        let w = self.unembedding();
        let v = w.dims()[1];
        hidden.reshape([b * t, h]).matmul(w).reshape([b, t, v])
    }

    fn attention(
        &self,
        layer: &LlamaLayer,
        x: Tensor<3>,
        rope_t: &(Tensor<4>, Tensor<4>),
        bias: &Tensor<5>,
        cache: Option<(&mut Option<Tensor<4>>, &mut Option<Tensor<4>>)>,
    ) -> Tensor<3> {
        let c = &self.config;
        let [b, t, d] = x.dims();
        let (h, kvh, dh) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim());
        let g = h / kvh;
        let heads = |y: Tensor<3>, n: usize| y.reshape([b, t, n, dh]).swap_dims(1, 2);
        let q = rope(heads(layer.q.forward(x.clone()), h), &rope_t.0, &rope_t.1);
        let mut k = rope(heads(layer.k.forward(x.clone()), kvh), &rope_t.0, &rope_t.1);
        let mut v = heads(layer.v.forward(x), kvh);
        if let Some((ck, cv)) = cache {
            if let Some(prev) = ck.take() {
                k = Tensor::cat(vec![prev, k], 2);
            }
            if let Some(prev) = cv.take() {
                v = Tensor::cat(vec![prev, v], 2);
            }
            *ck = Some(k.clone());
            *cv = Some(v.clone());
        }
        let s = k.dims()[2];
        let scores = q
            .reshape([b, kvh, g * t, dh])
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (dh as f64).sqrt())
            .reshape([b, kvh, g, t, s])
            + bias.clone();
        let p = softmax(scores, 4).reshape([b, kvh, g * t, s]);
        let y = p
            .matmul(v)
            .reshape([b, h, t, dh])
            .swap_dims(1, 2)
            .reshape([b, t, d]);
        layer.o.forward(y)
    }

    fn mlp(layer: &LlamaLayer, x: Tensor<3>) -> Tensor<3> {
        layer
            .down
            .forward(silu(layer.gate.forward(x.clone())) * layer.up.forward(x))
    }

    fn blocks(
        &self,
        mut x: Tensor<3>,
        rope_t: &(Tensor<4>, Tensor<4>),
        bias: &Tensor<5>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let eps = self.config.rms_norm_eps;
        for (l, layer) in self.layers.iter().enumerate() {
            let slot = cache
                .as_deref_mut()
                .map(|c| (&mut c.keys[l], &mut c.values[l]));
            let a = self.attention(
                layer,
                rms_norm(x.clone(), &layer.attn_norm, eps),
                rope_t,
                bias,
                slot,
            );
            x = x + a;
            let m = Self::mlp(layer, rms_norm(x.clone(), &layer.mlp_norm, eps));
            x = x + m;
        }
        rms_norm(x, &self.norm, eps)
    }

    /// Final hidden states `[B, T, H]` of ids `[B, T]` at positions `0..T` with a causal
    /// mask (right padding needs no mask: a position never sees later ones).
    pub fn forward_hidden(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let pos: Vec<usize> = (0..b).flat_map(|_| 0..t).collect();
        let rope_t = rope_tables(
            &pos,
            b,
            t,
            self.config.head_dim(),
            self.config.rope_theta,
            &device,
        );
        let causal: Vec<f32> = (0..t * t)
            .map(|i| if i % t > i / t { -1e9 } else { 0.0 })
            .collect();
        let bias = Tensor::<2>::from_data(TensorData::new(causal, [t, t]), &device)
            .reshape([1, 1, 1, t, t]);
        self.blocks(self.embed.forward(ids), &rope_t, &bias, None)
    }

    /// Logits `[B, T, V]` of ids `[B, T]` (see [`Llama::forward_hidden`]).
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.logits(self.forward_hidden(ids))
    }

    /// Runs `ids` (`[batch, t]` row-major, `valid[i]` false for padding) through the model
    /// after the positions already in `cache`, appending them to it. Returns the logits of
    /// the last new position of every row (`[batch, V]`), or of every new position
    /// (`[batch, t, V]` flattened) when `all_logits`.
    ///
    /// Padding is masked out as a key; each real token gets the position id "number of real
    /// tokens before it in its row", so left-padded prompts decode exactly as unpadded ones.
    pub fn forward_cached(
        &self,
        ids: &[u32],
        valid: &[bool],
        cache: &mut KvCache,
        all_logits: bool,
    ) -> Result<Tensor<3>> {
        let b = cache.batch;
        if b == 0 || !ids.len().is_multiple_of(b) || ids.is_empty() {
            return Err(LmError::Shape {
                what: "ids per row",
                expected: b,
                got: ids.len(),
            });
        }
        if valid.len() != ids.len() {
            return Err(LmError::Shape {
                what: "padding mask",
                expected: ids.len(),
                got: valid.len(),
            });
        }
        let t = ids.len() / b;
        let s0 = cache.len;
        let s = s0 + t;
        if s > self.config.max_position_embeddings {
            return Err(LmError::TooLong {
                len: s,
                max: self.config.max_position_embeddings,
            });
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(crate::error::invalid(
                "token id",
                bad,
                format!("must be below vocab_size = {}", self.config.vocab_size),
            ));
        }
        let device = self.device();
        // Position ids and the new validity mask.
        let mut pos = Vec::with_capacity(b * t);
        let mut valid_all = Vec::with_capacity(b * s);
        for r in 0..b {
            valid_all.extend_from_slice(&cache.valid[r * s0..(r + 1) * s0]);
            valid_all.extend_from_slice(&valid[r * t..(r + 1) * t]);
            for j in 0..t {
                pos.push(cache.next_pos[r]);
                if valid[r * t + j] {
                    cache.next_pos[r] += 1;
                }
            }
        }
        // Additive bias [B, 1, 1, T, S]: query j (absolute s0 + j) sees real keys <= itself,
        // and always itself (so a padding query stays finite).
        let mut bias = vec![0f32; b * t * s];
        for r in 0..b {
            for j in 0..t {
                for k in 0..s {
                    let ok = k == s0 + j || (k < s0 + j && valid_all[r * s + k]);
                    if !ok {
                        bias[(r * t + j) * s + k] = -1e9;
                    }
                }
            }
        }
        let bias = Tensor::<5>::from_data(TensorData::new(bias, [b, 1, 1, t, s]), &device);
        let rope_t = rope_tables(
            &pos,
            b,
            t,
            self.config.head_dim(),
            self.config.rope_theta,
            &device,
        );
        let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let x = self.embed.forward(Tensor::<2, Int>::from_data(
            TensorData::new(data, [b, t]),
            &device,
        ));
        cache.valid = valid_all;
        cache.len = s;
        let hidden = self.blocks(x, &rope_t, &bias, Some(cache));
        let hidden = if all_logits {
            hidden
        } else {
            hidden.slice([0..b, t - 1..t, 0..self.config.hidden_size])
        };
        Ok(self.logits(hidden))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_tensor::testing::cpu;

    fn host(t: Tensor<3>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn cached_decoding_equals_full_forward_with_left_padding() {
        let device = cpu();
        kiln_tensor::Seeds::new(3).seed_device(&device);
        let c = LlamaConfig::tiny(40);
        let m = Llama::init(&c, &device).unwrap();
        let seq: Vec<u32> = vec![5, 9, 2, 33, 7, 1, 12];
        let v = c.vocab_size;
        let full = host(m.forward(Tensor::<2, Int>::from_data(
            TensorData::new(
                seq.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(),
                [1, seq.len()],
            ),
            &device,
        )));
        // Row 0: the sequence with two padding tokens in front; row 1: unpadded, prefill 4
        // then one token at a time.
        let mut cache = KvCache::new(&m, 2);
        let mut ids = vec![0, 0, 5, 9];
        ids.extend_from_slice(&seq[..4]);
        let valid = [false, false, true, true, true, true, true, true];
        let l = host(m.forward_cached(&ids, &valid, &mut cache, false).unwrap());
        // Row 0's last prompt token is seq[1]; row 1's is seq[3].
        for i in 0..v {
            assert!((l[i] - full[v + i]).abs() < 1e-4);
            assert!((l[v + i] - full[3 * v + i]).abs() < 1e-4);
        }
        let step = host(
            m.forward_cached(&[seq[2], seq[4]], &[true, true], &mut cache, false)
                .unwrap(),
        );
        for i in 0..v {
            assert!((step[i] - full[2 * v + i]).abs() < 1e-4);
            assert!((step[v + i] - full[4 * v + i]).abs() < 1e-4);
        }
        assert_eq!(cache.len(), 5);
    }

    #[test]
    fn weights_round_trip_through_hf_layout() {
        let device = cpu();
        kiln_tensor::Seeds::new(4).seed_device(&device);
        let mut c = LlamaConfig::tiny(30);
        c.tie_word_embeddings = false;
        let m = Llama::init(&c, &device).unwrap();
        let w = m.hf_weights();
        let mut get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let (_, s, v) = w.iter().find(|(n, _, _)| n == name).unwrap();
            assert_eq!(s, shape, "{name}");
            Ok(v.clone())
        };
        let m2 = Llama::from_weights(&c, &device, &mut get).unwrap();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &device);
        assert_eq!(host(m.forward(ids.clone())), host(m2.forward(ids)));
    }
}
