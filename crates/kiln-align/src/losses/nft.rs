//! NFT, Negative-aware Fine-Tuning (Chen et al. 2025, "Bridging Supervised Learning and
//! Reinforcement Learning in Math Reasoning", arXiv 2505.18116): maximum likelihood on
//! correct answers plus maximum likelihood of the *implicit negative policy*
//! `pi^-_theta = (pi_old - r_q pi_theta) / (1 - r_q)` on wrong ones (reference note `nft.md`
//! Sec. 2, token-level ratio as in the official code).

use burn::tensor::Tensor;

use super::pg::{Aggregation, aggregate};

/// Inputs of [`nft_loss`], all `[B, T]` (per-sequence values broadcast over tokens).
#[derive(Debug, Clone)]
pub struct NftInputs {
    /// `log pi_theta` (differentiable).
    pub logprobs: Tensor<2>,
    /// `log pi_old` of the sampler (constant).
    pub old_logprobs: Tensor<2>,
    /// 1 for tokens of correct answers, 0 for wrong ones.
    pub correct: Tensor<2>,
    /// The prompt's empirical correctness rate `r_q`, in (0, 1).
    pub r_q: Tensor<2>,
    /// The prompt weight `omega(q)`: `1 - r_q` (on-policy gradient = Dr. GRPO) or
    /// `sqrt((1 - r_q) / r_q)` (on-policy gradient = GRPO with population std).
    pub omega: Tensor<2>,
    /// Completion mask.
    pub mask: Tensor<2>,
}

/// `max_v(x, eps)`: forward value `max(x, eps)`, gradient of the identity (straight-through),
/// so `-log max_v` keeps the weight `1 / max(x, eps)` instead of zeroing it.
pub fn max_straight_through(x: Tensor<2>, eps: f64) -> Tensor<2> {
    let lifted = (x.clone().clamp_min(eps) - x.clone()).detach();
    x + lifted
}

