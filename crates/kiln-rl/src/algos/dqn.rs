//! Deep Q-Network (Mnih et al. 2015, "Human-level control through deep reinforcement
//! learning", Nature 518), with the double-DQN target of van Hasselt, Guez, Silver 2016
//! ("Deep Reinforcement Learning with Double Q-learning", AAAI) as a switch, and the behaviour
//! and defaults of Stable-Baselines3's `DQN`.
//!
//! - **Acting**: epsilon-greedy on `Q(s, .)`, epsilon decaying linearly from
//!   `exploration_initial_eps` to `exploration_final_eps` over the first
//!   `exploration_fraction` of a `learn` call; uniform random actions before `learning_starts`.
//! - **Target** (Methods, eq. 3 of the Nature paper): `y = r + gamma (1 - d) max_a' Qhat(s', a')`;
//!   with `double_q`, `y = r + gamma (1 - d) Qhat(s', argmax_a' Q(s', a'))` (van Hasselt eq. 4).
//! - **Loss**: the Huber loss of `Q(s, a) - y` (the Nature paper's error clipping to `[-1, 1]`),
//!   gradient-norm clipping, Adam.
//! - **Target network**: `Qhat <- tau Q + (1 - tau) Qhat` every `target_update_interval` env
//!   steps (`tau = 1`: the paper's periodic copy).
//! - **Schedule**: every `train_freq` env steps, `gradient_steps` minibatch steps.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_envs::{Action, Space};
use kiln_tensor::{
    AdamSettings, Mlp, MlpConfig, MlpInit, Seeds, clip_grad_norm, load_checkpoint,
    load_checkpoint_config, polyak_update, save_checkpoint,
};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::callback::Callback;
use crate::error::{Result, RlError};
use crate::eval::evaluate_episodes;
use crate::off_policy::{
    INIT_LOCK, OffPolicyEnv, check_obs, invalid, matrix, report, to_host, validate_common, vector,
};
use crate::replay::{ReplayBatch, ReplayBuffer};

/// DQN hyperparameters. [`Default`] is Stable-Baselines3's `DQN` default; [`DqnConfig::cartpole`]
/// is the rl-baselines3-zoo CartPole-v1 setting. Unknown JSON keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Adam learning rate (1e-4).
    pub learning_rate: f64,
    /// Replay capacity (1e6).
    pub buffer_size: usize,
    /// Env steps with uniform random actions before learning starts (100).
    pub learning_starts: u64,
    /// Minibatch size (32).
    pub batch_size: usize,
    /// Target update coefficient (1.0: hard copy).
    pub tau: f64,
    /// Discount gamma (0.99).
    pub gamma: f64,
    /// Env steps between training phases (4).
    pub train_freq: u64,
    /// Gradient steps per training phase (1).
    pub gradient_steps: usize,
    /// Env steps between target updates (10000).
    pub target_update_interval: u64,
    /// Fraction of a `learn` call over which epsilon decays (0.1).
    pub exploration_fraction: f64,
    /// Env steps (counted from the learner's first step) over which epsilon decays, instead of
    /// a fraction of each `learn` call; lets training proceed in chunks, with evaluation in
    /// between, on one schedule (None).
    pub exploration_steps: Option<u64>,
    /// Initial epsilon (1.0).
    pub exploration_initial_eps: f64,
    /// Final epsilon (0.05).
    pub exploration_final_eps: f64,
    /// Global gradient-norm clip (10).
    pub max_grad_norm: f64,
    /// Huber threshold delta (1.0).
    pub huber_delta: f64,
    /// Use the double-DQN target (false).
    pub double_q: bool,
    /// Hidden widths of the Q-network ([64, 64], ReLU).
    pub hidden_sizes: Vec<usize>,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-4,
            buffer_size: 1_000_000,
            learning_starts: 100,
            batch_size: 32,
            tau: 1.0,
            gamma: 0.99,
            train_freq: 4,
            gradient_steps: 1,
            target_update_interval: 10_000,
            exploration_fraction: 0.1,
            exploration_steps: None,
            exploration_initial_eps: 1.0,
            exploration_final_eps: 0.05,
            max_grad_norm: 10.0,
            huber_delta: 1.0,
            double_q: false,
            hidden_sizes: vec![64, 64],
        }
    }
}

impl DqnConfig {
    /// rl-baselines3-zoo's `CartPole-v1` setting: lr 2.3e-3, batch 64, buffer 1e5, 1000 warm-up
    /// steps, target update every 10 steps, 128 gradient steps every 256 env steps, epsilon
    /// to 0.04 over 16% of training, networks [256, 256].
    pub fn cartpole() -> Self {
        Self {
            learning_rate: 2.3e-3,
            batch_size: 64,
            buffer_size: 100_000,
            learning_starts: 1000,
            gamma: 0.99,
            target_update_interval: 10,
            train_freq: 256,
            gradient_steps: 128,
            exploration_fraction: 0.16,
            exploration_final_eps: 0.04,
            hidden_sizes: vec![256, 256],
            ..Self::default()
        }
    }

