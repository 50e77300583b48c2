//! flex and ndarray agree on the same inputs (run with `--features ndarray`).
#![cfg(all(feature = "flex", feature = "ndarray"))]

use kiln_tensor::Backend;
use kiln_tensor::testing::{distribution_log_probs, max_abs_diff, mlp_loss_and_grads};

#[test]
fn mlp_loss_and_gradients_agree_within_1e5() {
    let flex = Backend::Flex.device().unwrap().autodiff();
    let nd = Backend::NdArray.device().unwrap().autodiff();
    let (lf, gf) = mlp_loss_and_grads(&flex);
    let (ln, gn) = mlp_loss_and_grads(&nd);
    assert!((lf - ln).abs() < 1e-5, "loss {lf} vs {ln}");
    let d = max_abs_diff(&gf, &gn);
    assert!(d < 1e-5, "max gradient difference {d}");
}

#[test]
fn distributions_agree() {
    let a = distribution_log_probs(&Backend::Flex.device().unwrap());
    let b = distribution_log_probs(&Backend::NdArray.device().unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert!(max_abs_diff(x, y) < 1e-5);
    }
}
