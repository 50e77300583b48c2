//! IWOCS, tabular version ("Solving robust MDPs as a sequence of static RL
//! problems", Zouitine, Geist & Rachelson, arXiv 2410.06212; main-text
//! Algorithm 1 and Appendix E Algorithm 1).
//!
//! For `i = 0, 1, ...`:
//! 1. `Q*_{T_i}` by value iteration on the newest model;
//! 2. `Q_i(s,a) = min_{j <= i} Q*_{T_j}(s,a)` (the pessimistic value over the
//!    identified models; Property 1: an upper bound on the robust value);
//! 3. `pi_i = greedy(Q_i)`;
//! 4. worst-case search `T_{i+1} = argmin_{T in set} V^{pi_i}_T(s0)`;
//! 5. stop when `|V^{pi_i}_{T_{i+1}}(s0) - Q_i(s0, pi_i(s0))| <= eps`.
//!
//! Kiln's deviation from App. E: the worst-case search evaluates each
//! candidate kernel *exactly* (a linear solve) instead of with 300
//! Monte-Carlo rollouts, so the stop test is deterministic; `s0` is the MDP's
//! initial distribution (`Q_i(s0, pi_i(s0)) = sum_s mu(s) Q_i(s, pi_i(s))`).
//! A random-search variant (the CMA-ES analogue of the deep version) samples
//! a fixed number of candidate models instead of scanning all of them.

use kiln_envs::TabularMdp;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::error::{RobustError, param};
use crate::policy::Policy;
use crate::robust_pi::evaluate_on_kernel;
use crate::static_models::{StaticModels, start_value};

/// How IWOCS searches for the next worst-case model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorstCaseSearch {
    /// IWOCS*: evaluate every model of the (finite) set.
    Grid,
    /// Evaluate `evaluations` models drawn uniformly (with `seed`), the
    /// budgeted black-box search of the deep version.
    Random {
        /// Models evaluated per iteration.
        evaluations: usize,
        /// Seed of the draws.
        seed: u64,
    },
}

/// IWOCS options (defaults: App. E, tolerance on exact values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IwocsConfig {
    /// Iteration cap `M`.
    pub max_iterations: usize,
    /// Stop tolerance `eps` on `|V^{pi_i}_{T_{i+1}}(s0) - Q_i(s0, pi_i(s0))|`.
    pub tolerance: f64,
    /// Value-iteration tolerance per static problem (paper: 1e-3; Kiln 1e-10).
    pub vi_tolerance: f64,
    /// Index of the initial model `T_0`.
    pub initial_model: usize,
    /// Worst-case search.
    pub search: WorstCaseSearch,
}

impl Default for IwocsConfig {
    fn default() -> Self {
        Self {
            max_iterations: 25,
            tolerance: 1e-6,
            vi_tolerance: 1e-10,
            initial_model: 0,
            search: WorstCaseSearch::Grid,
        }
    }
}

/// Diagnostics of one IWOCS iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IwocsIteration {
    /// Model added at this iteration (`T_i`).
    pub model: usize,
    /// `Q_i(s0, pi_i(s0))`, the optimistic estimate.
    pub q_start: f64,
    /// Model found by the worst-case search (`T_{i+1}`).
    pub worst_model: usize,
    /// `V^{pi_i}_{T_{i+1}}(s0)`, the worst-case value of the candidate.
    pub worst_value: f64,
}

/// IWOCS output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IwocsResult {
    /// Final candidate robust policy.
    pub policy: Vec<usize>,
    /// `Q_i` of the last iteration, flat `[s][a]`.
    pub q: Vec<f64>,
    /// Its worst-case value found by the search.
    pub value: f64,
    /// Its worst-case model.
    pub worst_model: usize,
    /// One entry per iteration.
    pub iterations: Vec<IwocsIteration>,
}

/// Optimal Q-function of one static model, flat `[s][a]`.
pub fn optimal_q(model: &TabularMdp, tol: f64) -> Vec<f64> {
    let (v, _) = model.value_iteration(tol, 1_000_000);
    model.q_from_v(&v)
}

fn greedy(q: &[f64], ns: usize, na: usize) -> Vec<usize> {
    (0..ns)
        .map(|s| {
            (0..na).fold(0, |b, a| {
                if q[s * na + a] > q[s * na + b] + 1e-12 {
                    a
                } else {
                    b
                }
            })
        })
        .collect()
}

/// Runs IWOCS on the finite model set `models` (rewards and `mu` of `mdp`).
pub fn iwocs(
    mdp: &TabularMdp,
    models: &StaticModels,
    config: &IwocsConfig,
) -> Result<IwocsResult, RobustError> {
    models.validate(mdp)?;
    let m = models.kernels.len();
    if config.initial_model >= m {
        return Err(param(
            "iwocs",
            "initial_model",
            config.initial_model,
            format!("only {m} models"),
        ));
    }
    if mdp.gamma.is_nan() || mdp.gamma >= 1.0 {
        return Err(param("iwocs", "gamma", mdp.gamma, "needs gamma < 1"));
    }
    let (ns, na) = (mdp.n_states, mdp.n_actions);
    let mut rng = match config.search {
        WorstCaseSearch::Random { seed, .. } => StdRng::seed_from_u64(seed),
        WorstCaseSearch::Grid => StdRng::seed_from_u64(0),
    };
    let mut q_i = vec![f64::INFINITY; ns * na];
    let mut current = config.initial_model;
    let mut iterations = Vec::new();
    let mut result = None;
    for _ in 0..=config.max_iterations {
        // Steps 1-2: solve the newest static model and take the pessimistic min.
        let q_new = optimal_q(&models.model(mdp, current), config.vi_tolerance);
        for (a, b) in q_i.iter_mut().zip(&q_new) {
            *a = a.min(*b);
        }
        // Step 3.
        let pi = greedy(&q_i, ns, na);
        let q_start: f64 = (0..ns).map(|s| mdp.initial[s] * q_i[s * na + pi[s]]).sum();
        // Step 4: worst-case search among candidate models.
        let candidates: Vec<usize> = match config.search {
            WorstCaseSearch::Grid => (0..m).collect(),
            WorstCaseSearch::Random { evaluations, .. } => (0..evaluations.max(1))
                .map(|_| rng.random_range(0..m))
                .collect(),
        };
        let policy = Policy::Deterministic(pi.clone());
        let (worst_model, worst_value) = candidates
            .iter()
            .map(|&j| {
                (
                    j,
                    start_value(mdp, &evaluate_on_kernel(mdp, &models.kernels[j], &policy)),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((current, q_start));
        iterations.push(IwocsIteration {
            model: current,
            q_start,
            worst_model,
            worst_value,
        });
        result = Some(IwocsResult {
            policy: pi,
            q: q_i.clone(),
            value: worst_value,
            worst_model,
            iterations: iterations.clone(),
        });
        // Step 5.
        if (worst_value - q_start).abs() <= config.tolerance {
            break;
        }
        current = worst_model;
    }
    result.ok_or_else(|| {
        param(
            "iwocs",
            "max_iterations",
            config.max_iterations,
            "no iteration ran",
        )
    })
}
