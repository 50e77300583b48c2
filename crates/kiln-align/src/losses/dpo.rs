//! Preference losses on the implicit reward margin
//! `h = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]`:
//! DPO (Rafailov et al. 2023, eq. 7), cDPO (label smoothing, Mitchell 2023) and rDPO
//! (Chowdhury, Kini, Natarajan 2024, "Provably Robust DPO", the de-biased loss of Sec. 3;
//! reference note `rdpo.md` Sec. 2).

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// Which preference loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum PreferenceLoss {
    /// `-log sigma(beta h)`.
    Dpo,
    /// `(1 - eps) l(h) + eps l(-h)`: label smoothing toward a flip rate `eps`.
    Cdpo {
        /// Assumed flip rate, in [0, 1/2).
        eps: f64,
    },
    /// `[(1 - eps) l(h) - eps l(-h)] / (1 - 2 eps)`: unbiased for labels flipped at rate `eps`.
    Rdpo {
        /// Flip rate, in [0, 1/2).
        eps: f64,
    },
}

impl PreferenceLoss {
    /// Checks the flip rate (`eps` must lie in [0, 0.5)), naming the key.
    pub fn validate(&self) -> Result<()> {
        match *self {
            PreferenceLoss::Dpo => Ok(()),
            PreferenceLoss::Cdpo { eps } | PreferenceLoss::Rdpo { eps } => {
                if !(0.0..0.5).contains(&eps) {
                    Err(invalid("loss.eps", eps, "flip rate must lie in [0, 0.5)"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Short name for tables (`DPO`, `cDPO`, `rDPO`).
    pub fn name(&self) -> &'static str {
        match self {
            PreferenceLoss::Dpo => "DPO",
            PreferenceLoss::Cdpo { .. } => "cDPO",
            PreferenceLoss::Rdpo { .. } => "rDPO",
        }
    }
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The per-pair loss at margin `h` (host, f64).
pub fn preference_loss_value(h: f64, beta: f64, kind: PreferenceLoss) -> f64 {
    let l = |z: f64| softplus(-beta * z);
    match kind {
        PreferenceLoss::Dpo => l(h),
        PreferenceLoss::Cdpo { eps } => (1.0 - eps) * l(h) + eps * l(-h),
        PreferenceLoss::Rdpo { eps } => ((1.0 - eps) * l(h) - eps * l(-h)) / (1.0 - 2.0 * eps),
    }
}

/// The gradient weight `zeta` with `d loss / d h = -beta * zeta` (host, f64): DPO
/// `sigma(-beta h)`, cDPO `sigma(-beta h) - eps`, rDPO
/// `[(1 - eps) sigma(-beta h) + eps sigma(beta h)] / (1 - 2 eps)`.
pub fn preference_weight(h: f64, beta: f64, kind: PreferenceLoss) -> f64 {
    let s = sigmoid(-beta * h);
    match kind {
        PreferenceLoss::Dpo => s,
        PreferenceLoss::Cdpo { eps } => s - eps,
        PreferenceLoss::Rdpo { eps } => ((1.0 - eps) * s + eps * (1.0 - s)) / (1.0 - 2.0 * eps),
    }
}

fn softplus_t(x: Tensor<1>) -> Tensor<1> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// Mean preference loss over pairs with margins `h` `[N]` (tensor, differentiable).
pub fn preference_loss(h: Tensor<1>, beta: f64, kind: PreferenceLoss) -> Tensor<1> {
    let l_fwd = softplus_t(h.clone().mul_scalar(-beta));
    let l_rev = softplus_t(h.mul_scalar(beta));
    let per_pair = match kind {
        PreferenceLoss::Dpo => l_fwd,
        PreferenceLoss::Cdpo { eps } => l_fwd.mul_scalar(1.0 - eps) + l_rev.mul_scalar(eps),
        PreferenceLoss::Rdpo { eps } => {
            (l_fwd.mul_scalar(1.0 - eps) - l_rev.mul_scalar(eps)).div_scalar(1.0 - 2.0 * eps)
        }
    };
    per_pair.mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_tensor::testing::{cpu, to_vec};
    use proptest::prelude::*;

    const DPO: PreferenceLoss = PreferenceLoss::Dpo;

    #[test]
    fn known_answers_from_rdpo_note() {
        for kind in [
            DPO,
            PreferenceLoss::Cdpo { eps: 0.3 },
            PreferenceLoss::Rdpo { eps: 0.3 },
        ] {
            assert!((preference_loss_value(0.0, 0.1, kind) - 2f64.ln()).abs() < 1e-12);
        }
        let (c, r) = (
            PreferenceLoss::Cdpo { eps: 0.1 },
            PreferenceLoss::Rdpo { eps: 0.1 },
        );
        assert!((preference_loss_value(10.0, 0.1, DPO) - 0.313262).abs() < 1e-6);
        assert!((preference_loss_value(10.0, 0.1, r) - 0.188262).abs() < 1e-6);
        assert!((preference_loss_value(10.0, 0.1, c) - 0.413262).abs() < 1e-6);
        assert!((preference_weight(10.0, 0.1, DPO) - 0.268941).abs() < 1e-6);
        assert!((preference_weight(10.0, 0.1, r) - 0.393941).abs() < 1e-6);
        assert!((preference_weight(10.0, 0.1, c) - 0.168941).abs() < 1e-6);
        let r2 = PreferenceLoss::Rdpo { eps: 0.2 };
        assert!((preference_loss_value(2.0, 0.5, r2) + 0.020072).abs() < 1e-6);
        let c2 = PreferenceLoss::Cdpo { eps: 0.2 };
        assert!((preference_loss_value(2.0, 0.5, c2) - 0.513262).abs() < 1e-6);
    }

    #[test]
    fn tensor_matches_host_and_gradient_weight() {
        let d = cpu().autodiff();
        let hs = [-3.0f32, 0.5, 10.0];
        for kind in [
            DPO,
            PreferenceLoss::Cdpo { eps: 0.1 },
            PreferenceLoss::Rdpo { eps: 0.1 },
        ] {
            let h = Tensor::<1>::from_floats(hs, &d).require_grad();
            let loss = preference_loss(h.clone(), 0.1, kind);
            let want: f64 = hs
                .iter()
                .map(|&x| preference_loss_value(f64::from(x), 0.1, kind))
                .sum::<f64>()
                / 3.0;
            assert!((f64::from(to_vec(loss.clone())[0]) - want).abs() < 1e-5);
            let g = to_vec(h.grad(&loss.backward()).unwrap());
            for (gi, &x) in g.iter().zip(&hs) {
                let w = -0.1 * preference_weight(f64::from(x), 0.1, kind) / 3.0;
                assert!((f64::from(*gi) - w).abs() < 1e-6, "{kind:?}");
            }
        }
    }

    #[test]
    fn flip_rate_validation_names_key() {
        let e = PreferenceLoss::Rdpo { eps: 0.5 }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("loss.eps") && e.contains("0.5"), "{e}");
        assert!(PreferenceLoss::Cdpo { eps: -0.1 }.validate().is_err());
        assert!(PreferenceLoss::Rdpo { eps: 0.49 }.validate().is_ok());
    }

    proptest! {
        /// rDPO is unbiased: (1 - eps) l_eps(h) + eps l_eps(-h) == l(h) for every margin.
        #[test]
        fn rdpo_unbiased(h in -50.0f64..50.0, eps in 0.0f64..0.45, beta in 0.01f64..2.0) {
            let r = PreferenceLoss::Rdpo { eps };
            let mix = (1.0 - eps) * preference_loss_value(h, beta, r)
                + eps * preference_loss_value(-h, beta, r);
            prop_assert!((mix - preference_loss_value(h, beta, DPO)).abs() < 1e-9);
        }
    }
}
