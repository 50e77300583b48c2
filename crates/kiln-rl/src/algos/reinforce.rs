//! REINFORCE with a learned state-value baseline (Williams 1992; Sutton & Barto, *Reinforcement
//! Learning: An Introduction*, 2nd ed., sec. 13.4, eq. 13.11), on the flat-parameter policies of
//! [`super::gpomdp`] (Categorical or Gaussian head).
//!
//! Per update: sample `batch_trajectories` episodes (at most `horizon` steps each) from `π_θ`,
//! then
//! - eq. 13.11, policy: `θ ← θ + α · (1/b) Σ_τ Σ_t γ^t (G_t − v̂(s_t, w)) ∇log π_θ(a_t|s_t)`,
//!   with `G_t = Σ_{h≥t} γ^(h−t) r_h`; `γ^t G_t` is the GPOMDP reward-to-go weight
//!   `Σ_{h≥t} γ^h r_h`, so without the baseline this is exactly [`super::gpomdp::gpomdp_gradient`];
//! - eq. 13.11, baseline: `w ← w + α_w (G_t − v̂(s_t, w)) ∇v̂(s_t, w)`, as `value_epochs`
//!   gradient steps on the mean squared error over the batch.
//!
//! Both steps use Adam (Kingma & Ba 2015, Alg. 1) on the flat vectors instead of plain SGD, as
//! practical REINFORCE baselines do.

use std::path::Path;
use std::time::Instant;

use kiln_envs::{Action, Env};
use kiln_tensor::Seeds;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::gpomdp::{
    FlatMlp, FlatPolicy, LogStd, MlpCache, Trajectory, next_episode_seed, sample_trajectory,
    weighted_score,
};
use super::stochastic_pg::{read_checkpoint, write_checkpoint};
use crate::callback::Callback;
use crate::error::{Result, RlError};

/// Hyperparameters of [`Reinforce`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReinforceConfig {
    /// Policy step size `α` (Adam).
    pub learning_rate: f64,
    /// Baseline step size `α_w` (Adam).
    pub value_learning_rate: f64,
    /// Gradient steps on the baseline per update.
    pub value_epochs: usize,
    /// Discount `γ`.
    pub discount: f64,
    /// Horizon `H`.
    pub horizon: usize,
    /// Episodes per update.
    pub batch_trajectories: usize,
    /// Hidden widths of the policy MLP.
    pub hidden_sizes: Vec<usize>,
    /// Whether the policy's layers have biases (`false` with no hidden layer: `u = θ s`).
    pub policy_bias: bool,
    /// Hidden widths of the value MLP.
    pub value_hidden_sizes: Vec<usize>,
    /// Whether the baseline is used (`false`: plain REINFORCE, eq. 13.8).
    pub baseline: bool,
    /// Gaussian heads: the log-std.
    pub log_std: LogStd,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-2,
            value_learning_rate: 1e-2,
            value_epochs: 5,
            discount: 0.99,
            horizon: 200,
            batch_trajectories: 1,
            hidden_sizes: vec![32, 32],
            policy_bias: true,
            value_hidden_sizes: vec![32, 32],
            baseline: true,
            log_std: LogStd::Learned {
                init: 0.0,
                min: -2.0,
            },
        }
    }
}

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> RlError {
    RlError::InvalidConfig {
        field,
        value: value.to_string(),
        reason,
    }
}

