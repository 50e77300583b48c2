//! UCB1 (Auer, Cesa-Bianchi & Fischer 2002, Fig. 1).

use rand::Rng;

use crate::bernoulli::BanditPolicy;
use crate::error::{BanditError, param};

/// UCB1: pull every arm once, then the arm maximising
/// `mean_i + sqrt(2 ln t / n_i)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ucb1 {
    counts: Vec<u64>,
    sums: Vec<f64>,
    t: u64,
}

impl Ucb1 {
    /// A learner for `n_arms >= 1` arms.
    pub fn new(n_arms: usize) -> Result<Self, BanditError> {
        if n_arms == 0 {
            return Err(param("Ucb1", "n_arms", 0, "needs at least one arm"));
        }
        Ok(Self {
            counts: vec![0; n_arms],
            sums: vec![0.0; n_arms],
            t: 0,
        })
    }

    /// Pull counts per arm.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
}

impl BanditPolicy for Ucb1 {
    fn n_arms(&self) -> usize {
        self.counts.len()
    }

    fn select<R: Rng + ?Sized>(&mut self, _rng: &mut R) -> usize {
        if let Some(a) = self.counts.iter().position(|&c| c == 0) {
            return a;
        }
        let ln_t = (self.t as f64).ln();
        let index = |a: usize| {
            let n = self.counts[a] as f64;
            self.sums[a] / n + (2.0 * ln_t / n).sqrt()
        };
        (1..self.counts.len()).fold(0, |b, a| if index(a) > index(b) { a } else { b })
    }

    fn update(&mut self, arm: usize, reward: f64) {
        self.t += 1;
        self.counts[arm] += 1;
        self.sums[arm] += reward;
    }
}
