//! The recovering-reward model (reconstruction of the paper's Sec. 2 from its
//! abstract: non-decreasing recovery curves flat after `d_max`).

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{BanditError, param};

/// `N` arms with recovery curves `R_i(d)`, `d = 1..=d_max` (`d = 1`: pulled in
/// two consecutive periods), at most `k` pulls per period, Gaussian noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveringBandit {
    /// `recovery[i][d - 1] = R_i(d)`; `R_i(d) = R_i(d_max)` for `d > d_max`.
    pub recovery: Vec<Vec<f64>>,
    /// Pulls per period.
    pub k: usize,
    /// Standard deviation of the zero-mean Gaussian reward noise.
    pub noise_std: f64,
}

impl RecoveringBandit {
    /// Validate: at least one arm, equal curve lengths `d_max >= 1`, finite,
    /// non-negative and non-decreasing curves, `k >= 1`, `noise_std >= 0`.
    pub fn new(recovery: Vec<Vec<f64>>, k: usize, noise_std: f64) -> Result<Self, BanditError> {
        if recovery.is_empty() {
            return Err(param(
                "RecoveringBandit",
                "recovery",
                "[]",
                "needs at least one arm",
            ));
        }
        let d_max = recovery[0].len();
        if d_max == 0 {
            return Err(param(
                "RecoveringBandit",
                "d_max",
                0,
                "curves need at least one entry",
            ));
        }
        for (arm, curve) in recovery.iter().enumerate() {
            if curve.len() != d_max {
                return Err(param(
                    "RecoveringBandit",
                    "recovery",
                    format!("arm {arm} has {} entries, arm 0 has {d_max}", curve.len()),
                    "all curves need the same length d_max",
                ));
            }
            for (j, &v) in curve.iter().enumerate() {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(BanditError::Recovery {
                        arm,
                        idle: j + 1,
                        value: v,
                        reason: "must be finite and non-negative",
                    });
                }
                if j > 0 && v + 1e-12 < curve[j - 1] {
                    return Err(BanditError::Recovery {
                        arm,
                        idle: j + 1,
                        value: v,
                        reason: "recovery curves must be non-decreasing in idle time",
                    });
                }
            }
        }
        if k == 0 {
            return Err(param(
                "RecoveringBandit",
                "k",
                0,
                "must pull at least one arm per period",
            ));
        }
        if !(noise_std.is_finite() && noise_std >= 0.0) {
            return Err(param(
                "RecoveringBandit",
                "noise_std",
                noise_std,
                "must be >= 0",
            ));
        }
        Ok(Self {
            recovery,
            k,
            noise_std,
        })
    }

    /// The miniature instance of the reference note: `R_i(d) = mu_i (1 -
    /// exp(-d / tau_i))` for `d <= d_max` (flat after), `mu_i ~ U[0.5, 1]`,
    /// `tau_i ~ U[1, 5]`.
    pub fn exponential<R: Rng + ?Sized>(
        n: usize,
        k: usize,
        d_max: usize,
        noise_std: f64,
        rng: &mut R,
    ) -> Result<Self, BanditError> {
        let recovery = (0..n)
            .map(|_| {
                let mu = rng.random_range(0.5..1.0);
                let tau = rng.random_range(1.0..5.0);
                (1..=d_max)
                    .map(|d| mu * (1.0 - (-(d as f64) / tau).exp()))
                    .collect()
            })
            .collect();
        Self::new(recovery, k, noise_std)
    }

    /// Number of arms `N`.
    pub fn n_arms(&self) -> usize {
        self.recovery.len()
    }

    /// Recovery horizon `d_max`.
    pub fn d_max(&self) -> usize {
        self.recovery[0].len()
    }

    /// `R_i(d)` (idle times beyond `d_max` are capped, `d = 0` is treated as 1).
    pub fn mean(&self, arm: usize, idle: usize) -> f64 {
        self.recovery[arm][idle.clamp(1, self.d_max()) - 1]
    }

    /// Idle times at the start: every arm fully recovered (`d_max`).
    pub fn initial_idle(&self) -> Vec<usize> {
        vec![self.d_max(); self.n_arms()]
    }

    /// Pulls `arms` (at most `k` distinct arms) in the period whose idle times
    /// are `idle`, advances `idle`, and returns the expected reward collected
    /// and the observations `(arm, idle time, noisy reward)`.
    pub fn step<R: Rng + ?Sized>(
        &self,
        idle: &mut [usize],
        arms: &[usize],
        rng: &mut R,
    ) -> (f64, Vec<(usize, usize, f64)>) {
        let noise = Normal::new(0.0, self.noise_std.max(1e-300)).ok();
        let mut expected = 0.0;
        let mut obs = Vec::with_capacity(arms.len());
        for &i in arms.iter().take(self.k) {
            let m = self.mean(i, idle[i]);
            expected += m;
            let eps = match (&noise, self.noise_std > 0.0) {
                (Some(n), true) => n.sample(rng),
                _ => 0.0,
            };
            obs.push((i, idle[i], m + eps));
        }
        let d_max = self.d_max();
        for (i, d) in idle.iter_mut().enumerate() {
            *d = if arms.contains(&i) {
                1
            } else {
                (*d + 1).min(d_max)
            };
        }
        (expected, obs)
    }
}
