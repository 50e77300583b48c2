//! Offline planning: the LP upper bound, purely periodic policies, two simple
//! baselines and a brute-force optimum for tiny instances.
//!
//! **Reconstructed** (reference note `recovering-rewards.md` Sec. 2.3): the
//! paper's exact upper bound and period rule could not be read (public
//! sources found give only the abstract and the opening of the
//! introduction; no code), so the rule below is unverified. The bound here
//! is the LP relaxation
//!
//! `UB = max_x sum_{i,d} R_i(d) x_{i,d}` s.t. `sum_{i,d} x_{i,d} <= K`,
//! `sum_d d x_{i,d} <= 1` for each arm, `x >= 0`,
//!
//! solved exactly through its one-dimensional Lagrangian dual
//! `UB = min_{lambda >= 0} lambda K + sum_i max(0, max_d (R_i(d) - lambda) / d)`
//! (a convex piecewise-linear function, minimised over its breakpoints).

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::model::RecoveringBandit;

/// The LP upper bound on the long-run average reward per period and the
/// periods read off its dual solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpperBound {
    /// `UB`, expected reward per period.
    pub value: f64,
    /// Optimal multiplier of the `K`-pulls constraint.
    pub lambda: f64,
    /// Period of each arm (`None`: never pulled).
    pub periods: Vec<Option<usize>>,
}

fn dual_value(curves: &[Vec<f64>], k: usize, lambda: f64) -> f64 {
    lambda * k as f64
        + curves
            .iter()
            .map(|c| {
                c.iter()
                    .enumerate()
                    .map(|(j, r)| (r - lambda) / (j + 1) as f64)
                    .fold(0.0, f64::max)
            })
            .sum::<f64>()
}

