//! Robust policy evaluation, the worst-case kernel a policy faces, and robust
//! policy iteration (Iyengar 2005, Sec. 5).
//!
//! For a fixed stationary policy the adversary solves an MDP of its own.
//! - (s,a)-rectangular: Kiln runs the adversary's *policy iteration*: evaluate
//!   `pi` exactly on the current kernel (`(I - gamma P_pi) V = R_pi`), replace
//!   every row by the inner minimiser against that `V`, repeat until `V` stops
//!   decreasing. Each step is a Newton step of the adversary's Bellman
//!   equation, so it converges in a handful of linear solves (finitely for
//!   the polyhedral L1 / L-infinity sets).
//! - s-rectangular: the policy evaluation operator
//!   `(T^pi V)(s) = sum_a pi_a R(s,a) + gamma min_{sum_a xi_a <= r} sum_a pi_a f_a(xi_a)`
//!   (`f_a(xi) = min_{D(q,p_sa) <= xi} q . V`, convex) is iterated to its fixed
//!   point; the budget split solves this separable convex problem greedily in
//!   2000 equal increments (optimal up to one increment).
//!
//! Iyengar's robust policy iteration alternates this evaluation with greedy
//! improvement on the robust Q-function and stops when the policy is stable.

use kiln_envs::TabularMdp;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{RobustError, param};
use crate::policy::Policy;
use crate::robust_vi::{RobustSolution, check_discount, robust_q_row};
use crate::uncertainty::{Rectangularity, UncertaintySet};
use crate::worst_case::{ValueOrder, worst_case};

/// Budget increments of the s-rectangular adversary's greedy allocation.
const BUDGET_STEPS: usize = 2_000;

/// Exact value of a stationary policy on one kernel (flat `[s][a][s']`):
/// solves `(I - gamma P_pi) V = R_pi` by LU decomposition.
pub fn evaluate_on_kernel(mdp: &TabularMdp, kernel: &[f64], policy: &Policy) -> Vec<f64> {
    let (ns, na) = (mdp.n_states, mdp.n_actions);
    let mut m = DMatrix::<f64>::identity(ns, ns);
    let mut b = DVector::<f64>::zeros(ns);
    for s in 0..ns {
        let pi = policy.probabilities(s, na);
        for (a, &w) in pi.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            b[s] += w * mdp.reward(s, a);
            let row = &kernel[(s * na + a) * ns..(s * na + a + 1) * ns];
            for (sp, &p) in row.iter().enumerate() {
                m[(s, sp)] -= mdp.gamma * w * p;
            }
        }
    }
    match m.lu().solve(&b) {
        Some(x) => x.iter().copied().collect(),
        None => vec![f64::NAN; ns],
    }
}

/// The adversary's best response at state `s` under an s-rectangular set:
/// the budget split `xi` minimising `sum_a pi_a f_a(xi_a)` with
/// `sum_a xi_a <= r`, the resulting `min` value and the worst rows.
pub fn s_rectangular_response(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    v: &[f64],
    order: &ValueOrder,
    s: usize,
    pi: &[f64],
) -> (f64, Vec<f64>) {
    let na = mdp.n_actions;
    let mut q = vec![0.0; mdp.n_states];
    let p = |a: usize| mdp.next_state_distribution(s, a);
    let f = |a: usize, xi: f64, q: &mut [f64]| worst_case(set.distance, p(a), v, xi, order, q);
    let caps: Vec<f64> = (0..na)
        .map(|a| {
            if pi[a] > 0.0 {
                set.distance.saturation_radius(p(a), v)
            } else {
                0.0
            }
        })
        .collect();
    // Separable convex allocation: hand out the budget in BUDGET_STEPS equal
    // increments, each to the action whose weighted value drops most
    // (greedy is optimal for separable convex objectives up to the increment).
    let mut xi = vec![0.0; na];
    if caps.iter().sum::<f64>() <= set.radius {
        xi.clone_from(&caps);
    } else {
        let step = set.radius / BUDGET_STEPS as f64;
        let mut current: Vec<f64> = (0..na)
            .map(|a| if pi[a] > 0.0 { f(a, 0.0, &mut q) } else { 0.0 })
            .collect();
        let gain = |a: usize, xi: &[f64], current: &[f64], q: &mut [f64]| -> (f64, f64) {
            if pi[a] <= 0.0 || xi[a] >= caps[a] {
                return (0.0, current[a]);
            }
            let next = f(a, (xi[a] + step).min(caps[a]), q);
            (pi[a] * (current[a] - next), next)
        };
        let mut gains: Vec<(f64, f64)> = (0..na).map(|a| gain(a, &xi, &current, &mut q)).collect();
        for _ in 0..BUDGET_STEPS {
            let best = (0..na).fold(0, |b, a| if gains[a].0 > gains[b].0 { a } else { b });
            if gains[best].0 <= 0.0 {
                break;
            }
            xi[best] = (xi[best] + step).min(caps[best]);
            current[best] = gains[best].1;
            gains[best] = gain(best, &xi, &current, &mut q);
        }
    }
    let mut rows = vec![0.0; na * mdp.n_states];
    let mut value = 0.0;
    for a in 0..na {
        let fa = f(
            a,
            xi[a],
            &mut rows[a * mdp.n_states..(a + 1) * mdp.n_states],
        );
        value += pi[a] * fa;
    }
    (value, rows)
}

