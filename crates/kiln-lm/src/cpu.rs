//! A host-memory inference engine for the same Llama (no autodiff), for generation on the
//! CPU: decoding one token reads every weight once, so at batch 1 to 8 its speed is set by
//! memory bandwidth, and the tensor library's per-op dispatch and single-threaded small
//! matrix-vector products leave much of it unused.
//!
//! Here the weights stay in their `[out, in]` row-major layout (q/k/v and gate/up fused into
//! one matrix each), small-batch products split the output rows over all cores with
//! AVX2/FMA dot products (runtime-detected; portable fallback), larger ones (prompt
//! processing) go to the `gemm` crate's multithreaded kernels, and the KV cache is plain
//! host memory. A block of prompt positions attends with two single-threaded `gemm`
//! products per head (scores, then weighted values; heads in parallel), and the rotary
//! angles are computed once per call for all heads and layers. The arithmetic is the model of [`crate::model`] step for step (its tests
//! compare the two), so [`crate::generate()`] gives the same tokens on either.

use rayon::prelude::*;

use crate::config::LlamaConfig;
use crate::error::{LmError, Result, invalid};
use crate::model::{Llama, WeightFn, hf_layer_tensors};

struct Layer {
    attn_norm: Vec<f32>,
    /// `[d + 2 kv, d]`: q, k, v projections stacked.
    wqkv: Vec<f32>,
    wo: Vec<f32>,
    mlp_norm: Vec<f32>,
    /// `[2 f, d]`: gate and up projections stacked.
    wgu: Vec<f32>,
    wdown: Vec<f32>,
}

/// The host engine; see the module docs.
pub struct CpuLlama {
    config: LlamaConfig,
    layers: Vec<Layer>,
    /// `[V, d]`.
    embed: Vec<f32>,
    norm: Vec<f32>,
    /// `[V, d]` when the head is not tied.
    head: Option<Vec<f32>>,
    /// `inv_freq_i = theta^(-2i/D)` in `f32`, as the burn model computes it.
    inv_freq: Vec<f32>,
}

impl std::fmt::Debug for CpuLlama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuLlama")
            .field("config", &self.config)
            .finish()
    }
}

/// Keys and values per layer, row and key/value head (`[positions, D]` each), with the
/// padding mask and each row's next position id.
#[derive(Debug, Clone)]
pub struct CpuCache {
    k: Vec<Vec<Vec<f32>>>,
    v: Vec<Vec<Vec<f32>>>,
    valid: Vec<Vec<bool>>,
    next_pos: Vec<usize>,
    batch: usize,
}

impl CpuCache {
    /// Cached positions per row.
    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `M` dot products of one weight row with `M` input rows, sharing each load of the weight
/// row: `M` independent accumulator chains of 8 lanes (for `M = 1`, four chains over 32
/// lanes), which the compiler maps onto vector registers.
#[inline(always)]
fn dots_portable<const M: usize>(xs: [&[f32]; M], row: &[f32], out: &mut [f32]) {
    let n = row.len();
    if M == 1 {
        let x = xs[0];
        let mut acc = [0f32; 32];
        let full = n / 32 * 32;
        for c in (0..full).step_by(32) {
            let (w, xx) = (&row[c..c + 32], &x[c..c + 32]);
            for j in 0..32 {
                acc[j] = xx[j].mul_add(w[j], acc[j]);
            }
        }
        let mut s = 0f32;
        for k in full..n {
            s = x[k].mul_add(row[k], s);
        }
        let mut w = 16;
        while w > 0 {
            for j in 0..w {
                acc[j] += acc[j + w];
            }
            w /= 2;
        }
        out[0] = acc[0] + s;
        return;
    }
    let mut acc = [[0f32; 8]; M];
    let full = n / 8 * 8;
    for c in (0..full).step_by(8) {
        let w = &row[c..c + 8];
        for b in 0..M {
            let xx = &xs[b][c..c + 8];
            for j in 0..8 {
                acc[b][j] = xx[j].mul_add(w[j], acc[b][j]);
            }
        }
    }
    for b in 0..M {
        let mut s = 0f32;
        for k in full..n {
            s = xs[b][k].mul_add(row[k], s);
        }
        let a = &acc[b];
        out[b] = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])) + s;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2<const M: usize>(xs: [&[f32]; M], row: &[f32], out: &mut [f32]) {
    dots_portable::<M>(xs, row, out)
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn dots<const M: usize>(xs: [&[f32]; M], row: &[f32], out: &mut [f32], avx2: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2 {
            // SAFETY: the caller checked AVX2 and FMA support with `has_avx2`.
            return unsafe { dots_avx2::<M>(xs, row, out) };
        }
    }
    let _ = avx2;
    dots_portable::<M>(xs, row, out)
}