impl ReinforceConfig {
    /// Range checks, naming the field and value at fault.
    pub fn validate(&self) -> Result<()> {
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(invalid(
                "learning_rate",
                self.learning_rate,
                "must be positive",
            ));
        }
        if !(self.value_learning_rate > 0.0 && self.value_learning_rate.is_finite()) {
            return Err(invalid(
                "value_learning_rate",
                self.value_learning_rate,
                "must be positive",
            ));
        }
        if !(0.0..=1.0).contains(&self.discount) {
            return Err(invalid("discount", self.discount, "must lie in [0, 1]"));
        }
        if self.horizon == 0 {
            return Err(invalid("horizon", self.horizon, "must be at least 1"));
        }
        if self.batch_trajectories == 0 {
            return Err(invalid(
                "batch_trajectories",
                self.batch_trajectories,
                "must be at least 1",
            ));
        }
        for (field, sizes) in [
            ("hidden_sizes", &self.hidden_sizes),
            ("value_hidden_sizes", &self.value_hidden_sizes),
        ] {
            if sizes.contains(&0) {
                return Err(invalid(
                    field,
                    format!("{sizes:?}"),
                    "every width must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

/// Adam on a flat vector (Kingma & Ba 2015, Alg. 1 with bias correction), ascent or descent by
/// the sign of the gradient passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatAdam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: u64,
}

impl FlatAdam {
    /// Zero moments for `n` parameters.
    pub fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// `p ← p − lr · m̂/(√v̂ + ε)` for the descent direction `grad`.
    pub fn descend(&mut self, p: &mut [f64], grad: &[f64], lr: f64) {
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        self.t += 1;
        let c1 = 1.0 - b1f(b1, self.t);
        let c2 = 1.0 - b1f(b2, self.t);
        for i in 0..p.len() {
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * grad[i];
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * grad[i] * grad[i];
            p[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + eps);
        }
    }
}

fn b1f(beta: f64, t: u64) -> f64 {
    beta.powi(t.min(i32::MAX as u64) as i32)
}

/// What one update did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReinforceStats {
    /// Mean undiscounted return of the batch.
    pub mean_return: f64,
    /// Mean squared error of the baseline before its update.
    pub value_loss: f64,
    /// Norm of the policy gradient estimate.
    pub grad_norm: f64,
}

/// REINFORCE with baseline: `new`, `learn`, `predict`, `save`/`load`.
pub struct Reinforce {
    config: ReinforceConfig,
    env_id: String,
    seed: u64,
    env: Box<dyn Env>,
    policy: FlatPolicy,
    value: FlatMlp,
    theta: Vec<f64>,
    w: Vec<f64>,
    policy_adam: FlatAdam,
    value_adam: FlatAdam,
    global_step: u64,
    trajectories: u64,
    episode_rng: StdRng,
    action_rng: StdRng,
}

impl std::fmt::Debug for Reinforce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reinforce")
            .field("env_id", &self.env_id)
            .field("seed", &self.seed)
            .field("global_step", &self.global_step)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Reinforce {
    /// A learner for the registered env `env_id`.
    pub fn new(config: ReinforceConfig, env_id: &str, seed: u64) -> Result<Self> {
        Self::with_env(config, kiln_envs::make(env_id)?, seed)
    }

    /// A learner on a given env instance.
    pub fn with_env(config: ReinforceConfig, env: Box<dyn Env>, seed: u64) -> Result<Self> {
        config.validate()?;
        let env_id = env.id().to_string();
        let policy = FlatPolicy::for_spaces(
            &env_id,
            "REINFORCE",
            env.observation_space(),
            env.action_space(),
            &config.hidden_sizes,
            config.policy_bias,
            config.log_std,
        )?;
        let mut sizes = vec![policy.net.sizes[0]];
        sizes.extend_from_slice(&config.value_hidden_sizes);
        sizes.push(1);
        let value = FlatMlp { sizes, bias: true };
        let seeds = Seeds::new(seed);
        let mut init = seeds.stream("init");
        let theta = policy.init(&mut init, 0.01);
        let w = value.init(&mut init, 1.0);
        Ok(Self {
            policy_adam: FlatAdam::new(theta.len()),
            value_adam: FlatAdam::new(w.len()),
            theta,
            w,
            value,
            policy,
            env,
            global_step: 0,
            trajectories: 0,
            episode_rng: seeds.stream("episode"),
            action_rng: seeds.stream("action"),
            config,
            env_id,
            seed,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &ReinforceConfig {
        &self.config
    }

    /// The environment id.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// Environment steps so far.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Trajectories sampled so far.
    pub fn trajectories(&self) -> u64 {
        self.trajectories
    }

    /// Policy parameters.
    pub fn params(&self) -> &[f64] {
        &self.theta
    }

    /// Replaces the policy parameters (e.g. to start the LQR gain at a chosen value).
    pub fn set_params(&mut self, theta: Vec<f64>) -> Result<()> {
        if theta.len() != self.theta.len() {
            return Err(RlError::Shape {
                what: "parameter vector",
                expected: self.theta.len(),
                got: theta.len(),
            });
        }
        self.theta = theta;
        Ok(())
    }

    /// The policy (architecture and head).
    pub fn policy(&self) -> &FlatPolicy {
        &self.policy
    }

    fn values(&self, traj: &Trajectory) -> Vec<f64> {
        let mut cache = MlpCache::default();
        traj.observations
            .iter()
            .map(|s| self.value.forward(&self.w, s, &mut cache)[0])
            .collect()
    }

    /// One update: a batch of episodes, the policy step of eq. 13.11, then the baseline's.
    pub fn update(&mut self) -> Result<ReinforceStats> {
        let cfg = self.config.clone();
        let b = cfg.batch_trajectories;
        let mut batch = Vec::with_capacity(b);
        for _ in 0..b {
            let seed = next_episode_seed(&mut self.episode_rng);
            let traj = sample_trajectory(
                self.env.as_mut(),
                &self.policy,
                &self.theta,
                cfg.horizon,
                seed,
                &mut self.action_rng,
            )?;
            self.global_step += traj.len() as u64;
            self.trajectories += 1;
            batch.push(traj);
        }
        let mut grad = vec![0.0; self.theta.len()];
        let mut mean_return = 0.0;
        let mut value_loss = 0.0;
        let mut n_steps = 0usize;
        let mut targets = Vec::with_capacity(b);
        for traj in &batch {
            mean_return += traj.undiscounted_return() / b as f64;
            let returns = traj.returns_to_go(cfg.discount);
            let baseline = if cfg.baseline {
                self.values(traj)
            } else {
                vec![0.0; traj.len()]
            };
            let mut disc = 1.0;
            let coef: Vec<f64> = returns
                .iter()
                .zip(&baseline)
                .map(|(g, v)| {
                    let c = disc * (g - v) / b as f64;
                    disc *= cfg.discount;
                    c
                })
                .collect();
            value_loss += returns
                .iter()
                .zip(&baseline)
                .map(|(g, v)| (g - v) * (g - v))
                .sum::<f64>();
            n_steps += traj.len();
            for (a, x) in
                grad.iter_mut()
                    .zip(weighted_score(&self.policy, &self.theta, traj, &coef))
            {
                *a += x;
            }
            targets.push(returns);
        }
        let grad_norm = grad.iter().map(|x| x * x).sum::<f64>().sqrt();
        let descent: Vec<f64> = grad.iter().map(|x| -x).collect();
        self.policy_adam
            .descend(&mut self.theta, &descent, cfg.learning_rate);
        if cfg.baseline {
            let mut cache = MlpCache::default();
            for _ in 0..cfg.value_epochs {
                let mut gw = vec![0.0; self.w.len()];
                for (traj, returns) in batch.iter().zip(&targets) {
                    for (s, g) in traj.observations.iter().zip(returns) {
                        let v = self.value.forward(&self.w, s, &mut cache)[0];
                        let dout = [2.0 * (v - g) / n_steps.max(1) as f64];
                        self.value.backward(&self.w, &cache, &dout, &mut gw);
                    }
                }
                self.value_adam
                    .descend(&mut self.w, &gw, cfg.value_learning_rate);
            }
        }
        Ok(ReinforceStats {
            mean_return,
            value_loss: value_loss / n_steps.max(1) as f64,
            grad_norm,
        })
    }

    /// Updates until about `total_steps` further env steps are taken (at least one update).
    pub fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<()> {
        let target = self.global_step + total_steps.max(1);
        let start = Instant::now();
        let first = self.global_step;
        while self.global_step < target {
            let s = self.update()?;
            let sps = (self.global_step - first) as f64 / start.elapsed().as_secs_f64().max(1e-9);
            let metrics = [
                ("charts/episodic_return", s.mean_return),
                ("charts/SPS", sps),
                ("losses/value_loss", s.value_loss),
                ("losses/grad_norm", s.grad_norm),
            ];
            if !callback.on_update(self.global_step, &metrics)? {
                break;
            }
        }
        Ok(())
    }

    /// The action for one observation: the mode if `deterministic`, else a sample.
    pub fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        let want = self.policy.net.sizes[0];
        if obs.len() != want {
            return Err(RlError::Shape {
                what: "observation",
                expected: want,
                got: obs.len(),
            });
        }
        let mut cache = MlpCache::default();
        Ok(if deterministic {
            self.policy.mode(&self.theta, obs, &mut cache)
        } else {
            self.policy
                .sample(&self.theta, obs, &mut self.action_rng, &mut cache)
                .0
        })
    }

    /// Writes `<stem>.json` with the config, counters and the `f64` policy, baseline and Adam
    /// state.
    pub fn save(&self, stem: &Path) -> Result<()> {
        let value = serde_json::json!({
            "algo": "reinforce",
            "env_id": self.env_id,
            "seed": self.seed,
            "config": self.config,
            "global_step": self.global_step,
            "trajectories": self.trajectories,
            "theta": self.theta,
            "w": self.w,
            "policy_adam": self.policy_adam,
            "value_adam": self.value_adam,
        });
        write_checkpoint(stem, &value)
    }

    /// Reads a learner written by [`Reinforce::save`] (random streams restart from the seed).
    pub fn load(stem: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Saved {
            env_id: String,
            seed: u64,
            config: ReinforceConfig,
            global_step: u64,
            trajectories: u64,
            theta: Vec<f64>,
            w: Vec<f64>,
            policy_adam: FlatAdam,
            value_adam: FlatAdam,
        }
        let s: Saved = read_checkpoint(stem)?;
        let mut learner = Self::new(s.config, &s.env_id, s.seed)?;
        if s.theta.len() != learner.theta.len() || s.w.len() != learner.w.len() {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: "parameter vectors do not match the config's networks".into(),
            });
        }
        learner.theta = s.theta;
        learner.w = s.w;
        learner.policy_adam = s.policy_adam;
        learner.value_adam = s.value_adam;
        learner.global_step = s.global_step;
        learner.trajectories = s.trajectories;
        Ok(learner)
    }
}
