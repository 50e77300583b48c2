//! Proximal Policy Optimization (Schulman, Wolski, Dhariwal, Radford, Klimov 2017,
//! "Proximal Policy Optimization Algorithms"), with the behaviour and defaults of CleanRL's
//! `ppo.py` (discrete actions, categorical policy) and `ppo_continuous_action.py` (Gaussian
//! policy with a state-independent log-std).
//!
//! One iteration, in the order the paper states it (Algorithm 1):
//! 1. **Rollout**: run the current policy `pi_old` for `num_steps` steps in each of
//!    `num_envs` envs, storing observations, actions, `log pi_old(a|s)` and `V(s)`.
//! 2. **Advantages**: GAE(gamma, lambda) (Schulman et al. 2016, eqs. 11-16), bootstrapping
//!    from `V(final observation)` on truncation and from nothing on termination.
//! 3. **Optimize** the combined objective (eq. 9) for `update_epochs` epochs of shuffled
//!    minibatches with Adam: clipped surrogate (eq. 7), clipped value loss, entropy bonus,
//!    global gradient-norm clipping; stop early when the approximate KL exceeds `target_kl`.
//!
//! Sampling happens on the host: one batched forward of actor and critic for all `N` envs
//! per step and one host read of its output, then the action is drawn with the run's
//! `"action"` random stream, so a seed gives the same run on every backend.
//!
//! Two engines run the networks ([`PpoEngine`]): burn (autodiff on any backend, the path for
//! GPUs) and the host engine of [`kiln_tensor::host`] (the default on a CPU device), which
//! runs the rollout's forward passes and the whole update on plain `f32` buffers with a
//! hand-written gradient of the same loss ([`host`]). Both start from the same burn
//! initialization; the burn [`ActorCritic`] is refreshed from the host weights after every
//! update, so checkpoints, [`Ppo::policy`] and evaluation are the same on both.

mod host;

use std::path::Path;
use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln_envs::wrappers::RecordEpisodeStatistics;
use kiln_envs::{Action, Env, Space, VecEnv};
use kiln_tensor::{
    AdamSettings, Categorical, DiagGaussian, Mlp, MlpConfig, MlpInit, Seeds, clip_grad_norm,
    load_checkpoint, load_checkpoint_config, save_checkpoint,
};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::callback::Callback;
use crate::error::{Result, RlError};
use crate::eval::evaluate_episodes;
use crate::off_policy::INIT_LOCK;
use crate::rollout::{RolloutBuffer, explained_variance};

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// PPO hyperparameters. [`Default`] is CleanRL's `ppo.py` (Atari-free classic-control
/// defaults); [`PpoConfig::continuous`] is `ppo_continuous_action.py`; [`PpoConfig::cartpole`]
/// is the rl-baselines3-zoo CartPole-v1 setting. Unknown JSON keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Adam learning rate (CleanRL 2.5e-4).
    pub learning_rate: f64,
    /// Parallel environments `N` (4).
    pub num_envs: usize,
    /// Steps per env per rollout `T` (128); the batch is `N * T`.
    pub num_steps: usize,
    /// Anneal the learning rate linearly to 0 over the iterations of a `learn` call (true).
    pub anneal_lr: bool,
    /// Anneal the clip coefficient linearly to 0 as well (false; SB3 zoo's `lin_0.2`).
    pub anneal_clip: bool,
    /// Discount gamma (0.99).
    pub gamma: f64,
    /// GAE lambda (0.95).
    pub gae_lambda: f64,
    /// Minibatches per epoch (4); must divide the batch `N * T`.
    pub num_minibatches: usize,
    /// Epochs over each rollout `K` (4).
    pub update_epochs: usize,
    /// Normalize advantages per minibatch (true).
    pub norm_adv: bool,
    /// Surrogate clipping epsilon (0.2), eq. (7).
    pub clip_coef: f64,
    /// Clip the value loss around the old values with `clip_coef` (true).
    pub clip_vloss: bool,
    /// Entropy bonus coefficient `c2` in eq. (9) (0.01).
    pub ent_coef: f64,
    /// Value loss coefficient `c1` in eq. (9) (0.5); the value loss is `0.5 * mse`
    /// (CleanRL), so SB3's `vf_coef` corresponds to twice this value.
    pub vf_coef: f64,
    /// Global gradient-norm clip (0.5).
    pub max_grad_norm: f64,
    /// Stop an update's epochs when the approximate KL exceeds this (none).
    pub target_kl: Option<f64>,
    /// Hidden widths of the actor and of the critic ([64, 64], tanh).
    pub hidden_sizes: Vec<usize>,
    /// Adam epsilon (1e-5, CleanRL; PyTorch's default is 1e-8).
    pub adam_eps: f64,
    /// Initial state-independent log standard deviation of a Gaussian policy (0.0).
    pub init_log_std: f64,
    /// Which engine runs the networks: `"auto"` (default: the host engine on a CPU device,
    /// burn otherwise), `"host"` or `"burn"`.
    pub engine: PpoEngine,
}

/// The engine that runs PPO's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PpoEngine {
    /// The host engine on a CPU device, burn on any other.
    #[default]
    Auto,
    /// [`kiln_tensor::host`]: fused `f32` forward and hand-written backward on the CPU
    /// (whatever the device), several times faster than burn at classic-control sizes.
    Host,
    /// burn's autodiff on the learner's device.
    Burn,
}

impl PpoEngine {
    /// Whether the host engine runs on `device`.
    pub fn uses_host(self, device: &Device) -> bool {
        match self {
            PpoEngine::Auto => kiln_tensor::is_cpu_device(device),
            PpoEngine::Host => true,
            PpoEngine::Burn => false,
        }
    }
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2.5e-4,
            num_envs: 4,
            num_steps: 128,
            anneal_lr: true,
            anneal_clip: false,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            hidden_sizes: vec![64, 64],
            adam_eps: 1e-5,
            init_log_std: 0.0,
            engine: PpoEngine::Auto,
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

impl PpoConfig {
    /// CleanRL's `ppo_continuous_action.py` defaults (MuJoCo): lr 3e-4, 1 env x 2048 steps,
    /// 32 minibatches, 10 epochs, no entropy bonus. CleanRL also wraps the env in
    /// observation and reward normalization; this learner does not yet (it steps plain
    /// registry envs), so MuJoCo-scale returns are not to be expected from it as is.
    pub fn continuous() -> Self {
        Self {
            learning_rate: 3e-4,
            num_envs: 1,
            num_steps: 2048,
            num_minibatches: 32,
            update_epochs: 10,
            ent_coef: 0.0,
            ..Self::default()
        }
    }

