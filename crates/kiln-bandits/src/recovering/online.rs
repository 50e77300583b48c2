//! Online learning: the purely periodic planner driven by upper confidence
//! bounds, and a recovery-blind UCB baseline.
//!
//! **Reconstructed** (reference note `recovering-rewards.md` Sec. 2.4; the
//! paper's algorithm and constants could not be read): per `(arm, idle)` the
//! learner keeps a count and a mean, forms
//! `U_{i,d} = min(1, mean + sqrt(2 ln T / n))` (`U = 1` before any
//! observation), makes it non-decreasing in `d` by a running maximum, and in
//! epochs of length `L_e` (doubling `L_0 2^{e-1}` as in the note, arithmetic
//! `e L_0`, or constant `L_0`) plays the periodic policy of
//! [`super::periodic::upper_bound`] on `U`. The paper's claim is
//! regret `O~(N sqrt(T))` against the offline benchmark.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::model::RecoveringBandit;
use super::periodic::{PeriodicPolicy, upper_bound};

/// Options of [`ucb_periodic`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UcbPeriodicConfig {
    /// Horizon `T` (also enters the confidence radius).
    pub horizon: usize,
    /// Scale of the confidence radius `c sqrt(2 ln T / n)` (1 in the note).
    pub bonus_scale: f64,
    /// First epoch length `L_0`; `0` means `ceil(d_max N / K)`.
    pub first_epoch: usize,
    /// How epoch lengths grow.
    pub epochs: EpochSchedule,
}

/// Epoch lengths of [`ucb_periodic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochSchedule {
    /// `L_e = L_0 2^{e-1}` (the note's reading; only `log T` re-plans).
    Doubling,
    /// `L_e = e L_0` (about `sqrt(2 T / L_0)` re-plans).
    Arithmetic,
    /// `L_e = L_0`: re-plan every `L_0` periods, so each unexplored
    /// `(arm, idle)` pair the optimistic plan selects is tried at once.
    Constant,
}

/// Cumulative expected reward after each period (one entry per period).
pub type RewardPath = Vec<f64>;

/// UCB + purely periodic planning on `bandit` (whose curves are hidden from
/// the learner: it only sees noisy observations). Returns the cumulative
/// expected reward collected.
pub fn ucb_periodic<R: Rng + ?Sized>(
    bandit: &RecoveringBandit,
    config: &UcbPeriodicConfig,
    rng: &mut R,
) -> RewardPath {
    let (n, d_max, k) = (bandit.n_arms(), bandit.d_max(), bandit.k);
    let horizon = config.horizon;
    let mut counts = vec![vec![0u64; d_max]; n];
    let mut sums = vec![vec![0.0; d_max]; n];
    let log_t = (horizon.max(2) as f64).ln();
    let mut idle = bandit.initial_idle();
    let mut path = Vec::with_capacity(horizon);
    let mut total = 0.0;
    let first = if config.first_epoch == 0 {
        (d_max * n).div_ceil(k).max(1)
    } else {
        config.first_epoch
    };
    let mut epoch_len = first;
    let mut t = 0;
    while t < horizon {
        let optimistic: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut run = 0.0f64;
                (0..d_max)
                    .map(|j| {
                        let c = counts[i][j];
                        let u = if c == 0 {
                            1.0
                        } else {
                            (sums[i][j] / c as f64
                                + config.bonus_scale * (2.0 * log_t / c as f64).sqrt())
                            .min(1.0)
                        };
                        run = run.max(u);
                        run
                    })
                    .collect()
            })
            .collect();
        let plan = upper_bound(&optimistic, k);
        let policy = PeriodicPolicy::with_random_offsets(plan.periods, rng);
        for local in 0..epoch_len {
            if t >= horizon {
                break;
            }
            let arms = policy.arms_at(local, k, rng);
            let (r, obs) = bandit.step(&mut idle, &arms, rng);
            for (i, d, y) in obs {
                counts[i][d - 1] += 1;
                sums[i][d - 1] += y;
            }
            total += r;
            path.push(total);
            t += 1;
        }
        epoch_len = match config.epochs {
            EpochSchedule::Doubling => epoch_len * 2,
            EpochSchedule::Arithmetic => epoch_len + first,
            EpochSchedule::Constant => first,
        };
    }
    path
}

/// Recovery-blind UCB: treats each arm as stationary and pulls the `K` arms
/// with the largest `mean_i + sqrt(2 ln t / n_i)` every period.
pub fn recovery_blind_ucb<R: Rng + ?Sized>(
    bandit: &RecoveringBandit,
    horizon: usize,
    rng: &mut R,
) -> RewardPath {
    let n = bandit.n_arms();
    let mut counts = vec![0u64; n];
    let mut sums = vec![0.0; n];
    let mut idle = bandit.initial_idle();
    let mut path = Vec::with_capacity(horizon);
    let mut total = 0.0;
    for t in 0..horizon {
        let ln_t = ((t + 1) as f64).ln();
        let index = |i: usize| {
            if counts[i] == 0 {
                f64::INFINITY
            } else {
                sums[i] / counts[i] as f64 + (2.0 * ln_t / counts[i] as f64).sqrt()
            }
        };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| index(b).total_cmp(&index(a)));
        order.truncate(bandit.k);
        let (r, obs) = bandit.step(&mut idle, &order, rng);
        for (i, _, y) in obs {
            counts[i] += 1;
            sums[i] += y;
        }
        total += r;
        path.push(total);
    }
    path
}
