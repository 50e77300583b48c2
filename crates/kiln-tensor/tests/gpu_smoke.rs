//! GPU smoke tests: wgpu matches flex (run with `--features wgpu`; CI uses Mesa's software
//! Vulkan device, a real GPU must pass the same tests).
#![cfg(all(feature = "flex", feature = "wgpu"))]

use kiln_tensor::Backend;
use kiln_tensor::testing::{distribution_log_probs, max_abs_diff, mlp_loss_and_grads};

fn wgpu() -> burn::tensor::Device {
    assert!(
        kiln_tensor::backend::wgpu_adapter_present(),
        "no wgpu adapter: install a Vulkan driver (e.g. mesa-vulkan-drivers) to run the GPU smoke tests"
    );
    Backend::Wgpu.device().unwrap()
}

#[test]
fn wgpu_mlp_forward_backward_matches_flex() {
    let (lf, gf) = mlp_loss_and_grads(&Backend::Flex.device().unwrap().autodiff());
    let (lw, gw) = mlp_loss_and_grads(&wgpu().autodiff());
    assert!((lf - lw).abs() < 1e-4, "loss {lf} vs {lw}");
    let d = max_abs_diff(&gf, &gw);
    assert!(d < 1e-4, "max gradient difference {d}");
}

#[test]
fn wgpu_distribution_log_probs_match_flex() {
    let a = distribution_log_probs(&Backend::Flex.device().unwrap());
    let b = distribution_log_probs(&wgpu());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let d = max_abs_diff(x, y);
        assert!(d < 1e-4, "quantity {i}: max difference {d}");
    }
}