    /// The default for an env id: the zoo setting where there is one, else SB3's defaults.
    pub fn default_for(env_id: &str) -> Self {
        match env_id {
            "CartPole-v1" | "Acrobot-v1" => Self::cartpole(),
            _ => Self::default(),
        }
    }

    /// Checks every range, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        validate_common(
            self.learning_rate,
            self.gamma,
            self.batch_size,
            self.buffer_size,
            self.tau,
            &self.hidden_sizes,
        )?;
        if self.train_freq == 0 {
            return Err(invalid("train_freq", self.train_freq, "must be at least 1"));
        }
        if self.target_update_interval == 0 {
            return Err(invalid(
                "target_update_interval",
                self.target_update_interval,
                "must be at least 1",
            ));
        }
        for (field, v) in [
            ("exploration_fraction", self.exploration_fraction),
            ("exploration_initial_eps", self.exploration_initial_eps),
            ("exploration_final_eps", self.exploration_final_eps),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(field, v, "must lie in [0, 1]"));
            }
        }
        for (field, v) in [
            ("max_grad_norm", self.max_grad_norm),
            ("huber_delta", self.huber_delta),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(field, v, "must be positive"));
            }
        }
        Ok(())
    }

    /// Epsilon after the fraction `done` of the decay period `exploration_steps`: linear from
    /// the initial to the final value, then constant.
    pub fn epsilon_at(&self, done: f64) -> f64 {
        let (start, end) = (self.exploration_initial_eps, self.exploration_final_eps);
        start + done.clamp(0.0, 1.0) * (end - start)
    }

    /// Epsilon after `progress` (in `[0, 1]`) of a `learn` call: SB3's `get_linear_fn`.
    pub fn epsilon(&self, progress: f64) -> f64 {
        let (start, end) = (self.exploration_initial_eps, self.exploration_final_eps);
        if self.exploration_fraction <= 0.0 || progress >= self.exploration_fraction {
            end
        } else {
            start + progress * (end - start) / self.exploration_fraction
        }
    }
}

/// The Huber loss `mean rho_delta(x)`, `rho = x^2 / 2` for `|x| <= delta`, else
/// `delta (|x| - delta / 2)`; written as `q^2 / 2 + delta (|x| - q)` with `q = min(|x|, delta)`.
pub fn huber_loss(x: Tensor<1>, delta: f64) -> Tensor<1> {
    let abs = x.abs();
    let q = abs.clone().clamp_max(delta);
    (q.clone().powi_scalar(2).mul_scalar(0.5) + (abs - q).mul_scalar(delta)).mean()
}

/// Online and target Q-networks.
#[derive(Module, Debug)]
pub struct DqnNets {
    /// `Q(s, .)`, `obs -> n`.
    pub q: Mlp,
    /// The target network `Qhat`.
    pub q_target: Mlp,
}

/// Diagnostics of the last gradient step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DqnStats {
    /// Huber TD loss.
    pub loss: f64,
    /// Mean `Q(s, a)` of the minibatch.
    pub q_value: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Epsilon at the end of the step.
    pub epsilon: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DqnCheckpoint {
    algo: String,
    env_id: String,
    seed: u64,
    obs_dim: usize,
    n_actions: usize,
    start: i64,
    global_step: u64,
    config: DqnConfig,
}

/// A DQN learner: `new`, `learn`, `predict`, `save`/`load`, as in Stable-Baselines3.
pub struct Dqn {
    config: DqnConfig,
    env_id: String,
    seed: u64,
    device: Device,
    train_device: Device,
    obs_dim: usize,
    n_actions: usize,
    /// The first action of the discrete space (`Discrete(n, start)`).
    start: i64,
    q: Option<Mlp>,
    /// Target and acting copies, without autodiff.
    q_target: Mlp,
    policy: Mlp,
    optim: ModuleOptimizer,
    env: OffPolicyEnv,
    buffer: ReplayBuffer,
    batch: ReplayBatch,
    action_rng: StdRng,
    batch_rng: StdRng,
    global_step: u64,
    gradient_steps: u64,
    epsilon: f64,
    recent_returns: Vec<f64>,
}

