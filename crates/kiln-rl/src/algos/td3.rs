//! Twin Delayed DDPG (Fujimoto, van Hoof, Meger 2018, "Addressing Function Approximation
//! Error in Actor-Critic Methods", ICML), with the behaviour and defaults of
//! Stable-Baselines3's `TD3`.
//!
//! Each gradient step on a replay minibatch `(s, a, r, s', d)` (Algorithm 1):
//! 1. **Target policy smoothing** (eq. 14): `a~ = clip(mu'(s') + clip(eps, -c, c), -1, 1)`,
//!    `eps ~ N(0, sigma~^2)`.
//! 2. **Clipped double-Q target** (eq. 10): `y = r + gamma (1 - d) min_j Q'_j(s', a~)`.
//! 3. **Critic loss**: `sum_j mean (Q_j(s, a) - y)^2`, one Adam step.
//! 4. **Delayed policy update** (sec. 5.2): every `policy_delay` gradient steps, the
//!    deterministic policy gradient step on `-mean Q_1(s, mu(s))` (eq. 6 of Silver et al.
//!    2014), then Polyak updates of the target actor and target critics
//!    (`theta' <- tau theta + (1 - tau) theta'`).
//!
//! Exploration adds Gaussian noise `N(0, exploration_noise^2)` to `mu(s)` in the networks'
//! `[-1, 1]` action space and clips (SB3's `NormalActionNoise`); the first
//! `learning_starts` steps take uniform random actions. The twin critics are one
//! [`EnsembleMlp`].

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use kiln_envs::Action;
use kiln_tensor::{
    AdamSettings, EnsembleMlp, EnsembleMlpConfig, Mlp, MlpConfig, MlpInit, Seeds, load_checkpoint,
    load_checkpoint_config, polyak_update, save_checkpoint,
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::callback::Callback;
use crate::error::{Result, RlError};
use crate::eval::evaluate_episodes;
use crate::off_policy::{
    ActionBox, INIT_LOCK, OffPolicyEnv, check_obs, fill_normal, invalid, matrix, report,
    standard_normal, take, to_host, validate_common, vector,
};
use crate::replay::{ReplayBatch, ReplayBuffer};

/// TD3 hyperparameters. [`Default`] is Stable-Baselines3's `TD3` default; [`Td3Config::pendulum`]
/// is the rl-baselines3-zoo Pendulum-v1 setting. Unknown JSON keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Td3Config {
    /// Adam learning rate of actor and critics (1e-3).
    pub learning_rate: f64,
    /// Replay capacity (1e6).
    pub buffer_size: usize,
    /// Env steps with uniform random actions before learning starts (100).
    pub learning_starts: u64,
    /// Minibatch size (256).
    pub batch_size: usize,
    /// Polyak coefficient of the targets (0.005).
    pub tau: f64,
    /// Discount gamma (0.99).
    pub gamma: f64,
    /// Env steps between training phases (1).
    pub train_freq: u64,
    /// Gradient steps per training phase (1).
    pub gradient_steps: usize,
    /// Critic steps per actor and target update `d` (2).
    pub policy_delay: usize,
    /// Target policy smoothing noise `sigma~` (0.2), eq. (14).
    pub target_policy_noise: f64,
    /// Clip `c` of the smoothing noise (0.5), eq. (14).
    pub target_noise_clip: f64,
    /// Std of the Gaussian exploration noise in `[-1, 1]` units (0.1).
    pub exploration_noise: f64,
    /// Hidden widths of actor and critics ([400, 300], ReLU).
    pub hidden_sizes: Vec<usize>,
}

impl Default for Td3Config {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            buffer_size: 1_000_000,
            learning_starts: 100,
            batch_size: 256,
            tau: 0.005,
            gamma: 0.99,
            train_freq: 1,
            gradient_steps: 1,
            policy_delay: 2,
            target_policy_noise: 0.2,
            target_noise_clip: 0.5,
            exploration_noise: 0.1,
            hidden_sizes: vec![400, 300],
        }
    }
}

impl Td3Config {
    /// rl-baselines3-zoo's `Pendulum-v1` setting: gamma 0.98, buffer 2e5, 10k warm-up steps,
    /// exploration noise 0.1, learning rate 1e-3, networks [400, 300].
    pub fn pendulum() -> Self {
        Self {
            gamma: 0.98,
            buffer_size: 200_000,
            learning_starts: 10_000,
            ..Self::default()
        }
    }

