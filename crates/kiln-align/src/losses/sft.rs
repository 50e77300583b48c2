//! Supervised fine-tuning: prompt-masked next-token negative log-likelihood.

use burn::tensor::Tensor;

/// Mean negative log-likelihood of the completion tokens:
/// `-sum_{b,t} m_{b,t} log pi(x_t | x_<t) / sum m` (the maximum-likelihood objective of
/// causal language modelling, restricted by the mask to the response; prompt tokens carry
/// no loss). With a mask covering every token after the first this is continued
/// pretraining on raw documents.
pub fn sft_loss(logprobs: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    let n = mask.clone().sum().clamp_min(1.0);
    (logprobs * mask).sum().neg() / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_tensor::testing::{cpu, to_vec};

    #[test]
    fn hand_computed() {
        let d = cpu();
        let lp = Tensor::<2>::from_floats([[0.0, -1.0, -2.0], [0.0, -0.5, 0.0]], &d);
        let m = Tensor::<2>::from_floats([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]], &d);
        // (1 + 2 + 0.5) / 3
        assert!((to_vec(sft_loss(lp, m))[0] - 3.5 / 3.0).abs() < 1e-6);
    }
}
