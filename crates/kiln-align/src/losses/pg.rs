//! The clipped policy-gradient surrogate shared by GRPO, DAPO, Dr. GRPO, RLOO, REINFORCE++
//! and Lite PPO, with the k3 KL estimator and the three loss aggregations
//! (reference note `grpo-family.md` Sec. 2).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How per-token losses are reduced to a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// GRPO (DeepSeekMath eq. 3): mean over each sequence's tokens, then over sequences.
    SequenceMean,
    /// DAPO (Yu et al. 2025, Sec. 3.3) and Lite PPO: sum over all tokens of the batch divided
    /// by the batch's token count.
    TokenMean,
    /// Dr. GRPO (Liu et al. 2025, Sec. 3.2): sum over all tokens divided by
    /// `sequences * max_len`, a constant fixed for the whole run.
    ConstantNorm {
        /// The fixed per-sequence normaliser (e.g. the maximum completion length).
        max_len: f64,
    },
}

/// Reduces per-token losses `[B, T]` under `mask` to a scalar `[1]`.
pub fn aggregate(per_token: Tensor<2>, mask: Tensor<2>, how: Aggregation) -> Tensor<1> {
    let [b, _] = per_token.dims();
    let masked = per_token * mask.clone();
    match how {
        Aggregation::SequenceMean => {
            let lens = mask.sum_dim(1).clamp_min(1.0);
            (masked.sum_dim(1) / lens).mean().reshape([1])
        }
        Aggregation::TokenMean => masked.sum() / mask.sum().clamp_min(1.0),
        Aggregation::ConstantNorm { max_len } => masked.sum() / (b as f64 * max_len),
    }
}

/// The k3 estimator of `KL(pi_theta || pi_ref)` per token (Schulman 2020; DeepSeekMath
/// eq. 4): `exp(x) - x - 1` with `x = log pi_ref - log pi_theta` (always >= 0).
pub fn kl_k3(logprobs: Tensor<2>, ref_logprobs: Tensor<2>) -> Tensor<2> {
    let x = ref_logprobs - logprobs;
    x.clone().exp() - x - 1.0
}

/// Inputs of [`pg_loss`], all `[B, T]` on one device.
#[derive(Debug, Clone)]
pub struct PgLossInputs {
    /// `log pi_theta` of the completion tokens (differentiable).
    pub logprobs: Tensor<2>,
    /// `log pi_old` from the sampling policy (constant).
    pub old_logprobs: Tensor<2>,
    /// `log pi_ref` of the frozen reference (constant), needed when `beta > 0`.
    pub ref_logprobs: Option<Tensor<2>>,
    /// Per-token advantages (a sequence advantage broadcast over its tokens, or
    /// REINFORCE++'s per-token ones).
    pub advantages: Tensor<2>,
    /// Completion mask.
    pub mask: Tensor<2>,
}

/// Clipping, KL weight and aggregation of [`pg_loss`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgLossConfig {
    /// Lower clip `eps_low`: the ratio is clipped below at `1 - eps_low`.
    pub eps_low: f64,
    /// Upper clip `eps_high` (DAPO's clip-higher when larger than `eps_low`).
    pub eps_high: f64,
    /// Weight of the k3 KL penalty in the loss (GRPO's beta; 0 disables it).
    pub beta: f64,
    /// Loss aggregation.
    pub aggregation: Aggregation,
}

/// The loss and its diagnostics (diagnostics are detached).
#[derive(Debug, Clone)]
pub struct PgLoss {
    /// Scalar loss `[1]` to minimise.
    pub loss: Tensor<1>,
    /// Fraction of completion tokens whose ratio was clipped (the surrogate's min picked
    /// the clipped branch with a strictly different value).
    pub clip_fraction: Tensor<1>,
    /// Token-mean k3 KL to the reference (0 without a reference).
    pub kl: Tensor<1>,
}

