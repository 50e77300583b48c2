//! Thompson sampling for Bernoulli arms with Beta(1, 1) priors (Thompson 1933;
//! Agrawal & Goyal 2012, Algorithm 1).

use rand::Rng;
use rand_distr::{Beta, Distribution};

use crate::bernoulli::BanditPolicy;
use crate::error::{BanditError, param};

/// Beta-Bernoulli Thompson sampling: draw `theta_i ~ Beta(1 + S_i, 1 + F_i)`
/// and pull the argmax. Rewards in `[0, 1]` are treated as success
/// probabilities (a reward `r` adds `r` successes and `1 - r` failures).
#[derive(Debug, Clone, PartialEq)]
pub struct ThompsonSampling {
    successes: Vec<f64>,
    failures: Vec<f64>,
}

impl ThompsonSampling {
    /// A learner for `n_arms >= 1` arms.
    pub fn new(n_arms: usize) -> Result<Self, BanditError> {
        if n_arms == 0 {
            return Err(param(
                "ThompsonSampling",
                "n_arms",
                0,
                "needs at least one arm",
            ));
        }
        Ok(Self {
            successes: vec![0.0; n_arms],
            failures: vec![0.0; n_arms],
        })
    }
}

impl BanditPolicy for ThompsonSampling {
    fn n_arms(&self) -> usize {
        self.successes.len()
    }

    fn select<R: Rng + ?Sized>(&mut self, rng: &mut R) -> usize {
        let mut best = (0, f64::NEG_INFINITY);
        for a in 0..self.successes.len() {
            // Both shape parameters are >= 1, so the distribution always exists.
            let theta = Beta::new(1.0 + self.successes[a], 1.0 + self.failures[a])
                .map(|b| b.sample(rng))
                .unwrap_or(0.5);
            if theta > best.1 {
                best = (a, theta);
            }
        }
        best.0
    }

    fn update(&mut self, arm: usize, reward: f64) {
        let r = reward.clamp(0.0, 1.0);
        self.successes[arm] += r;
        self.failures[arm] += 1.0 - r;
    }
}
