//! The character-level vocabulary of the verifiable tasks: padding, end of sequence, and the
//! characters every prompt and answer is written in.

use crate::error::{AlignError, Result};

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
}