/// `dst[b] = x_b . row` for the `m` rows of `x`, in groups of 8, 4, 2 and 1.
fn row_dots(x: &[f32], m: usize, row: &[f32], dst: &mut [f32], avx2: bool) {
    let n = row.len();
    let xr = |b: usize| &x[b * n..(b + 1) * n];
    let mut b = 0;
    while b < m {
        let left = m - b;
        if left >= 8 {
            dots::<8>(std::array::from_fn(|i| xr(b + i)), row, &mut dst[b..], avx2);
            b += 8;
        } else if left >= 4 {
            dots::<4>(std::array::from_fn(|i| xr(b + i)), row, &mut dst[b..], avx2);
            b += 4;
        } else if left >= 2 {
            dots::<2>(std::array::from_fn(|i| xr(b + i)), row, &mut dst[b..], avx2);
            b += 2;
        } else {
            dots::<1>([xr(b)], row, &mut dst[b..], avx2);
            b += 1;
        }
    }
}

/// One dot product (attention scores).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut out = [0f32];
    dots_portable::<1>([a], b, &mut out);
    out[0]
}

/// Rows of `x` up to which the hand-written product is used; above, `gemm`.
const SMALL_M: usize = 16;

/// `y[m, out] = x[m, in] W^T` for `W` row-major `[out, in]`.
fn matmul_t(x: &[f32], m: usize, w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    let mut y = vec![0f32; m * out];
    if m <= SMALL_M {
        // Output rows in blocks over the thread pool; every block streams its weight rows
        // once and dots them with all `m` inputs (which stay in L1).
        const BLOCK: usize = 32;
        let avx2 = has_avx2();
        let mut yt = vec![0f32; out * m];
        yt.par_chunks_mut(BLOCK * m)
            .enumerate()
            .for_each(|(blk, chunk)| {
                for (r, dst) in chunk.chunks_mut(m).enumerate() {
                    let o = blk * BLOCK + r;
                    row_dots(x, m, &w[o * inp..(o + 1) * inp], dst, avx2);
                }
            });
        for o in 0..out {
            for b in 0..m {
                y[b * out + o] = yt[o * m + b];
            }
        }
    } else {
        // SAFETY: dst is m x out (row stride out), lhs m x inp (row stride inp), rhs is
        // W^T: element (k, n) at w[n * inp + k]; all slices hold exactly those extents.
        unsafe {
            gemm::gemm(
                m,
                out,
                inp,
                y.as_mut_ptr(),
                1,
                out as isize,
                false,
                x.as_ptr(),
                1,
                inp as isize,
                w.as_ptr(),
                inp as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
    }
    y
}

fn rms_norm_rows(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let d = w.len();
    let mut out = vec![0f32; x.len()];
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ms + eps as f32).sqrt();
        for ((o, v), g) in o.iter_mut().zip(row).zip(w) {
            *o = v * inv * g;
        }
    }
    out
}

/// Query rows per (row, head) from which attention runs as two `gemm` products (scores
/// `Q K^T`, then `P V`) instead of one dot product per query and key.
const GEMM_ATTENTION_T: usize = 8;