    /// rl-baselines3-zoo's tuned CartPole-v1 setting: 8 envs x 32 steps (one minibatch of
    /// 256), 20 epochs, gamma 0.98, lambda 0.8, learning rate and clip range annealed
    /// linearly from 1e-3 and 0.2, no entropy bonus, no value clipping, and SB3's
    /// `vf_coef = 0.5` on a plain MSE (here `vf_coef = 1.0` on `0.5 * mse`).
    pub fn cartpole() -> Self {
        Self {
            learning_rate: 1e-3,
            num_envs: 8,
            num_steps: 32,
            anneal_lr: true,
            anneal_clip: true,
            gamma: 0.98,
            gae_lambda: 0.8,
            num_minibatches: 1,
            update_epochs: 20,
            clip_vloss: false,
            ent_coef: 0.0,
            vf_coef: 1.0,
            ..Self::default()
        }
    }

    /// The default config on `env_id`: the rl-baselines3-zoo setting on CartPole, CleanRL's
    /// continuous-action defaults on a Box action space, CleanRL's `ppo.py` otherwise.
    pub fn default_for(env_id: &str) -> Result<Self> {
        if env_id.starts_with("CartPole") {
            return Ok(Self::cartpole());
        }
        let probe = kiln_envs::make(env_id)?;
        Ok(match probe.action_space() {
            Space::Box(_) => Self::continuous(),
            _ => Self::default(),
        })
    }

    /// The rollout batch `N * T`.
    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
    }

