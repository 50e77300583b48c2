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
//! - s-rectangular: the same adversary policy iteration, the best response
//!   at a state being the budget split minimising
//!   `sum_a pi_a f_a(xi_a)` over `sum_a xi_a <= r`
//!   (`f_a(xi) = min_{D(q,p_sa) <= xi} q . V`, convex), a separable convex
//!   problem solved exactly ([`s_rectangular_response`]). Its fixed point is
//!   the fixed point of
//!   `(T^pi V)(s) = sum_a pi_a R(s,a) + gamma min_{sum_a xi_a <= r} sum_a pi_a f_a(xi_a)`.
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
use crate::uncertainty::{Distance, Rectangularity, UncertaintySet};
use crate::worst_case::{ValueOrder, linf_slope, tilted, worst_case};

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
/// `sum_a xi_a <= r` (`f_a(xi) = min_{D(q, p_sa) <= xi} q . V`, convex and
/// non-increasing), the resulting `min` value and the worst rows. Solved
/// exactly (no budget discretisation):
/// - L1: `f_a` is piecewise linear; moving `xi/2` of mass from state `s'`
///   onto the global argmin lowers `pi_a f_a` at rate
///   `pi_a (V(s') - V_min) / 2` for a length `2 p_sa(s')` of budget. The
///   pieces of all actions, sorted by rate, are filled greedily (exact for
///   a separable piecewise-linear convex allocation).
/// - KL: the Lagrangian `min_xi pi_a f_a(xi) + lambda xi` has the closed form
///   `-lambda ln E_{p_sa}[exp(-pi_a V / lambda)]` with
///   `xi_a(lambda) = KL(q_a || p_sa)`, `q_a ∝ p_sa exp(-pi_a V / lambda)`
///   (the KL dual, Nilim & El Ghaoui 2005, Sec. 6), decreasing in `lambda`;
///   `sum_a xi_a(lambda) = r` is solved by bisection on `ln lambda` to
///   machine precision.
/// - L-infinity: bisection on the multiplier `lambda`, each
///   `xi_a(lambda) = inf {xi : pi_a f_a'(xi+) >= -lambda}` found by bisection
///   with the exact right derivative ([`crate::worst_case::linf_slope`]); the
///   budget left between the bracketing multipliers (a flat piece) is handed
///   out in action order, which changes the value by at most the bracket
///   width times the budget.
pub fn s_rectangular_response(
    mdp: &TabularMdp,
    set: &UncertaintySet,
    v: &[f64],
    order: &ValueOrder,
    s: usize,
    pi: &[f64],
) -> (f64, Vec<f64>) {
    let na = mdp.n_actions;
    let ns = mdp.n_states;
    let p = |a: usize| mdp.next_state_distribution(s, a);
    let caps: Vec<f64> = (0..na)
        .map(|a| {
            if pi[a] > 0.0 {
                set.distance.saturation_radius(p(a), v)
            } else {
                0.0
            }
        })
        .collect();
    let xi = if caps.iter().sum::<f64>() <= set.radius {
        caps.clone()
    } else {
        match set.distance {
            Distance::L1 => l1_allocation(&p, v, order, pi, set.radius, na),
            Distance::Kl => kl_allocation(&p, v, pi, &caps, set.radius, na),
            Distance::Linf => linf_allocation(&p, v, order, pi, &caps, set.radius, na),
        }
    };
    let mut rows = vec![0.0; na * ns];
    let mut value = 0.0;
    for a in 0..na {
        let fa = worst_case(
            set.distance,
            p(a),
            v,
            xi[a].min(caps[a].max(0.0)),
            order,
            &mut rows[a * ns..(a + 1) * ns],
        );
        value += pi[a] * fa;
    }
    (value, rows)
}

fn l1_allocation<'a>(
    p: &impl Fn(usize) -> &'a [f64],
    v: &[f64],
    order: &ValueOrder,
    pi: &[f64],
    radius: f64,
    na: usize,
) -> Vec<f64> {
    let smin = order.argmin;
    let vmin = v[smin];
    let mut pieces: Vec<(f64, f64, usize)> = vec![];
    for (a, &w) in pi.iter().enumerate().take(na) {
        if w <= 0.0 {
            continue;
        }
        for (sp, &mass) in p(a).iter().enumerate() {
            if sp != smin && mass > 0.0 && v[sp] > vmin {
                pieces.push((w * (v[sp] - vmin) / 2.0, 2.0 * mass, a));
            }
        }
    }
    pieces.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut xi = vec![0.0; na];
    let mut left = radius;
    for (_, len, a) in pieces {
        if left <= 0.0 {
            break;
        }
        let take = len.min(left);
        xi[a] += take;
        left -= take;
    }
    xi
}

