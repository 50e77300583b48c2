//! Action distributions: diagonal Gaussian, tanh-squashed Gaussian and (masked) categorical.
//!
//! Every distribution is a batch: parameters have a leading batch dimension `B`, and
//! `log_prob`, `entropy` and `kl` return one value per row (`Tensor<1>` of length `B`), summed
//! over action dimensions. Samples are reparameterized where the family allows it, so
//! gradients flow from a sampled action back into the distribution's parameters.

use std::f64::consts::{LN_2, PI};
use std::sync::OnceLock;

use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData, activation};

const LOG_SQRT_2PI: f64 = 0.918_938_533_204_672_8; // 0.5 * ln(2 pi)

/// A batch of diagonal Gaussians `N(mean, diag(exp(log_std))^2)` over `[B, A]`.
#[derive(Debug, Clone)]
pub struct DiagGaussian {
    /// Means, `[B, A]`.
    pub mean: Tensor<2>,
    /// Log standard deviations, `[B, A]`.
    pub log_std: Tensor<2>,
}

impl DiagGaussian {
    /// A Gaussian from per-row means and log standard deviations of the same shape.
    pub fn new(mean: Tensor<2>, log_std: Tensor<2>) -> Self {
        Self { mean, log_std }
    }

    /// A Gaussian whose log standard deviation is a state-independent parameter `[A]`
    /// (the PPO convention), broadcast over the batch.
    pub fn with_shared_log_std(mean: Tensor<2>, log_std: Tensor<1>) -> Self {
        let [b, a] = mean.dims();
        let log_std = log_std.reshape([1, a]).expand([b, a]);
        Self { mean, log_std }
    }

    /// Standard deviations.
    pub fn std(&self) -> Tensor<2> {
        self.log_std.clone().exp()
    }

    /// A reparameterized sample `mean + std * eps`, `eps ~ N(0, I)` from the device RNG.
    pub fn rsample(&self) -> Tensor<2> {
        let eps = Tensor::random(
            self.mean.shape(),
            Distribution::Normal(0.0, 1.0),
            &self.mean.device(),
        );
        self.sample_with_noise(eps)
    }

    /// `mean + std * eps` for given standard-normal noise (use for reproducible sampling).
    pub fn sample_with_noise(&self, eps: Tensor<2>) -> Tensor<2> {
        self.mean.clone() + self.std() * eps
    }