/// Causal attention of `t` queries (query `j` at `q[j * stride..][..dh]`, absolute position
/// `s0 + j`) over the cached `keys`/`vals` (`[s, dh]`, `s = s0 + t`) of one head, key `k`
/// visible to query `j` when `k == s0 + j` or (`k < s0 + j` and `valid[k]`); `[t, dh]`.
/// One query at a time: the decoding path.
#[allow(clippy::too_many_arguments)]
fn attend_rows(
    q: &[f32],
    stride: usize,
    keys: &[f32],
    vals: &[f32],
    valid: &[bool],
    s0: usize,
    t: usize,
    dh: usize,
    scale: f32,
) -> Vec<f32> {
    let s = s0 + t;
    let mut out = vec![0f32; t * dh];
    let mut p = vec![0f32; s];
    for j in 0..t {
        let q = &q[j * stride..j * stride + dh];
        let me = s0 + j;
        let mut mx = f32::NEG_INFINITY;
        for (k, pk) in p.iter_mut().enumerate().take(me + 1) {
            *pk = if k == me || valid[k] {
                dot(q, &keys[k * dh..(k + 1) * dh]) * scale
            } else {
                f32::NEG_INFINITY
            };
            mx = mx.max(*pk);
        }
        let mut z = 0f32;
        for pk in p.iter_mut().take(me + 1) {
            *pk = (*pk - mx).exp();
            z += *pk;
        }
        let o = &mut out[j * dh..(j + 1) * dh];
        for (k, &pk) in p.iter().enumerate().take(me + 1) {
            if pk > 0.0 {
                let w = pk / z;
                for (oo, vv) in o.iter_mut().zip(&vals[k * dh..(k + 1) * dh]) {
                    *oo += w * vv;
                }
            }
        }
    }
    out
}

