//! Seeded sampling and KV-cached generation with streaming, stop strings and batches of
//! left-padded prompts.
//!
//! Each step samples from `softmax(logits / T)` restricted to the `top_k` largest logits and
//! then to the smallest set whose probability reaches `top_p` (Holtzman et al. 2020,
//! nucleus sampling, eq. 2); `T = 0` is greedy decoding (ties go to the lowest id).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;
use crate::cpu::{CpuCache, CpuLlama};
use crate::error::{Result, invalid};
use crate::model::{KvCache, Llama};
use crate::tokenizer::{StreamDecoder, Tokenizer};

/// A model that can continue token ids with a cache: the burn [`Llama`] on any backend,
/// or the host engine [`CpuLlama`].
pub trait Decoder {
    /// The per-call cache.
    type Cache;
    /// The model's shape.
    fn config(&self) -> &LlamaConfig;
    /// An empty cache for `batch` rows.
    fn new_cache(&self, batch: usize) -> Self::Cache;
    /// Cached positions.
    fn cache_len(cache: &Self::Cache) -> usize;
    /// Runs `ids` (`[batch, t]`, `valid` false for padding) after the cache; returns the
    /// logits of each row's last new position, `[batch * V]` on the host.
    fn step(&self, ids: &[u32], valid: &[bool], cache: &mut Self::Cache) -> Result<Vec<f32>>;
}

impl Decoder for Llama {
    type Cache = KvCache;
    fn config(&self) -> &LlamaConfig {
        Llama::config(self)
    }
    fn new_cache(&self, batch: usize) -> KvCache {
        KvCache::new(self, batch)
    }
    fn cache_len(cache: &KvCache) -> usize {
        cache.len()
    }
    fn step(&self, ids: &[u32], valid: &[bool], cache: &mut KvCache) -> Result<Vec<f32>> {
        Ok(self
            .forward_cached(ids, valid, cache, false)?
            .into_data()
            .iter::<f32>()
            .collect())
    }
}

impl Decoder for CpuLlama {
    type Cache = CpuCache;
    fn config(&self) -> &LlamaConfig {
        CpuLlama::config(self)
    }
    fn new_cache(&self, batch: usize) -> CpuCache {
        CpuLlama::new_cache(self, batch)
    }
    fn cache_len(cache: &CpuCache) -> usize {
        cache.len()
    }
    fn step(&self, ids: &[u32], valid: &[bool], cache: &mut CpuCache) -> Result<Vec<f32>> {
        self.forward_cached(ids, valid, cache)
    }
}

/// Sampling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateOptions {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f64,
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Nucleus: smallest set of tokens with probability at least `top_p`.
    pub top_p: f64,
    /// Most new tokens per row.
    pub max_new_tokens: usize,
    /// Generation of a row stops once its text contains one of these (the stop string is
    /// cut from the returned text).
    pub stop: Vec<String>,
    /// Seed of the sampling stream.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 0,
            top_p: 0.9,
            max_new_tokens: 128,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

impl GenerateOptions {
    /// Greedy decoding of up to `max_new_tokens`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            max_new_tokens,
            ..Self::default()
        }
    }

    /// Checks ranges, naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(invalid(
                "temperature",
                self.temperature,
                "must be finite and >= 0",
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(invalid("top_p", self.top_p, "must lie in (0, 1]"));
        }
        if self.max_new_tokens == 0 {
            return Err(invalid("max_new_tokens", 0, "must be at least 1"));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(invalid("stop", "\"\"", "stop strings must not be empty"));
        }
        Ok(())
    }
}

/// Index of the largest logit (ties: lowest id).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws one id from `logits` with temperature, top-k and top-p.
pub fn sample_token(logits: &[f32], opts: &GenerateOptions, rng: &mut StdRng) -> u32 {
    sample_filtered(logits, opts.temperature, opts.top_k, opts.top_p, None, rng)
}

