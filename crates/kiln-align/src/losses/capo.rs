//! CAPO's curvature model and masking rule (Melo, Abate, Gal 2025, "Stabilizing Policy
//! Gradients for Sample-Efficient Reinforcement Learning in LLM Reasoning", arXiv 2510.00819;
//! reference note `capo.md` Sec. 2, read from the official code: `GRPOEntropyTrainer` and
//! `SparseAdamModel` of luckeciano/stable-pg-llm).
//!
//! Only the unembedding `W` (`[V, H]` here, one row per logit) is modelled as moving. For
//! each completion token with final hidden state `h`, probabilities `p`, sampled token `a`
//! and advantage `A`:
//! 1. score `v = e_a - p`, token gradient of the surrogate `g = A v h^T` (`[V, H]`,
//!    unweighted: the per-token objective, not its share of the batch loss);
//! 2. effective direction `d = P(g)` of the optimizer model. SGD: `d = g`. Adam: the Adam
//!    step direction `m_hat' / (sqrt(v_hat') + eps)` with the *prospective* moments
//!    `m' = b1 m + (1 - b1) g`, `v' = b2 v + (1 - b2) g^2` formed from the model's running
//!    moments and this token's own gradient, bias-corrected at step `t + 1`; before the
//!    first update the model has no moments and `d = g`, as in the official code;
//! 3. logit displacement per unit step `u = d h`;
//! 4. objective shift `dJ = eta <g, d> + eta^2/2 * A [(v.u)^2 - u^T (diag p - p p^T) u]`;
//! 5. policy shift `KL = eta^2/2 (v.u)^2`;
//! 6. keep the token iff `|dJ| < tau_H` (one-sided: `0 <= dJ < tau_H`) and `KL < tau_F`.
//!
//! After masking, the moment model absorbs the mean over the kept tokens of their `g`
//! (`update_effective_gradient_moments` of the official code with the full vocabulary as
//! top-K, where every logit row is counted once per kept token).

use serde::{Deserialize, Serialize};

fn default_beta1() -> f64 {
    0.9
}

/// The optimizer model `P` of step 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum OptimizerModel {
    /// Plain gradient steps: `d = g`.
    Sgd,
    /// Adam's step direction with first-moment decay `beta1`, second-moment decay `beta2`
    /// and `eps`.
    Adam {
        /// First-moment decay (0.9 when absent).
        #[serde(default = "default_beta1")]
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator epsilon.
        eps: f64,
    },
}

/// Running state of the Adam moment model: first and second moments of the per-token
/// mean gradient of `W`.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentModel {
    /// `[V * H]` first moments, row-major over `[V, H]`.
    pub first: Vec<f64>,
    /// `[V * H]` second moments, row-major over `[V, H]`.
    pub second: Vec<f64>,
    /// Updates applied so far.
    pub steps: u64,
}

impl MomentModel {
    /// Zero moments for a `[V, H]` unembedding.
    pub fn new(vocab: usize, hidden: usize) -> Self {
        Self {
            first: vec![0.0; vocab * hidden],
            second: vec![0.0; vocab * hidden],
            steps: 0,
        }
    }

    /// The Adam direction for gradient entry `g` at flat index `k`, with the prospective
    /// moments that include `g` (not stored); `g` itself before the first update.
    #[inline]
    pub fn direction(&self, k: usize, g: f64, beta1: f64, beta2: f64, eps: f64) -> f64 {
        if self.steps == 0 {
            return g;
        }
        let t = (self.steps + 1) as i32;
        let m = (beta1 * self.first[k] + (1.0 - beta1) * g) / (1.0 - beta1.powi(t));
        let v = (beta2 * self.second[k] + (1.0 - beta2) * g * g) / (1.0 - beta2.powi(t));
        m / (v.sqrt() + eps)
    }

    /// Folds the (masked) mean gradient into the moments (step 8 of the note).
    pub fn update(&mut self, grad: &[f64], beta1: f64, beta2: f64) {
        for ((m, v), g) in self.first.iter_mut().zip(self.second.iter_mut()).zip(grad) {
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
        }
        self.steps += 1;
    }
}

/// The optimizer model with its state, as [`predict_token`] reads it.
#[derive(Debug, Clone, Copy)]
pub enum Direction<'a> {
    /// `d = g`.
    Sgd,
    /// Adam with prospective moments.
    Adam {
        /// The running moments.
        moments: &'a MomentModel,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator epsilon.
        eps: f64,
    },
}

