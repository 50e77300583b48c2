//! The log-linear policy class of rDPO's theory (Chowdhury, Kini, Natarajan 2024, Sec. 4):
//! `pi_theta(a|s) = exp(theta^T phi(s,a)) / sum_b exp(theta^T phi(s,b))`, for which the
//! implicit reward margin is linear, `h_theta = (theta - theta_ref)^T (phi(s,a) - phi(s,a'))`,
//! and DPO, cDPO and rDPO are (de-biased) logistic regressions in `theta`.
//!
//! The fit is projected damped Newton on the mean loss over pairs: all three losses have the
//! Hessian `beta^2 sigma'(beta h) Delta Delta^T` per pair (rDPO's `(1 - eps) - eps` second
//! derivatives divide out its `1 - 2 eps`), so the problem is convex and Newton converges in
//! a few steps; the iterate is projected onto the ball `||theta - theta_ref|| <= radius`, the
//! bounded class of the paper's analysis.

use nalgebra::{DMatrix, DVector};
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::losses::dpo::{PreferenceLoss, preference_loss_value, preference_weight};

/// A bank of contexts with `actions` candidate responses each and `dim` features per pair.
#[derive(Debug, Clone)]
pub struct FeatureBank {
    /// `features[s][a]`: `phi(s, a)`.
    pub features: Vec<Vec<DVector<f64>>>,
}

impl FeatureBank {
    /// Gaussian features `N(0, I / dim)`.
    pub fn gaussian(contexts: usize, actions: usize, dim: usize, rng: &mut StdRng) -> Self {
        let scale = 1.0 / (dim as f64).sqrt();
        let features = (0..contexts)
            .map(|_| {
                (0..actions)
                    .map(|_| {
                        DVector::from_fn(dim, |_, _| {
                            scale
                                * <StandardNormal as Distribution<f64>>::sample(
                                    &StandardNormal,
                                    rng,
                                )
                        })
                    })
                    .collect()
            })
            .collect();
        Self { features }
    }

    /// Expected reward `E_{a ~ pi_theta(.|s)} [theta_star^T phi(s,a)]`, averaged over contexts.
    pub fn expected_reward(&self, theta: &DVector<f64>, theta_star: &DVector<f64>) -> f64 {
        let total: f64 = self
            .features
            .iter()
            .map(|acts| {
                let logits: Vec<f64> = acts.iter().map(|f| theta.dot(f)).collect();
                let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
                let z: f64 = w.iter().sum();
                acts.iter()
                    .zip(&w)
                    .map(|(f, wi)| wi / z * theta_star.dot(f))
                    .sum::<f64>()
            })
            .sum();
        total / self.features.len() as f64
    }
}

/// A preference pair through its feature difference `Delta = phi(s, a_w) - phi(s, a_l)` as
/// labelled (possibly flipped), and whether the label agrees with the true reward order.
#[derive(Debug, Clone)]
pub struct FeaturePair {
    /// `phi(s, observed winner) - phi(s, observed loser)`.
    pub delta: DVector<f64>,
}

/// Draws `n` pairs: a context uniformly, two distinct actions uniformly (`pi_ref` uniform,
/// `theta_ref = 0`), the Bradley-Terry label with reward `beta theta_star^T phi`, then a flip
/// with probability `flip_rate`.
pub fn preference_pairs(
    bank: &FeatureBank,
    theta_star: &DVector<f64>,
    beta: f64,
    n: usize,
    flip_rate: f64,
    rng: &mut StdRng,
) -> Vec<FeaturePair> {
    (0..n)
        .map(|_| {
            let acts = &bank.features[rng.random_range(0..bank.features.len())];
            let a = rng.random_range(0..acts.len());
            let b = (a + rng.random_range(1..acts.len())) % acts.len();
            let delta = &acts[a] - &acts[b];
            let p_a = 1.0 / (1.0 + (-beta * theta_star.dot(&delta)).exp());
            let mut a_wins = rng.random::<f64>() < p_a;
            if rng.random::<f64>() < flip_rate {
                a_wins = !a_wins;
            }
            FeaturePair {
                delta: if a_wins { delta } else { -delta },
            }
        })
        .collect()
}