/// Solves the LP bound for curves `curves[i][d - 1]` and `k` pulls per period,
/// and rounds its solution to one period per arm: at the optimal multiplier
/// each arm takes its longest maximising period (lowest pull rate), then arms
/// switch to shorter maximising periods while `sum_i 1/p_i <= K` allows. (The
/// LP optimum splits at most one arm across two periods; purely periodic
/// rounding must pick one.)
pub fn upper_bound(curves: &[Vec<f64>], k: usize) -> UpperBound {
    let mut candidates = vec![0.0];
    for c in curves {
        for (j, &rj) in c.iter().enumerate() {
            candidates.push(rj);
            for (l, &rl) in c.iter().enumerate().skip(j + 1) {
                let (dj, dl) = ((j + 1) as f64, (l + 1) as f64);
                // (rj - x)/dj = (rl - x)/dl  =>  x = (dl rj - dj rl)/(dl - dj)
                candidates.push((dl * rj - dj * rl) / (dl - dj));
            }
        }
    }
    let (mut lambda, mut value) = (0.0, f64::INFINITY);
    for &x in candidates.iter().filter(|x| x.is_finite() && **x >= 0.0) {
        let v = dual_value(curves, k, x);
        if v < value - 1e-15 || (v <= value + 1e-15 && x > lambda) {
            lambda = x;
            value = v;
        }
    }
    let tol = 1e-12;
    let mut maximisers: Vec<(bool, Vec<usize>)> = Vec::with_capacity(curves.len());
    for c in curves {
        let scores: Vec<f64> = c
            .iter()
            .enumerate()
            .map(|(j, r)| (r - lambda) / (j + 1) as f64)
            .collect();
        let best = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        // Arms with score exactly 0 are indifferent: the LP may pull them or not.
        if best > -tol {
            let mut ds: Vec<usize> = (0..c.len())
                .filter(|&j| scores[j] >= best - tol)
                .map(|j| j + 1)
                .collect();
            ds.sort_unstable_by(|a, b| b.cmp(a));
            maximisers.push((best > tol, ds));
        } else {
            maximisers.push((false, vec![]));
        }
    }
    let mut periods: Vec<Option<usize>> = maximisers
        .iter()
        .map(|(positive, m)| if *positive { m.first().copied() } else { None })
        .collect();
    let rate = |p: &[Option<usize>]| p.iter().flatten().map(|&d| 1.0 / d as f64).sum::<f64>();
    // Greedy refinement: shorter periods (more pulls) where the budget allows.
    loop {
        let mut changed = false;
        for (i, (_, m)) in maximisers.iter().enumerate() {
            let next = match periods[i] {
                Some(cur) => m.iter().find(|&&d| d < cur).copied(),
                None => m.first().copied(),
            };
            if let Some(shorter) = next {
                let mut trial = periods.clone();
                trial[i] = Some(shorter);
                if rate(&trial) <= k as f64 + 1e-9 {
                    periods = trial;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    UpperBound {
        value,
        lambda,
        periods,
    }
}

/// A purely periodic policy: arm `i` is due at `t = o_i + m p_i`, with
/// offsets `o_i` drawn uniformly in `0..p_i`. When more than `K` arms are due,
/// `K` of them are served uniformly at random and the others wait for their
/// next due time (staying on the grid, so by monotonicity a skipped arm never
/// earns less per pull).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicPolicy {
    /// Period per arm (`None`: never pulled).
    pub periods: Vec<Option<usize>>,
    /// Offset per arm.
    pub offsets: Vec<usize>,
}

impl PeriodicPolicy {
    /// Draw fresh uniform offsets for `periods`.
    pub fn with_random_offsets<R: Rng + ?Sized>(periods: Vec<Option<usize>>, rng: &mut R) -> Self {
        let offsets = periods
            .iter()
            .map(|p| p.map(|p| rng.random_range(0..p.max(1))).unwrap_or(0))
            .collect();
        Self { periods, offsets }
    }

    /// The arms pulled at period `t` (at most `k`).
    pub fn arms_at<R: Rng + ?Sized>(&self, t: usize, k: usize, rng: &mut R) -> Vec<usize> {
        let mut due: Vec<usize> = self
            .periods
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.filter(|&p| t % p == self.offsets[i] % p).map(|_| i))
            .collect();
        if due.len() > k {
            for j in 0..k {
                let r = rng.random_range(j..due.len());
                due.swap(j, r);
            }
            due.truncate(k);
        }
        due
    }
}

/// Expected total reward of `policy` over `horizon` periods from fully
/// recovered arms (noise-free accounting; the conflict draws use `rng`).
pub fn simulate_periodic<R: Rng + ?Sized>(
    bandit: &RecoveringBandit,
    policy: &PeriodicPolicy,
    horizon: usize,
    rng: &mut R,
) -> f64 {
    let mut idle = bandit.initial_idle();
    let mut total = 0.0;
    for t in 0..horizon {
        let arms = policy.arms_at(t, bandit.k, rng);
        total += expected_step(bandit, &mut idle, &arms);
    }
    total
}

/// Expected reward of pulling `arms` at idle times `idle`, advancing `idle`.
pub fn expected_step(bandit: &RecoveringBandit, idle: &mut [usize], arms: &[usize]) -> f64 {
    let reward: f64 = arms.iter().map(|&i| bandit.mean(i, idle[i])).sum();
    let d_max = bandit.d_max();
    for (i, d) in idle.iter_mut().enumerate() {
        *d = if arms.contains(&i) {
            1
        } else {
            (*d + 1).min(d_max)
        };
    }
    reward
}

/// Greedy-myopic baseline: each period pull the `K` arms with the largest
/// current expected reward `R_i(idle_i)`. Returns the expected total.
pub fn simulate_greedy(bandit: &RecoveringBandit, horizon: usize) -> f64 {
    let mut idle = bandit.initial_idle();
    let mut total = 0.0;
    let mut order: Vec<usize> = (0..bandit.n_arms()).collect();
    for _ in 0..horizon {
        order.sort_by(|&a, &b| bandit.mean(b, idle[b]).total_cmp(&bandit.mean(a, idle[a])));
        let arms: Vec<usize> = order.iter().take(bandit.k).copied().collect();
        total += expected_step(bandit, &mut idle, &arms);
    }
    total
}

/// Round-robin baseline: cycle through the arms `K` at a time.
pub fn simulate_round_robin(bandit: &RecoveringBandit, horizon: usize) -> f64 {
    let n = bandit.n_arms();
    let mut idle = bandit.initial_idle();
    let mut total = 0.0;
    for t in 0..horizon {
        let arms: Vec<usize> = (0..bandit.k.min(n))
            .map(|j| (t * bandit.k + j) % n)
            .collect();
        total += expected_step(bandit, &mut idle, &arms);
    }
    total
}

/// The optimal expected total reward over `horizon` periods from fully
/// recovered arms, by backward induction over all idle-time vectors and all
/// subsets of at most `K` arms. Exponential in `N`: for tiny instances only
/// (`d_max^N` states); returns `None` beyond 200 000 states.
pub fn brute_force_optimum(bandit: &RecoveringBandit, horizon: usize) -> Option<f64> {
    let (n, d_max) = (bandit.n_arms(), bandit.d_max());
    let n_states = d_max.checked_pow(n as u32).filter(|&s| s <= 200_000)?;
    let decode = |mut code: usize| -> Vec<usize> {
        (0..n)
            .map(|_| {
                let d = code % d_max + 1;
                code /= d_max;
                d
            })
            .collect()
    };
    let encode = |idle: &[usize]| idle.iter().rev().fold(0, |acc, &d| acc * d_max + (d - 1));
    let subsets: Vec<Vec<usize>> = (0u32..(1 << n))
        .filter(|m| m.count_ones() as usize <= bandit.k)
        .map(|m| (0..n).filter(|i| m >> i & 1 == 1).collect())
        .collect();
    let mut next = vec![0.0; n_states];
    for _ in 0..horizon {
        let cur: Vec<f64> = (0..n_states)
            .map(|code| {
                let idle = decode(code);
                subsets
                    .iter()
                    .map(|arms| {
                        let mut after = idle.clone();
                        let r = expected_step(bandit, &mut after, arms);
                        r + next[encode(&after)]
                    })
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        next = cur;
    }
    Some(next[encode(&bandit.initial_idle())])
}

/// The long-run average reward of the periodic policy built from the true
/// curves, averaged over `draws` offset draws of `horizon` periods each.
pub fn periodic_average<R: Rng + ?Sized>(
    bandit: &RecoveringBandit,
    horizon: usize,
    draws: usize,
    rng: &mut R,
) -> f64 {
    let ub = upper_bound(&bandit.recovery, bandit.k);
    let mut sum = 0.0;
    for _ in 0..draws.max(1) {
        let policy = PeriodicPolicy::with_random_offsets(ub.periods.clone(), rng);
        sum += simulate_periodic(bandit, &policy, horizon, rng) / horizon as f64;
    }
    sum / draws.max(1) as f64
}

/// `1 - K^K e^{-K} / K!`, the Poisson correlation-gap bound on the served
/// fraction of due pulls when `sum_i 1/p_i = K`.
pub fn poisson_served_fraction(k: usize) -> f64 {
    let kf = k as f64;
    let log_term = kf * kf.ln() - kf - (1..=k).map(|j| (j as f64).ln()).sum::<f64>();
    1.0 - log_term.exp()
}
