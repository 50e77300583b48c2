//! Multi-layer perceptrons, the workhorse of every policy and critic in Kiln.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData, activation};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TensorError};
use crate::host::{HostActivation, HostMlp};

/// The nonlinearity between hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(0, x)`.
    #[default]
    Relu,
    /// `tanh(x)` (CleanRL's PPO default).
    Tanh,
    /// `x * sigmoid(x)` (Mish-like smooth ReLU used by diffusion policies).
    Silu,
    /// Gaussian error linear unit.
    Gelu,
    /// `x` for `x > 0`, `exp(x) - 1` otherwise.
    Elu,
}

impl Activation {
    /// Applies the activation elementwise.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Tanh => fast_tanh(x),
            Activation::Silu => activation::silu(x),
            Activation::Gelu => activation::gelu(x),
            Activation::Elu => activation::elu(x, 1.0),
        }
    }

    /// The orthogonal-initialization gain customarily paired with this activation.
    pub fn gain(self) -> f64 {
        match self {
            Activation::Tanh => 5.0 / 3.0,
            _ => std::f64::consts::SQRT_2,
        }
    }
}

/// `tanh` for activations, fast on CPU backends. On flex, `tanh` is glibc's scalar `tanhf`
/// and `sigmoid` a branchy scalar `expf`: profiling a PPO iteration with 64-64 tanh networks
/// put 64% of its time in `tanhf`. Here the value is `sign(x) (1 - e) / (1 + e)` with
/// `e = exp(-2|x|)`, computed without autodiff in branch-free passes, and the gradient is
/// attached as `y0 + (x - stop_grad(x)) (1 - y0^2)`: the forward value is exactly `y0`
/// (the difference is zero) and the backward is tanh's `1 - y^2`, three cheap graph ops
/// instead of a graph through every pass. Absolute difference to `tanh` below 2e-7 (tested).
pub fn fast_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let plain = x.clone().without_autodiff();
    let e = plain.clone().abs().mul_scalar(-2.0).exp();
    let y0 = (e.clone().neg().add_scalar(1.0) / e.add_scalar(1.0)) * plain.sign();
    if !x.is_autodiff() {
        return y0;
    }
    let slope = y0.clone().powi_scalar(2).neg().add_scalar(1.0);
    (x.clone() - x.detach()) * slope.autodiff() + y0.autodiff()
}

/// How weights are initialized.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MlpInit {
    /// PyTorch's `nn.Linear` default: Kaiming-uniform with `a = sqrt(5)` on weights and biases.
    #[default]
    Default,
    /// Orthogonal weights with gain `hidden_gain` (the final layer uses `output_scale` as its
    /// gain) and zero biases: the CleanRL / SB3 convention for PPO.
    Orthogonal {
        /// Gain of the hidden layers (sqrt(2) for ReLU and Tanh in CleanRL).
        hidden_gain: f64,
    },
}

/// Configuration of an [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Layer widths from input to output, e.g. `[17, 256, 256, 6]`.
    pub sizes: Vec<usize>,
    /// Activation between hidden layers (none after the last layer).
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Apply layer normalization after each hidden linear layer (before the activation).
    #[config(default = false)]
    pub layer_norm: bool,
    /// Weight initialization.
    #[config(default = "MlpInit::Default")]
    pub init: MlpInit,
    /// Multiplies the final layer's initial weights and biases (e.g. 0.01 for a policy head,
    /// 1.0 for a value head). With orthogonal init it is the final layer's gain.
    #[config(default = 1.0)]
    pub output_scale: f64,
}

/// A multi-layer perceptron: `Linear -> [LayerNorm] -> act -> ... -> Linear`.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    norms: Vec<LayerNorm>,
    #[module(skip)]
    activation: Activation,
}