impl std::fmt::Debug for Dqn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dqn")
            .field("env_id", &self.env_id)
            .field("seed", &self.seed)
            .field("global_step", &self.global_step)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dqn {
    /// A learner for the registered env `env_id` on the default device.
    pub fn new(config: DqnConfig, env_id: &str, seed: u64) -> Result<Self> {
        let device = kiln_tensor::select_device()?.device;
        Self::with_device(config, env_id, seed, device)
    }

    /// A learner on a given device (training uses its autodiff twin).
    pub fn with_device(config: DqnConfig, env_id: &str, seed: u64, device: Device) -> Result<Self> {
        config.validate()?;
        let env = OffPolicyEnv::new(env_id, seed)?;
        let obs_dim = env.obs_dim("DQN")?;
        let (n_actions, start) = match env.action_space() {
            Space::Discrete { n, start } if *n >= 1 => (*n as usize, *start),
            other => {
                return Err(RlError::UnsupportedSpace {
                    env: env_id.to_string(),
                    what: "action",
                    space: other.describe(),
                    algo: "DQN",
                });
            }
        };
        let seeds = Seeds::new(seed);
        let train_device = device.clone().autodiff();
        let mut widths = vec![obs_dim];
        widths.extend_from_slice(&config.hidden_sizes);
        widths.push(n_actions);
        let q = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            seeds.seed_device(&train_device);
            let q = MlpConfig::new(widths)
                .with_init(MlpInit::Default)
                .init(&train_device)?;
            // burn draws parameters lazily: draw them now, under the lock.
            kiln_tensor::materialize(&q);
            q
        };
        let optim = AdamSettings::default().build()?;
        Ok(Self {
            policy: q.valid(),
            q_target: q.valid(),
            q: Some(q),
            optim,
            buffer: ReplayBuffer::new(config.buffer_size, obs_dim, 1),
            batch: ReplayBatch::default(),
            action_rng: seeds.stream("action"),
            batch_rng: seeds.stream("minibatch"),
            global_step: 0,
            gradient_steps: 0,
            epsilon: config.exploration_initial_eps,
            recent_returns: Vec::new(),
            env,
            config,
            env_id: env_id.to_string(),
            seed,
            device,
            train_device,
            obs_dim,
            n_actions,
            start,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &DqnConfig {
        &self.config
    }

    /// The environment id.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// Environment steps taken so far.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Trains for `total_steps` further environment steps, reporting to `callback` after every
    /// training phase; stops early when it returns `false`.
    pub fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<DqnStats> {
        let mut stats = DqnStats::default();
        let start = Instant::now();
        let start_step = self.global_step;
        let end = self.global_step + total_steps;
        while self.global_step < end {
            self.epsilon = match self.config.exploration_steps {
                Some(n) => self
                    .config
                    .epsilon_at(self.global_step as f64 / n.max(1) as f64),
                None => self
                    .config
                    .epsilon((self.global_step - start_step) as f64 / total_steps.max(1) as f64),
            };
            let explore = self.global_step < self.config.learning_starts
                || self.action_rng.random::<f64>() < self.epsilon;
            let a = if explore {
                self.action_rng.random_range(0..self.n_actions)
            } else {
                let obs = self.env.obs()?.to_vec();
                self.greedy(&obs)?
            };
            self.env.step(
                &Action::Discrete(self.start + a as i64),
                &[a as f32],
                &mut self.buffer,
            )?;
            self.global_step += 1;
            self.recent_returns.extend(self.env.take_returns());
            if self
                .global_step
                .is_multiple_of(self.config.target_update_interval)
                && let Some(q) = &self.q
            {
                let target = std::mem::replace(&mut self.q_target, q.valid());
                self.q_target = polyak_update(target, q, self.config.tau);
            }
            if self.global_step > self.config.learning_starts
                && self.global_step.is_multiple_of(self.config.train_freq)
            {
                for _ in 0..self.config.gradient_steps {
                    stats = self.gradient_step()?;
                }
                stats.epsilon = self.epsilon;
                let metrics: Vec<(&str, f64)> = vec![
                    ("charts/epsilon", self.epsilon),
                    ("losses/td_loss", stats.loss),
                    ("losses/q_values", stats.q_value),
                    ("losses/grad_norm", stats.grad_norm),
                    ("charts/gradient_steps", self.gradient_steps as f64),
                ];
                let go_on = report(
                    callback,
                    self.global_step,
                    start_step,
                    start,
                    &mut self.recent_returns,
                    metrics,
                )?;
                if !go_on {
                    break;
                }
            }
        }
        Ok(stats)
    }

    /// `argmax_a Q(s, a)` for one observation (the first maximizer).
    fn greedy(&self, obs: &[f64]) -> Result<usize> {
        let x = check_obs(obs, self.obs_dim)?;
        let q = to_host(
            self.policy
                .forward(matrix(&x, 1, self.obs_dim, &self.device)),
        );
        Ok(q.iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (j, &v)| {
                if v > best.1 { (j, v) } else { best }
            })
            .0)
    }

    /// One minibatch step on the Huber TD loss.
    fn gradient_step(&mut self) -> Result<DqnStats> {
        let cfg = &self.config;
        let (b, d, n) = (cfg.batch_size, self.obs_dim, self.n_actions);
        if !self
            .buffer
            .sample_into(&mut self.batch_rng, b, &mut self.batch)
        {
            return Ok(DqnStats::default());
        }
        let (dev, inner) = (&self.train_device, &self.device);
        let batch = &self.batch;
        let next_obs = matrix(&batch.next_obs, b, d, inner);
        let q_next_target = self.q_target.forward(next_obs.clone());
        let q_next = if cfg.double_q {
            let best = self.policy.forward(next_obs).argmax(1);
            q_next_target.gather(1, best)
        } else {
            q_next_target.max_dim(1)
        }
        .reshape([b]);
        let not_done = vector(&batch.terminated, inner).neg() + 1.0;
        let target = vector(&batch.rewards, inner) + not_done * q_next.mul_scalar(cfg.gamma);

        let q = self.q.take().ok_or_else(|| RlError::Checkpoint {
            path: Default::default(),
            reason: "learner left without parameters by an earlier failed update".into(),
        })?;
        let actions: Vec<i64> = batch.actions.iter().map(|&a| a as i64).collect();
        let actions = Tensor::<2, Int>::from_data(TensorData::new(actions, [b, 1]), dev);
        let q_sa = q
            .forward(matrix(&batch.obs, b, d, dev))
            .gather(1, actions)
            .reshape([b]);
        debug_assert!(n >= 1);
        let q_mean = q_sa.clone().mean().detach();
        let loss = huber_loss(q_sa - target.autodiff(), cfg.huber_delta);
        let diag = to_host(Tensor::cat(
            vec![loss.clone().detach().reshape([1]), q_mean.reshape([1])],
            0,
        ));
        let grads = GradientsParams::from_grads(loss.backward(), &q);
        let (grads, norm) = clip_grad_norm(&q, grads, cfg.max_grad_norm);
        let q = self.optim.step(cfg.learning_rate, q, grads);
        self.policy = q.valid();
        self.q = Some(q);
        self.gradient_steps += 1;
        Ok(DqnStats {
            loss: f64::from(diag[0]),
            q_value: f64::from(diag[1]),
            grad_norm: norm,
            epsilon: self.epsilon,
        })
    }

    /// The greedy action if `deterministic`, else epsilon-greedy with the current epsilon.
    pub fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        let greedy = self.greedy(obs)?;
        let a = if !deterministic && self.action_rng.random::<f64>() < self.epsilon {
            self.action_rng.random_range(0..self.n_actions)
        } else {
            greedy
        };
        Ok(Action::Discrete(self.start + a as i64))
    }

    /// Greedy evaluation: `episodes` episodes of a fresh `env_id`, episode `k` seeded
    /// `seed + k`; returns each episode's return.
    pub fn evaluate(&mut self, episodes: usize, seed: u64) -> Result<Vec<f64>> {
        let mut env = kiln_envs::make(&self.env_id)?;
        evaluate_episodes(&mut env, episodes, seed, |obs| self.predict(obs, true))
    }

    /// Writes both networks to `<stem>.safetensors` and the config, env id, seed and step
    /// count to `<stem>.json` (no replay buffer, no Adam moments).
    pub fn save(&self, stem: &Path) -> Result<()> {
        let nets = DqnNets {
            q: self.policy.clone(),
            q_target: self.q_target.clone(),
        };
        let meta = DqnCheckpoint {
            algo: "dqn".into(),
            env_id: self.env_id.clone(),
            seed: self.seed,
            obs_dim: self.obs_dim,
            n_actions: self.n_actions,
            start: self.start,
            global_step: self.global_step,
            config: self.config.clone(),
        };
        save_checkpoint(&nets, &meta, stem)?;
        Ok(())
    }

    /// Loads a learner saved by [`Dqn::save`] onto `device`.
    pub fn load_with_device(stem: &Path, device: Device) -> Result<Self> {
        let meta: DqnCheckpoint = load_checkpoint_config(stem)?;
        if meta.algo != "dqn" {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!("saved by `{}`, not by DQN", meta.algo),
            });
        }
        let mut dqn = Self::with_device(meta.config, &meta.env_id, meta.seed, device)?;
        if dqn.obs_dim != meta.obs_dim || dqn.n_actions != meta.n_actions {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!(
                    "the spaces of {} changed since the checkpoint was written",
                    meta.env_id
                ),
            });
        }
        let nets = DqnNets {
            q: dqn.q.take().ok_or_else(|| RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: "learner has no parameters".into(),
            })?,
            q_target: dqn.q_target.clone(),
        };
        let nets = load_checkpoint(nets, stem)?;
        dqn.policy = nets.q.valid();
        dqn.q_target = nets.q_target.valid();
        dqn.q = Some(nets.q);
        dqn.global_step = meta.global_step;
        dqn.epsilon = dqn.config.exploration_final_eps;
        Ok(dqn)
    }
}
