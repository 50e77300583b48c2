//! Finite sets of static models `{T_1, ..., T_m}` (one kernel drawn once and
//! kept for the whole episode), the setting IWOCS raises next to the usual
//! dynamic (per-step) adversary.
//!
//! - The *static* worst case of a stationary policy is
//!   `min_j mu . V^pi_{T_j}`.
//! - The *dynamic* (per-step) worst case over the same models is the
//!   (s,a)-rectangular hull `prod_{s,a} {T_j(.|s,a)}_j`; for a stationary
//!   policy and a rectangular set both coincide (Iyengar 2005, Lemma 3.3), but
//!   a finite set of whole kernels is not rectangular, so its hull can be
//!   strictly more pessimistic.

use kiln_envs::TabularMdp;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::RobustError;
use crate::policy::Policy;
use crate::robust_pi::evaluate_on_kernel;
use crate::robust_vi::check_discount;

/// A finite set of kernels sharing the rewards of a nominal MDP. JSON:
/// `{"kernels": [P_1[s][a][s'] flattened, ...]}` in the flat layout of
/// [`TabularMdp::transitions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticModels {
    /// Flat kernels `[s][a][s']`.
    pub kernels: Vec<Vec<f64>>,
}

impl StaticModels {
    /// Check every kernel against the MDP shape (length, non-negative rows
    /// summing to one), naming the model, state and action of a bad row.
    pub fn validate(&self, mdp: &TabularMdp) -> Result<(), RobustError> {
        for (j, k) in self.kernels.iter().enumerate() {
            let mut m = mdp.clone();
            m.transitions = k.clone();
            m.validate().map_err(|e| RobustError::Parameter {
                what: "StaticModels",
                field: "kernels",
                value: format!("model {j}"),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// The MDP with kernel `j`.
    pub fn model(&self, mdp: &TabularMdp, j: usize) -> TabularMdp {
        let mut m = mdp.clone();
        m.transitions = self.kernels[j].clone();
        m
    }
}

/// `mu . V` for the MDP's initial distribution.
pub fn start_value(mdp: &TabularMdp, v: &[f64]) -> f64 {
    mdp.initial.iter().zip(v).map(|(a, b)| a * b).sum()
}

/// The static worst case of `policy`: the model index minimising
/// `mu . V^pi_{T_j}` and that value (exact evaluation, models in parallel).
pub fn static_worst_case(
    mdp: &TabularMdp,
    models: &StaticModels,
    policy: &Policy,
) -> Result<(usize, f64), RobustError> {
    check_discount(mdp)?;
    policy.validate(mdp.n_states, mdp.n_actions)?;
    let values: Vec<f64> = models
        .kernels
        .par_iter()
        .map(|k| start_value(mdp, &evaluate_on_kernel(mdp, k, policy)))
        .collect();
    values
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(j, v)| (j, *v))
        .ok_or_else(|| {
            crate::error::param(
                "static_worst_case",
                "kernels",
                "[]",
                "needs at least one model",
            )
        })
}

/// Robust value iteration on the (s,a)-rectangular hull of the models:
/// `V(s) = max_a [R(s,a) + gamma min_j T_j(.|s,a) . V]`, to sup-norm change
/// `tol`. Returns the values and a greedy policy.
pub fn rectangular_hull_value_iteration(
    mdp: &TabularMdp,
    models: &StaticModels,
    tol: f64,
) -> Result<(Vec<f64>, Vec<usize>), RobustError> {
    check_discount(mdp)?;
    let (ns, na) = (mdp.n_states, mdp.n_actions);
    let q_of = |v: &[f64]| -> Vec<f64> {
        (0..ns * na)
            .into_par_iter()
            .map(|sa| {
                let worst = models
                    .kernels
                    .iter()
                    .map(|k| {
                        k[sa * ns..(sa + 1) * ns]
                            .iter()
                            .zip(v)
                            .map(|(p, x)| p * x)
                            .sum::<f64>()
                    })
                    .fold(f64::INFINITY, f64::min);
                mdp.rewards[sa] + mdp.gamma * worst
            })
            .collect()
    };
    let mut v = vec![0.0; ns];
    for _ in 0..1_000_000 {
        let q = q_of(&v);
        let next: Vec<f64> = (0..ns)
            .map(|s| {
                q[s * na..(s + 1) * na]
                    .iter()
                    .cloned()
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        let change = next
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        v = next;
        if change < tol {
            break;
        }
    }
    let q = q_of(&v);
    let policy = (0..ns)
        .map(|s| {
            (0..na).fold(0, |b, a| {
                if q[s * na + a] > q[s * na + b] + 1e-12 {
                    a
                } else {
                    b
                }
            })
        })
        .collect();
    Ok((v, policy))
}