    /// `log N(x; mean, std)`, summed over action dimensions: `[B]`.
    pub fn log_prob(&self, x: Tensor<2>) -> Tensor<1> {
        let z = (x - self.mean.clone()) / self.std();
        (z.powi_scalar(2).mul_scalar(-0.5) - self.log_std.clone() - LOG_SQRT_2PI)
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// Differential entropy `sum(log std + 0.5 (1 + ln 2 pi))`: `[B]`.
    pub fn entropy(&self) -> Tensor<1> {
        (self.log_std.clone() + (0.5 + LOG_SQRT_2PI))
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// The most likely action (the mean).
    pub fn mode(&self) -> Tensor<2> {
        self.mean.clone()
    }

    /// `KL(self || other) = sum(log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2)`: `[B]`.
    pub fn kl(&self, other: &DiagGaussian) -> Tensor<1> {
        let var1 = self.log_std.clone().mul_scalar(2.0).exp();
        let var2 = other.log_std.clone().mul_scalar(2.0).exp();
        let diff2 = (self.mean.clone() - other.mean.clone()).powi_scalar(2);
        (other.log_std.clone() - self.log_std.clone() + (var1 + diff2) / var2.mul_scalar(2.0) - 0.5)
            .sum_dim(1)
            .squeeze_dim(1)
    }
}

/// A sample of a [`TanhGaussian`]: the squashed action and the Gaussian sample behind it.
#[derive(Debug, Clone)]
pub struct TanhSample {
    /// `tanh(u)`, in `(-1, 1)`.
    pub action: Tensor<2>,
    /// `u`, the pre-squash Gaussian sample (keep it: `log_prob_pre_tanh` is exact and stable).
    pub pre_tanh: Tensor<2>,
}

/// `tanh(U)` with `U ~ N(mean, std)`: SAC's squashed Gaussian policy.
///
/// Log-density by change of variables (Haarnoja et al. 2018, SAC appendix C, eq. 21):
/// `log p(a) = log N(u) - sum log(1 - tanh(u)^2)`, with the correction computed in the
/// overflow-free form `log(1 - tanh(u)^2) = 2 (ln 2 - u - softplus(-2u))`.
#[derive(Debug, Clone)]
pub struct TanhGaussian {
    /// The Gaussian before squashing.
    pub base: DiagGaussian,
}

/// Largest |action| accepted by [`TanhGaussian::log_prob`] before clamping (atanh stays finite).
pub const TANH_CLAMP: f64 = 1.0 - 1e-6;

impl TanhGaussian {
    /// Squashes a Gaussian with means and log standard deviations `[B, A]`.
    pub fn new(mean: Tensor<2>, log_std: Tensor<2>) -> Self {
        Self {
            base: DiagGaussian::new(mean, log_std),
        }
    }

    /// A reparameterized sample.
    pub fn rsample(&self) -> TanhSample {
        let pre_tanh = self.base.rsample();
        TanhSample {
            action: pre_tanh.clone().tanh(),
            pre_tanh,
        }
    }

    /// A sample from given standard-normal noise.
    pub fn sample_with_noise(&self, eps: Tensor<2>) -> TanhSample {
        let pre_tanh = self.base.sample_with_noise(eps);
        TanhSample {
            action: pre_tanh.clone().tanh(),
            pre_tanh,
        }
    }

    /// `sum log(1 - tanh(u)^2)` in the stable form, `[B]`.
    fn log_det_jacobian(u: Tensor<2>) -> Tensor<1> {
        let softplus = activation::softplus(u.clone().mul_scalar(-2.0), 1.0);
        (u.neg() - softplus + LN_2)
            .mul_scalar(2.0)
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// Log-density of the squashed action whose pre-squash value is `u` (exact, stable).
    pub fn log_prob_pre_tanh(&self, u: Tensor<2>) -> Tensor<1> {
        self.base.log_prob(u.clone()) - Self::log_det_jacobian(u)
    }

    /// Log-density of an action in `(-1, 1)`; actions are clamped to `±TANH_CLAMP` first.
    pub fn log_prob(&self, action: Tensor<2>) -> Tensor<1> {
        let a = action.clamp(-TANH_CLAMP, TANH_CLAMP);
        // atanh(a) = 0.5 * (ln(1 + a) - ln(1 - a))
        let u = ((a.clone() + 1.0).log() - (a.neg() + 1.0).log()).mul_scalar(0.5);
        self.log_prob_pre_tanh(u)
    }

    /// The deterministic action `tanh(mean)`.
    pub fn mode(&self) -> Tensor<2> {
        self.base.mean.clone().tanh()
    }

    /// Entropy of the squashed distribution, `H(U) + E[log(1 - tanh(U)^2)]`, with the
    /// expectation computed per dimension by 32-point Gauss–Hermite quadrature (deterministic,
    /// differentiable; no closed form exists).
    pub fn entropy(&self) -> Tensor<1> {
        let (nodes, weights) = gauss_hermite();
        let device = self.base.mean.device();
        let k = nodes.len();
        let [b, a] = self.base.mean.dims();
        let x = Tensor::<1>::from_data(TensorData::new(nodes.to_vec(), [k]), &device)
            .reshape([1, 1, k]);
        let w = Tensor::<1>::from_data(TensorData::new(weights.to_vec(), [k]), &device)
            .reshape([1, 1, k]);
        let u = self.base.mean.clone().reshape([b, a, 1])
            + self
                .base
                .std()
                .reshape([b, a, 1])
                .mul_scalar(std::f64::consts::SQRT_2)
                * x;
        let softplus = activation::softplus(u.clone().mul_scalar(-2.0), 1.0);
        let f = (u.neg() - softplus + LN_2).mul_scalar(2.0);
        let expectation = (f * w).sum_dim(2).mul_scalar(1.0 / PI.sqrt()); // [B, A, 1]
        self.base.entropy() + expectation.reshape([b, a]).sum_dim(1).squeeze_dim(1)
    }

    /// `KL(self || other)`: tanh is a bijection, so this equals the KL of the base Gaussians.
    pub fn kl(&self, other: &TanhGaussian) -> Tensor<1> {
        self.base.kl(&other.base)
    }
}

/// Nodes and weights of 32-point Gauss–Hermite quadrature (`∫ e^{-x^2} f(x) dx ≈ Σ w f(x)`),
/// computed once by Newton's method on the Hermite recurrence (Golub–Welsch would need an
/// eigen-solver; this needs nothing).
fn gauss_hermite() -> &'static (Vec<f32>, Vec<f32>) {
    static GH: OnceLock<(Vec<f32>, Vec<f32>)> = OnceLock::new();
    GH.get_or_init(|| {
        let (x, w) = gauss_hermite_f64(32);
        (
            x.iter().map(|&v| v as f32).collect(),
            w.iter().map(|&v| v as f32).collect(),
        )
    })
}

/// `n`-point Gauss–Hermite nodes and weights in f64 (physicists' convention).
pub(crate) fn gauss_hermite_f64(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let pim4 = PI.powf(-0.25);
    let m = n.div_ceil(2);
    let nf = n as f64;
    let mut z = 0.0f64;
    for i in 0..m {
        // Initial guesses for the largest roots first (Numerical Recipes' asymptotics).
        z = match i {
            0 => (2.0 * nf + 1.0).sqrt() - 1.85575 * (2.0 * nf + 1.0).powf(-0.16667),
            1 => z - 1.14 * nf.powf(0.426) / z,
            2 => 1.86 * z - 0.86 * x[0],
            3 => 1.91 * z - 0.91 * x[1],
            _ => 2.0 * z - x[i - 2],
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let mut p1 = pim4;
            let mut p2 = 0.0;
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                let jf = j as f64;
                p1 = z * (2.0 / (jf + 1.0)).sqrt() * p2 - (jf / (jf + 1.0)).sqrt() * p3;
            }
            pp = (2.0 * nf).sqrt() * p2;
            let z1 = z;
            z = z1 - p1 / pp;
            if (z - z1).abs() <= 1e-14 {
                break;
            }
        }
        x[i] = z;
        x[n - 1 - i] = -z;
        w[i] = 2.0 / (pp * pp);
        w[n - 1 - i] = w[i];
    }
    (x, w)
}

/// A batch of categorical distributions over `N` actions from logits `[B, N]`, with an optional
/// action mask (`true` = allowed). Masked actions get probability zero; every row must allow
/// at least one action.
#[derive(Debug, Clone)]
pub struct Categorical {
    /// Normalized log-probabilities `[B, N]` (masked entries hold a large negative number).
    pub log_probs: Tensor<2>,
}

/// Logit given to masked actions: `exp` underflows to exactly zero, and `0 * MASKED` is zero, so
/// entropies and KLs stay finite (an infinite value would give `0 * inf = NaN`).
const MASKED_LOGIT: f32 = -1e9;

impl Categorical {
    /// From unnormalized logits and an optional mask (`true` = allowed).
    pub fn new(logits: Tensor<2>, mask: Option<Tensor<2, Bool>>) -> Self {
        let logits = match mask {
            Some(mask) => logits.mask_fill(mask.bool_not(), MASKED_LOGIT),
            None => logits,
        };
        Self {
            log_probs: activation::log_softmax(logits, 1),
        }
    }

