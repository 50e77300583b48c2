//! Exact inner problems `min { q . v : q in Delta(S), D(q, p) <= radius }`.
//!
//! - L1: the sorting-based closed form (Iyengar 2005, Sec. 6; Ho, Petrik &
//!   Wiesemann 2018, Alg. 1): move `min(radius / 2, 1 - p(s_min))` of mass onto
//!   the lowest-value state, taking it from the highest-value states first.
//! - L-infinity: start every entry at `max(0, p - radius)` and pour the
//!   remaining mass into the lowest-value states up to `min(1, p + radius)`
//!   (a fractional-knapsack greedy, exact for this box-and-simplex LP).
//! - KL: the one-dimensional dual (Nilim & El Ghaoui 2005, Sec. 6; Iyengar
//!   2005, Lemma 4.2)
//!   `min_q q.v = max_{beta >= 0} -beta ln E_p[exp(-v / beta)] - beta radius`,
//!   whose maximiser makes `q_beta ∝ p exp(-v / beta)` satisfy
//!   `KL(q_beta || p) = radius` (the derivative of the dual is
//!   `KL(q_beta || p) - radius`, decreasing in beta), found by bisection on
//!   `ln beta`. When `radius >= -ln p(argmin_supp v)` the worst case puts all
//!   mass on the lowest-value states of the support.
//!
//! Each solver writes the minimising `q` and returns `q . v`.

use crate::uncertainty::Distance;

/// The order of `v` every row of one Bellman sweep shares: states by
/// decreasing value, and the global argmin.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueOrder {
    /// State indices sorted by decreasing `v`.
    pub descending: Vec<usize>,
    /// A state of minimum value.
    pub argmin: usize,
}

impl ValueOrder {
    /// Sort `v` once (`O(S log S)`).
    pub fn new(v: &[f64]) -> Self {
        let mut descending: Vec<usize> = (0..v.len()).collect();
        descending.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        let argmin = descending.last().copied().unwrap_or(0);
        Self { descending, argmin }
    }
}

/// Solve the inner problem for `distance`; `order` must come from `v`.
pub fn worst_case(
    distance: Distance,
    p: &[f64],
    v: &[f64],
    radius: f64,
    order: &ValueOrder,
    q: &mut [f64],
) -> f64 {
    match distance {
        Distance::L1 => l1_worst_case(p, v, radius, order, q),
        Distance::Linf => linf_worst_case(p, v, radius, order, q),
        Distance::Kl => kl_worst_case(p, v, radius, q),
    }
}

/// L1 ball, sorting-based closed form.
pub fn l1_worst_case(p: &[f64], v: &[f64], radius: f64, order: &ValueOrder, q: &mut [f64]) -> f64 {
    q.copy_from_slice(p);
    let smin = order.argmin;
    let delta = (radius / 2.0).min(1.0 - p[smin]).max(0.0);
    q[smin] += delta;
    let mut left = delta;
    for &s in &order.descending {
        if left <= 0.0 {
            break;
        }
        if s == smin {
            continue;
        }
        let take = q[s].min(left);
        q[s] -= take;
        left -= take;
    }
    q.iter().zip(v).map(|(a, b)| a * b).sum()
}

/// L-infinity ball, greedy fill in increasing value order.
pub fn linf_worst_case(
    p: &[f64],
    v: &[f64],
    radius: f64,
    order: &ValueOrder,
    q: &mut [f64],
) -> f64 {
    let mut budget = 1.0;
    for (qs, &ps) in q.iter_mut().zip(p) {
        *qs = (ps - radius).max(0.0);
        budget -= *qs;
    }
    for &s in order.descending.iter().rev() {
        if budget <= 0.0 {
            break;
        }
        let room = (p[s] + radius).min(1.0) - q[s];
        let add = room.min(budget).max(0.0);
        q[s] += add;
        budget -= add;
    }
    q.iter().zip(v).map(|(a, b)| a * b).sum()
}

