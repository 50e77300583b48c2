//! Optimizer helpers: Adam/AdamW settings, global gradient-norm clipping, Polyak target
//! updates and learning-rate schedules.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TensorError};

/// Adam / AdamW hyperparameters as data (serde), built into burn's optimizers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamSettings {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon (PyTorch's default 1e-8; CleanRL's PPO uses 1e-5).
    pub eps: f64,
    /// Weight decay; `decoupled` chooses AdamW (decoupled) over Adam's L2 penalty.
    pub weight_decay: f64,
    /// Use AdamW's decoupled weight decay.
    pub decoupled: bool,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

impl AdamSettings {
    /// Checks ranges, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(TensorError::InvalidConfig {
                    field,
                    value: v.to_string(),
                    reason: "must lie in [0, 1)",
                });
            }
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return Err(TensorError::InvalidConfig {
                field: "eps",
                value: self.eps.to_string(),
                reason: "must be positive",
            });
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return Err(TensorError::InvalidConfig {
                field: "weight_decay",
                value: self.weight_decay.to_string(),
                reason: "must be non-negative",
            });
        }
        Ok(())
    }

    /// Builds burn's Adam (or AdamW) optimizer for a whole module.
    pub fn build(&self) -> Result<ModuleOptimizer> {
        self.validate()?;
        Ok(if self.decoupled {
            AdamWConfig::new()
                .with_beta_1(self.beta1 as f32)
                .with_beta_2(self.beta2 as f32)
                .with_epsilon(self.eps as f32)
                .with_weight_decay(self.weight_decay as f32)
                .init()
        } else {
            let mut config = AdamConfig::new()
                .with_beta_1(self.beta1 as f32)
                .with_beta_2(self.beta2 as f32)
                .with_epsilon(self.eps as f32);
            if self.weight_decay > 0.0 {
                config = config.with_weight_decay(Some(
                    burn::optim::decay::WeightDecayConfig::new(self.weight_decay as f32),
                ));
            }
            config.init()
        })
    }
}

/// Sum of squared gradient entries of every float parameter of a module.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let sq = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

struct ScaleGrads<'a> {
    grads: &'a mut GradientsParams,
    scale: f64,
}

impl ModuleVisitor for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.scale));
        }
    }
}

/// The global L2 norm of a module's gradients (one host read).
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    v.total
        .map(|t| f64::from(t.into_scalar::<f32>()).sqrt())
        .unwrap_or(0.0)
}

/// Rescales gradients so their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: `g *= max_norm / (norm + 1e-6)` when `norm > max_norm`). Returns the
/// gradients and the norm *before* clipping, the diagnostic practitioners log.
pub fn clip_grad_norm<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, f64) {
    let norm = grad_norm(module, &grads);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let mut s = ScaleGrads {
            grads: &mut grads,
            scale: coef,
        };
        module.visit(&mut s);
    }
    (grads, norm)
}

struct Touch;

impl ModuleVisitor for Touch {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Runs the deferred initialization of every parameter of `module` now. burn initializes
/// parameters lazily, on first use, drawing from the device RNG at that moment; a learner
/// that seeds the device and builds its networks under a lock calls this before releasing
/// it, so that its weights depend on its seed only, whatever other threads do later.
pub fn materialize<M: Module>(module: &M) {
    module.visit(&mut Touch);
}

struct Collect {
    values: Vec<Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().without_autodiff();
        let n = t.shape().num_elements();
        self.values.push(t.reshape([n]));
    }
}

struct Blend {
    online: std::vec::IntoIter<Tensor<1>>,
    tau: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(online) = self.online.next() else {
            return param;
        };
        let tau = self.tau;
        param.map(|target| {
            let dims = target.dims();
            let was_autodiff = target.is_autodiff();
            let blended = target.without_autodiff().mul_scalar(1.0 - tau)
                + online.reshape(dims).mul_scalar(tau);
            if was_autodiff {
                blended.autodiff()
            } else {
                blended
            }
        })
    }
}

/// Polyak (soft) target update `target <- (1 - tau) target + tau online` (DDPG/SAC/TD3),
/// parameter by parameter in visiting order; both modules must have the same structure.
/// The result carries no autodiff graph.
pub fn polyak_update<M: Module>(target: M, online: &M, tau: f64) -> M {
    let mut c = Collect { values: Vec::new() };
    online.visit(&mut c);
    let mut blend = Blend {
        online: c.values.into_iter(),
        tau,
    };
    target.map(&mut blend)
}