    /// The default for an env id: the zoo setting where there is one, else SB3's defaults.
    pub fn default_for(env_id: &str) -> Self {
        match env_id {
            "Pendulum-v1" => Self::pendulum(),
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
        if self.policy_delay == 0 {
            return Err(invalid(
                "policy_delay",
                self.policy_delay,
                "must be at least 1",
            ));
        }
        for (field, v) in [
            ("target_policy_noise", self.target_policy_noise),
            ("target_noise_clip", self.target_noise_clip),
            ("exploration_noise", self.exploration_noise),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(field, v, "must be non-negative"));
            }
        }
        Ok(())
    }
}

/// The four networks of TD3.
#[derive(Module, Debug)]
pub struct Td3Nets {
    /// Deterministic policy `mu(s)` before its tanh, `obs -> A`.
    pub actor: Mlp,
    /// Target policy.
    pub actor_target: Mlp,
    /// Twin critics, `[obs, action] -> 1`.
    pub critic: EnsembleMlp,
    /// Target critics.
    pub critic_target: EnsembleMlp,
}

/// Diagnostics of the last gradient step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Td3Stats {
    /// Critic loss.
    pub critic_loss: f64,
    /// `-mean Q_1(s, mu(s))` at the last delayed actor step.
    pub actor_loss: f64,
    /// Mean `Q_1(s, a)` of the minibatch.
    pub q_value: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Td3Checkpoint {
    algo: String,
    env_id: String,
    seed: u64,
    obs_dim: usize,
    action_box: ActionBox,
    global_step: u64,
    config: Td3Config,
}

/// A TD3 learner: `new`, `learn`, `predict`, `save`/`load`, as in Stable-Baselines3.
pub struct Td3 {
    config: Td3Config,
    env_id: String,
    seed: u64,
    device: Device,
    train_device: Device,
    obs_dim: usize,
    action_box: ActionBox,
    actor: Option<Mlp>,
    critic: Option<EnsembleMlp>,
    /// Targets and the acting copy, without autodiff.
    actor_target: Mlp,
    critic_target: EnsembleMlp,
    policy: Mlp,
    actor_optim: ModuleOptimizer,
    critic_optim: ModuleOptimizer,
    env: OffPolicyEnv,
    buffer: ReplayBuffer,
    batch: ReplayBatch,
    action_rng: StdRng,
    batch_rng: StdRng,
    noise_rng: StdRng,
    global_step: u64,
    gradient_steps: u64,
    recent_returns: Vec<f64>,
    noise: Vec<f32>,
    last_actor_loss: f64,
}

