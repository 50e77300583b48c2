//! Robust Markov decision processes and the robust-learning rows of Kiln.
//!
//! **Robust MDPs.** [`UncertaintySet`]s are L1, L-infinity or KL balls around
//! a nominal kernel, (s,a)-rectangular or s-rectangular; each inner
//! worst-case problem is solved exactly ([`worst_case`]: the L1 sorting
//! closed form, the L-infinity greedy fill, the KL one-dimensional dual).
//! [`robust_value_iteration`] (contraction-based stopping rule),
//! [`robust_policy_iteration`], [`robust_policy_evaluation`] and
//! [`worst_kernel`] build on them; [`static_models`] holds finite sets of
//! static models.
//!
//! **Rows.** [`iwocs`] (Zouitine, Geist & Rachelson 2024), [`dr_rpo`]
//! (reconstructed: the paper body could not be read), [`agnostic`]
//! (trajectory-tree ERM and PSDP against brute force over a finite class),
//! [`ivl`] (IV-like regression with outcome-invariant data augmentation,
//! Akbar et al. 2025) and [`adaptive_defense`] (non-dominated policy
//! discovery + EXP3 defense, "Beyond Worst-case Attacks"); their miniature
//! experiments, and the one of the recovering-reward bandits of
//! `kiln-bandits`, live in [`experiments`] (`kiln repro <row>`).
//!
//! **Models as data.** A tabular MDP file is
//! `{"n_states": S, "n_actions": A, "gamma": g, "transitions": P[s][a][s'],
//! "rewards": R[s][a], "initial": mu[s]}` (extra keys allowed), loaded with
//! [`load_mdp`]; sets (`{"distance": "l1", "radius": 0.1, "rectangularity":
//! "sa"}`), policies (`[0, 1]` or `[[0.5, 0.5], [0, 1]]`) and
//! [`static_models::StaticModels`] (`{"kernels": [...]}`) are serde types
//! ([`load_json`], [`save_json`]).
//!
//! ```
//! use kiln_robust::{Distance, Rectangularity, RobustValueIterationConfig, UncertaintySet,
//!     parse_mdp, robust_value_iteration};
//!
//! # fn main() -> Result<(), kiln_robust::RobustError> {
//! // Two states; action 1 in state 0 risks falling into the bad state 1.
//! let mdp = parse_mdp(r#"{"n_states": 2, "n_actions": 2, "gamma": 0.9,
//!     "transitions": [[[1.0, 0.0], [0.9, 0.1]], [[0.0, 1.0], [0.0, 1.0]]],
//!     "rewards": [[0.5, 1.0], [0.0, 0.0]], "initial": [1.0, 0.0],
//!     "note": "extra keys are ignored"}"#, std::path::Path::new("<doc>"))?;
//! let nominal = robust_value_iteration(&mdp, &UncertaintySet::new(Distance::L1, 0.0, Rectangularity::Sa)?,
//!     &RobustValueIterationConfig::default())?;
//! let robust = robust_value_iteration(&mdp, &UncertaintySet::new(Distance::L1, 0.4, Rectangularity::Sa)?,
//!     &RobustValueIterationConfig::default())?;
//! assert!(robust.value[0] < nominal.value[0]);
//! // the adversary moves 0.2 of the mass of each row to the bad state:
//! // V(0) = max(0.5 + 0.9 * 0.8 V(0), 1 + 0.9 * 0.7 V(0)) = 1 / 0.37
//! assert_eq!(robust.policy, kiln_robust::Policy::Deterministic(vec![1, 0]));
//! assert!((robust.value[0] - 1.0 / 0.37).abs() < 1e-6);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod adaptive_defense;
pub mod agnostic;
pub mod dr_rpo;
pub mod error;
pub mod experiments;
pub mod ivl;
pub mod iwocs;
pub mod model_io;
pub mod policy;
pub mod robust_pi;
pub mod robust_vi;
pub mod static_models;
pub mod uncertainty;
pub mod worst_case;

pub use error::RobustError;
pub use model_io::{load_json, load_mdp, nested_kernel, parse_mdp, save_json, solution_json};
pub use policy::Policy;
pub use robust_pi::{
    RobustEvaluationConfig, evaluate_on_kernel, robust_policy_evaluation, robust_policy_iteration,
    worst_kernel,
};
pub use robust_vi::{
    RobustSolution, RobustValueIterationConfig, robust_bellman_sweep, robust_value_iteration,
};
pub use uncertainty::{Distance, Rectangularity, UncertaintySet};