    /// Reads a JSON config (unknown keys and wrong types are errors naming the key) and
    /// validates it.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| RlError::ConfigFile {
            path: path.to_path_buf(),
            source: serde_json::Error::io(e),
        })?;
        let config: Self =
            serde_json::from_slice(&bytes).map_err(|source| RlError::ConfigFile {
                path: path.to_path_buf(),
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every range, naming the first key at fault.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(field, v, "must be a finite number > 0"))
            }
        };
        let non_negative = |field: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(field, v, "must be a finite number >= 0"))
            }
        };
        positive("learning_rate", self.learning_rate)?;
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(invalid("gamma", self.gamma, "must lie in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.gae_lambda) {
            return Err(invalid("gae_lambda", self.gae_lambda, "must lie in [0, 1]"));
        }
        positive("clip_coef", self.clip_coef)?;
        non_negative("ent_coef", self.ent_coef)?;
        non_negative("vf_coef", self.vf_coef)?;
        positive("max_grad_norm", self.max_grad_norm)?;
        positive("adam_eps", self.adam_eps)?;
        if let Some(kl) = self.target_kl {
            positive("target_kl", kl)?;
        }
        if !self.init_log_std.is_finite() {
            return Err(invalid("init_log_std", self.init_log_std, "must be finite"));
        }
        for (field, v) in [
            ("num_envs", self.num_envs),
            ("num_steps", self.num_steps),
            ("num_minibatches", self.num_minibatches),
            ("update_epochs", self.update_epochs),
        ] {
            if v == 0 {
                return Err(invalid(field, v, "must be at least 1"));
            }
        }
        if !self.batch_size().is_multiple_of(self.num_minibatches) {
            return Err(invalid(
                "num_minibatches",
                self.num_minibatches,
                "must divide the batch num_envs * num_steps",
            ));
        }
        if self.hidden_sizes.contains(&0) {
            return Err(invalid(
                "hidden_sizes",
                format!("{:?}", self.hidden_sizes),
                "every width must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The policy's output distribution, fixed by the env's action space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PolicyHead {
    /// A categorical over `n` actions `start..start + n` (Gymnasium `Discrete`).
    Categorical {
        /// Number of actions.
        n: usize,
        /// First action value.
        start: i64,
    },
    /// A diagonal Gaussian with a state-independent log-std; actions sent to the env are
    /// clipped to `[low, high]` (Gymnasium's `ClipAction`), the unclipped sample is learned on.
    Gaussian {
        /// Lower bounds.
        low: Vec<f64>,
        /// Upper bounds.
        high: Vec<f64>,
    },
}

impl PolicyHead {
    fn for_space(env: &str, space: &Space) -> Result<Self> {
        match space {
            Space::Discrete { n, start } if *n >= 1 => Ok(Self::Categorical {
                n: *n as usize,
                start: *start,
            }),
            Space::Box(b) if b.dim() >= 1 => Ok(Self::Gaussian {
                low: b.low.clone(),
                high: b.high.clone(),
            }),
            other => Err(RlError::UnsupportedSpace {
                env: env.to_string(),
                what: "action",
                space: other.describe(),
                algo: "PPO",
            }),
        }
    }

    /// Width of the actor's output (logits or means).
    pub fn output_dim(&self) -> usize {
        match self {
            Self::Categorical { n, .. } => *n,
            Self::Gaussian { low, .. } => low.len(),
        }
    }

    /// Width of a stored action (1 for a categorical index).
    pub fn action_dim(&self) -> usize {
        match self {
            Self::Categorical { .. } => 1,
            Self::Gaussian { low, .. } => low.len(),
        }
    }
}

/// CleanRL's `Agent`: separate actor and critic MLPs (tanh, orthogonal init with gain sqrt 2,
/// 0.01 on the policy head and 1.0 on the value head) and a state-independent log-std
/// (used only by a Gaussian head).
#[derive(Module, Debug)]
pub struct ActorCritic {
    /// Logits (categorical) or means (Gaussian).
    pub actor: Mlp,
    /// The state value `V(s)`.
    pub critic: Mlp,
    /// Log standard deviations `[A]` of a Gaussian head.
    pub log_std: Param<Tensor<1>>,
}

impl ActorCritic {
    fn init(
        config: &PpoConfig,
        obs_dim: usize,
        head: &PolicyHead,
        seeds: &Seeds,
        device: &Device,
    ) -> Result<Self> {
        let sizes = |out: usize| {
            let mut s = Vec::with_capacity(config.hidden_sizes.len() + 2);
            s.push(obs_dim);
            s.extend_from_slice(&config.hidden_sizes);
            s.push(out);
            s
        };
        let mlp = |out: usize, scale: f64| {
            MlpConfig::new(sizes(out))
                .with_activation(kiln_tensor::Activation::Tanh)
                .with_init(MlpInit::Orthogonal {
                    hidden_gain: std::f64::consts::SQRT_2,
                })
                .with_output_scale(scale)
        };
        let a = head.output_dim();
        let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        seeds.seed_device(device);
        let actor = mlp(a, 0.01).init(device)?;
        let critic = mlp(1, 1.0).init(device)?;
        let log_std = Param::from_tensor(Tensor::<1>::full(
            [head.action_dim()],
            config.init_log_std,
            device,
        ));
        let agent = Self {
            actor,
            critic,
            log_std,
        };
        kiln_tensor::materialize(&agent);
        Ok(agent)
    }

    /// `log pi(a|s)`, the entropy of `pi(.|s)` and `V(s)` for a minibatch (training path).
    fn evaluate(&self, obs: Tensor<2>, actions: &ActionBatch) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        let value = self.critic.forward(obs.clone()).squeeze_dim(1);
        let out = self.actor.forward(obs);
        match actions {
            ActionBatch::Discrete(a) => {
                let dist = Categorical::new(out, None);
                (dist.log_prob(a.clone()), dist.entropy(), value)
            }
            ActionBatch::Continuous(a) => {
                let dist = DiagGaussian::with_shared_log_std(out, self.log_std.val());
                (dist.log_prob(a.clone()), dist.entropy(), value)
            }
        }
    }
}

enum ActionBatch {
    Discrete(Tensor<1, Int>),
    Continuous(Tensor<2>),
}

/// The tensors the PPO loss needs for one minibatch.
#[derive(Debug, Clone)]
pub struct PpoLossInputs {
    /// `log pi_theta(a|s)` under the current parameters `[B]`.
    pub new_log_prob: Tensor<1>,
    /// Entropy of `pi_theta(.|s)` `[B]`.
    pub entropy: Tensor<1>,
    /// `V_theta(s)` `[B]`.
    pub new_value: Tensor<1>,
    /// `log pi_old(a|s)` from the rollout `[B]`.
    pub old_log_prob: Tensor<1>,
    /// Advantages (already normalized if `norm_adv`) `[B]`.
    pub advantages: Tensor<1>,
    /// Value targets (lambda-returns) `[B]`.
    pub returns: Tensor<1>,
    /// `V_old(s)` from the rollout `[B]`.
    pub old_value: Tensor<1>,
}

/// The PPO objective of one minibatch and its diagnostics (each `[1]`).
#[derive(Debug, Clone)]
pub struct PpoLoss {
    /// The loss minimized: `L_clip + c1 L_vf - c2 S` (the negated eq. 9).
    pub loss: Tensor<1>,
    /// Clipped surrogate loss `-L_clip` (eq. 7).
    pub policy_loss: Tensor<1>,
    /// Value loss `0.5 * mean(max((V - R)^2, (V_clipped - R)^2))`.
    pub value_loss: Tensor<1>,
    /// Mean entropy `S`.
    pub entropy: Tensor<1>,
    /// `mean(-log r)`, the naive KL estimate.
    pub old_approx_kl: Tensor<1>,
    /// `mean((r - 1) - log r)`, the unbiased low-variance KL estimate (Schulman 2020).
    pub approx_kl: Tensor<1>,
    /// Fraction of samples with `|r - 1| > clip_coef`.
    pub clipfrac: Tensor<1>,
}

/// The PPO loss (negated eq. 9 of Schulman et al. 2017):
/// `L = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)] + c1 L_vf - c2 E[S]`, with
/// `r = pi_theta(a|s) / pi_old(a|s)` (eq. 6) and, when `clip_vloss`, the value loss clipped
/// around the old values as in the OpenAI baselines implementation that CleanRL follows.
pub fn ppo_loss(
    inputs: PpoLossInputs,
    clip_coef: f64,
    clip_vloss: bool,
    ent_coef: f64,
    vf_coef: f64,
) -> PpoLoss {
    let PpoLossInputs {
        new_log_prob,
        entropy,
        new_value,
        old_log_prob,
        advantages,
        returns,
        old_value,
    } = inputs;
    let log_ratio = new_log_prob - old_log_prob;
    let ratio = log_ratio.clone().exp();
    // Eq. (7): the pessimistic (max of the negated) clipped surrogate.
    let pg_loss1 = advantages.clone().neg() * ratio.clone();
    let pg_loss2 = advantages.neg() * ratio.clone().clamp(1.0 - clip_coef, 1.0 + clip_coef);
    let policy_loss = pg_loss1.max_pair(pg_loss2).mean();
    let value_loss = if clip_vloss {
        let unclipped = (new_value.clone() - returns.clone()).powi_scalar(2);
        let clipped_value =
            old_value.clone() + (new_value - old_value).clamp(-clip_coef, clip_coef);
        let clipped = (clipped_value - returns).powi_scalar(2);
        unclipped.max_pair(clipped).mean().mul_scalar(0.5)
    } else {
        (new_value - returns).powi_scalar(2).mean().mul_scalar(0.5)
    };
    let entropy = entropy.mean();
    // Eq. (9), negated for gradient descent.
    let loss = policy_loss.clone() - entropy.clone().mul_scalar(ent_coef)
        + value_loss.clone().mul_scalar(vf_coef);
    let log_ratio = log_ratio.detach();
    let ratio = ratio.detach();
    let old_approx_kl = log_ratio.clone().neg().mean();
    let approx_kl = ((ratio.clone() - 1.0) - log_ratio).mean();
    let clipfrac = (ratio - 1.0).abs().greater_elem(clip_coef).float().mean();
    PpoLoss {
        loss,
        policy_loss,
        value_loss,
        entropy,
        old_approx_kl,
        approx_kl,
        clipfrac,
    }
}

/// What a checkpoint stores next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PpoCheckpoint {
    algo: String,
    env_id: String,
    seed: u64,
    obs_dim: usize,
    head: PolicyHead,
    global_step: u64,
    config: PpoConfig,
}

type Envs = VecEnv<RecordEpisodeStatistics<Box<dyn Env>>>;

/// Diagnostics of one update (the last minibatch's values, as CleanRL logs them, except
/// `clipfrac`, the mean over all minibatches).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpdateStats {
    /// Clipped surrogate loss.
    pub policy_loss: f64,
    /// Value loss.
    pub value_loss: f64,
    /// Mean policy entropy.
    pub entropy: f64,
    /// Naive KL estimate.
    pub old_approx_kl: f64,
    /// Low-variance KL estimate.
    pub approx_kl: f64,
    /// Mean clip fraction.
    pub clipfrac: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Explained variance of the rollout's values.
    pub explained_variance: f64,
    /// Epochs run (fewer than `update_epochs` after a target-KL stop).
    pub epochs: usize,
}

