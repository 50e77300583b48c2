//! Stationary policies as data.

use serde::{Deserialize, Serialize};

use crate::error::RobustError;

/// A stationary policy. JSON: an array with one action per state
/// (`[0, 1, 1]`) or one distribution per state (`[[0.5, 0.5], [0, 1]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Policy {
    /// `pi(s)` is an action.
    Deterministic(Vec<usize>),
    /// `pi(. | s)` is a distribution over actions.
    Stochastic(Vec<Vec<f64>>),
}

impl Policy {
    /// Number of states covered.
    pub fn n_states(&self) -> usize {
        match self {
            Policy::Deterministic(a) => a.len(),
            Policy::Stochastic(p) => p.len(),
        }
    }

    /// `pi(. | s)` as a dense distribution over `n_actions` actions.
    pub fn probabilities(&self, s: usize, n_actions: usize) -> Vec<f64> {
        match self {
            Policy::Deterministic(a) => {
                let mut p = vec![0.0; n_actions];
                p[a[s].min(n_actions - 1)] = 1.0;
                p
            }
            Policy::Stochastic(p) => p[s].clone(),
        }
    }

    /// Check the policy against an MDP shape: one entry per state, actions in
    /// range, distributions non-negative and summing to one.
    pub fn validate(&self, n_states: usize, n_actions: usize) -> Result<(), RobustError> {
        if self.n_states() != n_states {
            return Err(RobustError::Shape {
                what: "policy",
                field: "states",
                expected: n_states,
                got: self.n_states(),
                at: String::new(),
            });
        }
        match self {
            Policy::Deterministic(a) => {
                if let Some((s, &x)) = a.iter().enumerate().find(|(_, x)| **x >= n_actions) {
                    return Err(RobustError::Policy {
                        state: s,
                        reason: format!("action {x} out of range (n_actions = {n_actions})"),
                    });
                }
            }
            Policy::Stochastic(p) => {
                for (s, row) in p.iter().enumerate() {
                    if row.len() != n_actions {
                        return Err(RobustError::Policy {
                            state: s,
                            reason: format!("{} probabilities, expected {n_actions}", row.len()),
                        });
                    }
                    if let Some((a, x)) = row
                        .iter()
                        .enumerate()
                        .find(|(_, x)| !(x.is_finite() && **x >= 0.0))
                    {
                        return Err(RobustError::Policy {
                            state: s,
                            reason: format!("action {a} has probability {x}"),
                        });
                    }
                    let sum: f64 = row.iter().sum();
                    if (sum - 1.0).abs() > 1e-6 {
                        return Err(RobustError::Policy {
                            state: s,
                            reason: format!("probabilities sum to {sum}, not 1"),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
