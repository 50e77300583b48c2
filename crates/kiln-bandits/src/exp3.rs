//! EXP3 with implicit exploration, as used for the test-time adaptive defense
//! of "Beyond Worst-case Attacks" (Liu et al., ICLR 2024; official code
//! `policy_gradients/exp3.py`), which follows Neu's EXP3-IX estimator.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::bernoulli::BanditPolicy;
use crate::error::{BanditError, param};

/// EXP3 hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exp3Config {
    /// Learning rate `eta` of the exponential weights.
    pub eta: f64,
    /// Implicit-exploration constant `gamma` in the estimator `r / (p_i + gamma)`.
    pub gamma: f64,
}

impl Exp3Config {
    /// The defaults of the official code: `eta = lr * sqrt(ln K / (K T))`,
    /// `gamma = eta / 2`, with `lr = 5.0` in `dynamic_attack.py`.
    pub fn for_horizon(n_arms: usize, horizon: usize, lr: f64) -> Self {
        let k = n_arms.max(2) as f64;
        let eta = lr * (k.ln() / (k * horizon.max(1) as f64)).sqrt();
        Self {
            eta,
            gamma: eta / 2.0,
        }
    }
}

/// EXP3-IX: sample `i ~ p = w / sum w`, observe `r_i` in `[0, 1]`, and update
/// only the played arm, `w_i <- w_i exp(eta r_i / (p_i + gamma))`.
/// Weights are kept in log space so long runs cannot overflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Exp3 {
    config: Exp3Config,
    log_weights: Vec<f64>,
    last_probs: Vec<f64>,
}

impl Exp3 {
    /// A learner over `n_arms >= 1` arms.
    pub fn new(n_arms: usize, config: Exp3Config) -> Result<Self, BanditError> {
        if n_arms == 0 {
            return Err(param("Exp3", "n_arms", 0, "needs at least one arm"));
        }
        if !(config.eta.is_finite() && config.eta > 0.0) {
            return Err(param(
                "Exp3",
                "eta",
                config.eta,
                "must be positive and finite",
            ));
        }
        if !(config.gamma.is_finite() && config.gamma >= 0.0) {
            return Err(param("Exp3", "gamma", config.gamma, "must be non-negative"));
        }
        Ok(Self {
            config,
            log_weights: vec![0.0; n_arms],
            last_probs: vec![1.0 / n_arms as f64; n_arms],
        })
    }

    /// The current sampling distribution `p = w / sum w`.
    pub fn probabilities(&self) -> Vec<f64> {
        let m = self
            .log_weights
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = self.log_weights.iter().map(|l| (l - m).exp()).collect();
        let z: f64 = w.iter().sum();
        w.iter().map(|x| x / z).collect()
    }
}

impl BanditPolicy for Exp3 {
    fn n_arms(&self) -> usize {
        self.log_weights.len()
    }

    fn select<R: Rng + ?Sized>(&mut self, rng: &mut R) -> usize {
        self.last_probs = self.probabilities();
        let u: f64 = rng.random();
        let mut acc = 0.0;
        for (i, p) in self.last_probs.iter().enumerate() {
            acc += p;
            if u < acc {
                return i;
            }
        }
        self.last_probs.len() - 1
    }

    fn update(&mut self, arm: usize, reward: f64) {
        let r = reward.clamp(0.0, 1.0);
        let p = self.last_probs[arm];
        self.log_weights[arm] += self.config.eta * r / (p + self.config.gamma);
    }
}