/// A learning-rate schedule as data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LrSchedule {
    /// A constant rate.
    Constant {
        /// The rate.
        lr: f64,
    },
    /// Linear interpolation from `start` to `end` over `steps`, then `end` (CleanRL's PPO
    /// annealing is `start -> 0`).
    Linear {
        /// Rate at step 0.
        start: f64,
        /// Rate from `steps` on.
        end: f64,
        /// Length of the ramp.
        steps: u64,
    },
    /// Linear warmup from 0 to `peak` over `warmup` steps, then cosine decay to `min` at
    /// `total` (the Step-Law paper's schedule ends at a fixed `min` of 1e-5).
    Cosine {
        /// Peak rate.
        peak: f64,
        /// Final rate.
        min: f64,
        /// Warmup steps.
        warmup: u64,
        /// Total steps.
        total: u64,
    },
}

impl LrSchedule {
    /// The learning rate at `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        match *self {
            LrSchedule::Constant { lr } => lr,
            LrSchedule::Linear { start, end, steps } => {
                if steps == 0 || step >= steps {
                    end
                } else {
                    start + (end - start) * step as f64 / steps as f64
                }
            }
            LrSchedule::Cosine {
                peak,
                min,
                warmup,
                total,
            } => {
                if step < warmup {
                    peak * (step + 1) as f64 / warmup as f64
                } else if step >= total || total <= warmup {
                    min
                } else {
                    let p = (step - warmup) as f64 / (total - warmup) as f64;
                    min + 0.5 * (peak - min) * (1.0 + (std::f64::consts::PI * p).cos())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp::MlpConfig;
    use crate::testing::{cpu, to_vec};
    use burn::tensor::TensorData;

    #[test]
    fn schedules_hit_their_endpoints() {
        let l = LrSchedule::Linear {
            start: 3e-4,
            end: 0.0,
            steps: 100,
        };
        assert_eq!(l.at(0), 3e-4);
        assert!((l.at(50) - 1.5e-4).abs() < 1e-12);
        assert_eq!(l.at(100), 0.0);
        assert_eq!(l.at(1000), 0.0);
        let c = LrSchedule::Cosine {
            peak: 1e-3,
            min: 1e-5,
            warmup: 10,
            total: 110,
        };
        assert!((c.at(9) - 1e-3).abs() < 1e-15);
        assert!((c.at(10) - 1e-3).abs() < 1e-15);
        assert!((c.at(60) - (1e-5 + 0.5 * (1e-3 - 1e-5))).abs() < 1e-12);
        assert_eq!(c.at(110), 1e-5);
        assert!(c.at(0) > 0.0);
    }

    #[test]
    fn clip_reports_pre_clip_norm_and_rescales() {
        let device = cpu().autodiff();
        let mlp = MlpConfig::new(vec![3, 4, 2]).init(&device).unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 6], [2, 3]), &device);
        let loss = mlp.forward(x).sum().mul_scalar(100.0);
        let grads = GradientsParams::from_grads(loss.backward(), &mlp);
        let before = grad_norm(&mlp, &grads);
        assert!(before > 1.0);
        let (clipped, reported) = clip_grad_norm(&mlp, grads, 0.5);
        assert!((reported - before).abs() < 1e-9);
        let after = grad_norm(&mlp, &clipped);
        assert!((after - 0.5).abs() < 1e-4, "{after}");
        // Below the threshold nothing changes.
        let (same, _) = clip_grad_norm(&mlp, clipped, 10.0);
        assert!((grad_norm(&mlp, &same) - after).abs() < 1e-9);
    }

    #[test]
    fn polyak_blends_every_parameter() {
        let device = cpu();
        let online = MlpConfig::new(vec![2, 3, 1]).init(&device).unwrap();
        let target = MlpConfig::new(vec![2, 3, 1]).init(&device).unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.3f32, -0.7], [1, 2]), &device);
        let t0 = to_vec(target.forward(x.clone()));
        let blended = polyak_update(target.clone(), &online, 1.0);
        assert_eq!(
            to_vec(blended.forward(x.clone())),
            to_vec(online.forward(x.clone()))
        );
        let kept = polyak_update(target, &online, 0.0);
        assert_eq!(to_vec(kept.forward(x)), t0);
    }

    #[test]
    fn adam_settings_validate() {
        let bad = AdamSettings {
            beta1: 1.5,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("beta1"));
        assert!(bad.build().is_err());
        assert!(AdamSettings::default().build().is_ok());
    }
}
