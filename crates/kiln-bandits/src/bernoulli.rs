//! Bernoulli arms, the learner interface, and a regret-tracking loop.

use rand::{Rng, RngExt};

use crate::error::{BanditError, param};

/// A stochastic bandit with Bernoulli arms of the given means.
#[derive(Debug, Clone, PartialEq)]
pub struct BernoulliBandit {
    means: Vec<f64>,
}

impl BernoulliBandit {
    /// Arms with success probabilities `means` (each in `[0, 1]`, at least one arm).
    pub fn new(means: Vec<f64>) -> Result<Self, BanditError> {
        if means.is_empty() {
            return Err(param(
                "BernoulliBandit",
                "means",
                "[]",
                "needs at least one arm",
            ));
        }
        if let Some(m) = means.iter().find(|m| !(0.0..=1.0).contains(*m)) {
            return Err(param("BernoulliBandit", "means", m, "must lie in [0, 1]"));
        }
        Ok(Self { means })
    }

    /// Arm means.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// The best mean.
    pub fn best_mean(&self) -> f64 {
        self.means.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Draw a reward in `{0, 1}` from `arm`.
    pub fn pull<R: Rng + ?Sized>(&self, arm: usize, rng: &mut R) -> f64 {
        if rng.random::<f64>() < self.means[arm] {
            1.0
        } else {
            0.0
        }
    }
}

/// A bandit learner: choose an arm, then learn from its reward (in `[0, 1]`).
pub trait BanditPolicy {
    /// Number of arms.
    fn n_arms(&self) -> usize;
    /// The arm to pull next.
    fn select<R: Rng + ?Sized>(&mut self, rng: &mut R) -> usize;
    /// Learn from the reward of `arm`.
    fn update(&mut self, arm: usize, reward: f64);
}

/// Runs `policy` on `bandit` for `horizon` rounds and returns the cumulative
/// pseudo-regret `sum_t (mu* - mu_{a_t})` after each round.
pub fn run_stochastic<P: BanditPolicy, R: Rng + ?Sized>(
    bandit: &BernoulliBandit,
    policy: &mut P,
    horizon: usize,
    rng: &mut R,
) -> Vec<f64> {
    let best = bandit.best_mean();
    let mut total = 0.0;
    let mut out = Vec::with_capacity(horizon);
    for _ in 0..horizon {
        let arm = policy.select(rng);
        let r = bandit.pull(arm, rng);
        policy.update(arm, r);
        total += best - bandit.means[arm];
        out.push(total);
    }
    out
}

/// Least-squares slope of `log y` against `log x` over the pairs with both
/// entries positive (`NaN` when fewer than two remain). Regret that grows like
/// `T^b` has slope `b`.
pub fn loglog_slope(points: &[(f64, f64)]) -> f64 {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 2 {
        return f64::NAN;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}
