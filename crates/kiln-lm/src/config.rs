//! The shape of a Llama-architecture model, read from a Hugging Face `config.json` or from
//! GGUF metadata (`llama.*` keys).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LmError, Result, invalid};
use crate::gguf::GgufFile;

/// Hyperparameters of a [`crate::Llama`] (the names of Hugging Face's `LlamaConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Model width `d`.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention: divides `num_attention_heads`).
    pub num_key_value_heads: usize,
    /// Epsilon of the RMSNorms.
    pub rms_norm_eps: f64,
    /// Base `theta` of the rotary embedding.
    pub rope_theta: f64,
    /// Context window.
    pub max_position_embeddings: usize,
    /// The unembedding is the transposed token embedding.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence id, if the vocabulary has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id, if the vocabulary has one.
    pub eos_token_id: Option<u32>,
}

/// The subset of Hugging Face's `config.json` that a Llama model needs; the other keys
/// (dtype, architectures, ...) are ignored.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    #[serde(default = "default_ctx")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    hidden_act: Option<String>,
    bos_token_id: Option<serde_json::Value>,
    eos_token_id: Option<serde_json::Value>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_ctx() -> usize {
    2048
}

/// An id field that may be an integer or a list of integers (the first is taken).
fn first_id(v: &Option<serde_json::Value>) -> Option<u32> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|x| u32::try_from(x).ok()),
        Some(serde_json::Value::Array(a)) => a
            .first()
            .and_then(serde_json::Value::as_u64)
            .and_then(|x| u32::try_from(x).ok()),
        _ => None,
    }
}

