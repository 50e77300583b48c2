//! Small helpers shared by Kiln's tests and backend smoke tests (not part of the stable API).

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::distributions::{Categorical, DiagGaussian, TanhGaussian, tensor2};
use crate::hvp::{flatten_grads, flatten_params, with_flat_params};
use crate::mlp::{Activation, MlpConfig};
use crate::seed::Seeds;

/// A CPU device of the first compiled CPU backend (flex, else ndarray), else the default.
pub fn cpu() -> Device {
    crate::backend::Backend::Flex
        .device()
        .or_else(|_| crate::backend::Backend::NdArray.device())
        .unwrap_or_default()
}

/// A tensor's values as a host `Vec<f32>`.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Largest absolute difference of two equal-length slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Deterministic host-side values in `[-1, 1)`.
pub fn host_values(seed: u64, n: usize) -> Vec<f32> {
    use rand::RngExt;
    let mut rng = Seeds::new(seed).stream("test-values");
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// The reference workload of the backend parity and GPU smoke tests: a 17-64-64-6 tanh MLP
/// (weights given on the host, so every backend starts from the same numbers), a squared loss
/// on a fixed batch of 32, and the flattened parameter gradients. `device` must have autodiff.
pub fn mlp_loss_and_grads(device: &Device) -> (f32, Vec<f32>) {
    let config = MlpConfig::new(vec![17, 64, 64, 6]).with_activation(Activation::Tanh);
    let template = config.init(&cpu()).expect("valid config");
    let n = flatten_params(&template).len();
    let weights: Vec<f32> = host_values(1, n).iter().map(|v| v * 0.3).collect();
    let mlp = config.init(device).expect("valid config");
    let mlp = with_flat_params(mlp, &weights).expect("same layout");
    let x = tensor2(&host_values(2, 32 * 17), 32, 17, device);
    let target = tensor2(&host_values(3, 32 * 6), 32, 6, device);
    let loss = (mlp.forward(x) - target).powi_scalar(2).mean();
    let value = to_vec(loss.clone())[0];
    let grads = GradientsParams::from_grads(loss.backward(), &mlp);
    (value, flatten_grads(&mlp, &grads))
}

/// Log-probabilities of every distribution family on fixed inputs (backend smoke tests).
pub fn distribution_log_probs(device: &Device) -> Vec<Vec<f32>> {
    let (b, a) = (16, 3);
    let mean = tensor2(&host_values(4, b * a), b, a, device);
    let log_std = tensor2(&host_values(5, b * a), b, a, device).mul_scalar(0.5);
    let x = tensor2(&host_values(6, b * a), b, a, device).mul_scalar(0.9);
    let g = DiagGaussian::new(mean.clone(), log_std.clone());
    let t = TanhGaussian::new(mean.clone(), log_std);
    let logits = tensor2(&host_values(7, b * 5), b, 5, device).mul_scalar(3.0);
    let actions: Vec<i64> = (0..b as i64).map(|i| i % 5).collect();
    let c = Categorical::new(logits, None);
    vec![
        to_vec(g.log_prob(x.clone())),
        to_vec(g.entropy()),
        to_vec(t.log_prob(x)),
        to_vec(t.entropy()),
        to_vec(c.log_prob(Tensor::<1, Int>::from_data(
            TensorData::new(actions, [b]),
            device,
        ))),
        to_vec(c.entropy()),
    ]
}