/// A PPO learner: `new`, `learn`, `predict`, `save`/`load`, as in Stable-Baselines3.
pub struct Ppo {
    config: PpoConfig,
    env_id: String,
    seed: u64,
    device: Device,
    train_device: Device,
    obs_dim: usize,
    head: PolicyHead,
    /// `None` only transiently, while the optimizer consumes and returns it.
    agent: Option<ActorCritic>,
    /// A copy of `agent` without autodiff (with the host engine: of the host weights),
    /// refreshed after every update.
    policy: ActorCritic,
    optim: ModuleOptimizer,
    /// The host engine's networks and Adam state, when it runs them.
    host: Option<host::HostAgent>,
    envs: Envs,
    started: bool,
    buffer: RolloutBuffer,
    action_rng: StdRng,
    minibatch_rng: StdRng,
    global_step: u64,
    recent_returns: Vec<f64>,
}

impl std::fmt::Debug for Ppo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ppo")
            .field("env_id", &self.env_id)
            .field("seed", &self.seed)
            .field("global_step", &self.global_step)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Ppo {
    /// A learner for the registered env `env_id` on the default device
    /// ([`kiln_tensor::select_device`]).
    pub fn new(config: PpoConfig, env_id: &str, seed: u64) -> Result<Self> {
        let device = kiln_tensor::select_device()?.device;
        Self::with_device(config, env_id, seed, device)
    }

    /// A learner on a given device (without autodiff; training uses its autodiff twin).
    pub fn with_device(config: PpoConfig, env_id: &str, seed: u64, device: Device) -> Result<Self> {
        config.validate()?;
        let envs: Envs = VecEnv::from_fn(config.num_envs, |_| {
            Ok(RecordEpisodeStatistics::new(kiln_envs::make(env_id)?))
        })?;
        let obs_dim = match envs.single_observation_space() {
            Space::Box(b) => b.dim(),
            other => {
                return Err(RlError::UnsupportedSpace {
                    env: env_id.to_string(),
                    what: "observation",
                    space: other.describe(),
                    algo: "PPO",
                });
            }
        };
        let head = PolicyHead::for_space(env_id, envs.single_action_space())?;
        let seeds = Seeds::new(seed);
        let train_device = device.clone().autodiff();
        let agent = ActorCritic::init(&config, obs_dim, &head, &seeds, &train_device)?;
        let adam = AdamSettings {
            eps: config.adam_eps,
            ..AdamSettings::default()
        };
        let optim = adam.build()?;
        let policy = agent.valid();
        let host = if config.engine.uses_host(&device) {
            let rows = config.batch_size() / config.num_minibatches;
            Some(host::HostAgent::new(&policy, &head, &adam, rows)?)
        } else {
            None
        };
        let buffer = RolloutBuffer::new(
            config.num_steps,
            config.num_envs,
            obs_dim,
            head.action_dim(),
        );
        Ok(Self {
            policy,
            agent: Some(agent),
            optim,
            host,
            envs,
            started: false,
            buffer,
            action_rng: seeds.stream("action"),
            minibatch_rng: seeds.stream("minibatch"),
            global_step: 0,
            recent_returns: Vec::new(),
            config,
            env_id: env_id.to_string(),
            seed,
            device,
            train_device,
            obs_dim,
            head,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &PpoConfig {
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

    /// Returns of the episodes finished during the last rollout.
    pub fn recent_returns(&self) -> &[f64] {
        &self.recent_returns
    }

    /// The policy and value networks (without autodiff).
    pub fn policy(&self) -> &ActorCritic {
        &self.policy
    }

    /// Trains for `total_steps` environment steps (rounded down to whole rollouts, at least
    /// one), reporting each update's diagnostics to `callback`; stops early when it returns
    /// `false`. Returns the statistics of the last update.
    pub fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<UpdateStats> {
        let batch = self.config.batch_size() as u64;
        let num_iterations = (total_steps / batch).max(1);
        if !self.started {
            self.envs.reset(Some(self.seed))?;
            self.started = true;
        }
        let start = Instant::now();
        let start_step = self.global_step;
        let mut stats = UpdateStats::default();
        for iteration in 1..=num_iterations {
            // CleanRL: frac = 1 - (iteration - 1) / num_iterations.
            let frac = 1.0 - (iteration - 1) as f64 / num_iterations as f64;
            let lr = if self.config.anneal_lr {
                frac * self.config.learning_rate
            } else {
                self.config.learning_rate
            };
            let clip = if self.config.anneal_clip {
                frac * self.config.clip_coef
            } else {
                self.config.clip_coef
            };
            let t0 = Instant::now();
            self.collect_rollout()?;
            let rollout_s = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            stats = self.update(lr, clip)?;
            let update_s = t1.elapsed().as_secs_f64();
            let sps =
                (self.global_step - start_step) as f64 / start.elapsed().as_secs_f64().max(1e-9);
            let mut metrics: Vec<(&str, f64)> = vec![
                ("charts/learning_rate", lr),
                ("charts/SPS", sps),
                ("losses/value_loss", stats.value_loss),
                ("losses/policy_loss", stats.policy_loss),
                ("losses/entropy", stats.entropy),
                ("losses/old_approx_kl", stats.old_approx_kl),
                ("losses/approx_kl", stats.approx_kl),
                ("losses/clipfrac", stats.clipfrac),
                ("losses/explained_variance", stats.explained_variance),
                ("losses/grad_norm", stats.grad_norm),
                ("perf/rollout_s", rollout_s),
                ("perf/update_s", update_s),
            ];
            if !self.recent_returns.is_empty() {
                let n = self.recent_returns.len() as f64;
                metrics.push((
                    "charts/episodic_return",
                    self.recent_returns.iter().sum::<f64>() / n,
                ));
            }
            if !callback.on_update(self.global_step, &metrics)? {
                break;
            }
        }
        Ok(stats)
    }

    /// Step 1: runs `pi_old` for `num_steps` steps in every env, then computes GAE.
    fn collect_rollout(&mut self) -> Result<()> {
        let (n, d) = (self.config.num_envs, self.obs_dim);
        let out_dim = self.head.output_dim();
        let width = out_dim + 1;
        let log_std: Vec<f64> = match self.head {
            PolicyHead::Gaussian { .. } => to_host(self.policy.log_std.val())
                .into_iter()
                .map(f64::from)
                .collect(),
            PolicyHead::Categorical { .. } => Vec::new(),
        };
        let mut env_actions: Vec<Action> = (0..n)
            .map(|_| match &self.head {
                PolicyHead::Categorical { .. } => Action::Discrete(0),
                PolicyHead::Gaussian { low, .. } => Action::Continuous(vec![0.0; low.len()]),
            })
            .collect();
        let a_dim = self.head.action_dim();
        self.buffer.clear();
        self.recent_returns.clear();
        for t in 0..self.config.num_steps {
            self.buffer.store_obs(t, self.envs.observations());
            let rows = self.buffer.obs[t * n * d..(t + 1) * n * d].to_vec();
            // One forward of actor and critic for all N envs, one host read.
            let out = self.forward_host(rows, n)?;
            for i in 0..n {
                let row = &out[i * width..(i + 1) * width];
                let k = t * n + i;
                self.buffer.values[k] = row[out_dim];
                let stored = &mut self.buffer.actions[k * a_dim..(k + 1) * a_dim];
                self.buffer.log_probs[k] = sample_action(
                    &self.head,
                    &row[..out_dim],
                    &log_std,
                    false,
                    &mut self.action_rng,
                    stored,
                    &mut env_actions[i],
                ) as f32;
            }
            self.envs.step(&env_actions)?;
            self.global_step += n as u64;
            self.buffer.store_outcome(
                t,
                self.envs.rewards(),
                self.envs.terminated(),
                self.envs.truncated(),
            );
            // Bootstrap truncated episodes from V(final observation): one batched critic call.
            let cut: Vec<usize> = (0..n)
                .filter(|&i| self.buffer.truncated[t * n + i])
                .collect();
            if !cut.is_empty() {
                let fin = self.envs.final_observations();
                let rows: Vec<f32> = cut
                    .iter()
                    .flat_map(|&i| fin[i * d..(i + 1) * d].iter().map(|&x| x as f32))
                    .collect();
                let v = self.critic_host(rows, cut.len())?;
                for (j, &i) in cut.iter().enumerate() {
                    self.buffer.final_values[t * n + i] = v[j];
                }
            }
            for info in self.envs.infos() {
                if let Some(r) = info.get("episode_return") {
                    self.recent_returns.push(r);
                }
            }
            self.buffer.advance();
        }
        let next: Vec<f32> = self.envs.observations().iter().map(|&x| x as f32).collect();
        let last_values = self.critic_host(next, n)?;
        // Step 2: GAE (Schulman et al. 2016, eqs. 11-16), truncation-aware.
        self.buffer.compute_gae(
            &last_values,
            self.config.gamma as f32,
            self.config.gae_lambda as f32,
        );
        Ok(())
    }

    /// `V(x)` for `rows` observations, on the host.
    fn critic_host(&mut self, obs: Vec<f32>, rows: usize) -> Result<Vec<f32>> {
        if let Some(h) = self.host.as_mut() {
            return h.values(&obs, rows);
        }
        let x = Tensor::<2>::from_data(TensorData::new(obs, [rows, self.obs_dim]), &self.device);
        Ok(to_host(self.policy.critic.forward(x)))
    }

    /// `[actor(x) | critic(x)]` for `rows` observations, read to the host in one go.
    fn forward_host(&mut self, obs: Vec<f32>, rows: usize) -> Result<Vec<f32>> {
        if let Some(h) = self.host.as_mut() {
            return h.forward(&obs, rows);
        }
        let x = Tensor::<2>::from_data(TensorData::new(obs, [rows, self.obs_dim]), &self.device);
        let out = Tensor::cat(
            vec![
                self.policy.actor.forward(x.clone()),
                self.policy.critic.forward(x),
            ],
            1,
        );
        Ok(to_host(out))
    }

    /// Step 3: `update_epochs` epochs of minibatch Adam steps on the negated eq. (9).
    fn update(&mut self, lr: f64, clip: f64) -> Result<UpdateStats> {
        let cfg = &self.config;
        let b = cfg.batch_size();
        let mb = b / cfg.num_minibatches;
        let (d, a_dim) = (self.obs_dim, self.head.action_dim());
        let mut stats = UpdateStats {
            explained_variance: explained_variance(&self.buffer.values, &self.buffer.returns),
            ..UpdateStats::default()
        };
        let mut order: Vec<usize> = (0..b).collect();
        let mut clipfracs = 0.0;
        let mut clipfrac_count = 0usize;
        let mut agent = match self.host {
            Some(_) => None,
            None => Some(self.agent.take().ok_or_else(|| RlError::Checkpoint {
                path: Default::default(),
                reason: "learner left without parameters by an earlier failed update".into(),
            })?),
        };
        let mut mb_obs = vec![0.0f32; mb * d];
        let mut mb_act = vec![0.0f32; mb * a_dim];
        let (mut mb_logp, mut mb_adv, mut mb_ret, mut mb_val) = (
            vec![0.0f32; mb],
            vec![0.0f32; mb],
            vec![0.0f32; mb],
            vec![0.0f32; mb],
        );
        let coefs = host::LossCoefs {
            clip,
            clip_vloss: cfg.clip_vloss,
            ent_coef: cfg.ent_coef,
            vf_coef: cfg.vf_coef,
        };
        let buf = &self.buffer;
        for epoch in 0..cfg.update_epochs {
            shuffle(&mut order, &mut self.minibatch_rng);
            for chunk in order.chunks(mb) {
                for (j, &k) in chunk.iter().enumerate() {
                    mb_obs[j * d..(j + 1) * d].copy_from_slice(&buf.obs[k * d..(k + 1) * d]);
                    mb_act[j * a_dim..(j + 1) * a_dim]
                        .copy_from_slice(&buf.actions[k * a_dim..(k + 1) * a_dim]);
                    mb_logp[j] = buf.log_probs[k];
                    mb_adv[j] = buf.advantages[k];
                    mb_ret[j] = buf.returns[k];
                    mb_val[j] = buf.values[k];
                }
                if cfg.norm_adv {
                    normalize(&mut mb_adv);
                }
                let diag = match (self.host.as_mut(), agent.take()) {
                    (Some(h), _) => {
                        let l = h.loss_and_grads(
                            &host::Minibatch {
                                obs: &mb_obs,
                                actions: &mb_act,
                                old_log_prob: &mb_logp,
                                advantages: &mb_adv,
                                returns: &mb_ret,
                                old_value: &mb_val,
                            },
                            coefs,
                        )?;
                        stats.grad_norm = h.step(lr, cfg.max_grad_norm)?;
                        [
                            l.policy_loss,
                            l.value_loss,
                            l.entropy,
                            l.old_approx_kl,
                            l.approx_kl,
                            l.clipfrac,
                        ]
                    }
                    (None, Some(a)) => {
                        let (a, diag, norm) = burn_step(
                            BurnStep {
                                optim: &mut self.optim,
                                config: cfg,
                                device: &self.train_device,
                                head: &self.head,
                                obs_dim: d,
                            },
                            a,
                            [&mb_obs, &mb_act, &mb_logp, &mb_adv, &mb_ret, &mb_val],
                            mb,
                            lr,
                            clip,
                        );
                        agent = Some(a);
                        stats.grad_norm = norm;
                        diag
                    }
                    (None, None) => {
                        return Err(RlError::Checkpoint {
                            path: Default::default(),
                            reason: "learner has no parameters".into(),
                        });
                    }
                };
                stats.policy_loss = diag[0];
                stats.value_loss = diag[1];
                stats.entropy = diag[2];
                stats.old_approx_kl = diag[3];
                stats.approx_kl = diag[4];
                clipfracs += diag[5];
                clipfrac_count += 1;
            }
            stats.epochs = epoch + 1;
            if cfg.target_kl.is_some_and(|kl| stats.approx_kl > kl) {
                break;
            }
        }
        stats.clipfrac = clipfracs / clipfrac_count.max(1) as f64;
        match (&self.host, agent) {
            (Some(h), _) => self.policy = h.write_into(self.policy.clone())?,
            (None, Some(agent)) => {
                self.policy = agent.valid();
                self.agent = Some(agent);
            }
            (None, None) => {}
        }
        Ok(stats)
    }

    /// The action for one observation: the mode of the policy if `deterministic` (argmax
    /// logit, or the Gaussian mean clipped to the action box), else a sample.
    pub fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        if obs.len() != self.obs_dim {
            return Err(RlError::Shape {
                what: "observation",
                expected: self.obs_dim,
                got: obs.len(),
            });
        }
        let out_dim = self.head.output_dim();
        let row = self.forward_host(obs.iter().map(|&x| x as f32).collect(), 1)?;
        let log_std: Vec<f64> = match self.head {
            PolicyHead::Gaussian { .. } if !deterministic => to_host(self.policy.log_std.val())
                .into_iter()
                .map(f64::from)
                .collect(),
            _ => vec![0.0; self.head.action_dim()],
        };
        let mut stored = vec![0.0f32; self.head.action_dim()];
        let mut action = match &self.head {
            PolicyHead::Categorical { .. } => Action::Discrete(0),
            PolicyHead::Gaussian { low, .. } => Action::Continuous(vec![0.0; low.len()]),
        };
        sample_action(
            &self.head,
            &row[..out_dim],
            &log_std,
            deterministic,
            &mut self.action_rng,
            &mut stored,
            &mut action,
        );
        Ok(action)
    }

    /// Deterministic evaluation: `episodes` episodes of a fresh `env_id` with the deterministic
    /// policy, episode `k` seeded `seed + k`; returns each episode's return.
    pub fn evaluate(&mut self, episodes: usize, seed: u64) -> Result<Vec<f64>> {
        let mut env = kiln_envs::make(&self.env_id)?;
        evaluate_episodes(&mut env, episodes, seed, |obs| self.predict(obs, true))
    }

    /// Writes the policy and value networks to `<stem>.safetensors` and the config, env id,
    /// seed and step count to `<stem>.json`. The Adam state is not saved: a loaded learner
    /// predicts exactly as the saved one and trains on with fresh optimizer moments.
    pub fn save(&self, stem: &Path) -> Result<()> {
        let meta = PpoCheckpoint {
            algo: "ppo".into(),
            env_id: self.env_id.clone(),
            seed: self.seed,
            obs_dim: self.obs_dim,
            head: self.head.clone(),
            global_step: self.global_step,
            config: self.config.clone(),
        };
        save_checkpoint(&self.policy, &meta, stem)?;
        Ok(())
    }

    /// Loads a learner saved by [`Ppo::save`] onto the default device.
    pub fn load(stem: &Path) -> Result<Self> {
        let device = kiln_tensor::select_device()?.device;
        Self::load_with_device(stem, device)
    }

    /// Loads a learner saved by [`Ppo::save`] onto `device`.
    pub fn load_with_device(stem: &Path, device: Device) -> Result<Self> {
        let meta: PpoCheckpoint = load_checkpoint_config(stem)?;
        if meta.algo != "ppo" {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!("saved by `{}`, not by PPO", meta.algo),
            });
        }
        let mut ppo = Self::with_device(meta.config, &meta.env_id, meta.seed, device)?;
        if ppo.obs_dim != meta.obs_dim || ppo.head != meta.head {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: format!(
                    "the spaces of {} changed since the checkpoint was written",
                    meta.env_id
                ),
            });
        }
        let agent = ppo.agent.take().ok_or_else(|| RlError::Checkpoint {
            path: stem.to_path_buf(),
            reason: "learner has no parameters".into(),
        })?;
        let agent = load_checkpoint(agent, stem)?;
        ppo.policy = agent.valid();
        ppo.agent = Some(agent);
        if ppo.host.is_some() {
            let adam = AdamSettings {
                eps: ppo.config.adam_eps,
                ..AdamSettings::default()
            };
            let rows = ppo.config.batch_size() / ppo.config.num_minibatches;
            ppo.host = Some(host::HostAgent::new(&ppo.policy, &ppo.head, &adam, rows)?);
        }
        ppo.global_step = meta.global_step;
        Ok(ppo)
    }
}