/// `q_beta ∝ p exp(-(v - vmin) / beta)` and its `KL(q_beta || p)`.
pub(crate) fn tilted(p: &[f64], v: &[f64], vmin: f64, beta: f64, q: &mut [f64]) -> f64 {
    let mut z = 0.0;
    for ((qs, &ps), &vs) in q.iter_mut().zip(p).zip(v) {
        *qs = if ps > 0.0 {
            ps * (-(vs - vmin) / beta).exp()
        } else {
            0.0
        };
        z += *qs;
    }
    let mut kl = 0.0;
    for ((qs, &ps), &vs) in q.iter_mut().zip(p).zip(v) {
        *qs /= z;
        if *qs > 0.0 && ps > 0.0 {
            kl += *qs * (-(vs - vmin) / beta - z.ln());
        }
    }
    kl.max(0.0)
}

/// The KL dual objective `-beta ln E_p[exp(-v / beta)] - beta radius` at
/// `beta > 0` (every value of it lower-bounds the inner minimum).
pub fn kl_dual_objective(p: &[f64], v: &[f64], radius: f64, beta: f64) -> f64 {
    let vmin = p
        .iter()
        .zip(v)
        .filter(|(pp, _)| **pp > 0.0)
        .map(|(_, x)| *x)
        .fold(f64::INFINITY, f64::min);
    let z: f64 = p
        .iter()
        .zip(v)
        .filter(|(pp, _)| **pp > 0.0)
        .map(|(pp, x)| pp * (-(x - vmin) / beta).exp())
        .sum();
    vmin - beta * z.ln() - beta * radius
}

/// KL ball via its one-dimensional dual; returns `q . v` for a feasible `q`
/// with `KL(q || p) <= radius` (up to 1e-12). Works on the support of `p`
/// only (the worst case cannot leave it).
pub fn kl_worst_case(p: &[f64], v: &[f64], radius: f64, q: &mut [f64]) -> f64 {
    kl_worst_case_with_beta(p, v, radius, q).0
}

