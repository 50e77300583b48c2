//! # kiln-lm
//!
//! Language-model policies on burn: a Llama-architecture causal transformer ([`Llama`]:
//! RMSNorm, rotary embeddings, SwiGLU, grouped-query attention, tied embeddings, a KV cache,
//! left-padded batches), real weights from GGUF files (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
//! dequantized to `f32`) and Hugging Face directories, the Hugging Face tokenizer built from
//! `tokenizer.json` or from a GGUF vocabulary, ChatML chat templates, and seeded sampling
//! with streaming, and a host training step ([`cpu_train`]: next-token cross-entropy,
//! hand-written backward, AdamW) that trainers can run instead of burn autodiff on a CPU.
//! The trainers themselves live in `kiln-align`.
//!
//! ```
//! use kiln_lm::{GenerateOptions, generate, testing};
//!
//! let device = kiln_tensor::testing::cpu();
//! let model = testing::tiny_model(1, &device).unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("tiny.gguf");
//! testing::write_tiny_gguf(&model, kiln_lm::GgmlType::Q8_0, &path).unwrap();
//! let loaded = kiln_lm::load(&path, &device).unwrap();
//! let prompt = loaded.tokenizer.encode("the answer").unwrap();
//! let (out, _) = generate(&loaded.model, &loaded.tokenizer, &[prompt], &GenerateOptions::greedy(5), |_, _| {}).unwrap();
//! assert!(out[0].tokens.len() <= 5);
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod cpu;
pub mod cpu_train;
mod error;
pub mod generate;
pub mod gguf;
pub mod load;
pub mod model;
pub mod testing;
pub mod tokenizer;

pub use config::LlamaConfig;
pub use cpu::{CpuCache, CpuLlama};
pub use cpu_train::{CpuTrainer, NextTokenBatch};
pub use error::{LmError, Result};
pub use generate::Decoder;
pub use generate::{GenerateOptions, GenerateStats, Generation, StopReason, generate};
pub use gguf::{GgmlType, GgufFile, GgufValue, GgufWriter};
pub use load::{
    LoadedModel, ModelFile, load, load_gguf, load_hf_dir, save_gguf, save_hf_dir,
    save_hf_dir_with_tokenizer,
};
pub use model::{KvCache, Llama};
pub use tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