/// What [`burn_step`] borrows from the learner.
struct BurnStep<'a> {
    optim: &'a mut ModuleOptimizer,
    config: &'a PpoConfig,
    device: &'a Device,
    head: &'a PolicyHead,
    obs_dim: usize,
}

/// One burn minibatch step: loss (negated eq. 9) by autodiff, clipping, Adam. Returns
/// the stepped agent, `[policy_loss, value_loss, entropy, old_approx_kl, approx_kl,
/// clipfrac]` and the gradient norm before clipping.
fn burn_step(
    ctx: BurnStep<'_>,
    agent: ActorCritic,
    [mb_obs, mb_act, mb_logp, mb_adv, mb_ret, mb_val]: [&[f32]; 6],
    mb: usize,
    lr: f64,
    clip: f64,
) -> (ActorCritic, [f64; 6], f64) {
    let cfg = ctx.config;
    let (d, a_dim) = (ctx.obs_dim, ctx.head.action_dim());
    let dev = ctx.device;
    let obs = Tensor::<2>::from_data(TensorData::new(mb_obs.to_vec(), [mb, d]), dev);
    let actions = match ctx.head {
        PolicyHead::Categorical { .. } => ActionBatch::Discrete(Tensor::from_data(
            TensorData::new(mb_act.iter().map(|&x| x as i64).collect::<Vec<_>>(), [mb]),
            dev,
        )),
        PolicyHead::Gaussian { .. } => ActionBatch::Continuous(Tensor::from_data(
            TensorData::new(mb_act.to_vec(), [mb, a_dim]),
            dev,
        )),
    };
    let (new_log_prob, entropy, new_value) = agent.evaluate(obs, &actions);
    let vec1 = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [mb]), dev);
    let loss = ppo_loss(
        PpoLossInputs {
            new_log_prob,
            entropy,
            new_value,
            old_log_prob: vec1(mb_logp),
            advantages: vec1(mb_adv),
            returns: vec1(mb_ret),
            old_value: vec1(mb_val),
        },
        clip,
        cfg.clip_vloss,
        cfg.ent_coef,
        cfg.vf_coef,
    );
    let diag = to_host(Tensor::cat(
        vec![
            loss.policy_loss.clone().detach(),
            loss.value_loss.clone().detach(),
            loss.entropy.clone().detach(),
            loss.old_approx_kl.clone(),
            loss.approx_kl.clone(),
            loss.clipfrac.clone(),
        ],
        0,
    ));
    let grads = GradientsParams::from_grads(loss.loss.backward(), &agent);
    let (grads, norm) = clip_grad_norm(&agent, grads, cfg.max_grad_norm);
    let agent = ctx.optim.step(lr, agent, grads);
    let diag = std::array::from_fn(|k| diag.get(k).copied().map_or(f64::NAN, f64::from));
    (agent, diag, norm)
}