/// Options of robust policy evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RobustEvaluationConfig {
    /// Sup-norm tolerance on the value.
    pub tolerance: f64,
    /// Iteration cap.
    pub max_iterations: usize,
}

impl Default for RobustEvaluationConfig {
    fn default() -> Self {
        Self {
            tolerance: 1e-10,
            max_iterations: 100_000,
        }
    }
}

/// The worst-case kernel for `policy` against values `v` (flat `[s][a][s']`):
/// per row the inner minimiser ((s,a)-rectangular), or the adversary's
/// budget split and minimisers (s-rectangular).
pub fn worst_kernel(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    policy: &Policy,
    v: &[f64],
) -> Result<Vec<f64>, RobustError> {
    policy.validate(mdp.n_states, mdp.n_actions)?;
    let (ns, na) = (mdp.n_states, mdp.n_actions);
    let order = ValueOrder::new(v);
    let rows: Vec<Vec<f64>> = (0..ns)
        .into_par_iter()
        .map(|s| match set.rectangularity {
            Rectangularity::Sa => {
                let mut out = vec![0.0; na * ns];
                for a in 0..na {
                    worst_case(
                        set.distance,
                        mdp.next_state_distribution(s, a),
                        v,
                        set.radius,
                        &order,
                        &mut out[a * ns..(a + 1) * ns],
                    );
                }
                out
            }
            Rectangularity::S => {
                s_rectangular_response(mdp, set, v, &order, s, &policy.probabilities(s, na)).1
            }
        })
        .collect();
    Ok(rows.concat())
}

/// Robust value of a stationary policy and the worst-case kernel it faces.
pub fn robust_policy_evaluation(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    policy: &Policy,
    config: &RobustEvaluationConfig,
) -> Result<(Vec<f64>, Vec<f64>), RobustError> {
    mdp.validate()?;
    set.validate()?;
    check_discount(mdp)?;
    policy.validate(mdp.n_states, mdp.n_actions)?;
    let (ns, na) = (mdp.n_states, mdp.n_actions);
    match set.rectangularity {
        Rectangularity::Sa => {
            let mut kernel = mdp.transitions.clone();
            let mut v = evaluate_on_kernel(mdp, &kernel, policy);
            for _ in 0..config.max_iterations.min(10_000) {
                kernel = worst_kernel(mdp, set, policy, &v)?;
                let next = evaluate_on_kernel(mdp, &kernel, policy);
                let change = next
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                v = next;
                if change <= config.tolerance * (1.0 + v.iter().fold(0.0f64, |m, x| m.max(x.abs())))
                {
                    break;
                }
            }
            Ok((v, kernel))
        }
        Rectangularity::S => {
            let mut v = evaluate_on_kernel(mdp, &mdp.transitions, policy);
            let threshold = config.tolerance * (1.0 - mdp.gamma) / mdp.gamma.max(1e-12);
            for _ in 0..config.max_iterations {
                let order = ValueOrder::new(&v);
                let next: Vec<f64> = (0..ns)
                    .into_par_iter()
                    .map(|s| {
                        let pi = policy.probabilities(s, na);
                        let (m, _) = s_rectangular_response(mdp, set, &v, &order, s, &pi);
                        (0..na).map(|a| pi[a] * mdp.reward(s, a)).sum::<f64>() + mdp.gamma * m
                    })
                    .collect();
                let change = next
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                v = next;
                if change < threshold {
                    break;
                }
            }
            let kernel = worst_kernel(mdp, set, policy, &v)?;
            Ok((v, kernel))
        }
    }
}

/// Robust policy iteration (Iyengar 2005, Sec. 5) for (s,a)-rectangular sets:
/// robust evaluation, then greedy improvement on
/// `Q(s,a) = R(s,a) + gamma min_{q in P_sa} q . V^pi`, until the policy is
/// stable (ties keep the current action).
pub fn robust_policy_iteration(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    config: &RobustEvaluationConfig,
) -> Result<RobustSolution, RobustError> {
    if set.rectangularity != Rectangularity::Sa {
        return Err(param(
            "robust_policy_iteration",
            "rectangularity",
            "s",
            "greedy improvement needs (s,a)-rectangular sets; use robust_value_iteration for s-rectangular ones",
        ));
    }
    let na = mdp.n_actions;
    let mut actions: Vec<usize> = (0..mdp.n_states)
        .map(|s| {
            (0..na).fold(0, |b, a| {
                if mdp.reward(s, a) > mdp.reward(s, b) {
                    a
                } else {
                    b
                }
            })
        })
        .collect();
    let mut steps = 0;
    loop {
        let policy = Policy::Deterministic(actions.clone());
        let (v, kernel) = robust_policy_evaluation(mdp, set, &policy, config)?;
        steps += 1;
        let order = ValueOrder::new(&v);
        let improved: Vec<usize> = (0..mdp.n_states)
            .map(|s| {
                let q = robust_q_row(mdp, set, &v, &order, s);
                let cur = actions[s];
                let scale = 1e-10 * (1.0 + q[cur].abs());
                (0..na).fold(cur, |b, a| if q[a] > q[b] + scale { a } else { b })
            })
            .collect();
        if improved == actions || steps >= 10_000 {
            return Ok(RobustSolution {
                value: v,
                policy,
                worst_kernel: kernel,
                iterations: steps,
                residual: 0.0,
            });
        }
        actions = improved;
    }
}
