//! An ensemble of `N` identical MLPs evaluated in one batched call (critic ensembles: SAC's
//! and TD3's twin Q-functions, REDQ-style ensembles, EXPO's critics).
//!
//! Weights are stored stacked, `[N, in, out]`, so one batched matmul per layer evaluates every
//! member: no per-member loop, no per-member kernel launch.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

use crate::error::{Result, TensorError};
use crate::mlp::Activation;

/// Configuration of an [`EnsembleMlp`].
#[derive(Config, Debug)]
pub struct EnsembleMlpConfig {
    /// Number of members.
    pub members: usize,
    /// Layer widths from input to output.
    pub sizes: Vec<usize>,
    /// Activation between hidden layers.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

/// `N` MLPs with independent parameters, evaluated together.
#[derive(Module, Debug)]
pub struct EnsembleMlp {
    weights: Vec<Param<Tensor<3>>>,
    biases: Vec<Param<Tensor<3>>>,
    #[module(skip)]
    activation: Activation,
}

impl EnsembleMlpConfig {
    /// Builds the ensemble; each member is initialized like PyTorch's `nn.Linear`
    /// (uniform in `±1/sqrt(fan_in)` for weights and biases), independently.
    pub fn init(&self, device: &Device) -> Result<EnsembleMlp> {
        if self.members == 0 {
            return Err(TensorError::InvalidConfig {
                field: "members",
                value: "0".into(),
                reason: "an ensemble needs at least one member",
            });
        }
        if self.sizes.len() < 2 || self.sizes.contains(&0) {
            return Err(TensorError::InvalidConfig {
                field: "sizes",
                value: format!("{:?}", self.sizes),
                reason: "need at least two positive widths",
            });
        }
        let n = self.members;
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for w in self.sizes.windows(2) {
            let bound = 1.0 / (w[0] as f64).sqrt();
            let dist = Distribution::Uniform(-bound, bound);
            weights.push(Param::from_tensor(Tensor::random(
                [n, w[0], w[1]],
                dist,
                device,
            )));
            biases.push(Param::from_tensor(Tensor::random(
                [n, 1, w[1]],
                dist,
                device,
            )));
        }
        Ok(EnsembleMlp {
            weights,
            biases,
            activation: self.activation,
        })
    }
}

impl EnsembleMlp {
    /// Number of members.
    pub fn members(&self) -> usize {
        self.weights[0].dims()[0]
    }

    /// Evaluates every member on the same batch `[B, in]`: `[N, B, out]`.
    pub fn forward_shared(&self, x: Tensor<2>) -> Tensor<3> {
        let [b, d] = x.dims();
        let n = self.members();
        self.forward(x.reshape([1, b, d]).expand([n, b, d]))
    }

    /// Evaluates member `i` on its own batch `x[i]`: `[N, B, in] -> [N, B, out]`.
    pub fn forward(&self, mut x: Tensor<3>) -> Tensor<3> {
        let last = self.weights.len() - 1;
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            x = x.matmul(w.val()) + b.val();
            if i < last {
                x = self.activation.forward(x);
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cpu, to_vec};

    #[test]
    fn batched_call_equals_member_by_member() {
        let device = cpu();
        let ens = EnsembleMlpConfig::new(3, vec![4, 8, 2])
            .init(&device)
            .unwrap();
        let x = Tensor::<2>::random([5, 4], Distribution::Normal(0.0, 1.0), &device);
        let all = to_vec(ens.forward_shared(x.clone()));
        for m in 0..3 {
            let mut h = x.clone();
            for (i, (w, b)) in ens.weights.iter().zip(&ens.biases).enumerate() {
                let w = w.val().narrow(0, m, 1).reshape([w.dims()[1], w.dims()[2]]);
                let bias = b.val().narrow(0, m, 1).reshape([1, b.dims()[2]]);
                h = h.matmul(w) + bias;
                if i == 0 {
                    h = burn::tensor::activation::relu(h);
                }
            }
            let single = to_vec(h);
            let got = &all[m * 10..(m + 1) * 10];
            for (a, b) in got.iter().zip(&single) {
                assert!((a - b).abs() < 1e-5);
            }
        }
        assert_eq!(ens.num_params(), 3 * (4 * 8 + 8 + 8 * 2 + 2));
    }
}
