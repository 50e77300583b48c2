//! Uncertainty sets over transition kernels: L1, L-infinity and KL balls
//! around a nominal kernel, (s,a)-rectangular or s-rectangular.
//!
//! - (s,a)-rectangular (Iyengar 2005; Nilim & El Ghaoui 2005):
//!   `P = prod_{s,a} {q in Delta(S) : D(q, p_{s,a}) <= radius}`.
//! - s-rectangular (Wiesemann, Kuhn & Rustem 2013; Ho, Petrik & Wiesemann
//!   2018): `P = prod_s {(q_a)_a : sum_a D(q_a, p_{s,a}) <= radius}`: the
//!   adversary shares one budget across the actions of a state, so optimal
//!   policies may randomise.
//!
//! `D` is `||q - p||_1`, `||q - p||_inf` or `KL(q || p)`. Finite sets of
//! static models live in [`crate::static_models`].

use serde::{Deserialize, Serialize};

use crate::error::{RobustError, param};

/// The divergence that defines the ball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distance {
    /// Total-variation style `||q - p||_1` (radius in `[0, 2]` matters).
    L1,
    /// `max_s' |q(s') - p(s')|`.
    Linf,
    /// `KL(q || p) = sum q ln(q / p)`; `q` stays on the support of `p`.
    Kl,
}

impl Distance {
    /// `D(q, p)`.
    pub fn between(self, q: &[f64], p: &[f64]) -> f64 {
        match self {
            Distance::L1 => q.iter().zip(p).map(|(a, b)| (a - b).abs()).sum(),
            Distance::Linf => q
                .iter()
                .zip(p)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max),
            Distance::Kl => q
                .iter()
                .zip(p)
                .map(|(&a, &b)| {
                    if a <= 0.0 {
                        0.0
                    } else if b <= 0.0 {
                        f64::INFINITY
                    } else {
                        a * (a / b).ln()
                    }
                })
                .sum(),
        }
    }

    /// The smallest radius at which the inner problem reaches its floor (the
    /// adversary cannot do better with more budget) for nominal row `p`.
    pub(crate) fn saturation_radius(self, p: &[f64], v: &[f64]) -> f64 {
        match self {
            Distance::L1 => 2.0,
            Distance::Linf => 1.0,
            Distance::Kl => {
                let vmin = p
                    .iter()
                    .zip(v)
                    .filter(|(pp, _)| **pp > 0.0)
                    .map(|(_, x)| *x)
                    .fold(f64::INFINITY, f64::min);
                let mass: f64 = p
                    .iter()
                    .zip(v)
                    .filter(|(pp, x)| **pp > 0.0 && **x <= vmin + 1e-12)
                    .map(|(pp, _)| *pp)
                    .sum();
                -mass.ln()
            }
        }
    }
}

/// Which coupling the adversary faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rectangularity {
    /// Independent choice per state-action pair.
    Sa,
    /// One budget per state, shared across its actions.
    S,
}

/// A ball of kernels around the nominal one. JSON:
/// `{"distance": "l1", "radius": 0.1, "rectangularity": "sa"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncertaintySet {
    /// Divergence.
    pub distance: Distance,
    /// Radius (budget), `>= 0`.
    pub radius: f64,
    /// Rectangularity.
    pub rectangularity: Rectangularity,
}

impl UncertaintySet {
    /// A validated set (`radius` finite and non-negative).
    pub fn new(
        distance: Distance,
        radius: f64,
        rectangularity: Rectangularity,
    ) -> Result<Self, RobustError> {
        let s = Self {
            distance,
            radius,
            rectangularity,
        };
        s.validate()?;
        Ok(s)
    }

    /// Check the radius.
    pub fn validate(&self) -> Result<(), RobustError> {
        if !(self.radius.is_finite() && self.radius >= 0.0) {
            return Err(param(
                "UncertaintySet",
                "radius",
                self.radius,
                "must be finite and >= 0",
            ));
        }
        Ok(())
    }

    /// Whether `kernel` (flat `[s][a][s']`) lies in the set around `nominal`
    /// (same layout) up to `tol`, with every row a distribution.
    pub fn contains(
        &self,
        nominal: &[f64],
        kernel: &[f64],
        n_states: usize,
        n_actions: usize,
        tol: f64,
    ) -> bool {
        if nominal.len() != kernel.len() || kernel.len() != n_states * n_actions * n_states {
            return false;
        }
        let row = |k: &[f64], s: usize, a: usize| -> Vec<f64> {
            k[(s * n_actions + a) * n_states..(s * n_actions + a + 1) * n_states].to_vec()
        };
        for s in 0..n_states {
            let mut budget = 0.0;
            for a in 0..n_actions {
                let (q, p) = (row(kernel, s, a), row(nominal, s, a));
                if q.iter().any(|x| *x < -tol) || (q.iter().sum::<f64>() - 1.0).abs() > tol {
                    return false;
                }
                let d = self.distance.between(&q, &p);
                match self.rectangularity {
                    Rectangularity::Sa if d > self.radius + tol => return false,
                    _ => budget += d,
                }
            }
            if self.rectangularity == Rectangularity::S && budget > self.radius + tol {
                return false;
            }
        }
        true
    }
}
