//! Small helpers shared by Kiln's tests (not part of the stable API).

use burn::tensor::{Device, Tensor};

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
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
