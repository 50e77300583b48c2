//! Losses as tensor functions over per-token log-probabilities `[B, T]` and completion masks
//! `[B, T]` (see [`crate::policy::TokenBatch`]). Every loss is *minimised* (the negated
//! objective of its paper). Host-side constants (old and reference log-probs, advantages)
//! come in as tensors on the same device.

pub mod capo;
pub mod dpo;
pub mod nft;
pub mod pg;
pub mod sft;

pub use dpo::{PreferenceLoss, preference_loss, preference_loss_value, preference_weight};
pub use nft::{NftInputs, nft_loss};
pub use pg::{Aggregation, PgLoss, PgLossConfig, PgLossInputs, aggregate, kl_k3, pg_loss};
pub use sft::sft_loss;
