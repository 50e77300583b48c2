//! Plumbing shared by the off-policy learners (SAC, TD3, DQN): one environment stepped a
//! transition at a time into a [`ReplayBuffer`], the affine map between an action box and
//! the squashed `[-1, 1]` actions the networks produce, and host-side noise.
//!
//! Stable-Baselines3's conventions, which the learners follow: the buffer stores the
//! *scaled* action (in `[-1, 1]` for a box, the index for a discrete space); a transition cut
//! by a time limit stores the final observation as `s'` with `terminated = false`, so the
//! target bootstraps from it; a terminal transition stores `terminated = true`.

use std::sync::Mutex;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use kiln_envs::wrappers::RecordEpisodeStatistics;
use kiln_envs::{Action, Env, Space};
use rand::RngExt;
use rand::rngs::StdRng;

use crate::callback::Callback;
use crate::error::{Result, RlError};
use crate::replay::ReplayBuffer;

/// Serializes parameter initialization across learners (of every algorithm) built in parallel
/// threads, so that the device RNG seeded for one learner is not drawn from by another.
pub(crate) static INIT_LOCK: Mutex<()> = Mutex::new(());

/// One environment, its current observation and the bookkeeping of finished episodes.
pub(crate) struct OffPolicyEnv {
    env: RecordEpisodeStatistics<Box<dyn Env>>,
    seed: u64,
    started: bool,
    obs: Vec<f64>,
    next: Vec<f64>,
    obs32: Vec<f32>,
    next32: Vec<f32>,
    /// Returns of the episodes finished since the last [`OffPolicyEnv::take_returns`].
    returns: Vec<f64>,
}

impl OffPolicyEnv {
    /// Makes the registered env `env_id` (with its default time limit).
    pub(crate) fn new(env_id: &str, seed: u64) -> Result<Self> {
        let env = RecordEpisodeStatistics::new(kiln_envs::make(env_id)?);
        let d = env.observation_space().raw_len();
        Ok(Self {
            env,
            seed,
            started: false,
            obs: vec![0.0; d],
            next: vec![0.0; d],
            obs32: vec![0.0; d],
            next32: vec![0.0; d],
            returns: Vec::new(),
        })
    }

    /// The flat observation width, or an error if the observation space is not a box.
    pub(crate) fn obs_dim(&self, algo: &'static str) -> Result<usize> {
        match self.env.observation_space() {
            Space::Box(b) => Ok(b.dim()),
            other => Err(RlError::UnsupportedSpace {
                env: self.env.id().to_string(),
                what: "observation",
                space: other.describe(),
                algo,
            }),
        }
    }

    /// The action space.
    pub(crate) fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    /// The env id.
    pub(crate) fn id(&self) -> &str {
        self.env.id()
    }

    /// The current observation (resetting with the learner's seed on first use).
    pub(crate) fn obs(&mut self) -> Result<&[f64]> {
        if !self.started {
            self.env.reset_into(Some(self.seed), &mut self.obs)?;
            self.started = true;
        }
        Ok(&self.obs)
    }

    /// Steps with `env_action`, stores `(s, stored_action, r, s', terminated)` in `buffer`
    /// and, at the end of an episode, resets and records the episode's return.
    pub(crate) fn step(
        &mut self,
        env_action: &Action,
        stored_action: &[f32],
        buffer: &mut ReplayBuffer,
    ) -> Result<()> {
        self.obs()?;
        let t = self.env.step_into(env_action, &mut self.next)?;
        for (d, &s) in self.obs32.iter_mut().zip(&self.obs) {
            *d = s as f32;
        }
        for (d, &s) in self.next32.iter_mut().zip(&self.next) {
            *d = s as f32;
        }
        buffer.push(
            &self.obs32,
            stored_action,
            t.reward as f32,
            &self.next32,
            t.terminated,
        );
        if t.terminated || t.truncated {
            if let Some(r) = t.info.get("episode_return") {
                self.returns.push(r);
            }
            self.env.reset_into(None, &mut self.obs)?;
        } else {
            std::mem::swap(&mut self.obs, &mut self.next);
        }
        Ok(())
    }

    /// Returns of the episodes finished since the last call.
    pub(crate) fn take_returns(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.returns)
    }
}

/// The affine map between a box `[low, high]` and the networks' `[-1, 1]` (SB3's
/// `scale_action` / `unscale_action`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionBox {
    /// Lower bounds.
    pub low: Vec<f64>,
    /// Upper bounds.
    pub high: Vec<f64>,
}

impl ActionBox {
    /// The box of a continuous action space with finite bounds.
    pub(crate) fn for_space(env: &str, space: &Space, algo: &'static str) -> Result<Self> {
        match space {
            Space::Box(b)
                if b.dim() >= 1
                    && b.low.iter().chain(&b.high).all(|v| v.is_finite())
                    && b.low.iter().zip(&b.high).all(|(l, h)| l < h) =>
            {
                Ok(Self {
                    low: b.low.clone(),
                    high: b.high.clone(),
                })
            }
            other => Err(RlError::UnsupportedSpace {
                env: env.to_string(),
                what: "action",
                space: other.describe(),
                algo,
            }),
        }
    }

