//! Soft Actor-Critic (Haarnoja, Zhou, Hartikainen, Tucker, Ha, Tan, Kumar, Zhu, Gupta,
//! Abbeel, Levine 2018, "Soft Actor-Critic Algorithms and Applications", arXiv 1812.05905),
//! with the twin critics and automatic entropy temperature of that paper and the behaviour and
//! defaults of Stable-Baselines3's `SAC`.
//!
//! One gradient step on a replay minibatch `(s, a, r, s', d)`, in the paper's order
//! (Algorithm 1):
//! 1. **Critic target** (eqs. 3 and 5, with the clipped double-Q of sec. 5):
//!    `y = r + gamma (1 - d) (min_j Qbar_j(s', a') - alpha log pi(a'|s'))`, `a' ~ pi(.|s')`.
//! 2. **Critic loss** (eq. 5): `J_Q = 1/2 sum_j mean (Q_j(s, a) - y)^2`, one Adam step.
//! 3. **Actor loss** (eq. 7, reparameterized as in eq. 9 with eq. 8's `a~ = f(eps; s)`):
//!    `J_pi = mean (alpha log pi(a~|s) - min_j Q_j(s, a~))`, `a~ = tanh(mu + sigma eps)`,
//!    through the critics just updated; one Adam step on the actor.
//! 4. **Temperature** (eq. 18): `J(alpha) = -mean log alpha (log pi(a~|s) + Hbar)` with target
//!    entropy `Hbar = -dim(A)`; one Adam step on `log alpha`. The alpha used in steps 1 and 3
//!    is the value before this step (as in SB3).
//! 5. **Targets**: Polyak averaging `Qbar <- (1 - tau) Qbar + tau Q` (the exponentially moving
//!    average target network of eqs. 5-6).
//!
//! The twin critics are one [`EnsembleMlp`] (both members evaluated by one batched matmul per
//! layer). The policy is a [`TanhGaussian`] whose log-std is clamped to `[-20, 2]` (SB3); the
//! networks act in `[-1, 1]` and the env sees the affine image in its action box. Noise is
//! drawn on the host from the run's seeded streams, so a seed gives the same run on every
//! backend.
//!
//! Two engines run the gradient step ([`SacEngine`]): burn (autodiff on any backend, the path
//! for GPUs) and the host engine of [`kiln_tensor::host`] (the default on a CPU device), which
//! does the same step with a hand-written gradient on preallocated buffers and runs the twin
//! critics on two threads ([`host`]). Both start from the same burn initialization; with the
//! host engine the burn networks are refreshed from the host weights at the end of every
//! [`Sac::learn`], so checkpoints and `kiln eval` see the trained weights, and acting uses the
//! host actor.

mod host;

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use kiln_envs::Action;
use kiln_tensor::{
    AdamSettings, EnsembleMlp, EnsembleMlpConfig, Mlp, MlpConfig, MlpInit, Seeds, TanhGaussian,
    load_checkpoint, load_checkpoint_config, polyak_update, save_checkpoint,
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::callback::Callback;
use crate::error::{Result, RlError};
use crate::eval::evaluate_episodes;
use crate::off_policy::{
    ActionBox, INIT_LOCK, OffPolicyEnv, check_obs, fill_normal, invalid, matrix, report, take,
    to_host, validate_common, vector,
};
use crate::replay::{ReplayBatch, ReplayBuffer};

/// SB3's bounds on the actor's log standard deviation.
const LOG_STD_MIN: f64 = -20.0;
const LOG_STD_MAX: f64 = 2.0;

/// SAC hyperparameters. [`Default`] is Stable-Baselines3's `SAC` default; [`SacConfig::pendulum`]
/// is the rl-baselines3-zoo Pendulum-v1 setting. Unknown JSON keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacConfig {
    /// Adam learning rate of actor, critics and temperature (3e-4).
    pub learning_rate: f64,
    /// Replay capacity (1e6).
    pub buffer_size: usize,
    /// Env steps with uniform random actions before learning starts (100).
    pub learning_starts: u64,
    /// Minibatch size (256).
    pub batch_size: usize,
    /// Polyak coefficient of the target critics (0.005).
    pub tau: f64,
    /// Discount gamma (0.99).
    pub gamma: f64,
    /// Env steps between training phases (1).
    pub train_freq: u64,
    /// Gradient steps per training phase (1).
    pub gradient_steps: usize,
    /// Gradient steps between target updates (1).
    pub target_update_interval: usize,
    /// Initial temperature alpha (1.0); learned when `autotune` is on.
    pub init_alpha: f64,
    /// Learn alpha by eq. (18) (true); otherwise alpha stays at `init_alpha`.
    pub autotune: bool,
    /// Target entropy `Hbar` (None: `-dim(A)`).
    pub target_entropy: Option<f64>,
    /// Hidden widths of actor and critics ([256, 256], ReLU).
    pub hidden_sizes: Vec<usize>,
    /// Which engine runs the gradient step: `"auto"` (default: the host engine on a CPU
    /// device, burn otherwise), `"host"` or `"burn"`.
    pub engine: SacEngine,
}

