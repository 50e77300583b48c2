//! How the verifiable tasks' text becomes token ids and back: the character-level vocabulary
//! of the tiny models (padding, end of sequence, and the characters every prompt and answer
//! is written in), or a pretrained model's own tokenizer ([`Codec`]).

use crate::error::{AlignError, Result};
use crate::tasks::{Problem, Verdict};

/// Padding token id (never scored, never sampled).
pub const PAD: u32 = 0;
/// End-of-sequence token id: a completion ends when the policy emits it.
pub const EOS: u32 = 1;
/// The characters after the two special tokens, in id order.
pub const CHARS: &str = "0123456789+-*/=()x,:";

/// Character tokenizer over [`CHARS`] (ids 2..) plus [`PAD`] and [`EOS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CharVocab;

impl CharVocab {
    /// Number of token ids.
    pub const SIZE: usize = 2 + CHARS.len();

    /// Token ids of a text; an unknown character is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        text.chars()
            .map(|ch| {
                CHARS
                    .find(ch)
                    .map(|i| i as u32 + 2)
                    .ok_or_else(|| AlignError::UnknownChar {
                        ch,
                        text: text.to_string(),
                    })
            })
            .collect()
    }

    /// The `tokenizer.json` document of this vocabulary for Hugging Face's `tokenizers`
    /// (one word-level token per character, `<pad>` = [`PAD`] and `</s>` = [`EOS`] as special
    /// tokens, a fusing decoder), so that a checkpoint written with it loads in any
    /// `tokenizer.json` reader, `kiln generate` included. Characters outside [`CHARS`] map
    /// to `<pad>`.
    pub fn tokenizer_json(&self) -> serde_json::Value {
        let mut vocab = serde_json::Map::new();
        vocab.insert("<pad>".into(), PAD.into());
        vocab.insert("</s>".into(), EOS.into());
        for (i, ch) in CHARS.chars().enumerate() {
            vocab.insert(ch.to_string(), (i as u32 + 2).into());
        }
        let special = |id: u32, content: &str| {
            serde_json::json!({"id": id, "content": content, "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        };
        serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [special(PAD, "<pad>"), special(EOS, "</s>")],
            "normalizer": null,
            "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "."},
                "behavior": "Isolated", "invert": false},
            "post_processor": null,
            "decoder": {"type": "Fuse"},
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<pad>"}
        })
    }

    /// The text of token ids, stopping at the first [`EOS`] and skipping [`PAD`].
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .take_while(|&&t| t != EOS)
            .filter_map(|&t| {
                t.checked_sub(2)
                    .and_then(|i| CHARS.as_bytes().get(i as usize))
                    .map(|&b| b as char)
            })
            .collect()
    }
}

/// A pretrained model's tokenizer as a task codec: prompts go through the model's chat
/// template when `chat` is set (an instruct model expects it), completions end at the
/// tokenizer's end-of-sequence id, and a completion is judged on the answer it states
/// ([`Problem::extract_answer`]), since such a model writes prose.
#[derive(Debug, Clone)]
pub struct TextCodec {
    tokenizer: kiln_lm::Tokenizer,
    eos: u32,
    chat: bool,
}