    /// Number of action dimensions.
    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// `low + (a + 1) / 2 * (high - low)` for `a` in `[-1, 1]`, written into `env`.
    pub(crate) fn unscale_into(&self, scaled: &[f32], env: &mut Action) {
        let values: Vec<f64> = scaled
            .iter()
            .zip(self.low.iter().zip(&self.high))
            .map(|(&a, (&l, &h))| l + (f64::from(a) + 1.0) * 0.5 * (h - l))
            .collect();
        *env = Action::Continuous(values);
    }

    /// A uniform draw from the box, returned scaled to `[-1, 1]` (SB3's warm-up actions).
    pub(crate) fn sample_scaled(&self, rng: &mut StdRng, out: &mut [f32]) {
        for v in out.iter_mut() {
            *v = (rng.random::<f64>() * 2.0 - 1.0) as f32;
        }
    }
}

/// A standard normal draw (Box-Muller), from the host RNG so that runs are reproducible on
/// every backend.
pub(crate) fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Fills `out` with standard normal draws.
pub(crate) fn fill_normal(rng: &mut StdRng, out: &mut [f32]) {
    for v in out.iter_mut() {
        *v = standard_normal(rng) as f32;
    }
}

/// A `[rows, cols]` tensor from a host buffer.
pub(crate) fn matrix(values: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
}

/// A `[n]` tensor from a host buffer.
pub(crate) fn vector(values: &[f32], device: &Device) -> Tensor<1> {
    Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

/// Reads a tensor back to the host.
pub(crate) fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// The checked observation of `predict`.
pub(crate) fn check_obs(obs: &[f64], obs_dim: usize) -> Result<Vec<f32>> {
    if obs.len() != obs_dim {
        return Err(RlError::Shape {
            what: "observation",
            expected: obs_dim,
            got: obs.len(),
        });
    }
    Ok(obs.iter().map(|&x| x as f32).collect())
}

/// The error of a config value out of range.
pub(crate) fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> RlError {
    RlError::InvalidConfig {
        field,
        value: value.to_string(),
        reason,
    }
}

/// Checks the ranges shared by every off-policy config.
pub(crate) fn validate_common(
    learning_rate: f64,
    gamma: f64,
    batch_size: usize,
    buffer_size: usize,
    tau: f64,
    hidden_sizes: &[usize],
) -> Result<()> {
    if !(learning_rate.is_finite() && learning_rate > 0.0) {
        return Err(invalid("learning_rate", learning_rate, "must be positive"));
    }
    if !(gamma > 0.0 && gamma <= 1.0) {
        return Err(invalid("gamma", gamma, "must lie in (0, 1]"));
    }
    if batch_size == 0 {
        return Err(invalid("batch_size", batch_size, "must be at least 1"));
    }
    if buffer_size == 0 {
        return Err(invalid("buffer_size", buffer_size, "must be at least 1"));
    }
    if !(tau > 0.0 && tau <= 1.0) {
        return Err(invalid("tau", tau, "must lie in (0, 1]"));
    }
    if hidden_sizes.contains(&0) {
        return Err(invalid(
            "hidden_sizes",
            format!("{hidden_sizes:?}"),
            "widths must be positive",
        ));
    }
    Ok(())
}

/// Takes a network out of its slot for an optimizer step (it is put back afterwards; an empty
/// slot means an earlier step failed half-way).
pub(crate) fn take<M>(slot: &mut Option<M>) -> Result<M> {
    slot.take().ok_or_else(|| RlError::Checkpoint {
        path: Default::default(),
        reason: "learner left without parameters by an earlier failed update".into(),
    })
}

/// Reports `metrics` to `callback` at `step`, with `charts/SPS` since `start` (at
/// `start_step`) and `charts/episodic_return`, the mean return of the episodes finished since
/// the last report (which are then cleared); returns whether to go on.
pub(crate) fn report(
    callback: &mut dyn Callback,
    step: u64,
    start_step: u64,
    start: Instant,
    recent_returns: &mut Vec<f64>,
    mut metrics: Vec<(&str, f64)>,
) -> Result<bool> {
    let sps = (step - start_step) as f64 / start.elapsed().as_secs_f64().max(1e-9);
    metrics.push(("charts/SPS", sps));
    if !recent_returns.is_empty() {
        let n = recent_returns.len() as f64;
        metrics.push((
            "charts/episodic_return",
            recent_returns.iter().sum::<f64>() / n,
        ));
    }
    let go_on = callback.on_update(step, &metrics)?;
    recent_returns.clear();
    Ok(go_on)
}
