//! Step-Law hyperparameters from "Predictable Scale: Part I — Optimal Hyperparameter Scaling
//! Law in Large Language Model Pretraining" (Li et al., 2025, arXiv 2503.04715).
//!
//! The paper fits, over ~3,700 grid-searched pre-training runs, a power law for the optimal
//! *peak* AdamW learning rate and the optimal batch size:
//!
//! ```text
//! eta_opt(N, D) = 1.79 * N^-0.713 * D^0.307     (N: non-embedding parameters, D: tokens)
//! B_opt(D)      = 0.58 * D^0.571                (batch size in tokens; independent of N)
//! ```
//!
//! The learning rate is the peak of a schedule that ends at a fixed minimum of 1e-5. The law
//! was fitted on N ~ 1e8..1e9 and D ~ 1e9..1e11; below that it is an extrapolation (it predicts
//! very large learning rates for tiny models), which [`StepLaw::extrapolated`] flags.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TensorError};

/// Prefactor of the learning-rate law.
pub const LR_PREFACTOR: f64 = 1.79;
/// Exponent of N (non-embedding parameters) in the learning-rate law.
pub const LR_EXPONENT_N: f64 = -0.713;
/// Exponent of D (training tokens) in the learning-rate law.
pub const LR_EXPONENT_D: f64 = 0.307;
/// Prefactor of the batch-size law (batch in tokens).
pub const BATCH_PREFACTOR: f64 = 0.58;
/// Exponent of D in the batch-size law.
pub const BATCH_EXPONENT_D: f64 = 0.571;
/// The final learning rate of the schedules the law was fitted on.
pub const FINAL_LR: f64 = 1e-5;

/// The Step-Law prediction for one (N, D) cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLaw {
    /// Optimal peak learning rate.
    pub lr: f64,
    /// Optimal batch size in tokens.
    pub batch_tokens: f64,
    /// Optimal batch size in sequences of `seq_len` tokens (`batch_tokens / seq_len`, unrounded).
    pub batch_seqs: f64,
    /// True when (N, D) lies outside the range the law was fitted on (N < 1e8 or D < 1e9).
    pub extrapolated: bool,
}

/// The Step-Law optimal peak learning rate and batch size for a model with `n_non_embedding`
/// non-embedding parameters trained on `tokens` tokens in sequences of `seq_len`.
///
/// ```
/// let law = kiln_tensor::step_law(7e9, 1.4e12, 2048).unwrap();
/// assert!((law.lr - 9.1656e-4).abs() < 1e-7);
/// assert!((law.batch_seqs - 2440.8).abs() < 0.5);
/// ```
pub fn step_law(n_non_embedding: f64, tokens: f64, seq_len: usize) -> Result<StepLaw> {
    if !(n_non_embedding.is_finite() && n_non_embedding > 0.0) {
        return Err(TensorError::InvalidConfig {
            field: "n_non_embedding",
            value: n_non_embedding.to_string(),
            reason: "must be a positive parameter count",
        });
    }
    if !(tokens.is_finite() && tokens > 0.0) {
        return Err(TensorError::InvalidConfig {
            field: "tokens",
            value: tokens.to_string(),
            reason: "must be a positive token count",
        });
    }
    if seq_len == 0 {
        return Err(TensorError::InvalidConfig {
            field: "seq_len",
            value: "0".into(),
            reason: "must be at least 1",
        });
    }
    let lr = LR_PREFACTOR * n_non_embedding.powf(LR_EXPONENT_N) * tokens.powf(LR_EXPONENT_D);
    let batch_tokens = BATCH_PREFACTOR * tokens.powf(BATCH_EXPONENT_D);
    Ok(StepLaw {
        lr,
        batch_tokens,
        batch_seqs: batch_tokens / seq_len as f64,
        extrapolated: n_non_embedding < 1e8 || tokens < 1e9,
    })
}

/// Non-embedding parameter count of a Llama-style transformer as the Step-Law paper counts it:
/// per layer, attention Q, K, V, O (`4 h^2`, full multi-head) plus the three SwiGLU matrices
/// (`3 h d_ff`); token embeddings, the LM head, norms and biases are excluded.
///
/// ```
/// assert_eq!(kiln_tensor::non_embedding_params(960, 9368, 7), 214_663_680);
/// ```
pub fn non_embedding_params(hidden: u64, d_ff: u64, layers: u64) -> u64 {
    layers * (4 * hidden * hidden + 3 * hidden * d_ff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        ((a - b) / b).abs() < rel
    }

    #[test]
    fn reference_cells_computed_by_hand() {
        // 1.79 * 7e9^-0.713 * 1.4e12^0.307 and 0.58 * 1.4e12^0.571, evaluated by hand.
        let l = step_law(7e9, 1.4e12, 2048).unwrap();
        assert!((l.lr - 9.1656e-4).abs() < 1e-7, "{}", l.lr);
        assert!(close(l.batch_tokens, 4.999e6, 1e-3), "{}", l.batch_tokens);
        assert!((l.batch_seqs - 2440.8).abs() < 0.5);
        assert!(!l.extrapolated);

        let l = step_law(1e9, 1e11, 2048).unwrap();
        assert!(close(l.lr, 1.6325e-3, 1e-3), "{}", l.lr);
        assert!(close(l.batch_tokens, 1.108e6, 1e-3), "{}", l.batch_tokens);

        let l = step_law(1e6, 2e7, 2048).unwrap();
        assert!(close(l.lr, 1.645e-2, 1e-3), "{}", l.lr);
        assert!(l.extrapolated);
    }

    #[test]
    fn scaling_identities() {
        let base = step_law(1e8, 2e9, 2048).unwrap();
        let n2 = step_law(2e8, 2e9, 2048).unwrap();
        let d2 = step_law(1e8, 4e9, 2048).unwrap();
        assert!(close(n2.lr / base.lr, 2f64.powf(-0.713), 1e-12));
        assert!(close(n2.lr / base.lr, 0.6100, 1e-4));
        assert!(close(d2.lr / base.lr, 1.2372, 1e-4));
        assert!(close(d2.batch_tokens / base.batch_tokens, 1.4855, 1e-4));
        assert_eq!(n2.batch_tokens, base.batch_tokens);
    }

    #[test]
    fn non_embedding_counter_matches_released_rows() {
        assert_eq!(non_embedding_params(960, 9368, 7), 214_663_680);
        assert_eq!(non_embedding_params(1024, 9552, 8), 268_304_384);
        assert_eq!(non_embedding_params(2048, 8192, 16), 1_073_741_824);
    }

    #[test]
    fn rejects_bad_inputs_naming_the_field() {
        let e = step_law(-1.0, 1e9, 2048).unwrap_err().to_string();
        assert!(e.contains("n_non_embedding"), "{e}");
        let e = step_law(1e8, f64::NAN, 2048).unwrap_err().to_string();
        assert!(e.contains("tokens"), "{e}");
        let e = step_law(1e8, 1e9, 0).unwrap_err().to_string();
        assert!(e.contains("seq_len"), "{e}");
    }
}
