//! [`SequencePolicy`] for `kiln-lm`'s Llama, so every trainer of this crate runs on a real
//! Llama-architecture model (SmolLM2-135M loaded from GGUF, or a tiny one from scratch).
//!
//! The forward pass is the model's own (final RMSNorm hidden states and `h W_U` logits);
//! sampling overrides the default with the KV cache: prompts are left-padded into one batch
//! and prefilled once, then each step costs one position.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use kiln_lm::{KvCache, Llama, LlamaConfig};
use rand::rngs::StdRng;

use crate::error::{AlignError, Result};
use crate::policy::{
    Completion, PolicyForward, SampleOptions, SequencePolicy, sample_token_except, to_host,
};
use crate::vocab::{CHAR_CODEC, CharVocab, Codec, EOS};

fn lm_err(e: kiln_lm::LmError) -> AlignError {
    match e {
        kiln_lm::LmError::TooLong { len, max } => AlignError::TooLong { len, max },
        other => AlignError::Model(other.to_string()),
    }
}

/// A small Llama over the character vocabulary of the verifiable tasks (tied embeddings,
/// grouped-query attention), for the CPU experiments.
pub fn tiny_char_llama(width: usize, layers: usize, device: &Device) -> Result<Llama> {
    let mut c = LlamaConfig::tiny(CharVocab::SIZE);
    c.hidden_size = width;
    c.intermediate_size = 2 * width;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 64;
    c.eos_token_id = Some(EOS);
    Llama::init(&c, device).map_err(lm_err)
}

impl SequencePolicy for Llama {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn context_len(&self) -> usize {
        self.config().max_position_embeddings
    }

    fn device(&self) -> Device {
        Llama::device(self)
    }

    fn non_embedding_params(&self) -> usize {
        self.config().non_embedding_params()
    }

    fn forward(&self, ids: Tensor<2, Int>) -> PolicyForward {
        let hidden = self.forward_hidden(ids);
        let logits = self.logits(hidden.clone());
        PolicyForward { hidden, logits }
    }

    fn unembedding(&self) -> Tensor<2> {
        Llama::unembedding(self)
    }

    fn sample(
        &self,
        prompts: &[Vec<u32>],
        n: usize,
        opts: &SampleOptions,
        rng: &mut StdRng,
    ) -> Result<Vec<Completion>> {
        sample_cached(self, &CHAR_CODEC, prompts, n, opts, rng)
    }

    fn llama(&self) -> Option<&Llama> {
        Some(self)
    }

    fn with_llama(self, model: Llama) -> Self {
        model
    }
}

/// Sampling with the KV cache (see the module docs), ending completions at `codec`'s
/// end-of-sequence id.
fn sample_cached(
    model: &Llama,
    codec: &Codec,
    prompts: &[Vec<u32>],
    n: usize,
    opts: &SampleOptions,
    rng: &mut StdRng,
) -> Result<Vec<Completion>> {
    opts.validate()?;
    let rows: Vec<&Vec<u32>> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p, n))
        .collect();
    let b = rows.len();
    if b == 0 {
        return Ok(Vec::new());
    }
    let ctx = model.context_len();
    let width = rows.iter().map(|p| p.len()).max().unwrap_or(0);
    if width == 0 || width >= ctx || rows.iter().any(|p| p.is_empty()) {
        return Err(AlignError::TooLong {
            len: width.max(1),
            max: ctx.saturating_sub(1),
        });
    }
    let mut ids = Vec::with_capacity(b * width);
    let mut valid = Vec::with_capacity(b * width);
    for p in &rows {
        ids.extend(std::iter::repeat_n(codec.pad(), width - p.len()));
        valid.extend(std::iter::repeat_n(false, width - p.len()));
        ids.extend_from_slice(p);
        valid.extend(std::iter::repeat_n(true, p.len()));
    }
    let v = model.vocab_size();
    let mut cache = KvCache::new(model, b);
    let mut logits = to_host(
        model
            .forward_cached(&ids, &valid, &mut cache, false)
            .map_err(lm_err)?,
    );
    let mut out: Vec<Completion> = (0..b)
        .map(|_| Completion {
            tokens: Vec::new(),
            finished: false,
        })
        .collect();
    for step in 0..opts.max_new_tokens {
        let mut next = vec![codec.pad(); b];
        for r in 0..b {
            if out[r].finished {
                continue;
            }
            let tok = sample_token_except(
                &logits[r * v..(r + 1) * v],
                opts,
                codec.never_sampled(),
                rng,
            );
            next[r] = tok;
            out[r].tokens.push(tok);
            out[r].finished = tok == codec.eos();
        }
        if out.iter().all(|c| c.finished)
            || step + 1 == opts.max_new_tokens
            || cache.len() + 1 >= ctx
        {
            break;
        }
        let live: Vec<bool> = out.iter().map(|c| !c.finished).collect();
        logits = to_host(
            model
                .forward_cached(&next, &live, &mut cache, false)
                .map_err(lm_err)?,
        );
    }
    Ok(out)
}

