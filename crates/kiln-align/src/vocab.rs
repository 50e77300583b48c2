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
}