/// Draws (or, if `deterministic`, picks the mode of) an action from one row of actor output,
/// writing the learned action into `stored`, the env action into `env_action`; returns
/// `log pi(a|s)` (f64 on the host, matching the device's `Categorical`/`DiagGaussian`).
fn sample_action(
    head: &PolicyHead,
    out: &[f32],
    log_std: &[f64],
    deterministic: bool,
    rng: &mut StdRng,
    stored: &mut [f32],
    env_action: &mut Action,
) -> f64 {
    match head {
        PolicyHead::Categorical { start, .. } => {
            let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = out.iter().map(|&l| f64::from(l - max).exp()).sum();
            let log_z = f64::from(max) + z.ln();
            let a = if deterministic {
                out.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (j, &l)| {
                        if l > best.1 { (j, l) } else { best }
                    })
                    .0
            } else {
                // Inverse-CDF sampling of softmax(out).
                let u = rng.random::<f64>() * z;
                let mut acc = 0.0;
                let mut pick = out.len() - 1;
                for (j, &l) in out.iter().enumerate() {
                    acc += f64::from(l - max).exp();
                    if u < acc {
                        pick = j;
                        break;
                    }
                }
                pick
            };
            stored[0] = a as f32;
            *env_action = Action::Discrete(*start + a as i64);
            f64::from(out[a]) - log_z
        }
        PolicyHead::Gaussian { low, high } => {
            let mut log_prob = 0.0;
            let Action::Continuous(env) = env_action else {
                *env_action = Action::Continuous(vec![0.0; low.len()]);
                return sample_action(head, out, log_std, deterministic, rng, stored, env_action);
            };
            env.resize(low.len(), 0.0);
            for j in 0..low.len() {
                let z = if deterministic {
                    0.0
                } else {
                    standard_normal(rng)
                };
                let x = f64::from(out[j]) + log_std[j].exp() * z;
                log_prob += -0.5 * z * z - log_std[j] - LN_SQRT_2PI;
                stored[j] = x as f32;
                env[j] = x.clamp(low[j], high[j]);
            }
            log_prob
        }
    }
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Fisher-Yates shuffle.
fn shuffle(order: &mut [usize], rng: &mut StdRng) {
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
}