/// [`kl_worst_case`] that also returns the dual maximiser `beta*`, which is
/// minus the derivative of the inner minimum in the radius (envelope
/// theorem on the dual); `0` once the radius saturates (or `v` is constant).
pub fn kl_worst_case_with_beta(p: &[f64], v: &[f64], radius: f64, q: &mut [f64]) -> (f64, f64) {
    let mut beta = 0.0;
    let support: Vec<usize> = (0..p.len()).filter(|&s| p[s] > 0.0).collect();
    let ps: Vec<f64> = support.iter().map(|&s| p[s]).collect();
    let vs: Vec<f64> = support.iter().map(|&s| v[s]).collect();
    let mut qs = vec![0.0; support.len()];
    let vmin = vs.iter().cloned().fold(f64::INFINITY, f64::min);
    let vmax = vs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tol = 1e-12 * (1.0 + vmin.abs());
    if radius <= 0.0 || vmax - vmin <= 0.0 {
        qs.copy_from_slice(&ps);
    } else {
        let floor_mass: f64 = ps
            .iter()
            .zip(&vs)
            .filter(|(_, x)| **x <= vmin + tol)
            .map(|(pp, _)| *pp)
            .sum();
        if radius >= -floor_mass.ln() {
            for ((qq, &pp), &x) in qs.iter_mut().zip(&ps).zip(&vs) {
                *qq = if x <= vmin + tol {
                    pp / floor_mass
                } else {
                    0.0
                };
            }
        } else {
            // KL(q_beta || p) decreases from -ln(floor_mass) (beta -> 0) to 0 (beta -> inf).
            let spread = (vmax - vmin).ln();
            let (mut lo, mut hi) = (spread, spread);
            while tilted(&ps, &vs, vmin, lo.exp(), &mut qs) <= radius && lo > spread - 60.0 {
                lo -= 2.0;
            }
            while tilted(&ps, &vs, vmin, hi.exp(), &mut qs) > radius && hi < spread + 60.0 {
                hi += 2.0;
            }
            while hi - lo > 1e-13 {
                let mid = 0.5 * (lo + hi);
                if tilted(&ps, &vs, vmin, mid.exp(), &mut qs) > radius {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            tilted(&ps, &vs, vmin, hi.exp(), &mut qs);
            beta = hi.exp();
        }
    }
    q.iter_mut().for_each(|x| *x = 0.0);
    for (k, &s) in support.iter().enumerate() {
        q[s] = qs[k];
    }
    (qs.iter().zip(&vs).map(|(a, b)| a * b).sum(), beta)
}

/// Right derivative in the radius of the L1 inner minimum: mass moves onto
/// the global argmin at rate `1/2` from the highest-value state that still
/// has mass at radius `xi`.
pub fn l1_slope(p: &[f64], v: &[f64], xi: f64, order: &ValueOrder) -> f64 {
    let smin = order.argmin;
    let mut left = xi / 2.0;
    if left >= 1.0 - p[smin] {
        return 0.0;
    }
    for &s in &order.descending {
        if s == smin || p[s] <= 0.0 {
            continue;
        }
        if left < p[s] {
            return -(v[s] - v[smin]) / 2.0;
        }
        left -= p[s];
    }
    0.0
}

/// Right derivative in the radius of the L-infinity inner minimum. At radius
/// `xi` the greedy fill has states at their caps `min(1, p + xi)` (lowest
/// values), one partial state `j`, and states at their floors
/// `max(0, p - xi)`; growing `xi` lowers every floor with `p > xi` and
/// raises every cap below 1 at rate one, the partial state absorbing the
/// difference, so the slope is
/// `-(sum_{floor, p > xi} (v_s - v_j) + sum_{cap, p + xi < 1} (v_j - v_s))`.
pub fn linf_slope(p: &[f64], v: &[f64], xi: f64, order: &ValueOrder) -> f64 {
    // at xi = 0 every room is empty: read the fill just to the right
    let xi = xi.max(1e-12);
    let mut budget: f64 = p.iter().map(|&ps| ps.min(xi)).sum();
    let ascending: Vec<usize> = order.descending.iter().rev().copied().collect();
    let mut partial = None;
    for (k, &s) in ascending.iter().enumerate() {
        let room = (p[s] + xi).min(1.0) - (p[s] - xi).max(0.0);
        if budget < room {
            partial = Some(k);
            break;
        }
        budget -= room;
    }
    let Some(j) = partial else {
        return 0.0;
    };
    let vj = v[ascending[j]];
    let mut slope = 0.0;
    for (k, &s) in ascending.iter().enumerate() {
        if k < j && p[s] + xi < 1.0 {
            slope -= vj - v[s];
        } else if k > j && p[s] > xi {
            slope -= v[s] - vj;
        }
    }
    slope
}

/// Right derivative of `worst_case(distance, p, v, xi)` in `xi`.
pub fn worst_case_slope(
    distance: Distance,
    p: &[f64],
    v: &[f64],
    xi: f64,
    order: &ValueOrder,
) -> f64 {
    match distance {
        Distance::L1 => l1_slope(p, v, xi, order),
        Distance::Linf => linf_slope(p, v, xi, order),
        Distance::Kl => {
            let mut q = vec![0.0; p.len()];
            -kl_worst_case_with_beta(p, v, xi, &mut q).1
        }
    }
}

/// The least radius `xi` whose inner minimum reaches `tau`:
/// `min { xi : worst_case(distance, p, v, xi) <= tau }` (`0` if `p . v <=
/// tau`, `INFINITY` if no radius reaches it). Used by the s-rectangular
/// backup to invert `g_a` without nested bisection:
/// - L1: walk the sorting closed form, taking mass from the highest states
///   onto the argmin until the value has dropped by `p . v - tau` (exact);
/// - KL: the least-KL distribution with mean `tau` is the tilt
///   `q_beta ∝ p exp(-v / beta)` whose mean is `tau` (the I-projection onto
///   `{q : q . v <= tau}`), found by one bisection on `ln beta`;
/// - L-infinity: Newton steps on the convex piecewise-linear `f` with its
///   exact right derivative (finite; bisection as a fallback).
pub fn radius_to_reach(
    distance: Distance,
    p: &[f64],
    v: &[f64],
    tau: f64,
    order: &ValueOrder,
) -> f64 {
    let nominal: f64 = p.iter().zip(v).map(|(a, b)| a * b).sum();
    if nominal <= tau {
        return 0.0;
    }
    match distance {
        Distance::L1 => {
            let smin = order.argmin;
            let vmin = v[smin];
            let mut need = nominal - tau;
            let mut moved = 0.0;
            for &s in &order.descending {
                if s == smin || p[s] <= 0.0 {
                    continue;
                }
                let gain = v[s] - vmin;
                if gain <= 0.0 {
                    break;
                }
                if gain * p[s] >= need {
                    return 2.0 * (moved + need / gain);
                }
                moved += p[s];
                need -= gain * p[s];
            }
            f64::INFINITY
        }
        Distance::Linf => {
            let mut q = vec![0.0; p.len()];
            if linf_worst_case(p, v, 1.0, order, &mut q) > tau {
                return f64::INFINITY;
            }
            // f is convex, decreasing and piecewise linear: Newton steps from
            // the left along the right derivative never overshoot the root
            // and reach it after at most one step per linear piece.
            let scale = 1e-15 * (1.0 + tau.abs());
            let mut xi = 0.0;
            for _ in 0..4 * p.len() + 8 {
                let gap = linf_worst_case(p, v, xi, order, &mut q) - tau;
                if gap <= scale {
                    return xi;
                }
                let slope = linf_slope(p, v, xi, order);
                if slope >= 0.0 {
                    break;
                }
                let next = (xi - gap / slope).min(1.0);
                if next <= xi {
                    break;
                }
                xi = next;
            }
            // fallback: bisection between the Newton iterate and 1
            let (mut lo, mut hi) = (xi, 1.0);
            while hi - lo > 1e-15 {
                let mid = 0.5 * (lo + hi);
                if linf_worst_case(p, v, mid, order, &mut q) <= tau {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            hi
        }
        Distance::Kl => {
            let (ps, vs): (Vec<f64>, Vec<f64>) = p
                .iter()
                .zip(v)
                .filter(|(m, _)| **m > 0.0)
                .map(|(m, x)| (*m, *x))
                .unzip();
            let vmin = vs.iter().cloned().fold(f64::INFINITY, f64::min);
            let vmax = vs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if tau < vmin {
                return f64::INFINITY;
            }
            let mut q = vec![0.0; ps.len()];
            let mean = |q: &[f64]| q.iter().zip(&vs).map(|(a, b)| a * b).sum::<f64>();
            if tau <= vmin {
                // all mass on the minimisers of the support
                return Distance::Kl.saturation_radius(p, v);
            }
            // the tilted mean increases with beta from vmin (beta -> 0) to p . v (beta -> inf)
            let centre = (vmax - vmin).max(1e-300).ln();
            let (mut lo, mut hi) = (centre, centre);
            loop {
                tilted(&ps, &vs, vmin, lo.exp(), &mut q);
                if mean(&q) <= tau || lo < centre - 200.0 {
                    break;
                }
                lo -= 2.0;
            }
            loop {
                tilted(&ps, &vs, vmin, hi.exp(), &mut q);
                if mean(&q) > tau || hi > centre + 200.0 {
                    break;
                }
                hi += 2.0;
            }
            while hi - lo > 1e-14 * (1.0 + hi.abs()) {
                let mid = 0.5 * (lo + hi);
                tilted(&ps, &vs, vmin, mid.exp(), &mut q);
                if mean(&q) <= tau {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            // the larger-radius end of the bracket (mean <= tau)
            tilted(&ps, &vs, vmin, lo.exp(), &mut q)
        }
    }
}