impl TextCodec {
    /// Wraps `tokenizer`; errors when it has no end-of-sequence id, or when `chat` is asked
    /// for and it has no chat template.
    pub fn new(tokenizer: kiln_lm::Tokenizer, chat: bool) -> Result<Self> {
        let eos = tokenizer.eos.ok_or_else(|| {
            crate::error::invalid(
                "tokenizer.eos",
                "none",
                "a completion must be able to end: the tokenizer needs an end-of-sequence id",
            )
        })?;
        if chat && tokenizer.chat.is_none() {
            return Err(crate::error::invalid(
                "chat",
                true,
                "the tokenizer has no chat template",
            ));
        }
        Ok(Self {
            tokenizer,
            eos,
            chat,
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &kiln_lm::Tokenizer {
        &self.tokenizer
    }

    /// Whether prompts go through the chat template.
    pub fn chat(&self) -> bool {
        self.chat
    }
}

/// How task text becomes token ids: see the module docs. The trainers take it from the
/// policy ([`crate::SequencePolicy::codec`]), so every trainer runs unchanged on a tiny
/// character model and on a pretrained one.
#[derive(Debug, Clone, Default)]
pub enum Codec {
    /// [`CharVocab`]: [`PAD`] and [`EOS`] plus the task characters.
    #[default]
    Char,
    /// A pretrained model's tokenizer.
    Text(Box<TextCodec>),
}

/// The character codec, for policies that do not carry one.
pub static CHAR_CODEC: Codec = Codec::Char;

impl Codec {
    /// Ids of a task prompt (through the chat template for a chat codec).
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>> {
        match self {
            Self::Char => CharVocab.encode(prompt),
            Self::Text(t) if t.chat => t
                .tokenizer
                .encode_chat(&[kiln_lm::ChatMessage::user(prompt)])
                .map_err(|e| AlignError::Model(e.to_string())),
            Self::Text(t) => t
                .tokenizer
                .encode(prompt)
                .map_err(|e| AlignError::Model(e.to_string())),
        }
    }

    /// Ids of a reference answer, ending with [`Codec::eos`] (the SFT target).
    pub fn encode_answer(&self, answer: &str) -> Result<Vec<u32>> {
        let mut ids = match self {
            Self::Char => CharVocab.encode(answer)?,
            // No BOS: the answer continues the prompt.
            Self::Text(t) => t
                .tokenizer
                .inner()
                .encode_fast(answer, false)
                .map_err(|e| AlignError::Model(e.to_string()))?
                .get_ids()
                .to_vec(),
        };
        ids.push(self.eos());
        Ok(ids)
    }

    /// The text of completion ids, up to the end-of-sequence id.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Self::Char => CharVocab.decode(ids),
            Self::Text(t) => {
                let end = ids.iter().position(|&i| i == t.eos).unwrap_or(ids.len());
                t.tokenizer.decode(&ids[..end], false).unwrap_or_default()
            }
        }
    }

    /// The verifier's verdict on completion ids: the whole text for the character codec
    /// (whose models write only the answer), the stated answer for a text codec.
    pub fn verify(&self, problem: &Problem, ids: &[u32]) -> Verdict {
        let text = self.decode(ids);
        match self {
            Self::Char => problem.verify(&text),
            Self::Text(_) => problem.verify(&problem.extract_answer(&text)),
        }
    }

    /// The id that ends a completion.
    pub fn eos(&self) -> u32 {
        match self {
            Self::Char => EOS,
            Self::Text(t) => t.eos,
        }
    }

    /// The id that fills padded positions (always masked out).
    pub fn pad(&self) -> u32 {
        match self {
            Self::Char => PAD,
            Self::Text(t) => t.eos,
        }
    }

    /// An id sampling must never produce ([`PAD`] of the character vocabulary; none for a
    /// pretrained tokenizer).
    pub fn never_sampled(&self) -> Option<u32> {
        match self {
            Self::Char => Some(PAD),
            Self::Text(_) => None,
        }
    }

    /// Writes `model` as a Hugging Face directory with this codec's tokenizer (and, for a
    /// pretrained one, its chat template), which `kiln generate` and a later run load.
    pub fn save_checkpoint(&self, model: &kiln_lm::Llama, dir: &std::path::Path) -> Result<()> {
        match self {
            Self::Char => kiln_lm::save_hf_dir(model, &self.tokenizer_json(), dir),
            Self::Text(t) => kiln_lm::save_hf_dir_with_tokenizer(model, &t.tokenizer, dir),
        }
        .map_err(|e| AlignError::Model(e.to_string()))
    }

    /// The `tokenizer.json` document written next to a checkpoint.
    pub fn tokenizer_json(&self) -> String {
        match self {
            Self::Char => CharVocab.tokenizer_json().to_string(),
            Self::Text(t) => t.tokenizer.inner().to_string(false).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = CharVocab;
        let ids = v.encode("12+3x=-4:(5)").unwrap();
        assert_eq!(v.decode(&ids), "12+3x=-4:(5)");
        let mut with_eos = ids.clone();
        with_eos.extend([EOS, 3, 4]);
        assert_eq!(v.decode(&with_eos), "12+3x=-4:(5)");
        assert!(v.encode("1 + 2").unwrap_err().to_string().contains("' '"));
    }

    /// The `tokenizers` crate (through kiln-lm) reads the document and tokenizes and
    /// decodes exactly as [`CharVocab`] does.
    #[test]
    fn tokenizer_json_matches_the_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, CharVocab.tokenizer_json().to_string()).unwrap();
        let t = kiln_lm::Tokenizer::from_file(&path).unwrap();
        assert_eq!(t.vocab_size(), CharVocab::SIZE);
        let text = "12+3x=-4:(5),6*7/8";
        assert_eq!(t.encode(text).unwrap(), CharVocab.encode(text).unwrap());
        let mut ids = CharVocab.encode("522").unwrap();
        ids.push(EOS);
        assert_eq!(t.decode(&ids, false).unwrap(), "522");
        assert_eq!(t.token_to_id("</s>"), Some(EOS));
    }