impl MlpConfig {
    /// Checks the widths.
    pub fn validate(&self) -> Result<()> {
        if self.sizes.len() < 2 {
            return Err(TensorError::InvalidConfig {
                field: "sizes",
                value: format!("{:?}", self.sizes),
                reason: "need at least an input and an output width",
            });
        }
        if self.sizes.contains(&0) {
            return Err(TensorError::InvalidConfig {
                field: "sizes",
                value: format!("{:?}", self.sizes),
                reason: "every width must be at least 1",
            });
        }
        if !self.output_scale.is_finite() {
            return Err(TensorError::InvalidConfig {
                field: "output_scale",
                value: self.output_scale.to_string(),
                reason: "must be finite",
            });
        }
        Ok(())
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<Mlp> {
        self.validate()?;
        let n = self.sizes.len() - 1;
        let mut layers = Vec::with_capacity(n);
        let mut norms = Vec::new();
        for (i, w) in self.sizes.windows(2).enumerate() {
            let last = i + 1 == n;
            let layer = match self.init {
                MlpInit::Default => {
                    let layer = LinearConfig::new(w[0], w[1]).init(device);
                    if last && self.output_scale != 1.0 {
                        scale_linear(layer, self.output_scale)
                    } else {
                        layer
                    }
                }
                MlpInit::Orthogonal { hidden_gain } => {
                    let gain = if last { self.output_scale } else { hidden_gain };
                    let layer = LinearConfig::new(w[0], w[1])
                        .with_initializer(Initializer::Orthogonal { gain })
                        .init(device);
                    Linear {
                        weight: layer.weight,
                        bias: Some(Param::from_tensor(Tensor::zeros([w[1]], device))),
                    }
                }
            };
            layers.push(layer);
            if self.layer_norm && !last {
                norms.push(LayerNormConfig::new(w[1]).init(device));
            }
        }
        Ok(Mlp {
            layers,
            norms,
            activation: self.activation,
        })
    }
}

fn host_activation(mlp: &Mlp) -> Result<HostActivation> {
    if !mlp.norms.is_empty() {
        return Err(TensorError::InvalidConfig {
            field: "layer_norm",
            value: "true".into(),
            reason: "the host engine has no layer norm",
        });
    }
    match mlp.activation {
        Activation::Tanh => Ok(HostActivation::Tanh),
        Activation::Relu => Ok(HostActivation::Relu),
        other => Err(TensorError::InvalidConfig {
            field: "activation",
            value: format!("{other:?}"),
            reason: "the host engine implements tanh and relu only",
        }),
    }
}

fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn replace_values<const D: usize>(t: Tensor<D>, values: &[f32]) -> Tensor<D> {
    let require_grad = t.is_require_grad();
    Tensor::<D>::from_data(TensorData::new(values.to_vec(), t.shape()), &t.device())
        .set_require_grad(require_grad)
}

fn scale_linear(layer: Linear, scale: f64) -> Linear {
    Linear {
        weight: layer.weight.map(|w| w.mul_scalar(scale)),
        bias: layer.bias.map(|b| b.map(|b| b.mul_scalar(scale))),
    }
}

impl Mlp {
    /// Applies the network to `[..., in]` and returns `[..., out]`.
    pub fn forward<const D: usize>(&self, mut x: Tensor<D>) -> Tensor<D> {
        let n = self.layers.len();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i + 1 < n {
                if let Some(norm) = self.norms.get(i) {
                    x = norm.forward(x);
                }
                x = self.activation.forward(x);
            }
        }
        x
    }

    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.layers[0].weight.dims()[0]
    }

    /// Output width.
    pub fn output_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].weight.dims()[1]
    }

    /// Number of linear layers.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// A copy of this network for the host engine ([`crate::host`]): the same weights
    /// (`[in, out]` row-major), tanh / ReLU activation. Fails for layer norm and for
    /// activations the host engine does not implement.
    pub fn to_host(&self) -> Result<HostMlp> {
        let activation = host_activation(self)?;
        let mut sizes = vec![self.input_dim()];
        let mut weights = Vec::with_capacity(self.layers.len());
        let mut biases = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let [_, o] = layer.weight.dims();
            sizes.push(o);
            weights.push(host_values(layer.weight.val()));
            biases.push(match &layer.bias {
                Some(b) => host_values(b.val()),
                None => vec![0.0; o],
            });
        }
        HostMlp::from_layers(sizes, activation, &weights, &biases)
    }

    /// The gradients of this network's parameters in `grads`, flat in the layout of
    /// [`HostMlp::params`] (zeros for parameters without a gradient): compares burn's
    /// autodiff with the host engine's backward pass.
    pub fn grads_to_host(&self, grads: &GradientsParams) -> Vec<f32> {
        let mut out = Vec::new();
        for layer in &self.layers {
            let [i, o] = layer.weight.dims();
            match grads.get::<2>(layer.weight.id) {
                Some(g) => out.extend(host_values(g)),
                None => out.extend(std::iter::repeat_n(0.0, i * o)),
            }
            match layer.bias.as_ref().and_then(|b| grads.get::<1>(b.id)) {
                Some(g) => out.extend(host_values(g)),
                None => out.extend(std::iter::repeat_n(0.0, o)),
            }
        }
        out
    }

    /// This network with its weights replaced by `host`'s (same widths), keeping every
    /// parameter's id, device and autodiff flag, so optimizer state and checkpoints still
    /// line up.
    pub fn load_host(self, host: &HostMlp) -> Result<Self> {
        let activation = host_activation(&self)?;
        let mut sizes = vec![self.input_dim()];
        sizes.extend(self.layers.iter().map(|l| l.weight.dims()[1]));
        if host.sizes() != sizes.as_slice() || host.activation() != activation {
            return Err(TensorError::ShapeMismatch {
                what: "host MLP widths",
                expected: format!("{sizes:?} ({activation:?})"),
                got: format!("{:?} ({:?})", host.sizes(), host.activation()),
            });
        }
        let Mlp {
            layers,
            norms,
            activation,
        } = self;
        let layers = layers
            .into_iter()
            .enumerate()
            .map(|(l, layer)| {
                let (w, b) = host.layer(l);
                Linear {
                    weight: layer.weight.map(|t| replace_values(t, w)),
                    bias: layer.bias.map(|p| p.map(|t| replace_values(t, b))),
                }
            })
            .collect();
        Ok(Mlp {
            layers,
            norms,
            activation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cpu, to_vec};
    use burn::tensor::TensorData;

    #[test]
    fn fast_tanh_matches_tanh_and_its_gradient() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.025).collect();
        let n = xs.len();
        let device = cpu().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &device).require_grad();
        let y = fast_tanh(x.clone());
        let grads = y.clone().sum().backward();
        let dy: Vec<f32> = x
            .grad(&grads)
            .expect("grad")
            .into_data()
            .iter::<f32>()
            .collect();
        for ((&xi, yi), dyi) in xs.iter().zip(to_vec(y)).zip(dy) {
            let t = f64::from(xi).tanh();
            assert!((f64::from(yi) - t).abs() < 2e-7, "tanh({xi}): {yi} vs {t}");
            assert!(
                (f64::from(dyi) - (1.0 - t * t)).abs() < 1e-6,
                "tanh'({xi}): {dyi}"
            );
        }
    }

    #[test]
    fn shapes_and_param_count() {
        let device = cpu();
        let mlp = MlpConfig::new(vec![17, 256, 256, 6]).init(&device).unwrap();
        assert_eq!(
            mlp.num_params(),
            17 * 256 + 256 + 256 * 256 + 256 + 256 * 6 + 6
        );
        let y = mlp.forward(Tensor::<2>::zeros([5, 17], &device));
        assert_eq!(y.dims(), [5, 6]);
        assert_eq!((mlp.input_dim(), mlp.output_dim(), mlp.depth()), (17, 6, 3));
    }

    #[test]
    fn layer_norm_adds_parameters() {
        let device = cpu();
        let mlp = MlpConfig::new(vec![4, 8, 8, 2])
            .with_layer_norm(true)
            .init(&device)
            .unwrap();
        assert_eq!(
            mlp.num_params(),
            (4 * 8 + 8) + (8 * 8 + 8) + (8 * 2 + 2) + 2 * 16
        );
    }

    #[test]
    fn orthogonal_init_is_orthogonal_with_zero_bias() {
        let device = cpu();
        let mlp = MlpConfig::new(vec![8, 8, 3])
            .with_init(MlpInit::Orthogonal {
                hidden_gain: std::f64::consts::SQRT_2,
            })
            .with_output_scale(0.01)
            .init(&device)
            .unwrap();
        let w = mlp.layers[0].weight.val();
        let wtw = to_vec(w.clone().transpose().matmul(w));
        for i in 0..8 {
            for j in 0..8 {
                let want = if i == j { 2.0 } else { 0.0 };
                assert!(
                    (wtw[i * 8 + j] - want).abs() < 1e-4,
                    "{i},{j}: {}",
                    wtw[i * 8 + j]
                );
            }
        }
        let b = to_vec(mlp.layers[0].bias.as_ref().unwrap().val());
        assert!(b.iter().all(|&x| x == 0.0));
        // Output head rows have norm 0.01 (orthogonal rows scaled by the gain).
        let w = mlp.layers[1].weight.val();
        let norms = to_vec(w.powi_scalar(2).sum_dim(0).sqrt());
        for n in norms {
            assert!((n - 0.01).abs() < 1e-5, "{n}");
        }
    }

    fn host_pair(act: Activation, seed: u64) -> (Mlp, HostMlp) {
        let device = cpu().autodiff();
        crate::Seeds::new(seed).seed_device(&device);
        let mlp = MlpConfig::new(vec![5, 16, 16, 3])
            .with_activation(act)
            .with_init(MlpInit::Orthogonal { hidden_gain: 1.5 })
            .init(&device)
            .unwrap();
        let host = mlp.to_host().unwrap();
        (mlp, host)
    }

    fn input(rows: usize, device: &Device) -> (Vec<f32>, Tensor<2>) {
        let x = crate::testing::host_values(9, rows * 5)
            .into_iter()
            .map(|v| 2.0 * v)
            .collect::<Vec<_>>();
        let t = Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, 5]), device);
        (x, t)
    }

    #[test]
    fn host_forward_and_backward_match_burn() {
        for act in [Activation::Tanh, Activation::Relu] {
            let (mlp, host) = host_pair(act, 4);
            let device = cpu().autodiff();
            let rows = 37;
            let (x, xt) = input(rows, &device);
            let y = mlp.forward(xt);
            let mut cache = crate::host::MlpCache::new(&host, 8);
            host.forward(&x, rows, &mut cache).unwrap();
            let yb = to_vec(y.clone());
            // f32 sums of 16 products in a different order, and tanh within 2e-7.
            assert!(
                crate::testing::max_abs_diff(&yb, cache.output()) < 2e-6,
                "{act:?}"
            );
            // loss = sum(y * c) for fixed c: d_out = c.
            let c = crate::testing::host_values(3, rows * 3);
            let ct = Tensor::<2>::from_data(TensorData::new(c.clone(), [rows, 3]), &device);
            let grads = GradientsParams::from_grads((y * ct).sum().backward(), &mlp);
            let want = mlp.grads_to_host(&grads);
            let mut got = vec![0.0; host.num_params()];
            host.backward(&mut cache, &c, &mut got, None).unwrap();
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let err = crate::testing::max_abs_diff(&want, &got);
            assert!(
                err < 1e-5 * scale.max(1.0),
                "{act:?}: {err} (scale {scale})"
            );
        }
    }

    #[test]
    fn load_host_round_trips_and_keeps_ids() {
        let (mlp, mut host) = host_pair(Activation::Tanh, 2);
        host.params_mut().iter_mut().for_each(|p| *p += 0.5);
        let ids: Vec<_> = mlp.layers.iter().map(|l| l.weight.id).collect();
        let back = mlp.load_host(&host).unwrap();
        assert_eq!(back.to_host().unwrap(), host);
        let after: Vec<_> = back.layers.iter().map(|l| l.weight.id).collect();
        assert_eq!(ids, after);
        let other =
            crate::host::HostMlp::zeros(vec![5, 3], crate::host::HostActivation::Tanh).unwrap();
        assert!(back.load_host(&other).is_err());
    }

    /// The same gradients through burn's optimizer and [`crate::host::HostAdam`] give the
    /// same parameters (each op is the same `f32` operation in the same order).
    #[test]
    fn host_adam_matches_burn_adam() {
        let settings = [
            crate::AdamSettings::default(),
            crate::AdamSettings {
                eps: 1e-5,
                weight_decay: 1e-2,
                ..crate::AdamSettings::default()
            },
            crate::AdamSettings {
                weight_decay: 1e-2,
                decoupled: true,
                ..crate::AdamSettings::default()
            },
        ];
        for s in settings {
            let (mut mlp, mut host) = host_pair(Activation::Tanh, 7);
            let device = cpu().autodiff();
            let mut optim = s.build().unwrap();
            let mut adam = crate::host::HostAdam::new(&s, host.num_params()).unwrap();
            for step in 0..5 {
                let (_, xt) = input(11, &device);
                let loss = mlp.forward(xt).powi_scalar(2).sum();
                let grads = GradientsParams::from_grads(loss.backward(), &mlp);
                let g = mlp.grads_to_host(&grads);
                let lr = 1e-2 / (1.0 + step as f64);
                mlp = optim.step(lr, mlp, grads);
                adam.step(lr, host.params_mut(), &g).unwrap();
                let want = mlp.to_host().unwrap();
                let err = crate::testing::max_abs_diff(want.params(), host.params());
                assert!(err < 1e-7, "{s:?} step {step}: {err}");
                // Continue from burn's parameters so rounding cannot build up.
                host = want;
            }
        }
    }

    #[test]
    fn host_clip_matches_clip_grad_norm() {
        let (mlp, _) = host_pair(Activation::Tanh, 5);
        let device = cpu().autodiff();
        let (_, xt) = input(9, &device);
        let loss = mlp.forward(xt).powi_scalar(2).sum().mul_scalar(100.0);
        let grads = GradientsParams::from_grads(loss.backward(), &mlp);
        let mut g = mlp.grads_to_host(&grads);
        let (clipped, norm) = crate::clip_grad_norm(&mlp, grads, 0.5);
        let host_norm = crate::host::clip_grad_norm_host(&mut [&mut g], 0.5);
        assert!(norm > 0.5);
        assert!(
            (norm - host_norm).abs() < 1e-5 * norm,
            "{norm} vs {host_norm}"
        );
        let want = mlp.grads_to_host(&clipped);
        assert!(crate::testing::max_abs_diff(&want, &g) < 1e-7);
    }

    #[test]
    fn rejects_degenerate_sizes() {
        let device = cpu();
        let e = MlpConfig::new(vec![4])
            .init(&device)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sizes"), "{e}");
        let e = MlpConfig::new(vec![4, 0, 2])
            .init(&device)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sizes"), "{e}");
    }
}