/// [`attend_rows`] for a block of queries (prompt processing): the scores of all `t`
/// queries against all `s` keys in one single-threaded `gemm` (the caller parallelizes over
/// heads), the masked softmax row by row, and the weighted values in a second `gemm`.
#[allow(clippy::too_many_arguments)]
fn attend_block(
    q: &[f32],
    stride: usize,
    keys: &[f32],
    vals: &[f32],
    valid: &[bool],
    s0: usize,
    t: usize,
    dh: usize,
    scale: f32,
) -> Vec<f32> {
    let s = s0 + t;
    let mut p = vec![0f32; t * s];
    debug_assert!(q.len() >= (t - 1) * stride + dh && keys.len() >= s * dh);
    // SAFETY: dst is t x s (row stride s); lhs element (j, c) at q[j * stride + c], within
    // q for j < t, c < dh (checked above); rhs = K^T, element (c, k) at keys[k * dh + c].
    unsafe {
        gemm::gemm(
            t,
            s,
            dh,
            p.as_mut_ptr(),
            1,
            s as isize,
            false,
            q.as_ptr(),
            1,
            stride as isize,
            keys.as_ptr(),
            dh as isize,
            1,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for (j, row) in p.chunks_exact_mut(s).enumerate() {
        let me = s0 + j;
        let mut mx = f32::NEG_INFINITY;
        for (k, pk) in row.iter_mut().enumerate() {
            if k > me || (k < me && !valid[k]) {
                *pk = f32::NEG_INFINITY;
            }
            mx = mx.max(*pk);
        }
        let mut z = 0f32;
        for pk in row.iter_mut() {
            *pk = (*pk - mx).exp();
            z += *pk;
        }
        let inv = 1.0 / z;
        row.iter_mut().for_each(|pk| *pk *= inv);
    }
    let mut out = vec![0f32; t * dh];
    // SAFETY: dst is t x dh (row stride dh); lhs is p, t x s (row stride s); rhs element
    // (k, c) at vals[k * dh + c] for k < s, c < dh.
    unsafe {
        gemm::gemm(
            t,
            dh,
            s,
            out.as_mut_ptr(),
            1,
            dh as isize,
            false,
            p.as_ptr(),
            1,
            s as isize,
            vals.as_ptr(),
            1,
            dh as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    out
}

impl CpuLlama {
    /// Builds the engine from weights in Hugging Face names and layout (as
    /// [`Llama::from_weights`]).
    pub fn from_weights(config: &LlamaConfig, get: &mut WeightFn<'_>) -> Result<Self> {
        config.validate()?;
        let (d, v) = (config.hidden_size, config.vocab_size);
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let mut w: Vec<Vec<f32>> = Vec::with_capacity(9);
            for (name, shape) in hf_layer_tensors(config, l) {
                w.push(get(&name, &shape)?);
            }
            let mut it = w.into_iter();
            let mut next = || it.next().unwrap_or_default();
            let attn_norm = next();
            let mut wqkv = next();
            wqkv.extend(next());
            wqkv.extend(next());
            let wo = next();
            let mlp_norm = next();
            let mut wgu = next();
            wgu.extend(next());
            let wdown = next();
            layers.push(Layer {
                attn_norm,
                wqkv,
                wo,
                mlp_norm,
                wgu,
                wdown,
            });
        }
        let embed = get("model.embed_tokens.weight", &[v, d])?;
        let norm = get("model.norm.weight", &[d])?;
        let head = if config.tie_word_embeddings {
            None
        } else {
            Some(get("lm_head.weight", &[v, d])?)
        };
        let dh = config.head_dim();
        let inv_freq = (0..dh / 2)
            .map(|i| 1.0 / (config.rope_theta as f32).powf((2 * i) as f32 / dh as f32))
            .collect();
        Ok(Self {
            config: *config,
            layers,
            embed,
            norm,
            head,
            inv_freq,
        })
    }

    /// The engine for a burn model's current weights (e.g. after training).
    pub fn from_model(model: &Llama) -> Result<Self> {
        let weights = model.hf_weights();
        let mut get = |name: &str, _shape: &[usize]| -> Result<Vec<f32>> {
            weights
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, v)| v.clone())
                .ok_or_else(|| invalid("weight", name, "missing from the model"))
        };
        Self::from_weights(model.config(), &mut get)
    }

    /// The model's shape.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// An empty cache for `batch` rows.
    pub fn new_cache(&self, batch: usize) -> CpuCache {
        let (l, kvh) = (
            self.config.num_hidden_layers,
            self.config.num_key_value_heads,
        );
        CpuCache {
            k: vec![vec![Vec::new(); batch * kvh]; l],
            v: vec![vec![Vec::new(); batch * kvh]; l],
            valid: vec![Vec::new(); batch],
            next_pos: vec![0; batch],
            batch,
        }
    }

    /// `(cos, sin)` of every position's rotation angles, `[n, D/2]` each: computed once per
    /// call and shared by all heads and layers.
    fn rope_table(&self, pos: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(pos.len() * half);
        let mut sin = Vec::with_capacity(pos.len() * half);
        for &p in pos {
            for &f in &self.inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        (cos, sin)
    }

    /// Rotates every head of `x` (`[heads * D]`) by the angles `(cos, sin)` of one position.
    fn rope(x: &mut [f32], cos: &[f32], sin: &[f32]) {
        let half = cos.len();
        for head in x.chunks_exact_mut(2 * half) {
            for i in 0..half {
                let (c, s) = (cos[i], sin[i]);
                let (x1, x2) = (head[i], head[i + half]);
                head[i] = x1 * c - x2 * s;
                head[i + half] = x2 * c + x1 * s;
            }
        }
    }

    /// Runs `ids` (`[batch, t]`, `valid` false for padding) after the cached positions and
    /// returns the logits of each row's last new position (`[batch * V]`); the semantics of
    /// [`Llama::forward_cached`].
    pub fn forward_cached(
        &self,
        ids: &[u32],
        valid: &[bool],
        cache: &mut CpuCache,
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let b = cache.batch;
        if b == 0 || ids.is_empty() || !ids.len().is_multiple_of(b) || valid.len() != ids.len() {
            return Err(LmError::Shape {
                what: "ids and mask per row",
                expected: b,
                got: ids.len(),
            });
        }
        let t = ids.len() / b;
        let s0 = cache.len();
        if s0 + t > c.max_position_embeddings {
            return Err(LmError::TooLong {
                len: s0 + t,
                max: c.max_position_embeddings,
            });
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab_size) {
            return Err(invalid(
                "token id",
                bad,
                format!("must be below vocab_size = {}", c.vocab_size),
            ));
        }
        let (d, h, kvh, dh) = (
            c.hidden_size,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.head_dim(),
        );
        let kv = kvh * dh;
        let g = h / kvh;
        let n = b * t;
        let mut pos = vec![0usize; n];
        for r in 0..b {
            for j in 0..t {
                pos[r * t + j] = cache.next_pos[r];
                if valid[r * t + j] {
                    cache.next_pos[r] += 1;
                }
            }
            cache.valid[r].extend_from_slice(&valid[r * t..(r + 1) * t]);
        }
        let mut x = Vec::with_capacity(n * d);
        for &id in ids {
            x.extend_from_slice(&self.embed[id as usize * d..(id as usize + 1) * d]);
        }
        let scale = 1.0 / (dh as f32).sqrt();
        let half = dh / 2;
        let (rcos, rsin) = self.rope_table(&pos);
        for (li, layer) in self.layers.iter().enumerate() {
            let nrm = rms_norm_rows(&x, &layer.attn_norm, c.rms_norm_eps);
            let mut qkv = matmul_t(&nrm, n, &layer.wqkv, d + 2 * kv, d);
            let width = d + 2 * kv;
            for (i, row) in qkv.chunks_exact_mut(width).enumerate() {
                let (q, rest) = row.split_at_mut(d);
                let (c, sn) = (
                    &rcos[i * half..(i + 1) * half],
                    &rsin[i * half..(i + 1) * half],
                );
                Self::rope(q, c, sn);
                Self::rope(&mut rest[..kv], c, sn);
            }
            // Append keys and values.
            for r in 0..b {
                for j in 0..t {
                    let row = &qkv[(r * t + j) * width..(r * t + j + 1) * width];
                    for kh in 0..kvh {
                        cache.k[li][r * kvh + kh]
                            .extend_from_slice(&row[d + kh * dh..d + (kh + 1) * dh]);
                        cache.v[li][r * kvh + kh]
                            .extend_from_slice(&row[d + kv + kh * dh..d + kv + (kh + 1) * dh]);
                    }
                }
            }
            // Attention, one (row, head) pair per task.
            let (ck, cv, cvalid) = (&cache.k[li], &cache.v[li], &cache.valid);
            let mut y = vec![0f32; n * d];
            let pairs: Vec<(usize, usize)> =
                (0..b).flat_map(|r| (0..h).map(move |hh| (r, hh))).collect();
            let outs: Vec<Vec<f32>> = pairs
                .par_iter()
                .with_min_len(if t > 8 { 1 } else { 64 })
                .map(|&(r, hh)| {
                    let kh = hh / g;
                    let (keys, vals) = (&ck[r * kvh + kh], &cv[r * kvh + kh]);
                    let q0 = r * t * width + hh * dh;
                    if t >= GEMM_ATTENTION_T {
                        attend_block(&qkv[q0..], width, keys, vals, &cvalid[r], s0, t, dh, scale)
                    } else {
                        attend_rows(&qkv[q0..], width, keys, vals, &cvalid[r], s0, t, dh, scale)
                    }
                })
                .collect();
            for (&(r, hh), out) in pairs.iter().zip(outs) {
                for j in 0..t {
                    y[(r * t + j) * d + hh * dh..(r * t + j) * d + (hh + 1) * dh]
                        .copy_from_slice(&out[j * dh..(j + 1) * dh]);
                }
            }
            let o = matmul_t(&y, n, &layer.wo, d, d);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let nrm = rms_norm_rows(&x, &layer.mlp_norm, c.rms_norm_eps);
            let f = c.intermediate_size;
            let gu = matmul_t(&nrm, n, &layer.wgu, 2 * f, d);
            let mut act = vec![0f32; n * f];
            for (row, a) in gu.chunks_exact(2 * f).zip(act.chunks_exact_mut(f)) {
                for i in 0..f {
                    let gv = row[i];
                    a[i] = gv / (1.0 + (-gv).exp()) * row[f + i];
                }
            }
            let dn = matmul_t(&act, n, &layer.wdown, d, f);
            x.iter_mut().zip(&dn).for_each(|(a, b)| *a += b);
        }
        let mut last = Vec::with_capacity(b * d);
        for r in 0..b {
            last.extend_from_slice(&x[(r * t + t - 1) * d..(r * t + t) * d]);
        }
        let hn = rms_norm_rows(&last, &self.norm, c.rms_norm_eps);
        let head = self.head.as_deref().unwrap_or(&self.embed);
        Ok(matmul_t(&hn, b, head, c.vocab_size, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Int, Tensor, TensorData};
    use kiln_tensor::testing::cpu;

    #[test]
    fn products_match_naive() {
        let (inp, out) = (37, 45);
        let w: Vec<f32> = (0..out * inp)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        for m in [1, 3, 16, 17, 40] {
            let x: Vec<f32> = (0..m * inp)
                .map(|i| ((i * 104729) % 89) as f32 / 44.0 - 1.0)
                .collect();
            let y = matmul_t(&x, m, &w, out, inp);
            for b in 0..m {
                for o in 0..out {
                    let want: f32 = (0..inp).map(|k| x[b * inp + k] * w[o * inp + k]).sum();
                    assert!((y[b * out + o] - want).abs() < 1e-4, "m={m}");
                }
            }
        }
    }

    #[test]
    fn block_attention_equals_row_attention() {
        // Cached prefix of 5 (one padding key), 11 new queries, head dim 8, strided queries.
        let (s0, t, dh, stride) = (5, 11, 8, 24);
        let s = s0 + t;
        let f = |i: usize, m: usize| ((i * m) % 97) as f32 / 48.0 - 1.0;
        let q: Vec<f32> = (0..t * stride).map(|i| f(i, 7919)).collect();
        let keys: Vec<f32> = (0..s * dh).map(|i| f(i, 104_729)).collect();
        let vals: Vec<f32> = (0..s * dh).map(|i| f(i, 1_299_709)).collect();
        let mut valid = vec![true; s];
        valid[2] = false;
        valid[9] = false;
        let a = attend_rows(&q, stride, &keys, &vals, &valid, s0, t, dh, 0.35);
        let b = attend_block(&q, stride, &keys, &vals, &valid, s0, t, dh, 0.35);
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
            "{a:?}\n{b:?}"
        );
    }

    #[test]
    fn engine_equals_the_burn_model() {
        let device = cpu();
        kiln_tensor::Seeds::new(9).seed_device(&device);
        for tied in [true, false] {
            let mut c = LlamaConfig::tiny(50);
            c.tie_word_embeddings = tied;
            let m = Llama::init(&c, &device).unwrap();
            let e = CpuLlama::from_model(&m).unwrap();
            let seq = [
                4u32, 8, 15, 16, 23, 42, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
            ];
            let data: Vec<i64> = seq.iter().map(|&x| i64::from(x)).collect();
            let full: Vec<f32> = m
                .forward(Tensor::<2, Int>::from_data(
                    TensorData::new(data, [1, seq.len()]),
                    &device,
                ))
                .into_data()
                .iter::<f32>()
                .collect();
            let v = c.vocab_size;
            // Row 0 left-padded by 3; prefill 17 (> SMALL_M: the gemm path), then single steps.
            let mut cache = e.new_cache(2);
            let mut ids = vec![0, 0, 0];
            ids.extend_from_slice(&seq[..14]);
            ids.extend_from_slice(&seq[..17]);
            let mut valid = vec![false; 3];
            valid.extend(std::iter::repeat_n(true, 31));
            let l = e.forward_cached(&ids, &valid, &mut cache).unwrap();
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
            assert!(close(&l[..v], &full[13 * v..14 * v]));
            assert!(close(&l[v..], &full[16 * v..17 * v]));
            let l = e
                .forward_cached(&[seq[14], seq[17]], &[true, true], &mut cache)
                .unwrap();
            assert!(close(&l[..v], &full[14 * v..15 * v]));
            assert!(close(&l[v..], &full[17 * v..18 * v]));
        }
    }
}