/// The engine that runs SAC's gradient step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SacEngine {
    /// The host engine on a CPU device, burn on any other.
    #[default]
    Auto,
    /// [`kiln_tensor::host`]: fused `f32` forward and hand-written backward on the CPU
    /// (whatever the device), twin critics on two threads.
    Host,
    /// burn's autodiff on the learner's device.
    Burn,
}

impl SacEngine {
    /// Whether the host engine runs on `device`.
    pub fn uses_host(self, device: &Device) -> bool {
        match self {
            SacEngine::Auto => kiln_tensor::is_cpu_device(device),
            SacEngine::Host => true,
            SacEngine::Burn => false,
        }
    }
}

impl Default for SacConfig {
    fn default() -> Self {
        Self {
            learning_rate: 3e-4,
            buffer_size: 1_000_000,
            learning_starts: 100,
            batch_size: 256,
            tau: 0.005,
            gamma: 0.99,
            train_freq: 1,
            gradient_steps: 1,
            target_update_interval: 1,
            init_alpha: 1.0,
            autotune: true,
            target_entropy: None,
            hidden_sizes: vec![256, 256],
            engine: SacEngine::Auto,
        }
    }
}

impl SacConfig {
    /// rl-baselines3-zoo's `Pendulum-v1` setting: SB3 defaults with learning rate 1e-3.
    pub fn pendulum() -> Self {
        Self {
            learning_rate: 1e-3,
            ..Self::default()
        }
    }

