//! Small model files for tests and examples: a byte-level BPE vocabulary written the way
//! llama.cpp's converter writes one into GGUF metadata, and tiny random Llama models saved
//! as GGUF files or Hugging Face directories.

use std::path::Path;

use burn::tensor::Device;

use crate::config::LlamaConfig;
use crate::error::Result;
use crate::gguf::{GgmlType, GgufFile, GgufValue};
use crate::load::{save_gguf, save_hf_dir};
use crate::model::Llama;
use crate::tokenizer::Tokenizer;

/// GPT-2's byte-to-character map of byte-level BPE (`bytes_to_unicode`).
pub fn byte_alphabet() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut map = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(chars) {
        map[*b as usize] = char::from_u32(c).unwrap_or('?');
    }
    map
}

/// The ChatML template of SmolLM2 (with its default system message).
pub const SMOLLM2_CHAT_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// `tokenizer.*` GGUF metadata of a small byte-level BPE: three special tokens
/// (`<|endoftext|>` = 0, `<|im_start|>` = 1, `<|im_end|>` = 2), the 256 byte symbols and a
/// few merges, with SmolLM2's pre-tokenizer and chat template.
pub fn tiny_tokenizer_meta() -> Vec<(String, GgufValue)> {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    tokens.extend(byte_alphabet().iter().map(|c| c.to_string()));
    let merges = [
        "Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "r e", "a n",
    ];
    for m in merges {
        tokens.push(m.replace(' ', ""));
    }
    let mut types = vec![3u64; 3];
    types.extend(std::iter::repeat_n(1, tokens.len() - 3));
    let s = |v: &str| GgufValue::Str(v.to_string());
    vec![
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("smollm")),
        (
            "tokenizer.ggml.tokens".into(),
            GgufValue::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            GgufValue::Array(
                types
                    .into_iter()
                    .map(|t| GgufValue::I64(t as i64))
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.merges".into(),
            GgufValue::Array(merges.iter().map(|m| s(m)).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), GgufValue::U64(1)),
        ("tokenizer.ggml.eos_token_id".into(), GgufValue::U64(2)),
        ("tokenizer.ggml.unknown_token_id".into(), GgufValue::U64(0)),
        (
            "tokenizer.ggml.add_bos_token".into(),
            GgufValue::Bool(false),
        ),
        ("tokenizer.chat_template".into(), s(SMOLLM2_CHAT_TEMPLATE)),
    ]
}

/// Vocabulary size of [`tiny_tokenizer_meta`].
pub const TINY_VOCAB: usize = 3 + 256 + 10;

/// A tiny random Llama (`LlamaConfig::tiny`, tied embeddings) with the tiny vocabulary.
pub fn tiny_model(seed: u64, device: &Device) -> Result<Llama> {
    kiln_tensor::Seeds::new(seed).seed_device(device);
    let mut c = LlamaConfig::tiny(TINY_VOCAB);
    c.bos_token_id = Some(1);
    c.eos_token_id = Some(2);
    Llama::init(&c, device)
}

/// Writes `model` with the tiny tokenizer as a GGUF file of matrix type `ty`.
pub fn write_tiny_gguf(model: &Llama, ty: GgmlType, path: &Path) -> Result<()> {
    save_gguf(model, ty, &tiny_tokenizer_meta(), path)
}

/// Writes `model` with the tiny tokenizer as a Hugging Face directory.
pub fn write_tiny_hf_dir(model: &Llama, dir: &Path) -> Result<()> {
    let gguf_path = dir.with_extension("vocab.gguf");
    let mut w = crate::gguf::GgufWriter::new();
    for (k, v) in tiny_tokenizer_meta() {
        w.meta(&k, v);
    }
    w.write(&gguf_path)?;
    let f = GgufFile::open(&gguf_path)?;
    let doc = Tokenizer::gguf_tokenizer_json(&f)?;
    let _ = std::fs::remove_file(&gguf_path);
    save_hf_dir(model, &doc.to_string(), dir)?;
    let tc = serde_json::json!({"chat_template": SMOLLM2_CHAT_TEMPLATE, "add_bos_token": false});
    crate::gguf::write_atomic(
        &dir.join("tokenizer_config.json"),
        tc.to_string().as_bytes(),
    )
}
