//! Robust value iteration (Iyengar 2005, Sec. 4; Nilim & El Ghaoui 2005,
//! Sec. 3) for (s,a)- and s-rectangular balls.
//!
//! The robust Bellman operator
//! - (s,a)-rectangular: `(T V)(s) = max_a [R(s,a) + gamma min_{q in P_sa} q . V]`;
//! - s-rectangular (Wiesemann et al. 2013, Thm. 4; Ho et al. 2018, Sec. 4):
//!   `(T V)(s) = max_{pi in Delta(A)} min_{sum_a D(q_a, p_sa) <= r} sum_a pi_a [R(s,a) + gamma q_a . V]`
//!   `= min_{xi >= 0, sum_a xi_a <= r} max_a g_a(xi_a)` with
//!   `g_a(xi) = R(s,a) + gamma min_{D(q, p_sa) <= xi} q . V` convex and
//!   non-increasing (the minimax swap holds: linear in `pi`, convex in `xi`).
//!   Kiln bisects on the level `t`: `xi_a(t) = min {xi : g_a(xi) <= t}`
//!   (inverted directly by [`crate::worst_case::radius_to_reach`]) and the
//!   answer is the smallest `t` with `sum_a xi_a(t) <= r`. The maximising
//!   policy follows from the saddle-point conditions `pi_a |g_a'(xi_a)| = mu`
//!   on the actions at the level `t` (pi_a ∝ 1 / |g_a'(xi_a)|), with the
//!   exact derivatives of [`crate::worst_case::worst_case_slope`].
//!
//! `T` is a `gamma`-contraction, so stopping at
//! `||V_{k+1} - V_k||_inf < epsilon (1 - gamma) / (2 gamma)` makes the greedy
//! policy `epsilon`-optimal (Puterman 1994, Thm. 6.3.1, which carries over to
//! the robust operator). States are updated in parallel with rayon.

use kiln_envs::TabularMdp;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{RobustError, param};
use crate::policy::Policy;
use crate::uncertainty::{Rectangularity, UncertaintySet};
use crate::worst_case::{ValueOrder, radius_to_reach, worst_case, worst_case_slope};

/// Options of [`robust_value_iteration`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RobustValueIterationConfig {
    /// Target suboptimality of the returned policy (sup norm).
    pub epsilon: f64,
    /// Sweep cap.
    pub max_sweeps: usize,
}

impl Default for RobustValueIterationConfig {
    fn default() -> Self {
        Self {
            epsilon: 1e-8,
            max_sweeps: 1_000_000,
        }
    }
}

/// What a robust solver returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustSolution {
    /// Robust value per state.
    pub value: Vec<f64>,
    /// The robust policy (deterministic for (s,a)-rectangular sets).
    pub policy: Policy,
    /// The worst-case kernel this policy faces, flat `[s][a][s']`.
    pub worst_kernel: Vec<f64>,
    /// Bellman sweeps (or policy-iteration steps) taken.
    pub iterations: usize,
    /// Final sup-norm change of the value.
    pub residual: f64,
}

pub(crate) fn check_discount(mdp: &TabularMdp) -> Result<(), RobustError> {
    if mdp.gamma.is_nan() || mdp.gamma >= 1.0 {
        return Err(param(
            "robust solver",
            "gamma",
            mdp.gamma,
            "discounted solvers need gamma < 1",
        ));
    }
    Ok(())
}

/// `R(s,a) + gamma min_{q in P_sa} q . V` for every action of `s`.
pub fn robust_q_row(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    v: &[f64],
    order: &ValueOrder,
    s: usize,
) -> Vec<f64> {
    let mut q = vec![0.0; mdp.n_states];
    (0..mdp.n_actions)
        .map(|a| {
            let p = mdp.next_state_distribution(s, a);
            mdp.reward(s, a) + mdp.gamma * worst_case(set.distance, p, v, set.radius, order, &mut q)
        })
        .collect()
}

/// `g_a(xi) = R(s,a) + gamma min_{D(q, p_sa) <= xi} q . V`.
#[allow(clippy::too_many_arguments)] // the backup's full context, kept explicit for speed
fn g(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    v: &[f64],
    order: &ValueOrder,
    s: usize,
    a: usize,
    xi: f64,
    q: &mut [f64],
) -> f64 {
    mdp.reward(s, a)
        + mdp.gamma
            * worst_case(
                set.distance,
                mdp.next_state_distribution(s, a),
                v,
                xi,
                order,
                q,
            )
}