/// Mean loss over pairs at `theta` (with `theta_ref = 0`).
pub fn mean_loss(
    pairs: &[FeaturePair],
    theta: &DVector<f64>,
    beta: f64,
    kind: PreferenceLoss,
) -> f64 {
    pairs
        .iter()
        .map(|p| preference_loss_value(theta.dot(&p.delta), beta, kind))
        .sum::<f64>()
        / pairs.len().max(1) as f64
}

/// Minimises the mean loss over `||theta|| <= radius` by projected damped Newton (see the
/// module docs); returns `theta_hat`.
pub fn fit(
    pairs: &[FeaturePair],
    dim: usize,
    beta: f64,
    kind: PreferenceLoss,
    radius: f64,
) -> DVector<f64> {
    let n = pairs.len().max(1) as f64;
    let project = |t: DVector<f64>| {
        let norm = t.norm();
        if norm > radius {
            t * (radius / norm)
        } else {
            t
        }
    };
    let mut theta = DVector::zeros(dim);
    let mut loss = mean_loss(pairs, &theta, beta, kind);
    for _ in 0..100 {
        let mut grad = DVector::zeros(dim);
        let mut hess = DMatrix::identity(dim, dim) * 1e-8;
        for p in pairs {
            let h = theta.dot(&p.delta);
            grad -= &p.delta * (beta * preference_weight(h, beta, kind) / n);
            let s = 1.0 / (1.0 + (-beta * h).exp());
            hess += &p.delta * p.delta.transpose() * (beta * beta * s * (1.0 - s) / n);
        }
        let Some(step) = hess.lu().solve(&grad) else {
            break;
        };
        let mut t = 1.0;
        let mut improved = false;
        for _ in 0..30 {
            let cand = project(&theta - &step * t);
            let l = mean_loss(pairs, &cand, beta, kind);
            if l <= loss - 1e-14 {
                theta = cand;
                loss = l;
                improved = true;
                break;
            }
            t *= 0.5;
        }
        if !improved {
            break;
        }
    }
    theta
}

/// Fraction of pairs whose true reward order `theta_star` agrees with `theta`'s.
pub fn order_accuracy(bank: &FeatureBank, theta: &DVector<f64>, theta_star: &DVector<f64>) -> f64 {
    let mut agree = 0usize;
    let mut total = 0usize;
    for acts in &bank.features {
        for a in 0..acts.len() {
            for b in a + 1..acts.len() {
                let d = &acts[a] - &acts[b];
                total += 1;
                if (theta.dot(&d) > 0.0) == (theta_star.dot(&d) > 0.0) {
                    agree += 1;
                }
            }
        }
    }
    agree as f64 / total.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// With clean labels and many pairs every loss recovers theta_star (DPO is the
    /// Bradley-Terry MLE; rDPO with eps = 0 is DPO).
    #[test]
    fn clean_labels_recover_theta_star() {
        let mut rng = StdRng::seed_from_u64(3);
        let bank = FeatureBank::gaussian(200, 8, 4, &mut rng);
        let theta_star = DVector::from_vec(vec![2.0, -1.0, 0.5, 1.5]);
        let pairs = preference_pairs(&bank, &theta_star, 1.0, 20_000, 0.0, &mut rng);
        let hat = fit(&pairs, 4, 1.0, PreferenceLoss::Dpo, 100.0);
        assert!((hat - &theta_star).norm() / theta_star.norm() < 0.1);
    }

    #[test]
    fn projection_bounds_the_estimate() {
        let mut rng = StdRng::seed_from_u64(4);
        let bank = FeatureBank::gaussian(50, 4, 3, &mut rng);
        let theta_star = DVector::from_vec(vec![5.0, 0.0, 0.0]);
        let pairs = preference_pairs(&bank, &theta_star, 1.0, 500, 0.0, &mut rng);
        let hat = fit(&pairs, 3, 1.0, PreferenceLoss::Dpo, 1.0);
        assert!(hat.norm() <= 1.0 + 1e-9);
        assert!(hat[0] > 0.9);
    }
}