/// The Hessian bracket `(v.u)^2 - u^T (diag p - p p^T) u` of `pi(a)/pi_old(a)` w.r.t. the
/// logits along `u`, and the Fisher curvature `u^T (diag p - p p^T) u`.
pub fn hessian_bracket(p: &[f64], a: usize, u: &[f64]) -> (f64, f64) {
    let vu: f64 = p
        .iter()
        .zip(u)
        .enumerate()
        .map(|(i, (pi, ui))| (if i == a { 1.0 } else { 0.0 } - pi) * ui)
        .sum();
    let pu: f64 = p.iter().zip(u).map(|(pi, ui)| pi * ui).sum();
    let fisher = p.iter().zip(u).map(|(pi, ui)| pi * ui * ui).sum::<f64>() - pu * pu;
    (vu * vu - fisher, fisher)
}

/// Steps 4-5: `(dJ, KL)` from `eta`, `<g, d>`, `A * bracket` and `v.u`.
pub fn predicted_shifts(eta: f64, g_dot_d: f64, a_bracket: f64, v_dot_u: f64) -> (f64, f64) {
    let half = 0.5 * eta * eta;
    (eta * g_dot_d + half * a_bracket, half * v_dot_u * v_dot_u)
}

/// Thresholds of the masking rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapoThresholds {
    /// Objective-shift threshold `tau_H`.
    pub tau_objective: f64,
    /// Policy-shift (KL) threshold `tau_F`.
    pub tau_kl: f64,
    /// `|dJ| < tau_H` (true) or `0 <= dJ < tau_H` (false).
    pub symmetric: bool,
}

/// One completion token, as the curvature model sees it.
#[derive(Debug, Clone, Copy)]
pub struct CapoToken<'a> {
    /// Final hidden state `[H]`.
    pub hidden: &'a [f64],
    /// Next-token probabilities `[V]`.
    pub probs: &'a [f64],
    /// The sampled token.
    pub token: usize,
    /// The token's advantage.
    pub advantage: f64,
}

/// The prediction for one token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapoPrediction {
    /// Predicted objective shift `dJ`.
    pub objective_shift: f64,
    /// Predicted policy shift (KL).
    pub kl_shift: f64,
    /// Whether the rule keeps the token.
    pub keep: bool,
}