/// Draws one id from `logits` with `temperature` (0: greedy), `top_k` (0: all) and nucleus
/// `top_p`, never returning `excluded` (a padding id a policy must not emit). One uniform
/// draw per call, so a seeded stream gives the same ids on every run.
pub fn sample_filtered(
    logits: &[f32],
    temperature: f64,
    top_k: usize,
    top_p: f64,
    excluded: Option<u32>,
    rng: &mut StdRng,
) -> u32 {
    let allowed = |i: usize| Some(i as u32) != excluded;
    if temperature == 0.0 {
        return (0..logits.len())
            .filter(|&i| allowed(i))
            .fold(None, |best: Option<usize>, i| match best {
                Some(b) if logits[b] >= logits[i] => Some(b),
                _ => Some(i),
            })
            .map_or(0, |i| i as u32);
    }
    let mut order: Vec<usize> = (0..logits.len()).filter(|&i| allowed(i)).collect();
    if order.is_empty() {
        return 0;
    }
    if top_k > 0 && top_k < order.len() {
        order.select_nth_unstable_by(top_k - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
        order.truncate(top_k);
    }
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top = f64::from(logits[order[0]]);
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((f64::from(logits[i]) - top) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut keep = weights.len();
    if top_p < 1.0 {
        let mut acc = 0.0;
        for (j, w) in weights.iter().enumerate() {
            acc += w / total;
            if acc >= top_p {
                keep = j + 1;
                break;
            }
        }
    }
    let kept: f64 = weights[..keep].iter().sum();
    let mut u = rng.random::<f64>() * kept;
    for j in 0..keep {
        u -= weights[j];
        if u <= 0.0 {
            return order[j] as u32;
        }
    }
    order[keep - 1] as u32
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StopReason {
    /// The end-of-sequence token was sampled.
    Eos,
    /// A stop string appeared.
    StopString,
    /// `max_new_tokens` were generated.
    Length,
    /// The context window is full.
    Context,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// New ids (the EOS id is not included).
    pub tokens: Vec<u32>,
    /// Their text, cut before a stop string.
    pub text: String,
    /// Why generation ended.
    pub stop: StopReason,
}

/// Timings of a [`generate`] call.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct GenerateStats {
    /// Prompt tokens processed (all rows, without padding).
    pub prompt_tokens: usize,
    /// Seconds spent on the prompt (prefill).
    pub prompt_seconds: f64,
    /// New tokens (all rows).
    pub new_tokens: usize,
    /// Seconds spent decoding.
    pub decode_seconds: f64,
}

impl GenerateStats {
    /// Prompt tokens per second.
    pub fn prompt_tps(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_seconds.max(1e-12)
    }

    /// Generated tokens per second.
    pub fn decode_tps(&self) -> f64 {
        self.new_tokens as f64 / self.decode_seconds.max(1e-12)
    }
}

/// Continues each prompt (ids) with the KV cache: prompts are left-padded into one batch,
/// prefilled in one pass, then decoded one token per step. `on_text(row, piece)` receives
/// each row's text as it is produced (complete UTF-8 only), which is how `kiln generate`
/// streams.
pub fn generate<M: Decoder>(
    model: &M,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    opts: &GenerateOptions,
    mut on_text: impl FnMut(usize, &str),
) -> Result<(Vec<Generation>, GenerateStats)> {
    opts.validate()?;
    let b = prompts.len();
    if b == 0 {
        return Ok((Vec::new(), GenerateStats::default()));
    }
    if let Some(p) = prompts.iter().find(|p| p.is_empty()) {
        return Err(invalid(
            "prompt",
            format!("{p:?}"),
            "must hold at least one token",
        ));
    }
    let ctx = model.config().max_position_embeddings;
    let width = prompts.iter().map(Vec::len).max().unwrap_or(1);
    if width >= ctx {
        return Err(crate::error::LmError::TooLong {
            len: width,
            max: ctx - 1,
        });
    }
    let v = model.config().vocab_size;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut ids = Vec::with_capacity(b * width);
    let mut valid = Vec::with_capacity(b * width);
    for p in prompts {
        let pad = width - p.len();
        ids.extend(std::iter::repeat_n(0, pad));
        valid.extend(std::iter::repeat_n(false, pad));
        ids.extend_from_slice(p);
        valid.extend(std::iter::repeat_n(true, p.len()));
    }
    let mut stats = GenerateStats {
        prompt_tokens: prompts.iter().map(Vec::len).sum(),
        ..Default::default()
    };
    let mut cache = model.new_cache(b);
    let t0 = Instant::now();
    let mut logits = model.step(&ids, &valid, &mut cache)?;
    stats.prompt_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut out: Vec<Generation> = (0..b)
        .map(|_| Generation {
            tokens: Vec::new(),
            text: String::new(),
            stop: StopReason::Length,
        })
        .collect();
    let mut streams = vec![StreamDecoder::new(); b];
    let mut done = vec![false; b];
    for step in 0..opts.max_new_tokens {
        let mut next = vec![0u32; b];
        for r in 0..b {
            if done[r] {
                continue;
            }
            let tok = sample_token(&logits[r * v..(r + 1) * v], opts, &mut rng);
            next[r] = tok;
            if Some(tok) == tokenizer.eos {
                done[r] = true;
                out[r].stop = StopReason::Eos;
                continue;
            }
            out[r].tokens.push(tok);
            stats.new_tokens += 1;
            let piece = streams[r].push(tokenizer, tok)?;
            out[r].text.push_str(&piece);
            if let Some((cut, _)) = opts
                .stop
                .iter()
                .filter_map(|s| out[r].text.find(s.as_str()).map(|i| (i, s)))
                .min_by_key(|(i, _)| *i)
            {
                // Stream only what precedes the stop string.
                let before = out[r].text.len() - piece.len();
                if cut > before {
                    on_text(r, &out[r].text[before..cut]);
                }
                out[r].text.truncate(cut);
                done[r] = true;
                out[r].stop = StopReason::StopString;
                continue;
            }
            if !piece.is_empty() {
                on_text(r, &piece);
            }
        }
        if done.iter().all(|&d| d) || step + 1 == opts.max_new_tokens {
            break;
        }
        if M::cache_len(&cache) + 1 > ctx {
            for r in (0..b).filter(|&r| !done[r]) {
                out[r].stop = StopReason::Context;
            }
            break;
        }
        let step_valid: Vec<bool> = done.iter().map(|&d| !d).collect();
        logits = model.step(&next, &step_valid, &mut cache)?;
    }
    // Any bytes held back by the stream decoder (a cut multi-byte character) are flushed.
    for r in 0..b {
        if out[r].stop != StopReason::StopString {
            let full = streams[r].text(tokenizer)?;
            if full.len() > out[r].text.len() && full.starts_with(&out[r].text) {
                on_text(r, &full[out[r].text.len()..]);
                out[r].text = full;
            }
        }
    }
    stats.decode_seconds = t1.elapsed().as_secs_f64();
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_rules() {
        let mut rng = StdRng::seed_from_u64(0);
        let logits = [0.0f32, 1.0, 3.0, 2.0];
        assert_eq!(
            sample_token(&logits, &GenerateOptions::greedy(1), &mut rng),
            2
        );
        let top1 = GenerateOptions {
            top_k: 1,
            top_p: 1.0,
            temperature: 1.0,
            ..Default::default()
        };
        assert!((0..50).all(|_| sample_token(&logits, &top1, &mut rng) == 2));
        // top_p 0.5: token 2 alone has p = e^3 / (1 + e + e^3 + e^2) = 0.644 >= 0.5.
        let nucleus = GenerateOptions {
            top_p: 0.5,
            temperature: 1.0,
            ..Default::default()
        };
        assert!((0..50).all(|_| sample_token(&logits, &nucleus, &mut rng) == 2));
        // top_p 0.9 keeps {2, 3} (0.644 + 0.237 = 0.881 < 0.9) and 1 (0.968): never 0.
        let p09 = GenerateOptions {
            top_p: 0.9,
            temperature: 1.0,
            ..Default::default()
        };
        assert!((0..500).all(|_| sample_token(&logits, &p09, &mut rng) != 0));
        // Plain sampling follows the softmax; temperature 2 flattens it.
        for temp in [1.0, 2.0] {
            let plain = GenerateOptions {
                top_p: 1.0,
                temperature: temp,
                ..Default::default()
            };
            let mut counts = [0usize; 4];
            for _ in 0..40_000 {
                counts[sample_token(&logits, &plain, &mut rng) as usize] += 1;
            }
            let z: f64 = logits.iter().map(|&l| (f64::from(l) / temp).exp()).sum();
            for (i, &c) in counts.iter().enumerate() {
                let p = (f64::from(logits[i]) / temp).exp() / z;
                assert!((c as f64 / 40_000.0 - p).abs() < 0.012, "T={temp} id {i}");
            }
        }
        let bad = GenerateOptions {
            top_p: 0.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("top_p"));
    }
}
