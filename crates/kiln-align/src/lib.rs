//! # kiln-align
//!
//! Alignment algorithms for sequence policies, each written out to its paper's equations.
//!
//! - **Verifiable tasks** ([`tasks`]): addition, multiplication, countdown and linear
//!   equations with exact verifiers, difficulty levels, fixed train/test splits and pass@k.
//! - **The policy interface** ([`SequencePolicy`]): a burn module mapping token ids to hidden
//!   states and logits; per-token log-probabilities of completions, entropies and seeded
//!   sampling derive from it. [`TinyLm`] is a small causal transformer implementing it.
//! - **Advantages** ([`advantages`]) and **losses** ([`losses`]): SFT, the clipped surrogate
//!   of GRPO/DAPO/Dr. GRPO/RLOO/REINFORCE++/Lite PPO with the k3 KL, NFT, CAPO's curvature
//!   model, DPO/cDPO/rDPO.
//!
//! ```
//! use kiln_align::tasks::{TaskKind, TaskSpec, TaskSplits, pass_at_k};
//!
//! let splits = TaskSplits::new(TaskSpec::new(TaskKind::Countdown, 2).unwrap(), 0, 100, 20).unwrap();
//! let p = &splits.test[0];
//! assert!(p.verify(&p.answer).correct);
//! assert!((pass_at_k(5, 2, 2).unwrap() - 0.7).abs() < 1e-12);
//! ```

#![warn(missing_docs)]

pub mod advantages;
mod error;
pub mod experiments;
pub mod llama;
pub mod loglinear;
pub mod losses;
pub mod policy;
pub mod tasks;
mod tiny;
pub mod trainers;
pub mod vocab;

pub use error::{AlignError, Result};
pub use policy::{Completion, SampleOptions, SequencePolicy, TokenBatch, TokenScores};
pub use tiny::{TinyLm, TinyLmConfig};