/// The clipped surrogate with an optional k3 KL term, per token (PPO, Schulman et al. 2017,
/// eq. 7, as used by GRPO in DeepSeekMath eq. 3 and by DAPO with decoupled bounds):
///
/// `l_t = -min(r_t A_t, clip(r_t, 1 - eps_low, 1 + eps_high) A_t) + beta * KL_t`,
/// `r_t = exp(log pi_theta - log pi_old)`, aggregated by `config.aggregation`.
pub fn pg_loss(inputs: PgLossInputs, config: &PgLossConfig) -> PgLoss {
    let PgLossInputs {
        logprobs,
        old_logprobs,
        ref_logprobs,
        advantages,
        mask,
    } = inputs;
    let ratio = (logprobs.clone() - old_logprobs).exp();
    let unclipped = ratio.clone() * advantages.clone();
    let clipped = ratio.clamp(1.0 - config.eps_low, 1.0 + config.eps_high) * advantages;
    let surrogate = unclipped.clone().min_pair(clipped.clone());
    let was_clipped = clipped.lower(unclipped).float().detach() * mask.clone();
    let clip_fraction = was_clipped.sum() / mask.clone().sum().clamp_min(1.0);
    let mut per_token = surrogate.neg();
    let kl = match ref_logprobs {
        Some(r) => {
            let k = kl_k3(logprobs, r);
            let mean_kl =
                (k.clone().detach() * mask.clone()).sum() / mask.clone().sum().clamp_min(1.0);
            if config.beta != 0.0 {
                per_token = per_token + k * config.beta;
            }
            mean_kl
        }
        None => mask.clone().sum() * 0.0,
    };
    PgLoss {
        loss: aggregate(per_token, mask, config.aggregation),
        clip_fraction,
        kl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tensor;
    use kiln_tensor::testing::{cpu, to_vec};

    fn t(rows: &[&[f32]]) -> Tensor<2> {
        let d = cpu();
        let cols = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        kiln_tensor::distributions::tensor2(&flat, rows.len(), cols, &d)
    }

    fn cfg(eps_low: f64, eps_high: f64, aggregation: Aggregation) -> PgLossConfig {
        PgLossConfig {
            eps_low,
            eps_high,
            beta: 0.0,
            aggregation,
        }
    }

    #[test]
    fn k3_known_answer() {
        // log pi_ref - log pi = -0.1: exp(-0.1) + 0.1 - 1 = 0.004837.
        let k = to_vec(kl_k3(t(&[&[0.0]]), t(&[&[-0.1]])));
        assert!((k[0] - 0.004837).abs() < 1e-6);
    }

    /// Clip cases of `grpo-family.md` Sec. 5, with their gradients.
    #[test]
    fn clip_cases_and_gradients() {
        let d = cpu().autodiff();
        let case = |old: f32, ratio: f32, adv: f32, low: f64, high: f64| {
            let lp = Tensor::<2>::from_floats([[old + ratio.ln()]], &d).require_grad();
            let out = pg_loss(
                PgLossInputs {
                    logprobs: lp.clone(),
                    old_logprobs: Tensor::from_floats([[old]], &d),
                    ref_logprobs: None,
                    advantages: Tensor::from_floats([[adv]], &d),
                    mask: Tensor::from_floats([[1.0]], &d),
                },
                &cfg(low, high, Aggregation::TokenMean),
            );
            let loss = to_vec(out.loss.clone())[0];
            let cf = to_vec(out.clip_fraction)[0];
            let g = to_vec(lp.grad(&out.loss.backward()).unwrap())[0];
            (loss, g, cf)
        };
        let (l, g, cf) = case(-1.0, 1.3, 1.0, 0.2, 0.28);
        assert!((l + 1.28).abs() < 1e-5 && g.abs() < 1e-7 && cf == 1.0);
        let (l, g, cf) = case(-1.0, 1.3, -1.0, 0.2, 0.28);
        // d/d logp of r * 1 = r = 1.3: the unclipped side keeps its gradient.
        assert!((l - 1.3).abs() < 1e-5 && (g - 1.3).abs() < 1e-4 && cf == 0.0);
        let (l, g, _) = case(-1.0, 0.7, -1.0, 0.2, 0.28);
        assert!((l - 0.8).abs() < 1e-5 && g.abs() < 1e-7);
    }

    #[test]
    fn aggregations() {
        // Per-token losses [a] and [b, b, b] with a = 1, b = 2.
        let per = t(&[&[1.0, 0.0, 0.0], &[2.0, 2.0, 2.0]]);
        let m = t(&[&[1.0, 0.0, 0.0], &[1.0, 1.0, 1.0]]);
        let v = |how| to_vec(aggregate(per.clone(), m.clone(), how))[0];
        assert!((v(Aggregation::SequenceMean) - 1.5).abs() < 1e-6);
        assert!((v(Aggregation::TokenMean) - 7.0 / 4.0).abs() < 1e-6);
        assert!((v(Aggregation::ConstantNorm { max_len: 4.0 }) - 7.0 / 8.0).abs() < 1e-6);
    }

    /// With ratio 1 and no KL the surrogate's gradient is REINFORCE's, -A * grad log pi.
    #[test]
    fn on_policy_gradient_is_reinforce() {
        let d = cpu().autodiff();
        let lp0 = [[-0.5f32, -1.0], [-2.0, -0.1]];
        let adv = [[0.7f32, 0.7], [-1.2, -1.2]];
        let lp = Tensor::<2>::from_floats(lp0, &d).require_grad();
        let out = pg_loss(
            PgLossInputs {
                logprobs: lp.clone(),
                old_logprobs: Tensor::from_floats(lp0, &d),
                ref_logprobs: None,
                advantages: Tensor::from_floats(adv, &d),
                mask: Tensor::from_floats([[1.0, 1.0], [1.0, 0.0]], &d),
            },
            &cfg(0.2, 0.2, Aggregation::ConstantNorm { max_len: 1.0 }),
        );
        let g = to_vec(lp.grad(&out.loss.backward()).unwrap());
        // Loss = -(1/B) sum m A r: d/dlogp = -(m A)/2.
        let want = [-0.35, -0.35, 0.6, 0.0];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn kl_term_enters_with_beta() {
        let d = cpu();
        let mk = |beta| {
            let out = pg_loss(
                PgLossInputs {
                    logprobs: Tensor::from_floats([[0.0]], &d),
                    old_logprobs: Tensor::from_floats([[0.0]], &d),
                    ref_logprobs: Some(Tensor::from_floats([[-0.1]], &d)),
                    advantages: Tensor::from_floats([[0.0]], &d),
                    mask: Tensor::from_floats([[1.0]], &d),
                },
                &PgLossConfig {
                    beta,
                    ..cfg(0.2, 0.2, Aggregation::SequenceMean)
                },
            );
            (to_vec(out.loss)[0], to_vec(out.kl)[0])
        };
        let (l, kl) = mk(0.04);
        assert!((kl - 0.004837).abs() < 1e-6);
        assert!((l - 0.04 * 0.004837).abs() < 1e-7);
    }
}