/// Steps 1-6 for one token under the optimizer model `direction` over `[V, H]`.
pub fn predict_token(
    tok: CapoToken<'_>,
    direction: Direction<'_>,
    eta: f64,
    thresholds: &CapoThresholds,
) -> CapoPrediction {
    let (v_len, h_len) = (tok.probs.len(), tok.hidden.len());
    let score: Vec<f64> = (0..v_len)
        .map(|i| if i == tok.token { 1.0 } else { 0.0 } - tok.probs[i])
        .collect();
    let mut g_dot_d = 0.0;
    let mut u = vec![0.0; v_len];
    for i in 0..v_len {
        let gi = tok.advantage * score[i];
        for j in 0..h_len {
            let g = gi * tok.hidden[j];
            let d = match direction {
                Direction::Sgd => g,
                Direction::Adam {
                    moments,
                    beta1,
                    beta2,
                    eps,
                } => moments.direction(i * h_len + j, g, beta1, beta2, eps),
            };
            g_dot_d += g * d;
            u[i] += d * tok.hidden[j];
        }
    }
    let (bracket, _) = hessian_bracket(tok.probs, tok.token, &u);
    let v_dot_u: f64 = score.iter().zip(&u).map(|(s, x)| s * x).sum();
    let (dj, kl) = predicted_shifts(eta, g_dot_d, tok.advantage * bracket, v_dot_u);
    let objective_ok = if thresholds.symmetric {
        dj.abs() < thresholds.tau_objective
    } else {
        (0.0..thresholds.tau_objective).contains(&dj)
    };
    CapoPrediction {
        objective_shift: dj,
        kl_shift: kl,
        keep: objective_ok && kl < thresholds.tau_kl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: [f64; 3] = [0.5, 0.25, 0.25];

    #[test]
    fn brackets_known_answers() {
        let (b, f) = hessian_bracket(&P, 0, &[1.0, 0.0, 0.0]);
        assert!(b.abs() < 1e-12 && (f - 0.25).abs() < 1e-12);
        let (b, f) = hessian_bracket(&P, 0, &[0.0, 1.0, 0.0]);
        assert!((b + 0.125).abs() < 1e-12 && (f - 0.1875).abs() < 1e-12);
        let (b, f) = hessian_bracket(&P, 0, &[0.3, -0.2, 0.5]);
        assert!((b + 0.06125).abs() < 1e-12 && (f - 0.066875).abs() < 1e-12);
    }

    /// The bracket is the second derivative of f(e) = softmax(z + e u)_a / softmax(z)_a.
    #[test]
    fn bracket_matches_finite_differences() {
        let z: Vec<f64> = P.iter().map(|p| p.ln()).collect();
        let u = [0.3, -0.2, 0.5];
        let f = |e: f64| {
            let w: Vec<f64> = z
                .iter()
                .zip(&u)
                .map(|(zi, ui)| (zi + e * ui).exp())
                .collect();
            w[0] / w.iter().sum::<f64>() / P[0]
        };
        let h = 1e-4;
        let second = (f(h) - 2.0 * f(0.0) + f(-h)) / (h * h);
        assert!((second - hessian_bracket(&P, 0, &u).0).abs() < 1e-5);
    }

    #[test]
    fn sampled_fisher_is_unbiased() {
        let u = [0.3, -0.2, 0.5];
        let expected: f64 = (0..3)
            .map(|a| P[a] * hessian_bracket(&P, a, &u).0 + P[a] * hessian_bracket(&P, a, &u).1)
            .sum();
        // sum_a p_a (v_a.u)^2 = u^T F u, i.e. E[bracket + F] = F.
        assert!((expected - hessian_bracket(&P, 0, &u).1).abs() < 1e-12);
    }

    #[test]
    fn rule_known_answers() {
        let (dj, _) = predicted_shifts(1e-3, 5.0, 100.0, 0.0);
        assert!((dj - 5.05e-3).abs() < 1e-12);
        let (_, kl) = predicted_shifts(1e-3, 0.0, 0.0, 20.0);
        assert!((kl - 2e-4).abs() < 1e-15);
        let keep = |tau_h: f64, tau_f: f64, dj: f64, kl: f64| {
            let t = CapoThresholds {
                tau_objective: tau_h,
                tau_kl: tau_f,
                symmetric: true,
            };
            dj.abs() < t.tau_objective && kl < t.tau_kl
        };
        assert!(keep(0.01, 1.0, 5.05e-3, 0.0));
        assert!(!keep(5e-4, 1.0, 5.05e-3, 0.0));
        assert!(!keep(1.0, 1e-4, 0.0, 2e-4));
    }

    /// SGD model, one token: d = g, u = A |h|^2 v, <g, d> = A^2 |v|^2 |h|^2.
    #[test]
    fn sgd_single_token() {
        let h = [0.5, -1.0, 2.0];
        let a = 0.7;
        let pred = predict_token(
            CapoToken {
                hidden: &h,
                probs: &P,
                token: 0,
                advantage: a,
            },
            Direction::Sgd,
            0.1,
            &CapoThresholds {
                tau_objective: 1e9,
                tau_kl: 1e9,
                symmetric: true,
            },
        );
        let h2: f64 = h.iter().map(|x| x * x).sum();
        let v = [0.5, -0.25, -0.25];
        let v2: f64 = v.iter().map(|x| x * x).sum();
        let u: Vec<f64> = v.iter().map(|x| a * h2 * x).collect();
        let (b, _) = hessian_bracket(&P, 0, &u);
        let vu: f64 = v.iter().zip(&u).map(|(x, y)| x * y).sum();
        let (dj, kl) = predicted_shifts(0.1, a * a * v2 * h2, a * b, vu);
        assert!((pred.objective_shift - dj).abs() < 1e-12);
        assert!((pred.kl_shift - kl).abs() < 1e-12);
        assert!(pred.keep);
    }

    /// Before the first update the Adam model has no moments and steps along `g` (the
    /// official `SparseAdamModel` returns the raw gradient for an empty state); after it,
    /// the direction is Adam's bias-corrected step with this gradient folded in, computed
    /// here by hand, and the prospective moments are not stored.
    #[test]
    fn adam_direction_prospective() {
        let mut m = MomentModel::new(1, 2);
        assert_eq!(m.direction(0, 2.0, 0.9, 0.999, 1e-8), 2.0);
        m.update(&[1.0, -0.5], 0.9, 0.999);
        assert_eq!(m.steps, 1);
        assert!((m.first[0] - 0.1).abs() < 1e-15 && (m.second[1] - 0.00025).abs() < 1e-15);
        // t = 2: m' = 0.9 * 0.1 + 0.1 * 2 = 0.29, m_hat = 0.29 / 0.19;
        // v' = 0.999 * 0.001 + 0.001 * 4 = 0.004999, v_hat = v' / (1 - 0.999^2).
        let m_hat = 0.29 / (1.0 - 0.81);
        let v_hat = 0.004999 / (1.0 - 0.999f64 * 0.999);
        let d = m.direction(0, 2.0, 0.9, 0.999, 0.0);
        assert!((d - m_hat / v_hat.sqrt()).abs() < 1e-12, "{d}");
        assert_eq!(m.steps, 1, "prospective moments are not stored");
        // A lone gradient on fresh moments after one zero update: |d| stays Adam-sized.
        let mut z = MomentModel::new(1, 1);
        z.update(&[0.0], 0.9, 0.999);
        let big = z.direction(0, 1e6, 0.9, 0.999, 1e-8);
        assert!(big > 0.0 && big < 2.0, "{big}");
    }
}