impl LlamaConfig {
    /// Checks the shape, naming the key.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return Err(invalid(k, v, "must be at least 1"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(invalid(
                "num_attention_heads",
                self.num_attention_heads,
                format!("must divide hidden_size = {}", self.hidden_size),
            ));
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(invalid(
                "num_key_value_heads",
                self.num_key_value_heads,
                format!(
                    "must divide num_attention_heads = {}",
                    self.num_attention_heads
                ),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(invalid(
                "num_attention_heads",
                self.num_attention_heads,
                "hidden_size / num_attention_heads must be even for the rotary embedding",
            ));
        }
        if !(self.rms_norm_eps > 0.0 && self.rms_norm_eps.is_finite()) {
            return Err(invalid("rms_norm_eps", self.rms_norm_eps, "must be > 0"));
        }
        if !(self.rope_theta > 1.0 && self.rope_theta.is_finite()) {
            return Err(invalid("rope_theta", self.rope_theta, "must be > 1"));
        }
        for (k, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
        ] {
            if let Some(id) = id
                && id as usize >= self.vocab_size
            {
                return Err(invalid(
                    k,
                    id,
                    format!("must be below vocab_size = {}", self.vocab_size),
                ));
            }
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Parameters outside the embedding and unembedding (the Step-Law `N`).
    pub fn non_embedding_params(&self) -> usize {
        let d = self.hidden_size;
        let kv = self.num_key_value_heads * self.head_dim();
        let per_layer = 2 * d + d * d * 2 + 2 * d * kv + 3 * d * self.intermediate_size;
        self.num_hidden_layers * per_layer + d
    }

    /// All parameters.
    pub fn total_params(&self) -> usize {
        let emb = self.vocab_size * self.hidden_size;
        self.non_embedding_params() + emb * if self.tie_word_embeddings { 1 } else { 2 }
    }

    /// Parses a Hugging Face `config.json` of a Llama model.
    pub fn from_hf_json(path: &Path, text: &str) -> Result<Self> {
        let hf: HfConfig = serde_json::from_str(text).map_err(|e| LmError::Format {
            path: path.to_path_buf(),
            what: format!("not a Llama config.json: {e}"),
        })?;
        if let Some(t) = &hf.model_type
            && !matches!(t.as_str(), "llama" | "mistral")
        {
            return Err(invalid(
                "model_type",
                t,
                "only Llama-architecture models are supported",
            ));
        }
        if let Some(s) = hf.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            return Err(invalid(
                "rope_scaling",
                s,
                "rotary scaling is not supported",
            ));
        }
        if hf.attention_bias {
            return Err(invalid(
                "attention_bias",
                true,
                "biased attention is not supported",
            ));
        }
        if hf.mlp_bias {
            return Err(invalid("mlp_bias", true, "biased MLP is not supported"));
        }
        if let Some(a) = hf.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(invalid("hidden_act", a, "only silu (SwiGLU) is supported"));
        }
        if let Some(hd) = hf.head_dim
            && hd * hf.num_attention_heads != hf.hidden_size
        {
            return Err(invalid(
                "head_dim",
                hd,
                "must equal hidden_size / num_attention_heads",
            ));
        }
        let c = Self {
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            intermediate_size: hf.intermediate_size,
            num_hidden_layers: hf.num_hidden_layers,
            num_attention_heads: hf.num_attention_heads,
            num_key_value_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            rms_norm_eps: hf.rms_norm_eps,
            rope_theta: hf.rope_theta,
            max_position_embeddings: hf.max_position_embeddings,
            tie_word_embeddings: hf.tie_word_embeddings,
            bos_token_id: first_id(&hf.bos_token_id),
            eos_token_id: first_id(&hf.eos_token_id),
        };
        c.validate()?;
        Ok(c)
    }

    /// The `config.json` Hugging Face's `LlamaForCausalLM` reads.
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_act": "silu",
            "torch_dtype": "float32",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim(),
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "attention_bias": false,
            "mlp_bias": false,
            "rope_scaling": null,
        })
    }

    /// Reads the `llama.*` metadata of a GGUF file (the vocabulary size comes from the
    /// embedding tensor when `llama.vocab_size` is absent).
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch = f
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if arch != "llama" {
            return Err(invalid(
                "general.architecture",
                format!("{arch:?}"),
                format!("only \"llama\" is supported ({})", f.path().display()),
            ));
        }
        let int = |key: &str| -> Result<usize> {
            f.get(key)
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| {
                    invalid(
                        key,
                        "missing",
                        format!("required in {}", f.path().display()),
                    )
                })
        };
        let float =
            |key: &str, default: f64| f.get(key).and_then(|v| v.as_f64()).unwrap_or(default);
        let hidden = int("llama.embedding_length")?;
        let heads = int("llama.attention.head_count")?;
        let vocab = match int("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => f
                .info("token_embd.weight")
                .map(|t| t.shape()[0])
                .ok_or_else(|| {
                    invalid("llama.vocab_size", "missing", "and no token_embd.weight")
                })?,
        };
        if let Ok(rd) = int("llama.rope.dimension_count")
            && rd != hidden / heads.max(1)
        {
            return Err(invalid(
                "llama.rope.dimension_count",
                rd,
                "partial rotary embeddings are not supported",
            ));
        }
        let id = |key: &str| f.get(key).and_then(|v| v.as_u64()).map(|v| v as u32);
        let c = Self {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: int("llama.feed_forward_length")?,
            num_hidden_layers: int("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: int("llama.attention.head_count_kv").unwrap_or(heads),
            rms_norm_eps: float("llama.attention.layer_norm_rms_epsilon", 1e-5),
            rope_theta: float("llama.rope.freq_base", 10_000.0),
            max_position_embeddings: int("llama.context_length").unwrap_or(2048),
            tie_word_embeddings: f.info("output.weight").is_none(),
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            eos_token_id: id("tokenizer.ggml.eos_token_id"),
        };
        c.validate()?;
        Ok(c)
    }

    /// A small configuration for tests and CPU experiments.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            hidden_size: 64,
            intermediate_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 256,
            tie_word_embeddings: true,
            bos_token_id: None,
            eos_token_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_config_and_errors() {
        let p = Path::new("config.json");
        let text = r#"{"model_type":"llama","vocab_size":100,"hidden_size":64,"intermediate_size":96,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-5,
            "rope_theta":100000.0,"max_position_embeddings":512,"tie_word_embeddings":true,
            "bos_token_id":1,"eos_token_id":[2,3],"torch_dtype":"bfloat16"}"#;
        let c = LlamaConfig::from_hf_json(p, text).unwrap();
        assert_eq!(c.head_dim(), 16);
        assert_eq!(c.eos_token_id, Some(2));
        let back = LlamaConfig::from_hf_json(p, &c.to_hf_json().to_string()).unwrap();
        assert_eq!(back, c);
        let bad = text.replace("\"num_key_value_heads\":2", "\"num_key_value_heads\":3");
        let msg = LlamaConfig::from_hf_json(p, &bad).unwrap_err().to_string();
        assert!(
            msg.contains("num_key_value_heads") && msg.contains('3'),
            "{msg}"
        );
        let bad = text.replace("\"model_type\":\"llama\"", "\"model_type\":\"gpt2\"");
        assert!(
            LlamaConfig::from_hf_json(p, &bad)
                .unwrap_err()
                .to_string()
                .contains("model_type")
        );
        let msg = LlamaConfig::from_hf_json(p, "{}").unwrap_err().to_string();
        assert!(
            msg.contains("config.json") && msg.contains("vocab_size"),
            "{msg}"
        );
    }

    #[test]
    fn parameter_counts_of_smollm2_135m() {
        let c = LlamaConfig {
            vocab_size: 49152,
            hidden_size: 576,
            intermediate_size: 1536,
            num_hidden_layers: 30,
            num_attention_heads: 9,
            num_key_value_heads: 3,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            max_position_embeddings: 8192,
            tie_word_embeddings: true,
            bos_token_id: Some(1),
            eos_token_id: Some(2),
        };
        // 134,515,008 parameters, the figure Hugging Face reports for SmolLM2-135M.
        assert_eq!(c.total_params(), 134_515_008);
    }
}