/// `(x - mean) / (std + 1e-8)` with the unbiased std, as `torch.std` in CleanRL.
fn normalize(x: &mut [f32]) {
    let n = x.len();
    if n < 2 {
        return;
    }
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    let std = var.sqrt() + 1e-8;
    for v in x.iter_mut() {
        *v = ((f64::from(*v) - mean) / std) as f32;
    }
}

fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_tensor::testing::cpu;

    fn t1(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    #[test]
    fn clipped_loss_matches_hand_computation() {
        let d = cpu();
        // ratio r = [1.5, 0.5]; A = [1, -1]; eps = 0.2.
        // -A r = [-1.5, 0.5], -A clip(r) = [-1.2, 0.8] -> max = [-1.2, 0.8] -> mean -0.2.
        // Values: V = [1, 2], V_old = [0, 2.5], R = [0.5, 3].
        //   unclipped (V - R)^2 = [0.25, 1.0]; clipped V = [0.2, 2.3] -> [0.09, 0.49];
        //   0.5 * mean(max) = 0.5 * mean([0.25, 1.0]) = 0.3125.
        // Entropy mean 0.5. Loss = -0.2 - 0.01 * 0.5 + 0.5 * 0.3125 = -0.04875.
        let l = ppo_loss(
            PpoLossInputs {
                new_log_prob: t1(&[1.5f32.ln(), 0.5f32.ln()], &d),
                entropy: t1(&[0.6, 0.4], &d),
                new_value: t1(&[1.0, 2.0], &d),
                old_log_prob: t1(&[0.0, 0.0], &d),
                advantages: t1(&[1.0, -1.0], &d),
                returns: t1(&[0.5, 3.0], &d),
                old_value: t1(&[0.0, 2.5], &d),
            },
            0.2,
            true,
            0.01,
            0.5,
        );
        let get = |t: Tensor<1>| to_host(t)[0];
        assert!((get(l.policy_loss) + 0.2).abs() < 1e-6);
        assert!((get(l.value_loss) - 0.3125).abs() < 1e-6);
        assert!((get(l.entropy) - 0.5).abs() < 1e-6);
        assert!((get(l.loss) + 0.04875).abs() < 1e-6);
        // approx_kl = mean((r - 1) - ln r) = mean([0.5 - ln 1.5, -0.5 - ln 0.5]).
        let want = ((0.5 - 1.5f64.ln()) + (-0.5 - 0.5f64.ln())) / 2.0;
        assert!((f64::from(get(l.approx_kl)) - want).abs() < 1e-6);
        assert_eq!(get(l.clipfrac), 1.0);
    }

    #[test]
    fn unclipped_value_loss_and_inside_the_clip_range() {
        let d = cpu();
        // r = [1.1, 1.0] within the clip range: pg = -mean(A r) = -(2 * 1.1 + 1 * 1.0)/2 = -1.6.
        let l = ppo_loss(
            PpoLossInputs {
                new_log_prob: t1(&[1.1f32.ln(), 0.0], &d),
                entropy: t1(&[0.0, 0.0], &d),
                new_value: t1(&[1.0, 2.0], &d),
                old_log_prob: t1(&[0.0, 0.0], &d),
                advantages: t1(&[2.0, 1.0], &d),
                returns: t1(&[0.0, 0.0], &d),
                old_value: t1(&[0.0, 0.0], &d),
            },
            0.2,
            false,
            0.0,
            1.0,
        );
        assert!((to_host(l.policy_loss)[0] + 1.6).abs() < 1e-6);
        // 0.5 * mean([1, 4]) = 1.25, not clipped although |V - V_old| > eps.
        assert!((to_host(l.value_loss)[0] - 1.25).abs() < 1e-6);
        assert_eq!(to_host(l.clipfrac)[0], 0.0);
    }

    #[test]
    fn host_log_probs_match_the_device_distributions() {
        let d = cpu();
        let logits = [0.3f32, -1.2, 2.0];
        let head = PolicyHead::Categorical { n: 3, start: 0 };
        let mut rng = Seeds::new(3).stream("t");
        let mut stored = [0.0f32];
        let mut act = Action::Discrete(0);
        let lp = sample_action(&head, &logits, &[], false, &mut rng, &mut stored, &mut act);
        let dist = Categorical::new(
            Tensor::<2>::from_data(TensorData::new(logits.to_vec(), [1, 3]), &d),
            None,
        );
        let a = Tensor::<1, Int>::from_data(TensorData::new(vec![stored[0] as i64], [1]), &d);
        assert!((to_host(dist.log_prob(a))[0] as f64 - lp).abs() < 1e-5);

        let head = PolicyHead::Gaussian {
            low: vec![-1.0, -1.0],
            high: vec![1.0, 1.0],
        };
        let mean = [0.5f32, -0.25];
        let log_std = [-0.5f64, 0.2];
        let mut stored = [0.0f32; 2];
        let mut act = Action::Continuous(vec![0.0; 2]);
        let lp = sample_action(
            &head,
            &mean,
            &log_std,
            false,
            &mut rng,
            &mut stored,
            &mut act,
        );
        let dist = DiagGaussian::with_shared_log_std(
            Tensor::<2>::from_data(TensorData::new(mean.to_vec(), [1, 2]), &d),
            t1(&[-0.5, 0.2], &d),
        );
        let x = Tensor::<2>::from_data(TensorData::new(stored.to_vec(), [1, 2]), &d);
        assert!((to_host(dist.log_prob(x))[0] as f64 - lp).abs() < 1e-4);
        let Action::Continuous(v) = act else {
            panic!("continuous head gives continuous actions")
        };
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
    }

    #[test]
    fn validation_names_the_bad_key() {
        let cases: [(&str, PpoConfig); 5] = [
            (
                "learning_rate",
                PpoConfig {
                    learning_rate: -1e-3,
                    ..PpoConfig::default()
                },
            ),
            (
                "gamma",
                PpoConfig {
                    gamma: 1.5,
                    ..PpoConfig::default()
                },
            ),
            (
                "gamma",
                PpoConfig {
                    gamma: 0.0,
                    ..PpoConfig::default()
                },
            ),
            (
                "clip_coef",
                PpoConfig {
                    clip_coef: 0.0,
                    ..PpoConfig::default()
                },
            ),
            (
                "num_minibatches",
                PpoConfig {
                    num_minibatches: 3,
                    ..PpoConfig::default()
                },
            ),
        ];
        for (key, config) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
        assert!(PpoConfig::default().validate().is_ok());
        assert!(PpoConfig::continuous().validate().is_ok());
        assert!(PpoConfig::cartpole().validate().is_ok());
        assert!(
            PpoConfig {
                gamma: 1.0,
                ..PpoConfig::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn unknown_json_key_is_rejected_by_name() {
        let err = serde_json::from_str::<PpoConfig>(r#"{"learning_rat": 0.1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("learning_rat"), "{err}");
        let c: PpoConfig = serde_json::from_str(r#"{"learning_rate": 0.1}"#).unwrap();
        assert_eq!(c.learning_rate, 0.1);
        assert_eq!(c.num_envs, PpoConfig::default().num_envs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ppo.json");
        std::fs::write(&path, r#"{"gamma": 2.0}"#).unwrap();
        let err = PpoConfig::from_json_file(&path).unwrap_err().to_string();
        assert!(err.contains("`gamma`"), "{err}");
    }

    #[test]
    fn normalize_and_shuffle() {
        let mut x = [1.0f32, 2.0, 3.0];
        normalize(&mut x);
        assert!((x[0] + 1.0).abs() < 1e-6 && x[1].abs() < 1e-6 && (x[2] - 1.0).abs() < 1e-6);
        let mut order: Vec<usize> = (0..50).collect();
        shuffle(&mut order, &mut Seeds::new(1).stream("m"));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(order, sorted);
    }
}
