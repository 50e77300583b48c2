//! Sinusoidal time / step embeddings (Vaswani et al. 2017, §3.5), as used to condition
//! diffusion and flow-matching policies on the denoising step.

use burn::tensor::{Device, Tensor, TensorData};

/// Embeds each scalar `t[i]` as `[sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})]`
/// with `w_k = max_period^(-k / h)` and `h = dim / 2`: `[B] -> [B, dim]`.
///
/// # Panics
///
/// When `dim` is odd or zero (a configuration error that model constructors validate first).
pub fn sinusoidal_embedding(t: Tensor<1>, dim: usize, max_period: f64) -> Tensor<2> {
    assert!(
        dim.is_multiple_of(2) && dim > 0,
        "embedding dim must be even and positive, got {dim}"
    );
    let half = dim / 2;
    let device: Device = t.device();
    let freqs: Vec<f32> = (0..half)
        .map(|k| (-(max_period.ln()) * k as f64 / half as f64).exp() as f32)
        .collect();
    let freqs = Tensor::<1>::from_data(TensorData::new(freqs, [half]), &device).reshape([1, half]);
    let b = t.dims()[0];
    let args = t.reshape([b, 1]) * freqs;
    Tensor::cat(vec![args.clone().sin(), args.cos()], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cpu, to_vec};

    #[test]
    fn known_values() {
        let device = cpu();
        let t = Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 1.0, 5.0], [3]), &device);
        let e = to_vec(sinusoidal_embedding(t, 4, 10_000.0));
        // h = 2: w = [1, 0.01]
        let want = |t: f64| {
            vec![
                t.sin() as f32,
                (t * 0.01).sin() as f32,
                t.cos() as f32,
                (t * 0.01).cos() as f32,
            ]
        };
        let expected: Vec<f32> = [0.0, 1.0, 5.0].iter().flat_map(|&t| want(t)).collect();
        for (a, b) in e.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
