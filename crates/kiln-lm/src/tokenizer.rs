//! Tokenization through the Hugging Face `tokenizers` library, built from a `tokenizer.json`
//! or from the vocabulary and merges embedded in a GGUF file, plus the chat template.
//!
//! From GGUF, a `gpt2`-model vocabulary becomes the byte-level BPE that produced it: the
//! tokens and merges of `tokenizer.ggml.*`, control and user-defined tokens
//! (`token_type` 3 and 4) as special added tokens, and the pre-tokenizer named by
//! `tokenizer.ggml.pre` (`gpt2`: the GPT-2 split regex; `smollm`, `starcoder`, `refact`,
//! `codeshell`: every digit split off first, then the GPT-2 regex, which is what
//! llama.cpp and those models' own `tokenizer.json` do).

use std::path::Path;
use std::str::FromStr;

use serde_json::json;
use tokenizers::Tokenizer as HfTokenizer;

use crate::error::{LmError, Result, invalid};
use crate::gguf::GgufFile;

/// A ChatML-style chat template (`<|im_start|>role\ncontent<|im_end|>\n`), with the default
/// system message the model's own template inserts when the conversation has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    /// Inserted as the system turn when the first message is not a system message.
    pub default_system: Option<String>,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A user turn.
    pub fn user(content: &str) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }
}

impl ChatTemplate {
    /// Recognizes a ChatML Jinja template (SmolLM2's and Qwen's shape); `None` for others.
    pub fn from_jinja(template: &str) -> Option<Self> {
        if !template.contains("<|im_start|>") {
            return None;
        }
        let marker = "<|im_start|>system\n";
        let default_system = template.find(marker).and_then(|at| {
            let rest = &template[at + marker.len()..];
            let end = rest.find("<|im_end|>")?;
            let text = &rest[..end];
            // A literal default, not the `message['content']` expression.
            (!text.contains("message") && !text.contains("{{"))
                .then(|| text.replace("\\'", "'").replace("\\\\", "\\"))
        });
        Some(Self { default_system })
    }

    /// A ChatML Jinja template that renders as [`ChatTemplate::render`] does and that
    /// [`ChatTemplate::from_jinja`] reads back to `self` (for `tokenizer_config.json`).
    pub fn to_jinja(&self) -> String {
        let system = self.default_system.as_ref().map_or(String::new(), |sys| {
            format!(
                "{{% if loop.first and messages[0]['role'] != 'system' %}}\
                 {{{{ '<|im_start|>system\n{}<|im_end|>\n' }}}}{{% endif %}}",
                sys.replace('\\', "\\\\").replace('\'', "\\'")
            )
        });
        format!(
            "{{% for message in messages %}}{system}{{{{'<|im_start|>' + message['role'] + '\n' + \
             message['content'] + '<|im_end|>' + '\n'}}}}{{% endfor %}}\
             {{% if add_generation_prompt %}}{{{{ '<|im_start|>assistant\n' }}}}{{% endif %}}"
        )
    }

    /// The prompt text for `messages`, ending with the opening of the assistant's turn.
    pub fn render(&self, messages: &[ChatMessage]) -> String {
        let mut s = String::new();
        if let Some(sys) = &self.default_system
            && messages.first().is_none_or(|m| m.role != "system")
        {
            s.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
        }
        for m in messages {
            s.push_str(&format!(
                "<|im_start|>{}\n{}<|im_end|>\n",
                m.role, m.content
            ));
        }
        s.push_str("<|im_start|>assistant\n");
        s
    }
}

/// A tokenizer with the model's special ids and chat template.
#[derive(Clone)]
pub struct Tokenizer {
    inner: HfTokenizer,
    /// Beginning-of-sequence id (not added to raw prompts unless the model asks for it).
    pub bos: Option<u32>,
    /// End-of-sequence id: generation stops when it is sampled.
    pub eos: Option<u32>,
    /// Whether raw prompts start with [`Tokenizer::bos`] (GGUF `tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// The chat template, if the model has a ChatML one.
    pub chat: Option<ChatTemplate>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("chat", &self.chat)
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> LmError {
    LmError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Wraps a Hugging Face tokenizer.
    pub fn new(inner: HfTokenizer, bos: Option<u32>, eos: Option<u32>) -> Self {
        Self {
            inner,
            bos,
            eos,
            add_bos: false,
            chat: None,
        }
    }

    /// Reads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
        let inner = HfTokenizer::from_str(&text).map_err(|e| LmError::Format {
            path: path.to_path_buf(),
            what: format!("not a tokenizer.json: {e}"),
        })?;
        Ok(Self::new(inner, None, None))
    }