/// A Llama with its pretrained tokenizer as the task codec (e.g. SmolLM2-135M-Instruct
/// loaded from GGUF): every trainer runs on it unchanged, prompts through the model's chat
/// template when the codec asks for it, completions ending at the tokenizer's
/// end-of-sequence id, verdicts on the answer the prose states.
#[derive(Module, Debug)]
pub struct TokenizedLlama {
    /// The network.
    pub model: Llama,
    #[module(skip)]
    codec: Codec,
}

impl TokenizedLlama {
    /// Pairs `model` with `codec`; errors when the codec's ids do not fit the model's
    /// vocabulary.
    pub fn new(model: Llama, codec: Codec) -> Result<Self> {
        let v = model.config().vocab_size;
        if codec.eos() as usize >= v {
            return Err(crate::error::invalid(
                "tokenizer.eos",
                codec.eos(),
                "outside the model's vocabulary",
            ));
        }
        Ok(Self { model, codec })
    }
}

impl SequencePolicy for TokenizedLlama {
    fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }

    fn context_len(&self) -> usize {
        self.model.context_len()
    }

    fn device(&self) -> Device {
        Llama::device(&self.model)
    }

    fn non_embedding_params(&self) -> usize {
        self.model.non_embedding_params()
    }

    fn forward(&self, ids: Tensor<2, Int>) -> PolicyForward {
        SequencePolicy::forward(&self.model, ids)
    }

    fn unembedding(&self) -> Tensor<2> {
        Llama::unembedding(&self.model)
    }

    fn codec(&self) -> &Codec {
        &self.codec
    }

    fn llama(&self) -> Option<&Llama> {
        Some(&self.model)
    }

    fn with_llama(self, model: Llama) -> Self {
        Self {
            model,
            codec: self.codec,
        }
    }

    fn sample(
        &self,
        prompts: &[Vec<u32>],
        n: usize,
        opts: &SampleOptions,
        rng: &mut StdRng,
    ) -> Result<Vec<Completion>> {
        sample_cached(&self.model, &self.codec, prompts, n, opts, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::TokenBatch;
    use crate::vocab::PAD;
    use burn::tensor::TensorData;
    use kiln_tensor::testing::cpu;
    use rand::SeedableRng;

    #[test]
    fn cached_sampling_matches_recomputed_prefixes() {
        let device = cpu();
        kiln_tensor::Seeds::new(2).seed_device(&device);
        let m = tiny_char_llama(32, 2, &device).unwrap();
        let prompts = vec![vec![5u32, 6, 7], vec![9u32]];
        let greedy = SampleOptions {
            temperature: 0.0,
            max_new_tokens: 6,
            ..SampleOptions::default()
        };
        let mut rng = StdRng::seed_from_u64(0);
        let got = m.sample(&prompts, 2, &greedy, &mut rng).unwrap();
        assert_eq!(got.len(), 4);
        for (i, c) in got.iter().enumerate() {
            // Recompute: argmax of the full forward over the growing prefix.
            let mut seq = prompts[i / 2].clone();
            for &t in &c.tokens {
                let data: Vec<i64> = seq.iter().map(|&x| i64::from(x)).collect();
                let l = to_host(
                    SequencePolicy::forward(
                        &m,
                        Tensor::<2, Int>::from_data(TensorData::new(data, [1, seq.len()]), &device),
                    )
                    .logits,
                );
                let v = CharVocab::SIZE;
                let last = &l[(seq.len() - 1) * v..seq.len() * v];
                let want = (0..v)
                    .filter(|&i| i as u32 != PAD)
                    .max_by(|&a, &b| last[a].total_cmp(&last[b]))
                    .unwrap();
                assert_eq!(t, want as u32);
                seq.push(t);
            }
        }
        // Token scores are log-probabilities of the completion tokens (<= 0, zero off-mask).
        let batch = TokenBatch::from_pairs(&[&[5, 6], &[9]], &[&[7, 1], &[3, 4, 1]]).unwrap();
        let s = to_host(m.token_scores(&batch).unwrap().logprobs);
        for (x, mk) in s.iter().zip(&batch.mask) {
            assert!(if *mk > 0.0 { *x < 0.0 } else { *x == 0.0 });
        }
    }

    /// The trainers run on a Llama: SFT on 1-digit addition drives the masked NLL from
    /// ~log(22) to under 0.8 nats.
    #[test]
    fn sft_trains_a_tiny_llama() {
        use crate::tasks::{TaskKind, TaskSpec, TaskSplits};
        use crate::trainers::sft::{SftConfig, train_sft};
        let device = cpu().autodiff();
        kiln_tensor::Seeds::new(0).seed_device(&device);
        let policy = tiny_char_llama(32, 1, &device).unwrap();
        let splits =
            TaskSplits::new(TaskSpec::new(TaskKind::Addition, 1).unwrap(), 0, 80, 20).unwrap();
        let config = SftConfig {
            epochs: 40,
            batch_size: Some(16),
            lr: Some(1e-2),
            ..SftConfig::default()
        };
        let mut losses = vec![];
        let mut cb = kiln_rl::FnCallback(|_, m: &[(&str, f64)]| {
            losses.push(m[0].1);
            true
        });
        let mut rng = StdRng::seed_from_u64(0);
        train_sft(policy, &splits.train, &config, &mut rng, &mut cb).unwrap();
        let first = losses[0];
        let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
        assert!(first > 2.0 && last < 0.8, "first {first} last {last}");
    }

    /// Every trainer runs on a pretrained-tokenizer model: SFT through the chat template
    /// on a byte-level BPE model lowers the masked NLL, sampling stops at its `<|im_end|>`,
    /// and the greedy evaluation goes through the codec.
    #[test]
    fn trainers_run_on_a_tokenized_llama() {
        use crate::tasks::{TaskKind, TaskSpec, TaskSplits};
        use crate::trainers::greedy_accuracy;
        use crate::trainers::sft::{SftConfig, train_sft};
        use crate::vocab::TextCodec;
        let dir = tempfile::tempdir().unwrap();
        let device = cpu().autodiff();
        let m = kiln_lm::testing::tiny_model(3, &device).unwrap();
        let path = dir.path().join("tiny.gguf");
        kiln_lm::testing::write_tiny_gguf(&m, kiln_lm::GgmlType::F32, &path).unwrap();
        let loaded = kiln_lm::load(&path, &device).unwrap();
        let codec = Codec::Text(Box::new(TextCodec::new(loaded.tokenizer, true).unwrap()));
        let policy = TokenizedLlama::new(loaded.model, codec).unwrap();
        let splits =
            TaskSplits::new(TaskSpec::new(TaskKind::Addition, 1).unwrap(), 0, 16, 4).unwrap();
        let config = SftConfig {
            epochs: 6,
            batch_size: Some(8),
            lr: Some(1e-2),
            ..SftConfig::default()
        };
        let mut losses = vec![];
        let mut cb = kiln_rl::FnCallback(|_, m: &[(&str, f64)]| {
            losses.push(m[0].1);
            true
        });
        let mut rng = StdRng::seed_from_u64(0);
        let (trained, _) = train_sft(policy, &splits.train, &config, &mut rng, &mut cb).unwrap();
        assert!(losses[losses.len() - 1] < 0.7 * losses[0], "{losses:?}");
        let frozen = trained.valid();
        let prompts = vec![frozen.codec().encode_prompt("3+4=").unwrap()];
        let opts = SampleOptions {
            temperature: 1.0,
            max_new_tokens: 12,
            ..SampleOptions::default()
        };
        for c in frozen.sample(&prompts, 4, &opts, &mut rng).unwrap() {
            assert_eq!(c.finished, c.tokens.last() == Some(&2));
            assert!(c.tokens.iter().rev().skip(1).all(|&t| t != 2));
        }
        let acc = greedy_accuracy(&frozen, &splits.test, 6, &mut rng).unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
}