    /// Probabilities `[B, N]`.
    pub fn probs(&self) -> Tensor<2> {
        self.log_probs.clone().exp()
    }

    /// Samples one action per row with the Gumbel-max trick (device RNG): `[B]`.
    pub fn sample(&self) -> Tensor<1, Int> {
        let u = Tensor::<2>::random(
            self.log_probs.shape(),
            Distribution::Uniform(1e-10, 1.0),
            &self.log_probs.device(),
        );
        self.sample_with_uniform(u)
    }

    /// Gumbel-max sampling from given uniforms in `(0, 1)` (reproducible sampling).
    pub fn sample_with_uniform(&self, u: Tensor<2>) -> Tensor<1, Int> {
        let gumbel = u.log().neg().log().neg();
        (self.log_probs.clone() + gumbel).argmax(1).squeeze_dim(1)
    }

    /// Log-probability of the given actions `[B]`: `[B]`.
    pub fn log_prob(&self, actions: Tensor<1, Int>) -> Tensor<1> {
        let b = actions.dims()[0];
        self.log_probs
            .clone()
            .gather(1, actions.reshape([b, 1]))
            .squeeze_dim(1)
    }

    /// Entropy `-sum p log p`: `[B]`.
    pub fn entropy(&self) -> Tensor<1> {
        (self.probs() * self.log_probs.clone())
            .sum_dim(1)
            .squeeze_dim(1)
            .neg()
    }

    /// The most likely action per row: `[B]`.
    pub fn mode(&self) -> Tensor<1, Int> {
        self.log_probs.clone().argmax(1).squeeze_dim(1)
    }

    /// `KL(self || other) = sum p (log p - log q)`: `[B]`.
    pub fn kl(&self, other: &Categorical) -> Tensor<1> {
        (self.probs() * (self.log_probs.clone() - other.log_probs.clone()))
            .sum_dim(1)
            .squeeze_dim(1)
    }
}

/// Uploads a row-major `[rows, cols]` f32 buffer as a tensor (a convenience for tests and
/// for feeding host-side batches).
pub fn tensor2(values: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
}