/// The s-rectangular backup at `s`: robust value, maximising action
/// distribution and the adversary's budget split `xi`.
pub fn s_rectangular_backup(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    v: &[f64],
    order: &ValueOrder,
    s: usize,
) -> (f64, Vec<f64>, Vec<f64>) {
    let na = mdp.n_actions;
    let mut q = vec![0.0; mdp.n_states];
    if set.radius <= 0.0 {
        let top: Vec<f64> = (0..na)
            .map(|a| g(mdp, set, v, order, s, a, 0.0, &mut q))
            .collect();
        let best = (0..na).fold(0, |b, a| if top[a] > top[b] + 1e-12 { a } else { b });
        let mut pi = vec![0.0; na];
        pi[best] = 1.0;
        return (top[best], pi, vec![0.0; na]);
    }
    let caps: Vec<f64> = (0..na)
        .map(|a| {
            set.distance
                .saturation_radius(mdp.next_state_distribution(s, a), v)
        })
        .collect();
    let top: Vec<f64> = (0..na)
        .map(|a| g(mdp, set, v, order, s, a, 0.0, &mut q))
        .collect();
    let floor: Vec<f64> = (0..na)
        .map(|a| g(mdp, set, v, order, s, a, caps[a], &mut q))
        .collect();
    // xi_a(t): least budget bringing action a down to level t (inf if impossible).
    let xi_at = |t: f64, a: usize, _q: &mut [f64]| -> f64 {
        if top[a] <= t {
            return 0.0;
        }
        if floor[a] > t {
            return f64::INFINITY;
        }
        let tau = (t - mdp.reward(s, a)) / mdp.gamma;
        radius_to_reach(
            set.distance,
            mdp.next_state_distribution(s, a),
            v,
            tau,
            order,
        )
        .min(caps[a])
    };
    let spend = |t: f64, q: &mut [f64]| -> f64 { (0..na).map(|a| xi_at(t, a, q)).sum() };
    let hi0 = top.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // t* >= max_a g_a(min(r, cap_a)): no action can receive more than the whole budget.
    let lo0 = (0..na)
        .map(|a| g(mdp, set, v, order, s, a, set.radius.min(caps[a]), &mut q))
        .fold(f64::NEG_INFINITY, f64::max);
    let t = if spend(lo0, &mut q) <= set.radius {
        lo0
    } else {
        let (mut lo, mut hi) = (lo0, hi0);
        // to a few ulps: the level is the backed-up value, and the stopping
        // rule needs residuals far below epsilon (1 - gamma) / (2 gamma)
        for _ in 0..200 {
            if hi - lo <= 4.0 * f64::EPSILON * (1.0 + hi.abs()) {
                break;
            }
            let mid = 0.5 * (lo + hi);
            if spend(mid, &mut q) <= set.radius {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    };
    let xi: Vec<f64> = (0..na).map(|a| xi_at(t, a, &mut q).min(caps[a])).collect();
    // Saddle point: pi_a ∝ 1/|g_a'(xi_a)| over the actions at level t.
    let tol = 1e-9 * (1.0 + t.abs());
    let active: Vec<usize> = (0..na).filter(|&a| top[a] >= t - tol).collect();
    let mut pi = vec![0.0; na];
    let mut slopes = Vec::with_capacity(active.len());
    for &a in &active {
        // exact right derivative of g_a at xi_a (no finite differences)
        let slope = if xi[a] < caps[a] {
            -mdp.gamma
                * worst_case_slope(
                    set.distance,
                    mdp.next_state_distribution(s, a),
                    v,
                    xi[a],
                    order,
                )
        } else {
            0.0
        };
        slopes.push((a, slope));
    }
    if let Some(&(a, _)) = slopes.iter().find(|(_, sl)| *sl <= 1e-12) {
        pi[a] = 1.0;
    } else if !slopes.is_empty() {
        let z: f64 = slopes.iter().map(|(_, sl)| 1.0 / sl).sum();
        for &(a, sl) in &slopes {
            pi[a] = 1.0 / sl / z;
        }
    } else {
        let best = (0..na).fold(0, |b, a| if top[a] > top[b] { a } else { b });
        pi[best] = 1.0;
    }
    (t, pi, xi)
}

/// One robust Bellman sweep: new values and the maximising policy rows.
pub fn robust_bellman_sweep(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    v: &[f64],
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let order = ValueOrder::new(v);
    let na = mdp.n_actions;
    let rows: Vec<(f64, Vec<f64>)> = (0..mdp.n_states)
        .into_par_iter()
        .map(|s| match set.rectangularity {
            Rectangularity::Sa => {
                let q = robust_q_row(mdp, set, v, &order, s);
                let best = (0..na).fold(0, |b, a| if q[a] > q[b] + 1e-12 { a } else { b });
                let mut pi = vec![0.0; na];
                pi[best] = 1.0;
                (q[best], pi)
            }
            Rectangularity::S => {
                let (t, pi, _) = s_rectangular_backup(mdp, set, v, &order, s);
                (t, pi)
            }
        })
        .collect();
    rows.into_iter().unzip()
}

/// Robust value iteration from `V = 0` with the contraction-based stopping
/// rule; returns the robust values, the greedy robust policy (deterministic
/// for (s,a)-rectangular sets, randomised for s-rectangular ones) and the
/// worst-case kernel it faces.
pub fn robust_value_iteration(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    config: &RobustValueIterationConfig,
) -> Result<RobustSolution, RobustError> {
    mdp.validate()?;
    set.validate()?;
    check_discount(mdp)?;
    if config.epsilon.is_nan() || config.epsilon <= 0.0 {
        return Err(param(
            "RobustValueIteration",
            "epsilon",
            config.epsilon,
            "must be > 0",
        ));
    }
    let threshold = if mdp.gamma > 0.0 {
        config.epsilon * (1.0 - mdp.gamma) / (2.0 * mdp.gamma)
    } else {
        f64::INFINITY
    };
    let mut v = vec![0.0; mdp.n_states];
    let mut residual = f64::INFINITY;
    let mut sweeps = 0;
    let mut rows = Vec::new();
    while sweeps < config.max_sweeps {
        let (next, pi) = robust_bellman_sweep(mdp, set, &v);
        residual = next
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        v = next;
        rows = pi;
        sweeps += 1;
        if residual < threshold {
            break;
        }
    }
    // The policy greedy with respect to the final V.
    let (_, last_rows) = robust_bellman_sweep(mdp, set, &v);
    if !last_rows.is_empty() {
        rows = last_rows;
    }
    let policy = match set.rectangularity {
        Rectangularity::Sa => Policy::Deterministic(
            rows.iter()
                .map(|r| r.iter().position(|x| *x > 0.5).unwrap_or(0))
                .collect(),
        ),
        Rectangularity::S => Policy::Stochastic(rows),
    };
    let worst_kernel = crate::robust_pi::worst_kernel(mdp, set, &policy, &v)?;
    Ok(RobustSolution {
        value: v,
        policy,
        worst_kernel,
        iterations: sweeps,
        residual,
    })
}