    /// The default for an env id: the zoo setting where there is one, else SB3's defaults.
    pub fn default_for(env_id: &str) -> Self {
        match env_id {
            "Pendulum-v1" | "MountainCarContinuous-v0" => Self::pendulum(),
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
        if !(self.init_alpha.is_finite() && self.init_alpha > 0.0) {
            return Err(invalid("init_alpha", self.init_alpha, "must be positive"));
        }
        if let Some(h) = self.target_entropy
            && !h.is_finite()
        {
            return Err(invalid("target_entropy", h, "must be finite"));
        }
        Ok(())
    }
}

/// Actor and twin critics of SAC (the target critics are a copy of `critic`).
#[derive(Module, Debug)]
pub struct SacNets {
    /// `[mu | log sigma]` of the pre-squash Gaussian, `obs -> 2 A`.
    pub actor: Mlp,
    /// Twin critics `Q_1, Q_2`, `[obs, action] -> 1`, one ensemble.
    pub critic: EnsembleMlp,
    /// Target critics.
    pub critic_target: EnsembleMlp,
}

/// Diagnostics of the last gradient step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SacStats {
    /// `J_Q` (eq. 5).
    pub critic_loss: f64,
    /// `J_pi` (eq. 7).
    pub actor_loss: f64,
    /// Temperature alpha used in the step.
    pub alpha: f64,
    /// `J(alpha)` (eq. 18).
    pub alpha_loss: f64,
    /// Mean `log pi(a~|s)` of the minibatch (minus the policy entropy estimate).
    pub log_prob: f64,
    /// Mean `Q_1(s, a)` of the minibatch.
    pub q_value: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SacCheckpoint {
    algo: String,
    env_id: String,
    seed: u64,
    obs_dim: usize,
    action_box: ActionBox,
    global_step: u64,
    log_alpha: f64,
    config: SacConfig,
}

/// Adam on one scalar (the temperature's `log alpha`), on the host: the same update as
/// PyTorch's Adam with its defaults.
#[derive(Debug, Clone, Copy, Default)]
struct ScalarAdam {
    m: f64,
    v: f64,
    t: i32,
}

impl ScalarAdam {
    fn step(&mut self, x: f64, grad: f64, lr: f64) -> f64 {
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        self.t += 1;
        self.m = b1 * self.m + (1.0 - b1) * grad;
        self.v = b2 * self.v + (1.0 - b2) * grad * grad;
        let m_hat = self.m / (1.0 - b1.powi(self.t));
        let v_hat = self.v / (1.0 - b2.powi(self.t));
        x - lr * m_hat / (v_hat.sqrt() + eps)
    }
}

/// A SAC learner: `new`, `learn`, `predict`, `save`/`load`, as in Stable-Baselines3.
pub struct Sac {
    config: SacConfig,
    env_id: String,
    seed: u64,
    device: Device,
    train_device: Device,
    obs_dim: usize,
    action_box: ActionBox,
    /// `None` only transiently, while an optimizer consumes and returns it.
    actor: Option<Mlp>,
    critic: Option<EnsembleMlp>,
    /// Without autodiff.
    critic_target: EnsembleMlp,
    /// A copy of `actor` without autodiff, refreshed after every actor step (with the host
    /// engine: at the end of every `learn`).
    policy: Mlp,
    /// The host engine's networks and Adam states, when it runs the gradient step.
    host: Option<host::HostSac>,
    actor_optim: ModuleOptimizer,
    critic_optim: ModuleOptimizer,
    log_alpha: f64,
    alpha_optim: ScalarAdam,
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
    next_noise: Vec<f32>,
}

impl std::fmt::Debug for Sac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sac")
            .field("env_id", &self.env_id)
            .field("seed", &self.seed)
            .field("global_step", &self.global_step)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Sac {
    /// A learner for the registered env `env_id` on the default device.
    pub fn new(config: SacConfig, env_id: &str, seed: u64) -> Result<Self> {
        let device = kiln_tensor::select_device()?.device;
        Self::with_device(config, env_id, seed, device)
    }

    /// A learner on a given device (training uses its autodiff twin).
    pub fn with_device(config: SacConfig, env_id: &str, seed: u64, device: Device) -> Result<Self> {
        config.validate()?;
        let env = OffPolicyEnv::new(env_id, seed)?;
        let obs_dim = env.obs_dim("SAC")?;
        let action_box = ActionBox::for_space(env.id(), env.action_space(), "SAC")?;
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
            let actor = MlpConfig::new(widths(obs_dim, 2 * a))
                .with_init(MlpInit::Default)
                .init(&train_device)?;
            let critic = EnsembleMlpConfig::new(2, widths(obs_dim + a, 1)).init(&train_device)?;
            // burn draws parameters lazily: draw them now, under the lock.
            kiln_tensor::materialize(&actor);
            kiln_tensor::materialize(&critic);
            (actor, critic)
        };
        let settings = AdamSettings::default();
        let adam = settings.build()?;
        let critic_target = critic.valid();
        let host = if config.engine.uses_host(&device) {
            Some(host::HostSac::new(
                &actor,
                &critic,
                &critic_target,
                &settings,
                config.batch_size,
            )?)
        } else {
            None
        };
        Ok(Self {
            policy: actor.valid(),
            critic_target,
            host,
            actor: Some(actor),
            critic: Some(critic),
            actor_optim: adam.clone(),
            critic_optim: adam,
            log_alpha: config.init_alpha.ln(),
            alpha_optim: ScalarAdam::default(),
            buffer: ReplayBuffer::new(config.buffer_size, obs_dim, a),
            batch: ReplayBatch::default(),
            action_rng: seeds.stream("action"),
            batch_rng: seeds.stream("minibatch"),
            noise_rng: seeds.stream("noise"),
            global_step: 0,
            gradient_steps: 0,
            recent_returns: Vec::new(),
            noise: vec![0.0; config.batch_size * a],
            next_noise: vec![0.0; config.batch_size * a],
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
    pub fn config(&self) -> &SacConfig {
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

    /// Gradient steps taken so far.
    pub fn gradient_steps(&self) -> u64 {
        self.gradient_steps
    }

    /// The current temperature alpha.
    pub fn alpha(&self) -> f64 {
        self.log_alpha.exp()
    }

    /// Trains for `total_steps` further environment steps, reporting to `callback` after
    /// every training phase that ends an episode (and at the end); stops early when it
    /// returns `false`.
    pub fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<SacStats> {
        let stats = self.learn_steps(total_steps, callback);
        let synced = self.sync_burn();
        let stats = stats?;
        synced?;
        Ok(stats)
    }

    /// With the host engine, writes the host weights into the burn networks (the acting
    /// copy, the trained actor and critics, the target critics).
    fn sync_burn(&mut self) -> Result<()> {
        let Some(h) = &self.host else {
            return Ok(());
        };
        let (actor, critic, target) = h.write_into(
            take(&mut self.actor)?,
            take(&mut self.critic)?,
            self.critic_target.clone(),
        )?;
        self.policy = actor.valid();
        self.critic_target = target;
        self.actor = Some(actor);
        self.critic = Some(critic);
        Ok(())
    }

    fn learn_steps(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<SacStats> {
        let a = self.action_box.dim();
        let mut scaled = vec![0.0f32; a];
        let mut env_action = Action::Continuous(vec![0.0; a]);
        let mut stats = SacStats::default();
        let start = Instant::now();
        let start_step = self.global_step;
        let end = self.global_step + total_steps;
        let mut last_report = self.global_step;
        while self.global_step < end {
            // SB3: uniform actions from the box until `learning_starts`, then pi's samples.
            if self.global_step < self.config.learning_starts {
                self.action_box
                    .sample_scaled(&mut self.action_rng, &mut scaled);
            } else {
                let obs = self.env.obs()?.to_vec();
                self.policy_action(&obs, false, &mut scaled)?;
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
                    ("losses/alpha", stats.alpha),
                    ("losses/alpha_loss", stats.alpha_loss),
                    ("losses/log_prob", stats.log_prob),
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

    /// `tanh(mu)` (deterministic) or `tanh(mu + sigma eps)` for one observation, in `[-1, 1]`.
    fn policy_action(&mut self, obs: &[f64], deterministic: bool, out: &mut [f32]) -> Result<()> {
        let a = self.action_box.dim();
        let x = check_obs(obs, self.obs_dim)?;
        let burn_row;
        let row = match self.host.as_mut() {
            Some(h) => h.act(&x)?,
            None => {
                burn_row = to_host(
                    self.policy
                        .forward(matrix(&x, 1, self.obs_dim, &self.device)),
                );
                &burn_row
            }
        };
        for j in 0..a {
            let mu = f64::from(row[j]);
            let u = if deterministic {
                mu
            } else {
                let log_std = f64::from(row[a + j]).clamp(LOG_STD_MIN, LOG_STD_MAX);
                mu + log_std.exp() * crate::off_policy::standard_normal(&mut self.action_rng)
            };
            out[j] = u.tanh() as f32;
        }
        Ok(())
    }

    /// The squashed Gaussian of actor output `[B, 2A]`.
    fn dist(out: Tensor<2>, a: usize) -> TanhGaussian {
        let mean = out.clone().narrow(1, 0, a);
        let log_std = out.narrow(1, a, a).clamp(LOG_STD_MIN, LOG_STD_MAX);
        TanhGaussian::new(mean, log_std)
    }

    /// One gradient step, steps 1-5 of the module docs, on the engine in use.
    fn gradient_step(&mut self) -> Result<SacStats> {
        let (b, a) = (self.config.batch_size, self.action_box.dim());
        if !self
            .buffer
            .sample_into(&mut self.batch_rng, b, &mut self.batch)
        {
            return Ok(SacStats::default());
        }
        fill_normal(&mut self.noise_rng, &mut self.noise);
        fill_normal(&mut self.noise_rng, &mut self.next_noise);
        let alpha = self.log_alpha.exp();
        let target_entropy = self.config.target_entropy.unwrap_or(-(a as f64));
        let update_target =
            (self.gradient_steps + 1).is_multiple_of(self.config.target_update_interval as u64);
        let values = match self.host.as_mut() {
            Some(h) => {
                let batch = &self.batch;
                h.gradient_step(
                    &host::Minibatch {
                        obs: &batch.obs,
                        actions: &batch.actions,
                        rewards: &batch.rewards,
                        next_obs: &batch.next_obs,
                        terminated: &batch.terminated,
                        noise: &self.noise,
                        next_noise: &self.next_noise,
                    },
                    host::StepCoefs {
                        alpha,
                        gamma: self.config.gamma,
                        lr: self.config.learning_rate,
                        polyak: update_target.then_some(self.config.tau),
                    },
                )?
            }
            None => self.burn_step(alpha, update_target)?,
        };

        // Step 4 (eq. 18): d J(alpha) / d log alpha = -(mean log pi + Hbar).
        let mean_log_prob = values.mean_log_prob;
        let alpha_loss = -self.log_alpha * (mean_log_prob + target_entropy);
        if self.config.autotune {
            let grad = -(mean_log_prob + target_entropy);
            self.log_alpha = self
                .alpha_optim
                .step(self.log_alpha, grad, self.config.learning_rate);
        }
        self.gradient_steps += 1;
        Ok(SacStats {
            critic_loss: values.critic_loss,
            actor_loss: values.actor_loss,
            alpha,
            alpha_loss,
            log_prob: mean_log_prob,
            q_value: values.q1_mean,
        })
    }

    /// Steps 1-3 and 5 on burn autodiff, on the minibatch and noise already drawn.
    fn burn_step(&mut self, alpha: f64, update_target: bool) -> Result<host::StepValues> {
        let cfg = &self.config;
        let (b, d, a) = (cfg.batch_size, self.obs_dim, self.action_box.dim());
        let (dev, inner) = (&self.train_device, &self.device);
        let batch = &self.batch;

        // Step 1: y = r + gamma (1 - d) (min_j Qbar_j(s', a') - alpha log pi(a'|s')), no graph.
        let next_obs = matrix(&batch.next_obs, b, d, inner);
        let next_dist = Self::dist(self.policy.forward(next_obs.clone()), a);
        let next = next_dist.sample_with_noise(matrix(&self.next_noise, b, a, inner));
        let next_log_prob = next_dist.log_prob_pre_tanh(next.pre_tanh);
        let q_next = self
            .critic_target
            .forward_shared(Tensor::cat(vec![next_obs, next.action], 1))
            .min_dim(0)
            .reshape([b]);
        let not_done = vector(&batch.terminated, inner).neg() + 1.0;
        let target = vector(&batch.rewards, inner)
            + not_done * (q_next - next_log_prob.mul_scalar(alpha)).mul_scalar(cfg.gamma);

        // Step 2: J_Q = 1/2 sum_j mean (Q_j(s, a) - y)^2.
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
            .sum()
            .mul_scalar(0.5);
        let critic_loss_value = critic_loss.clone().detach();
        let grads = GradientsParams::from_grads(critic_loss.backward(), &critic);
        let critic = self.critic_optim.step(cfg.learning_rate, critic, grads);

        // Step 3: J_pi = mean (alpha log pi(a~|s) - min_j Q_j(s, a~)), through the new critics
        // (their own parameters take no gradient here).
        let actor = take(&mut self.actor)?;
        let dist = Self::dist(actor.forward(obs.clone()), a);
        let sample = dist.sample_with_noise(matrix(&self.noise, b, a, dev));
        let log_prob = dist.log_prob_pre_tanh(sample.pre_tanh);
        let q_pi = critic
            .clone()
            .no_grad()
            .forward_shared(Tensor::cat(vec![obs, sample.action], 1))
            .min_dim(0)
            .reshape([b]);
        let actor_loss = (log_prob.clone().mul_scalar(alpha) - q_pi).mean();
        let diag = to_host(Tensor::cat(
            vec![
                critic_loss_value.reshape([1]),
                actor_loss.clone().detach().reshape([1]),
                log_prob.detach().mean().reshape([1]),
                q1_mean.reshape([1]),
            ],
            0,
        ));
        let grads = GradientsParams::from_grads(actor_loss.backward(), &actor);
        let actor = self.actor_optim.step(cfg.learning_rate, actor, grads);
        self.policy = actor.valid();
        self.actor = Some(actor);

        // Step 5: Polyak-averaged target critics.
        if update_target {
            let target = std::mem::replace(&mut self.critic_target, critic.valid());
            self.critic_target = polyak_update(target, &critic, cfg.tau);
        }
        self.critic = Some(critic);
        Ok(host::StepValues {
            critic_loss: f64::from(diag[0]),
            actor_loss: f64::from(diag[1]),
            mean_log_prob: f64::from(diag[2]),
            q1_mean: f64::from(diag[3]),
        })
    }

    /// The action for one observation: `tanh(mu)` if `deterministic`, else a sample, mapped
    /// into the env's action box.
    pub fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        let mut scaled = vec![0.0f32; self.action_box.dim()];
        self.policy_action(obs, deterministic, &mut scaled)?;
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

    /// Writes actor, critics and target critics to `<stem>.safetensors` and the config,
    /// temperature, env id, seed and step count to `<stem>.json`. The replay buffer and the
    /// Adam moments are not saved.
    pub fn save(&self, stem: &Path) -> Result<()> {
        let nets = SacNets {
            actor: self.policy.clone(),
            critic: self
                .critic
                .as_ref()
                .map(|c| c.valid())
                .unwrap_or_else(|| self.critic_target.clone()),
            critic_target: self.critic_target.clone(),
        };
        let meta = SacCheckpoint {
            algo: "sac".into(),
            env_id: self.env_id.clone(),
            seed: self.seed,
            obs_dim: self.obs_dim,
            action_box: self.action_box.clone(),
            global_step: self.global_step,
            log_alpha: self.log_alpha,
            config: self.config.clone(),
        };
        save_checkpoint(&nets, &meta, stem)?;
        Ok(())
    }

    /// Loads a learner saved by [`Sac::save`] onto `device`.
    pub fn load_with_device(stem: &Path, device: Device) -> Result<Self> {
        let meta: SacCheckpoint = load_checkpoint_config(stem)?;
        if meta.algo != "sac" {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!("saved by `{}`, not by SAC", meta.algo),
            });
        }
        let mut sac = Self::with_device(meta.config, &meta.env_id, meta.seed, device)?;
        if sac.obs_dim != meta.obs_dim || sac.action_box != meta.action_box {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!(
                    "the spaces of {} changed since the checkpoint was written",
                    meta.env_id
                ),
            });
        }
        let nets = SacNets {
            actor: take(&mut sac.actor)?,
            critic: take(&mut sac.critic)?,
            critic_target: sac.critic_target.clone(),
        };
        let nets = load_checkpoint(nets, stem)?;
        sac.policy = nets.actor.valid();
        sac.critic_target = nets.critic_target.valid();
        sac.actor = Some(nets.actor);
        sac.critic = Some(nets.critic);
        if sac.host.is_some() {
            let (Some(actor), Some(critic)) = (&sac.actor, &sac.critic) else {
                return Err(RlError::Checkpoint {
                    path: stem.to_path_buf(),
                    reason: "learner has no parameters".into(),
                });
            };
            sac.host = Some(host::HostSac::new(
                actor,
                critic,
                &sac.critic_target,
                &AdamSettings::default(),
                sac.config.batch_size,
            )?);
        }
        sac.log_alpha = meta.log_alpha;
        sac.global_step = meta.global_step;
        Ok(sac)
    }
}