fn kl_allocation<'a>(
    p: &impl Fn(usize) -> &'a [f64],
    v: &[f64],
    pi: &[f64],
    caps: &[f64],
    radius: f64,
    na: usize,
) -> Vec<f64> {
    // xi_a(lambda) = KL(q_a || p_a) with q_a ∝ p_a exp(-(V - Vmin_a) / (lambda / pi_a)).
    let support: Vec<(Vec<f64>, Vec<f64>, f64)> = (0..na)
        .map(|a| {
            let (ps, vs): (Vec<f64>, Vec<f64>) = p(a)
                .iter()
                .zip(v)
                .filter(|(m, _)| **m > 0.0)
                .map(|(m, x)| (*m, *x))
                .unzip();
            let vmin = vs.iter().cloned().fold(f64::INFINITY, f64::min);
            (ps, vs, vmin)
        })
        .collect();
    let spend = |ln_lambda: f64| -> Vec<f64> {
        (0..na)
            .map(|a| {
                if pi[a] <= 0.0 || caps[a] <= 0.0 {
                    return 0.0;
                }
                let (ps, vs, vmin) = &support[a];
                let mut q = vec![0.0; ps.len()];
                tilted(ps, vs, *vmin, ln_lambda.exp() / pi[a], &mut q).min(caps[a])
            })
            .collect()
    };
    let total = |ln_lambda: f64| spend(ln_lambda).iter().sum::<f64>();
    let spread = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - v.iter().cloned().fold(f64::INFINITY, f64::min);
    let centre = spread.max(1e-300).ln();
    let (mut lo, mut hi) = (centre, centre);
    while total(lo) <= radius && lo > centre - 200.0 {
        lo -= 2.0;
    }
    while total(hi) > radius && hi < centre + 200.0 {
        hi += 2.0;
    }
    while hi - lo > 1e-14 * (1.0 + hi.abs()) {
        let mid = 0.5 * (lo + hi);
        if total(mid) > radius {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    spend(hi)
}

fn linf_allocation<'a>(
    p: &impl Fn(usize) -> &'a [f64],
    v: &[f64],
    order: &ValueOrder,
    pi: &[f64],
    caps: &[f64],
    radius: f64,
    na: usize,
) -> Vec<f64> {
    // xi_a(lambda): the smallest xi where pi_a f_a'(xi+) >= -lambda.
    let xi_at = |lambda: f64, a: usize| -> f64 {
        if pi[a] <= 0.0 || caps[a] <= 0.0 {
            return 0.0;
        }
        let pa = p(a);
        let ok = |x: f64| pi[a] * linf_slope(pa, v, x, order) >= -lambda;
        if ok(0.0) {
            return 0.0;
        }
        let (mut lo, mut hi) = (0.0, caps[a]);
        while hi - lo > 1e-15 {
            let mid = 0.5 * (lo + hi);
            if ok(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    };
    let spread = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - v.iter().cloned().fold(f64::INFINITY, f64::min);
    // |f_a'| <= S (V_max - V_min): above that multiplier nothing is spent.
    let (mut lo, mut hi) = (0.0, v.len() as f64 * spread + 1.0);
    let spend = |lambda: f64| -> Vec<f64> { (0..na).map(|a| xi_at(lambda, a)).collect() };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if spend(mid).iter().sum::<f64>() > radius {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * (1.0 + hi) {
            break;
        }
    }
    let mut xi = spend(hi);
    let upper = spend(lo);
    let mut left = radius - xi.iter().sum::<f64>();
    for a in 0..na {
        if left <= 0.0 {
            break;
        }
        let add = (upper[a] - xi[a]).max(0.0).min(left);
        xi[a] += add;
        left -= add;
    }
    xi
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
    // The adversary's policy iteration: its per-state choice (a row per
    // action, or a joint budget split for s-rectangular sets) is independent
    // across states, so evaluating `pi` on the current kernel and replacing
    // it by the best response to that value decreases `V` monotonically to
    // the robust value (a Newton step of the adversary's Bellman equation).
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
        if change <= config.tolerance * (1.0 + v.iter().fold(0.0f64, |m, x| m.max(x.abs()))) {
            break;
        }
    }
    Ok((v, kernel))
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