    /// A pretrained tokenizer as the codec: the chat template wraps prompts, answers end
    /// with its end-of-sequence id, decoding stops there, and prose is judged on its answer.
    #[test]
    fn text_codec_uses_the_tokenizer() {
        use crate::tasks::{Instance, Problem};
        let dir = tempfile::tempdir().unwrap();
        let device = kiln_tensor::testing::cpu();
        let m = kiln_lm::testing::tiny_model(0, &device).unwrap();
        let path = dir.path().join("tiny.gguf");
        kiln_lm::testing::write_tiny_gguf(&m, kiln_lm::GgmlType::F32, &path).unwrap();
        let tok = kiln_lm::load(&path, &device).unwrap().tokenizer;
        let raw = Codec::Text(Box::new(TextCodec::new(tok.clone(), false).unwrap()));
        let chat = Codec::Text(Box::new(TextCodec::new(tok.clone(), true).unwrap()));
        assert_eq!(
            raw.encode_prompt("37+485=").unwrap(),
            tok.encode("37+485=").unwrap()
        );
        let wrapped = chat.encode_prompt("37+485=").unwrap();
        assert_eq!(wrapped[0], 1, "starts with <|im_start|>");
        assert!(wrapped.len() > raw.encode_prompt("37+485=").unwrap().len());
        let answer = raw.encode_answer("522").unwrap();
        assert_eq!(answer.last(), Some(&2));
        assert_eq!(raw.decode(&answer), "522");
        let p = Problem {
            prompt: "37+485=".into(),
            answer: "522".into(),
            instance: Instance::Integer(522),
        };
        let prose = tok.encode("The sum is 522.").unwrap();
        assert!(raw.verify(&p, &prose).correct);
        assert!(
            !Codec::Char
                .verify(&p, &CharVocab.encode("521").unwrap())
                .correct
        );
        assert_eq!((raw.eos(), raw.pad(), raw.never_sampled()), (2, 2, None));
        // The checkpoint's tokenizer document reads back to the same ids.
        let doc = dir.path().join("tokenizer.json");
        std::fs::write(&doc, raw.tokenizer_json()).unwrap();
        let back = kiln_lm::Tokenizer::from_file(&doc).unwrap();
        assert_eq!(
            back.encode("37+485=").unwrap(),
            tok.encode("37+485=").unwrap()
        );
        let mut no_eos = tok.clone();
        no_eos.eos = None;
        assert!(
            TextCodec::new(no_eos, false)
                .unwrap_err()
                .to_string()
                .contains("tokenizer.eos")
        );
    }
}