impl std::fmt::Debug for Td3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Td3")
            .field("env_id", &self.env_id)
            .field("seed", &self.seed)
            .field("global_step", &self.global_step)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Td3 {
    /// A learner for the registered env `env_id` on the default device.
    pub fn new(config: Td3Config, env_id: &str, seed: u64) -> Result<Self> {
        let device = kiln_tensor::select_device()?.device;
        Self::with_device(config, env_id, seed, device)
    }

    /// A learner on a given device (training uses its autodiff twin).
    pub fn with_device(config: Td3Config, env_id: &str, seed: u64, device: Device) -> Result<Self> {
        config.validate()?;
        let env = OffPolicyEnv::new(env_id, seed)?;
        let obs_dim = env.obs_dim("TD3")?;
        let action_box = ActionBox::for_space(env.id(), env.action_space(), "TD3")?;
        let a = action_box.dim();
        let seeds = Seeds::new(seed);
        let train_device = device.clone().autodiff();
        let widths = |input: usize, out: usize| {
            let mut s = vec![input];
            s.extend_from_slice(&config.hidden_sizes);
            s.push(out);
            s
        };
        let (actor, critic) = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            seeds.seed_device(&train_device);
            let actor = MlpConfig::new(widths(obs_dim, a))
                .with_init(MlpInit::Default)
                .init(&train_device)?;
            let critic = EnsembleMlpConfig::new(2, widths(obs_dim + a, 1)).init(&train_device)?;
            // burn draws parameters lazily: draw them now, under the lock.
            kiln_tensor::materialize(&actor);
            kiln_tensor::materialize(&critic);
            (actor, critic)
        };
        let adam = AdamSettings::default().build()?;
        Ok(Self {
            policy: actor.valid(),
            actor_target: actor.valid(),
            critic_target: critic.valid(),
            actor: Some(actor),
            critic: Some(critic),
            actor_optim: adam.clone(),
            critic_optim: adam,
            buffer: ReplayBuffer::new(config.buffer_size, obs_dim, a),
            batch: ReplayBatch::default(),
            action_rng: seeds.stream("action"),
            batch_rng: seeds.stream("minibatch"),
            noise_rng: seeds.stream("noise"),
            global_step: 0,
            gradient_steps: 0,
            recent_returns: Vec::new(),
            noise: vec![0.0; config.batch_size * a],
            last_actor_loss: 0.0,
            env,
            config,
            env_id: env_id.to_string(),
            seed,
            device,
            train_device,
            obs_dim,
            action_box,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &Td3Config {
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

    /// Trains for `total_steps` further environment steps, reporting to `callback` at the end
    /// of every episode (and at the end); stops early when it returns `false`.
    pub fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<Td3Stats> {
        let a = self.action_box.dim();
        let mut scaled = vec![0.0f32; a];
        let mut env_action = Action::Continuous(vec![0.0; a]);
        let mut stats = Td3Stats::default();
        let start = Instant::now();
        let start_step = self.global_step;
        let end = self.global_step + total_steps;
        let mut last_report = self.global_step;
        while self.global_step < end {
            if self.global_step < self.config.learning_starts {
                self.action_box
                    .sample_scaled(&mut self.action_rng, &mut scaled);
            } else {
                let obs = self.env.obs()?.to_vec();
                self.policy_action(&obs, &mut scaled)?;
                for v in scaled.iter_mut() {
                    let noise =
                        self.config.exploration_noise * standard_normal(&mut self.action_rng);
                    *v = (f64::from(*v) + noise).clamp(-1.0, 1.0) as f32;
                }
            }
            self.action_box.unscale_into(&scaled, &mut env_action);
            self.env.step(&env_action, &scaled, &mut self.buffer)?;
            self.global_step += 1;
            let finished = self.env.take_returns();
            let ended = !finished.is_empty();
            self.recent_returns.extend(finished);
            if self.global_step > self.config.learning_starts
                && self.global_step.is_multiple_of(self.config.train_freq)
            {
                for _ in 0..self.config.gradient_steps {
                    stats = self.gradient_step()?;
                }
            }
            if (ended || self.global_step == end) && self.global_step > last_report {
                last_report = self.global_step;
                let metrics: Vec<(&str, f64)> = vec![
                    ("losses/qf_loss", stats.critic_loss),
                    ("losses/actor_loss", stats.actor_loss),
                    ("losses/qf1_values", stats.q_value),
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

    /// `tanh(mu(s))` for one observation, in `[-1, 1]`.
    fn policy_action(&self, obs: &[f64], out: &mut [f32]) -> Result<()> {
        let x = check_obs(obs, self.obs_dim)?;
        let row = to_host(
            self.policy
                .forward(matrix(&x, 1, self.obs_dim, &self.device))
                .tanh(),
        );
        out.copy_from_slice(&row);
        Ok(())
    }

    /// One gradient step, steps 1-4 of the module docs.
    fn gradient_step(&mut self) -> Result<Td3Stats> {
        let cfg = &self.config;
        let (b, d, a) = (cfg.batch_size, self.obs_dim, self.action_box.dim());
        if !self
            .buffer
            .sample_into(&mut self.batch_rng, b, &mut self.batch)
        {
            return Ok(Td3Stats::default());
        }
        fill_normal(&mut self.noise_rng, &mut self.noise);
        let clip = cfg.target_noise_clip;
        for v in self.noise.iter_mut() {
            *v = (f64::from(*v) * cfg.target_policy_noise).clamp(-clip, clip) as f32;
        }
        let (dev, inner) = (&self.train_device, &self.device);
        let batch = &self.batch;

        // Steps 1-2: smoothed target action and clipped double-Q target, no graph.
        let next_obs = matrix(&batch.next_obs, b, d, inner);
        let next_action = (self.actor_target.forward(next_obs.clone()).tanh()
            + matrix(&self.noise, b, a, inner))
        .clamp(-1.0, 1.0);
        let q_next = self
            .critic_target
            .forward_shared(Tensor::cat(vec![next_obs, next_action], 1))
            .min_dim(0)
            .reshape([b]);
        let not_done = vector(&batch.terminated, inner).neg() + 1.0;
        let target = vector(&batch.rewards, inner) + not_done * q_next.mul_scalar(cfg.gamma);

        // Step 3: critic regression.
        let obs = matrix(&batch.obs, b, d, dev);
        let actions = matrix(&batch.actions, b, a, dev);
        let critic = take(&mut self.critic)?;
        let q = critic
            .forward_shared(Tensor::cat(vec![obs.clone(), actions], 1))
            .reshape([2, b]);
        let q1_mean = q.clone().narrow(0, 0, 1).mean().detach();
        let critic_loss = (q - target.reshape([1, b]).autodiff())
            .powi_scalar(2)
            .mean_dim(1)
            .sum();
        let diag = to_host(Tensor::cat(
            vec![
                critic_loss.clone().detach().reshape([1]),
                q1_mean.reshape([1]),
            ],
            0,
        ));
        let grads = GradientsParams::from_grads(critic_loss.backward(), &critic);
        let critic = self.critic_optim.step(cfg.learning_rate, critic, grads);
        self.gradient_steps += 1;

        // Step 4: delayed deterministic policy gradient and target updates.
        if self.gradient_steps.is_multiple_of(cfg.policy_delay as u64) {
            let actor = take(&mut self.actor)?;
            let mu = actor.forward(obs.clone()).tanh();
            let q1 = critic
                .clone()
                .no_grad()
                .forward_shared(Tensor::cat(vec![obs, mu], 1))
                .narrow(0, 0, 1)
                .reshape([b]);
            let actor_loss = q1.mean().neg();
            self.last_actor_loss = f64::from(to_host(actor_loss.clone().detach())[0]);
            let grads = GradientsParams::from_grads(actor_loss.backward(), &actor);
            let actor = self.actor_optim.step(cfg.learning_rate, actor, grads);
            let target = std::mem::replace(&mut self.critic_target, critic.valid());
            self.critic_target = polyak_update(target, &critic, cfg.tau);
            let target = std::mem::replace(&mut self.actor_target, actor.valid());
            self.actor_target = polyak_update(target, &actor, cfg.tau);
            self.policy = actor.valid();
            self.actor = Some(actor);
        }
        self.critic = Some(critic);
        Ok(Td3Stats {
            critic_loss: f64::from(diag[0]),
            actor_loss: self.last_actor_loss,
            q_value: f64::from(diag[1]),
        })
    }

    /// The action for one observation: `tanh(mu(s))` mapped into the env's box; with
    /// `deterministic == false` the exploration noise is added first.
    pub fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        let mut scaled = vec![0.0f32; self.action_box.dim()];
        self.policy_action(obs, &mut scaled)?;
        if !deterministic {
            for v in scaled.iter_mut() {
                let noise = self.config.exploration_noise * standard_normal(&mut self.action_rng);
                *v = (f64::from(*v) + noise).clamp(-1.0, 1.0) as f32;
            }
        }
        let mut action = Action::Continuous(Vec::new());
        self.action_box.unscale_into(&scaled, &mut action);
        Ok(action)
    }

    /// Deterministic evaluation: `episodes` episodes of a fresh `env_id`, episode `k` seeded
    /// `seed + k`; returns each episode's return.
    pub fn evaluate(&mut self, episodes: usize, seed: u64) -> Result<Vec<f64>> {
        let mut env = kiln_envs::make(&self.env_id)?;
        evaluate_episodes(&mut env, episodes, seed, |obs| self.predict(obs, true))
    }

    /// Writes the four networks to `<stem>.safetensors` and the config, env id, seed and step
    /// count to `<stem>.json` (no replay buffer, no Adam moments).
    pub fn save(&self, stem: &Path) -> Result<()> {
        let nets = Td3Nets {
            actor: self.policy.clone(),
            actor_target: self.actor_target.clone(),
            critic: self
                .critic
                .as_ref()
                .map(|c| c.valid())
                .unwrap_or_else(|| self.critic_target.clone()),
            critic_target: self.critic_target.clone(),
        };
        let meta = Td3Checkpoint {
            algo: "td3".into(),
            env_id: self.env_id.clone(),
            seed: self.seed,
            obs_dim: self.obs_dim,
            action_box: self.action_box.clone(),
            global_step: self.global_step,
            config: self.config.clone(),
        };
        save_checkpoint(&nets, &meta, stem)?;
        Ok(())
    }

    /// Loads a learner saved by [`Td3::save`] onto `device`.
    pub fn load_with_device(stem: &Path, device: Device) -> Result<Self> {
        let meta: Td3Checkpoint = load_checkpoint_config(stem)?;
        if meta.algo != "td3" {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!("saved by `{}`, not by TD3", meta.algo),
            });
        }
        let mut td3 = Self::with_device(meta.config, &meta.env_id, meta.seed, device)?;
        if td3.obs_dim != meta.obs_dim || td3.action_box != meta.action_box {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!(
                    "the spaces of {} changed since the checkpoint was written",
                    meta.env_id
                ),
            });
        }
        let nets = Td3Nets {
            actor: take(&mut td3.actor)?,
            actor_target: td3.actor_target.clone(),
            critic: take(&mut td3.critic)?,
            critic_target: td3.critic_target.clone(),
        };
        let nets = load_checkpoint(nets, stem)?;
        td3.policy = nets.actor.valid();
        td3.actor_target = nets.actor_target.valid();
        td3.critic_target = nets.critic_target.valid();
        td3.actor = Some(nets.actor);
        td3.critic = Some(nets.critic);
        td3.global_step = meta.global_step;
        Ok(td3)
    }
}
