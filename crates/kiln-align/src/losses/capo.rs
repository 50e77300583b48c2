//! CAPO's curvature model and masking rule (Melo, Abate, Gal 2025, "Stabilizing Policy
//! Gradients for Sample-Efficient Reinforcement Learning in LLM Reasoning", arXiv 2510.00819;
//! reference note `capo.md` Sec. 2, read from the official code).
//!
//! Only the unembedding `W` (`[H, V]`, `logits = h W`) is modelled as moving. For each
//! completion token with final hidden state `h`, probabilities `p`, sampled token `a` and
//! advantage `A`:
//! 1. score `v = e_a - p`, token gradient of the surrogate `g = A v h^T` (`[V, H]`);
//! 2. effective direction `d = P(g)` of the optimizer model (SGD: identity; Adam: the
//!    elementwise preconditioner `1 / (sqrt(v_hat') + eps)` from *prospective* second moments
//!    that include this batch's gradient, kept per entry of `W`);
//! 3. logit displacement per unit step `u = d h`;
//! 4. objective shift `dJ = eta <g, d> + eta^2/2 * A [(v.u)^2 - u^T (diag p - p p^T) u]`;
//! 5. policy shift `KL = eta^2/2 (v.u)^2`;
//! 6. keep the token iff `|dJ| < tau_H` (one-sided: `0 <= dJ < tau_H`) and `KL < tau_F`.

use serde::{Deserialize, Serialize};

/// The optimizer model `P` of step 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum OptimizerModel {
    /// Plain gradient steps: `d = g`.
    Sgd,
    /// Adam's diagonal preconditioner with second-moment decay `beta2` and `eps`.
    Adam {
        /// Second-moment decay.
        beta2: f64,
        /// Denominator epsilon.
        eps: f64,
    },
}

/// Running state of the Adam moment model: second moments of the loss gradient of `W`.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentModel {
    /// `[V * H]` second moments, row-major over `[V, H]`.
    pub second: Vec<f64>,
    /// Updates applied so far.
    pub steps: u64,
}

impl MomentModel {
    /// Zero moments for a `[V, H]` unembedding.
    pub fn new(vocab: usize, hidden: usize) -> Self {
        Self {
            second: vec![0.0; vocab * hidden],
            steps: 0,
        }
    }

    /// The preconditioner `1 / (sqrt(v_hat') + eps)` with the prospective moments that
    /// include `grad` (not stored).
    pub fn preconditioner(&self, grad: &[f64], beta2: f64, eps: f64) -> Vec<f64> {
        let k = self.steps + 1;
        let bias = 1.0 - beta2.powi(k as i32);
        self.second
            .iter()
            .zip(grad)
            .map(|(v, g)| {
                let v1 = beta2 * v + (1.0 - beta2) * g * g;
                1.0 / ((v1 / bias).sqrt() + eps)
            })
            .collect()
    }

    /// Folds the (masked) batch gradient into the moments (step 8 of the note).
    pub fn update(&mut self, grad: &[f64], beta2: f64) {
        for (v, g) in self.second.iter_mut().zip(grad) {
            *v = beta2 * *v + (1.0 - beta2) * g * g;
        }
        self.steps += 1;
    }
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

/// Steps 1-6 for one token, given the optimizer preconditioner (`None` = SGD) over `[V, H]`.
pub fn predict_token(
    tok: CapoToken<'_>,
    precond: Option<&[f64]>,
    eta: f64,
    thresholds: &CapoThresholds,
) -> CapoPrediction {
    let (v_len, h_len) = (tok.probs.len(), tok.hidden.len());
    let score: Vec<f64> = (0..v_len)
        .map(|i| if i == tok.token { 1.0 } else { 0.0 } - tok.probs[i])
        .collect();
    let h2: f64 = tok.hidden.iter().map(|x| x * x).sum();
    let mut g_dot_d = 0.0;
    let mut u = vec![0.0; v_len];
    for i in 0..v_len {
        let gi = tok.advantage * score[i];
        for j in 0..h_len {
            let g = gi * tok.hidden[j];
            let c = precond.map_or(1.0, |p| p[i * h_len + j]);
            let d = g * c;
            g_dot_d += g * d;
            u[i] += d * tok.hidden[j];
        }
    }
    debug_assert!(h2 >= 0.0);
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
            None,
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

    #[test]
    fn adam_preconditioner_prospective() {
        let m = MomentModel::new(1, 2);
        // First step: v_hat' = g^2, so the preconditioner is 1 / (|g| + eps).
        let c = m.preconditioner(&[2.0, -0.5], 0.999, 0.0);
        assert!((c[0] - 0.5).abs() < 1e-9 && (c[1] - 2.0).abs() < 1e-9);
        assert_eq!(m.steps, 0, "prospective moments are not stored");
    }
}
