use serde::{Deserialize, Serialize};

use crate::env::{Action, Env, Info, Transition};
use crate::error::EnvError;
use crate::space::{BoxSpace, Space};
use crate::wrappers::forward_env;

/// Running mean and variance per component, merged batch by batch with the
/// parallel algorithm of Chan et al. (1979) exactly as Gymnasium's
/// `RunningMeanStd` (initial `count = epsilon = 1e-4`, `mean = 0`, `var = 1`,
/// population variance). Serializable, so statistics can be saved with a
/// policy and restored for evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Running mean.
    pub mean: Vec<f64>,
    /// Running (population) variance.
    pub var: Vec<f64>,
    /// Number of samples seen, plus the initial `epsilon`.
    pub count: f64,
}

impl RunningMeanStd {
    /// Statistics for `dim` components with Gymnasium's initial values.
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
        }
    }

    /// Number of components.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Merge a batch of `batch.len() / dim` rows (row-major).
    pub fn update(&mut self, batch: &[f64]) {
        let d = self.dim();
        if d == 0 || batch.is_empty() || !batch.len().is_multiple_of(d) {
            return;
        }
        let n = batch.len() / d;
        let mut bmean = vec![0.0; d];
        for row in batch.chunks_exact(d) {
            for (m, x) in bmean.iter_mut().zip(row) {
                *m += x;
            }
        }
        for m in &mut bmean {
            *m /= n as f64;
        }
        let mut bvar = vec![0.0; d];
        for row in batch.chunks_exact(d) {
            for ((v, x), m) in bvar.iter_mut().zip(row).zip(&bmean) {
                *v += (x - m) * (x - m);
            }
        }
        for v in &mut bvar {
            *v /= n as f64;
        }
        self.update_from_moments(&bmean, &bvar, n as f64);
    }

    /// Gymnasium's `update_mean_var_count_from_moments`.
    pub fn update_from_moments(&mut self, batch_mean: &[f64], batch_var: &[f64], batch_count: f64) {
        let tot = self.count + batch_count;
        for i in 0..self.dim() {
            let delta = batch_mean[i] - self.mean[i];
            let new_mean = self.mean[i] + delta * batch_count / tot;
            let m_a = self.var[i] * self.count;
            let m_b = batch_var[i] * batch_count;
            let m2 = m_a + m_b + delta * delta * self.count * batch_count / tot;
            self.mean[i] = new_mean;
            self.var[i] = m2 / tot;
        }
        self.count = tot;
    }
}

/// Gymnasium's `NormalizeObservation`: `(obs - mean) / sqrt(var + epsilon)`
/// with statistics updated on every observation (including the reset one)
/// while `update` is true. The observation space becomes unbounded.
#[derive(Debug, Clone)]
pub struct NormalizeObservation<E> {
    env: E,
    rms: RunningMeanStd,
    epsilon: f64,
    /// Whether new observations update the statistics (turn off for evaluation).
    pub update: bool,
    space: Space,
}

impl<E: Env> NormalizeObservation<E> {
    /// Wrap `env` (epsilon 1e-8). Errors if the observation space is not a box.
    pub fn new(env: E) -> Result<Self, EnvError> {
        let d = match env.observation_space() {
            Space::Box(b) => b.dim(),
            other => {
                return Err(EnvError::Unsupported {
                    env: format!("{} ({})", env.id(), other.describe()),
                    what: "NormalizeObservation on a non-box observation space",
                });
            }
        };
        let space = Space::Box(BoxSpace::uniform(f64::NEG_INFINITY, f64::INFINITY, d)?);
        Ok(Self {
            env,
            rms: RunningMeanStd::new(d),
            epsilon: 1e-8,
            update: true,
            space,
        })
    }
    /// Current statistics (save them with the policy).
    pub fn statistics(&self) -> &RunningMeanStd {
        &self.rms
    }
    /// Restore statistics; errors if the dimension differs.
    pub fn set_statistics(&mut self, rms: RunningMeanStd) -> Result<(), EnvError> {
        if rms.dim() != self.rms.dim() {
            return Err(EnvError::ObservationBuffer {
                env: self.env.id().to_string(),
                expected: self.rms.dim(),
                got: rms.dim(),
            });
        }
        self.rms = rms;
        Ok(())
    }
    fn normalize(&mut self, obs: &mut [f64]) {
        if self.update {
            self.rms.update(obs);
        }
        for ((x, m), v) in obs.iter_mut().zip(&self.rms.mean).zip(&self.rms.var) {
            *x = (*x - m) / (v + self.epsilon).sqrt();
        }
    }
}

impl<E: Env> Env for NormalizeObservation<E> {
    forward_env!(id, action_space, params, state, render);

    fn observation_space(&self) -> &Space {
        &self.space
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        let info = self.env.reset_into(seed, obs)?;
        self.normalize(obs);
        Ok(info)
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        let t = self.env.step_into(action, obs)?;
        self.normalize(obs);
        Ok(t)
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.env.set_state(state)
    }
}

/// Gymnasium's `NormalizeReward`: keeps a discounted return
/// `G ← γ G (1 − terminated) + r`, tracks its running variance, and returns
/// `r / sqrt(var + epsilon)`.
#[derive(Debug, Clone)]
pub struct NormalizeReward<E> {
    env: E,
    rms: RunningMeanStd,
    discounted_return: f64,
    gamma: f64,
    epsilon: f64,
    /// Whether new rewards update the statistics.
    pub update: bool,
}

impl<E: Env> NormalizeReward<E> {
    /// Wrap `env` with discount `gamma` (Gymnasium default 0.99) and epsilon 1e-8.
    pub fn new(env: E, gamma: f64) -> Self {
        Self {
            env,
            rms: RunningMeanStd::new(1),
            discounted_return: 0.0,
            gamma,
            epsilon: 1e-8,
            update: true,
        }
    }
    /// Current return statistics.
    pub fn statistics(&self) -> &RunningMeanStd {
        &self.rms
    }
    /// Restore return statistics.
    pub fn set_statistics(&mut self, rms: RunningMeanStd) -> Result<(), EnvError> {
        if rms.dim() != 1 {
            return Err(EnvError::ObservationBuffer {
                env: self.env.id().to_string(),
                expected: 1,
                got: rms.dim(),
            });
        }
        self.rms = rms;
        Ok(())
    }
}

impl<E: Env> Env for NormalizeReward<E> {
    forward_env!(id, observation_space, action_space, params, state, render);

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        self.env.reset_into(seed, obs)
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        let mut t = self.env.step_into(action, obs)?;
        let keep = if t.terminated { 0.0 } else { 1.0 };
        self.discounted_return = self.discounted_return * self.gamma * keep + t.reward;
        if self.update {
            self.rms.update(&[self.discounted_return]);
        }
        t.reward /= (self.rms.var[0] + self.epsilon).sqrt();
        Ok(t)
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.env.set_state(state)
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        self.env.observe(obs)
    }
}