/// The NFT loss per token `t` of answer `a` to prompt `q`, with `R_t = pi_theta/pi_old`
/// (log-ratio clamped above at 10 as in the official code):
///
/// `l_t = omega(q) * [ r(a) * (-log R_t) + (1 - r(a)) * (-log max_v((1 - r_q R_t)/(1 - r_q), eps)) ]`
///
/// aggregated by `aggregation` (the official code sums tokens per sequence over a constant).
pub fn nft_loss(inputs: NftInputs, eps: f64, aggregation: Aggregation) -> Tensor<1> {
    let NftInputs {
        logprobs,
        old_logprobs,
        correct,
        r_q,
        omega,
        mask,
    } = inputs;
    let log_ratio = (logprobs - old_logprobs).clamp_max(10.0);
    let ratio = log_ratio.clone().exp();
    let positive = log_ratio.neg();
    let implicit = (r_q.clone() * ratio).neg().add_scalar(1.0) / r_q.neg().add_scalar(1.0);
    let negative = max_straight_through(implicit, eps).log().neg();
    let per_token = omega * (correct.clone() * positive + correct.neg().add_scalar(1.0) * negative);
    aggregate(per_token, mask, aggregation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_tensor::testing::{cpu, to_vec};

    /// Known answers of `nft.md` Sec. 5 at r_q = 0.25, omega = 1: loss values and the gradient
    /// weight on R (d loss / d log R = R * d loss / dR).
    #[test]
    fn known_answers() {
        let d = cpu().autodiff();
        let case = |ratio: f32, correct: f32| {
            let lp = Tensor::<2>::from_floats([[ratio.ln()]], &d).require_grad();
            let loss = nft_loss(
                NftInputs {
                    logprobs: lp.clone(),
                    old_logprobs: Tensor::from_floats([[0.0]], &d),
                    correct: Tensor::from_floats([[correct]], &d),
                    r_q: Tensor::from_floats([[0.25]], &d),
                    omega: Tensor::from_floats([[1.0]], &d),
                    mask: Tensor::from_floats([[1.0]], &d),
                },
                1.0,
                Aggregation::TokenMean,
            );
            let v = to_vec(loss.clone())[0];
            let g = to_vec(lp.grad(&loss.backward()).unwrap())[0];
            (v, g / ratio)
        };
        let (v, w) = case(0.8, 0.0);
        assert!(
            (v + 0.064539).abs() < 1e-5 && (w - 0.3125).abs() < 1e-5,
            "{v} {w}"
        );
        let (v, w) = case(1.0, 0.0);
        assert!(v.abs() < 1e-6 && (w - 1.0 / 3.0).abs() < 1e-5);
        // R = 1.2: argument 0.9333 is lifted to eps = 1 (loss 0) but the gradient flows.
        let (v, w) = case(1.2, 0.0);
        assert!(v.abs() < 1e-6 && (w - 1.0 / 3.0).abs() < 1e-5, "{v} {w}");
        let (v, _) = case(1.2, 1.0);
        assert!((v + 0.182322).abs() < 1e-5);
    }
}

/// The NFT paper's equivalence on a real model: strictly on-policy (`pi_old` = current
/// policy, one gradient step), the NFT gradient with `omega = 1 - r_q` equals Dr. GRPO's
/// and with `omega = sqrt((1 - r_q)/r_q)` equals GRPO's (population std), parameter by
/// parameter, through autodiff of the tiny transformer.
#[cfg(test)]
mod equivalence {
    use super::*;
    use crate::advantages;
    use crate::losses::{PgLossConfig, PgLossInputs, pg_loss};
    use crate::policy::{SequencePolicy, TokenBatch, host_logprobs, host_tensor};
    use crate::{TinyLm, TinyLmConfig};
    use burn::optim::GradientsParams;
    use kiln_tensor::hvp::flatten_grads;
    use kiln_tensor::testing::cpu;

    fn setup() -> (TinyLm, TokenBatch, Vec<f64>) {
        let device = cpu().autodiff();
        kiln_tensor::Seeds::new(11).seed_device(&device);
        let policy = TinyLmConfig::default().init(&device).unwrap();
        let (p1, p2): (&[u32], &[u32]) = (&[3, 12, 4, 16], &[5, 13, 6, 16]);
        let prompts = vec![p1, p1, p1, p1, p2, p2, p2, p2];
        let completions: Vec<&[u32]> = vec![
            &[7, 1],
            &[8, 1],
            &[7, 9, 1],
            &[2, 1],
            &[11, 2, 1],
            &[4, 1],
            &[6, 6, 1],
            &[9, 1],
        ];
        let batch = TokenBatch::from_pairs(&prompts, &completions).unwrap();
        // Group 1: 1 of 4 correct (r_q = 0.25); group 2: 3 of 4 (r_q = 0.75).
        let correct = vec![1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        (policy, batch, correct)
    }

    fn grads_of(policy: &TinyLm, loss: Tensor<1>) -> Vec<f32> {
        let g = GradientsParams::from_grads(loss.backward(), policy);
        flatten_grads(policy, &g)
    }

    #[test]
    fn nft_gradient_equals_grpo_family_on_policy() {
        let (policy, batch, correct) = setup();
        let (b, t) = (batch.batch, batch.len);
        let device = policy.device();
        let old = host_logprobs(&policy, &batch).unwrap();
        let r_q: Vec<f64> = correct
            .chunks(4)
            .flat_map(|g| {
                let m = g.iter().sum::<f64>() / 4.0;
                [m; 4]
            })
            .collect();
        let agg = Aggregation::ConstantNorm { max_len: 1.0 };
        let row = |v: &[f64]| host_tensor(&crate::trainers::per_row(v, t), b, t, &device);
        for (omega, adv) in [
            (
                r_q.iter().map(|r| 1.0 - r).collect::<Vec<_>>(),
                advantages::dr_grpo(&correct, 4),
            ),
            (
                r_q.iter().map(|r| ((1.0 - r) / r).sqrt()).collect(),
                advantages::grpo_population(&correct, 4),
            ),
        ] {
            let nft = nft_loss(
                NftInputs {
                    logprobs: policy.token_scores(&batch).unwrap().logprobs,
                    old_logprobs: host_tensor(&old, b, t, &device),
                    correct: row(&correct),
                    r_q: row(&r_q),
                    omega: row(&omega),
                    mask: batch.mask_tensor(&device),
                },
                1.0,
                agg,
            );
            let g_nft = grads_of(&policy, nft);
            let pg = pg_loss(
                PgLossInputs {
                    logprobs: policy.token_scores(&batch).unwrap().logprobs,
                    old_logprobs: host_tensor(&old, b, t, &device),
                    ref_logprobs: None,
                    advantages: row(&adv),
                    mask: batch.mask_tensor(&device),
                },
                &PgLossConfig {
                    eps_low: 0.2,
                    eps_high: 0.2,
                    beta: 0.0,
                    aggregation: agg,
                },
            );
            let g_pg = grads_of(&policy, pg.loss);
            let scale = g_pg.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
            assert!(scale > 1e-3, "non-trivial gradient");
            let diff = kiln_tensor::testing::max_abs_diff(&g_nft, &g_pg);
            assert!(
                diff < 1e-4 * scale.max(1.0),
                "max diff {diff} (scale {scale})"
            );
        }
    }

    /// The equivalence is an on-policy statement: with `pi_old != pi_theta` (every ratio
    /// `R = e^0.4`, past GRPO's clip) the two gradients differ, so the test above is not
    /// passing for a trivial reason.
    #[test]
    fn nft_and_dr_grpo_gradients_differ_off_policy() {
        let (policy, batch, correct) = setup();
        let (b, t) = (batch.batch, batch.len);
        let device = policy.device();
        let old: Vec<f32> = host_logprobs(&policy, &batch)
            .unwrap()
            .iter()
            .zip(&batch.mask)
            .map(|(l, m)| l - 0.4 * m)
            .collect();
        let r_q: Vec<f64> = correct
            .chunks(4)
            .flat_map(|g| [g.iter().sum::<f64>() / 4.0; 4])
            .collect();
        let agg = Aggregation::ConstantNorm { max_len: 1.0 };
        let row = |v: &[f64]| host_tensor(&crate::trainers::per_row(v, t), b, t, &device);
        let omega: Vec<f64> = r_q.iter().map(|r| 1.0 - r).collect();
        let nft = nft_loss(
            NftInputs {
                logprobs: policy.token_scores(&batch).unwrap().logprobs,
                old_logprobs: host_tensor(&old, b, t, &device),
                correct: row(&correct),
                r_q: row(&r_q),
                omega: row(&omega),
                mask: batch.mask_tensor(&device),
            },
            1.0,
            agg,
        );
        let pg = pg_loss(
            PgLossInputs {
                logprobs: policy.token_scores(&batch).unwrap().logprobs,
                old_logprobs: host_tensor(&old, b, t, &device),
                ref_logprobs: None,
                advantages: row(&advantages::dr_grpo(&correct, 4)),
                mask: batch.mask_tensor(&device),
            },
            &PgLossConfig {
                eps_low: 0.2,
                eps_high: 0.2,
                beta: 0.0,
                aggregation: agg,
            },
        );
        let (g_nft, g_pg) = (grads_of(&policy, nft), grads_of(&policy, pg.loss));
        let scale = g_nft.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
        let diff = kiln_tensor::testing::max_abs_diff(&g_nft, &g_pg);
        assert!(diff > 0.05 * scale, "max diff {diff} (scale {scale})");
    }
}