    /// The `tokenizer.json` document for the byte-level BPE embedded in a GGUF file.
    pub fn gguf_tokenizer_json(f: &GgufFile) -> Result<serde_json::Value> {
        let model = f
            .get("tokenizer.ggml.model")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if model != "gpt2" {
            return Err(invalid(
                "tokenizer.ggml.model",
                format!("{model:?}"),
                "only byte-level BPE (\"gpt2\") vocabularies are supported",
            ));
        }
        let strings = |key: &str| -> Result<Vec<String>> {
            let arr = f.get(key).and_then(|v| v.as_array()).ok_or_else(|| {
                invalid(
                    key,
                    "missing",
                    format!("required in {}", f.path().display()),
                )
            })?;
            arr.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(key, format!("{v:?}"), "must hold strings"))
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let types: Vec<u64> = f
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(1)).collect())
            .unwrap_or_default();
        let pre = f
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.as_str())
            .unwrap_or("gpt2");
        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        let pre_tokenizer = match pre {
            "gpt2" | "default" => byte_level,
            "smollm" | "starcoder" | "refact" | "codeshell" => json!({
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level]
            }),
            other => {
                return Err(invalid(
                    "tokenizer.ggml.pre",
                    format!("{other:?}"),
                    "unsupported pre-tokenizer (supported: gpt2, smollm, starcoder, refact, codeshell)",
                ));
            }
        };
        let vocab: serde_json::Map<String, serde_json::Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        let added: Vec<serde_json::Value> = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(types.get(*i), Some(3 | 4)))
            .map(|(i, t)| {
                json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": types[i] == 3})
            })
            .collect();
        let unk = f
            .get("tokenizer.ggml.unknown_token_id")
            .and_then(|v| v.as_u64())
            .and_then(|i| tokens.get(i as usize).cloned());
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                "ignore_merges": false, "vocab": vocab, "merges": merges}
        }))
    }

    /// Builds the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let doc = Self::gguf_tokenizer_json(f)?;
        let inner = HfTokenizer::from_str(&doc.to_string()).map_err(|e| LmError::Format {
            path: f.path().to_path_buf(),
            what: format!("tokenizer.ggml.*: {e}"),
        })?;
        let id = |key: &str| f.get(key).and_then(|v| v.as_u64()).map(|v| v as u32);
        let mut t = Self::new(
            inner,
            id("tokenizer.ggml.bos_token_id"),
            id("tokenizer.ggml.eos_token_id"),
        );
        t.add_bos = f
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        t.chat = f
            .get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .and_then(ChatTemplate::from_jinja);
        Ok(t)
    }

    /// Number of ids (base vocabulary plus added tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Ids of `text` (special tokens written in the text, such as `<|im_start|>`, map to
    /// their ids); a BOS id is prepended when the model asks for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, false).map_err(tok_err)?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos
            && let Some(b) = self.bos
        {
            ids.push(b);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// The chat prompt for one user message (an error if the model has no chat template).
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let t = self
            .chat
            .as_ref()
            .ok_or_else(|| invalid("--chat", "true", "the model has no ChatML chat template"))?;
        let enc = self
            .inner
            .encode_fast(t.render(messages), false)
            .map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids` (special tokens included when `keep_special`).
    pub fn decode(&self, ids: &[u32], keep_special: bool) -> Result<String> {
        self.inner.decode(ids, !keep_special).map_err(tok_err)
    }

    /// The token string of `id` (byte-level form).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of token string `token`.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The wrapped Hugging Face tokenizer.
    pub fn inner(&self) -> &HfTokenizer {
        &self.inner
    }
}

/// Turns a growing list of ids into text pieces that are valid UTF-8: a byte-level token can
/// end inside a multi-byte character, so the text is emitted only up to what decodes cleanly.
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    emitted: usize,
}

impl StreamDecoder {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `id` and returns the new text, if any is complete.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let text = tok.decode(&self.ids, false)?;
        if text.ends_with('\u{fffd}') {
            return Ok(String::new());
        }
        let new = text.get(self.emitted..).unwrap_or("").to_string();
        self.emitted = text.len();
        Ok(new)
    }

    /// Everything decoded so far.
    pub fn text(&self, tok: &Tokenizer) -> Result<String> {
        tok.decode(&self.ids, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_template_of_smollm2() {
        let jinja = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        let t = ChatTemplate::from_jinja(jinja).unwrap();
        assert_eq!(
            t.render(&[ChatMessage::user("Hi")]),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let sys = ChatMessage {
            role: "system".into(),
            content: "Be brief.".into(),
        };
        assert_eq!(
            t.render(&[sys, ChatMessage::user("Hi")]),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(ChatTemplate::from_jinja("{{ bos_token }}{{ message }}").is_none());
    }
}
