//! Single-loop stochastic policy gradient methods of Fatkhullin, Barakat, Kireeva and He,
//! "Stochastic Policy Gradient Methods: Improved Sample Complexity for Fisher-non-degenerate
//! Policies" (ICML 2023, arXiv 2302.01734): vanilla PG, normalized PG, **N-PG-IGT** (normalized
//! PG with implicit gradient transport) and **(N)-HARPG** (Hessian-aided recursive PG), all in
//! ascent form on a flat parameter vector, with the GPOMDP estimators of [`super::gpomdp`].
//!
//! One iteration, `t = 0, 1, ...` (the paper's algorithm and equation numbers could not be
//! checked; the steps follow the official code, with its two known deviations fixed):
//! - **Vanilla / normalized PG**: `g_t = g(τ_t, θ_t)`, `θ_{t+1} = θ_t + γ_t g_t` or
//!   `θ_t + γ_t g_t/‖g_t‖`.
//! - **N-PG-IGT**: extrapolate `θ̃_t = θ_t + ((1-η_t)/η_t)(θ_t - θ_{t-1})`, sample `τ_t` at
//!   `θ̃_t`, `d_t = (1-η_t) d_{t-1} + η_t g(τ_t, θ̃_t)`, `θ_{t+1} = θ_t + γ_t d_t/‖d_t‖`. The
//!   **same** `η_t` extrapolates and averages (the official code extrapolates with `η_{t-1}`),
//!   which makes `d_t = ∇J(θ_t)` exact on quadratics with exact gradients.
//! - **(N)-HARPG**: `q_t ~ U(0,1)`, `θ̂_t = q_t θ_t + (1-q_t) θ_{t-1}`, `g_t = g(τ_t, θ_t)`,
//!   `v_t = B(τ̂_t, θ̂_t)(θ_t - θ_{t-1})` on an independent trajectory sampled at `θ̂_t`,
//!   `d_t = (1-η_t)(d_{t-1} + v_t) + η_t g_t`, then the normalized (N-HARPG) or plain (HARPG)
//!   step. `B v` is the per-trajectory product `g <∇log p, v> + ∇²Φ v` (the official code
//!   forms a product of batch means with the opposite sign on the outer-product term).
//! - At `t = 0` every momentum method starts from `d_0 = g(τ_0, θ_0)`.
//!
//! Schedules (the official run script's, reference note table 2.4): vanilla and normalized PG
//! `γ_t = γ_0 (2/(t+2))^(2/3)`; N-PG-IGT `γ_t = γ_0 · 2/(t+2)`, `η_t = η_0 (2/(t+2))^(4/5)`;
//! N-HARPG `γ_t = γ_0 · 2/(t+2)`, `η_t = η_0 · 2/(t+2)`; HARPG `γ_t = γ_0 (2/(t+2))^(1/2)`,
//! `η_t = η_0 · 2/(t+2)`. With `batch_trajectories = b > 1`, `g` (and `B v`) are means of `b`
//! per-trajectory estimates (the paper's theory uses `b = 1`).

use std::path::Path;
use std::time::Instant;

use kiln_envs::{Action, Env};
use kiln_tensor::Seeds;
use rand::RngExt as _;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::gpomdp::{
    FlatPolicy, LogStd, MlpCache, Trajectory, gpomdp_gradient, hessian_vector_product,
    next_episode_seed, sample_trajectory,
};
use crate::callback::Callback;
use crate::error::{Result, RlError};

/// Which update rule a [`StochasticPg`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgMethod {
    /// Vanilla PG (`sgd` in the official code).
    VanillaPg,
    /// Normalized PG without momentum (`nsgdm` as the run script calls it).
    NormalizedPg,
    /// N-PG-IGT (`nigt`).
    NPgIgt,
    /// N-HARPG (`nstormhess`).
    NHarpg,
    /// HARPG, un-normalized (`stormhess`).
    Harpg,
}

impl PgMethod {
    /// Every method, in the order tables list them.
    pub const ALL: [PgMethod; 5] = [
        PgMethod::VanillaPg,
        PgMethod::NormalizedPg,
        PgMethod::NPgIgt,
        PgMethod::NHarpg,
        PgMethod::Harpg,
    ];

    /// The name in tables and configs.
    pub fn name(self) -> &'static str {
        match self {
            PgMethod::VanillaPg => "vanilla-pg",
            PgMethod::NormalizedPg => "normalized-pg",
            PgMethod::NPgIgt => "n-pg-igt",
            PgMethod::NHarpg => "n-harpg",
            PgMethod::Harpg => "harpg",
        }
    }

    /// The learner name the registry knows this method under (`pg-igt` or `harpg`).
    pub fn learner(self) -> &'static str {
        match self {
            PgMethod::NHarpg | PgMethod::Harpg => "harpg",
            _ => "pg-igt",
        }
    }

    /// Step size `γ_t` (table 2.4 of the note; `t` counts from 0).
    pub fn step_size(self, gamma0: f64, t: u64) -> f64 {
        let r = 2.0 / (t as f64 + 2.0);
        match self {
            PgMethod::VanillaPg | PgMethod::NormalizedPg => gamma0 * r.powf(2.0 / 3.0),
            PgMethod::NPgIgt | PgMethod::NHarpg => gamma0 * r,
            PgMethod::Harpg => gamma0 * r.sqrt(),
        }
    }

    /// Momentum weight `η_t`, `None` for the methods without momentum.
    pub fn momentum(self, eta0: f64, t: u64) -> Option<f64> {
        let r = 2.0 / (t as f64 + 2.0);
        match self {
            PgMethod::VanillaPg | PgMethod::NormalizedPg => None,
            PgMethod::NPgIgt => Some(eta0 * r.powf(0.8)),
            PgMethod::NHarpg | PgMethod::Harpg => Some(eta0 * r),
        }
    }

    /// Whether the step is `γ_t d/‖d‖`.
    pub fn normalized(self) -> bool {
        !matches!(self, PgMethod::VanillaPg | PgMethod::Harpg)
    }

    /// Trajectories per iteration per unit of batch (HARPG: one for `g`, one for `B v`).
    pub fn trajectories_per_iteration(self) -> usize {
        match self {
            PgMethod::NHarpg | PgMethod::Harpg => 2,
            _ => 1,
        }
    }
}

/// IGT's extrapolated point `θ̃ = θ_t + ((1-η)/η)(θ_t - θ_{t-1})` (sec. 2.2 step 1).
pub fn igt_extrapolate(theta: &[f64], theta_prev: &[f64], eta: f64) -> Vec<f64> {
    let c = (1.0 - eta) / eta;
    theta
        .iter()
        .zip(theta_prev)
        .map(|(a, b)| a + c * (a - b))
        .collect()
}

/// Momentum average `d_t = (1-η) d_{t-1} + η g_t` (sec. 2.2 step 3).
pub fn momentum_average(d_prev: &[f64], g: &[f64], eta: f64) -> Vec<f64> {
    d_prev
        .iter()
        .zip(g)
        .map(|(d, gi)| (1.0 - eta) * d + eta * gi)
        .collect()
}

/// HARPG's recursive momentum `d_t = (1-η)(d_{t-1} + v_t) + η g_t` (sec. 2.3 step 4).
pub fn harpg_direction(d_prev: &[f64], hv: &[f64], g: &[f64], eta: f64) -> Vec<f64> {
    d_prev
        .iter()
        .zip(hv)
        .zip(g)
        .map(|((d, v), gi)| (1.0 - eta) * (d + v) + eta * gi)
        .collect()
}

/// Floor on `‖d‖` in a normalized step (`d = 0` has no direction).
pub const NORM_FLOOR: f64 = 1e-12;

/// Ascent step `θ + γ d/‖d‖` (normalized) or `θ + γ d`.
pub fn ascent_step(theta: &[f64], d: &[f64], gamma: f64, normalized: bool) -> Vec<f64> {
    let scale = if normalized {
        gamma / d.iter().map(|x| x * x).sum::<f64>().sqrt().max(NORM_FLOOR)
    } else {
        gamma
    };
    theta.iter().zip(d).map(|(t, di)| t + scale * di).collect()
}

/// The random point on the segment `θ̂ = q θ_t + (1-q) θ_{t-1}` (sec. 2.3 step 1).
pub fn segment_point(theta: &[f64], theta_prev: &[f64], q: f64) -> Vec<f64> {
    theta
        .iter()
        .zip(theta_prev)
        .map(|(a, b)| q * a + (1.0 - q) * b)
        .collect()
}

/// Hyperparameters of a [`StochasticPg`] learner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StochasticPgConfig {
    /// The update rule.
    pub method: PgMethod,
    /// Initial step size `γ_0` (the run script's 0.1).
    pub step_size: f64,
    /// Initial momentum weight `η_0` in `(0, 1]` (the run script's 1).
    pub momentum: f64,
    /// Discount `γ` of `J_H` (0.99 in the paper's experiments).
    pub discount: f64,
    /// Horizon `H`: trajectories stop after this many steps (CartPole: 200).
    pub horizon: usize,
    /// Trajectories averaged into each gradient (and each HVP) estimate (theory: 1).
    pub batch_trajectories: usize,
    /// Hidden widths of the policy MLP (`[]` is a linear policy; the paper: `[32, 32]` tanh).
    pub hidden_sizes: Vec<usize>,
    /// Whether the policy's layers have biases.
    pub bias: bool,
    /// Gaussian heads: the log-std (fixed, or learned and floored).
    pub log_std: LogStd,
    /// Scale of the output layer's initial weights.
    pub output_scale: f64,
}

impl Default for StochasticPgConfig {
    fn default() -> Self {
        Self {
            method: PgMethod::NPgIgt,
            step_size: 0.1,
            momentum: 1.0,
            discount: 0.99,
            horizon: 200,
            batch_trajectories: 1,
            hidden_sizes: vec![32, 32],
            bias: true,
            log_std: LogStd::Learned {
                init: 0.0,
                min: -2.0,
            },
            output_scale: 0.01,
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

impl StochasticPgConfig {
    /// The default config with another method.
    pub fn with_method(method: PgMethod) -> Self {
        Self {
            method,
            ..Self::default()
        }
    }

    /// Range checks, naming the field and value at fault.
    pub fn validate(&self) -> Result<()> {
        if !(self.step_size > 0.0 && self.step_size.is_finite()) {
            return Err(invalid("step_size", self.step_size, "must be positive"));
        }
        if !(self.momentum > 0.0 && self.momentum <= 1.0) {
            return Err(invalid("momentum", self.momentum, "must lie in (0, 1]"));
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
        if self.hidden_sizes.contains(&0) {
            return Err(invalid(
                "hidden_sizes",
                format!("{:?}", self.hidden_sizes),
                "every width must be at least 1",
            ));
        }
        if !self.output_scale.is_finite() {
            return Err(invalid("output_scale", self.output_scale, "must be finite"));
        }
        match self.log_std {
            LogStd::Fixed { value } if !value.is_finite() => {
                return Err(invalid("log_std.value", value, "must be finite"));
            }
            LogStd::Learned { init, min } if !(init.is_finite() && min.is_finite()) => {
                return Err(invalid("log_std.min", min, "init and min must be finite"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks that `method` belongs to the learner `algo` (`pg-igt` or `harpg`).
    pub fn validate_for(&self, algo: &str) -> Result<()> {
        self.validate()?;
        if self.method.learner() != algo {
            return Err(invalid(
                "method",
                self.method.name(),
                "pg-igt takes vanilla-pg, normalized-pg or n-pg-igt; harpg takes n-harpg or harpg",
            ));
        }
        Ok(())
    }
}

/// What one iteration did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IterationStats {
    /// `γ_t`.
    pub step_size: f64,
    /// `η_t` (0 without momentum).
    pub momentum: f64,
    /// `‖d_t‖`.
    pub direction_norm: f64,
    /// Trajectories sampled this iteration.
    pub trajectories: usize,
    /// Environment steps this iteration.
    pub steps: u64,
    /// Mean undiscounted return of the gradient trajectories.
    pub mean_return: f64,
}

/// Vanilla PG, normalized PG, N-PG-IGT or (N)-HARPG on one environment.
pub struct StochasticPg {
    config: StochasticPgConfig,
    env_id: String,
    seed: u64,
    env: Box<dyn Env>,
    policy: FlatPolicy,
    theta: Vec<f64>,
    theta_prev: Vec<f64>,
    direction: Option<Vec<f64>>,
    iteration: u64,
    trajectories: u64,
    global_step: u64,
    episode_rng: StdRng,
    action_rng: StdRng,
    segment_rng: StdRng,
}

impl std::fmt::Debug for StochasticPg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StochasticPg")
            .field("env_id", &self.env_id)
            .field("seed", &self.seed)
            .field("iteration", &self.iteration)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StochasticPg {
    /// A learner for the registered env `env_id`.
    pub fn new(config: StochasticPgConfig, env_id: &str, seed: u64) -> Result<Self> {
        let env = kiln_envs::make(env_id)?;
        Self::with_env(config, env, seed)
    }

    /// A learner on a given env instance (e.g. the LQR miniature's).
    pub fn with_env(config: StochasticPgConfig, env: Box<dyn Env>, seed: u64) -> Result<Self> {
        config.validate()?;
        let env_id = env.id().to_string();
        let policy = FlatPolicy::for_spaces(
            &env_id,
            "stochastic PG",
            env.observation_space(),
            env.action_space(),
            &config.hidden_sizes,
            config.bias,
            config.log_std,
        )?;
        let seeds = Seeds::new(seed);
        let theta = policy.init(&mut seeds.stream("init"), config.output_scale);
        Ok(Self {
            theta_prev: theta.clone(),
            theta,
            direction: None,
            iteration: 0,
            trajectories: 0,
            global_step: 0,
            episode_rng: seeds.stream("episode"),
            action_rng: seeds.stream("action"),
            segment_rng: seeds.stream("segment"),
            env,
            policy,
            config,
            env_id,
            seed,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &StochasticPgConfig {
        &self.config
    }

    /// The environment id.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// Current parameters `θ_t`.
    pub fn params(&self) -> &[f64] {
        &self.theta
    }

    /// Replaces `θ_t` (and `θ_{t-1}`), e.g. to start the LQR gain at a chosen value.
    pub fn set_params(&mut self, theta: Vec<f64>) -> Result<()> {
        if theta.len() != self.theta.len() {
            return Err(RlError::Shape {
                what: "parameter vector",
                expected: self.theta.len(),
                got: theta.len(),
            });
        }
        self.theta_prev = theta.clone();
        self.theta = theta;
        Ok(())
    }

    /// The policy (architecture and head).
    pub fn policy(&self) -> &FlatPolicy {
        &self.policy
    }

    /// Iterations done.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Trajectories sampled so far.
    pub fn trajectories(&self) -> u64 {
        self.trajectories
    }

    /// Environment steps taken so far.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    fn sample(&mut self, at: &[f64]) -> Result<Trajectory> {
        let seed = next_episode_seed(&mut self.episode_rng);
        let traj = sample_trajectory(
            self.env.as_mut(),
            &self.policy,
            at,
            self.config.horizon,
            seed,
            &mut self.action_rng,
        )?;
        self.trajectories += 1;
        self.global_step += traj.len() as u64;
        Ok(traj)
    }

    /// Mean GPOMDP gradient over `batch_trajectories` trajectories sampled at `at`; also the
    /// mean undiscounted return.
    fn batch_gradient(&mut self, at: &[f64]) -> Result<(Vec<f64>, f64)> {
        let b = self.config.batch_trajectories;
        let mut g = vec![0.0; at.len()];
        let mut ret = 0.0;
        for _ in 0..b {
            let traj = self.sample(at)?;
            ret += traj.undiscounted_return() / b as f64;
            let gi = gpomdp_gradient(&self.policy, at, &traj, self.config.discount);
            for (a, x) in g.iter_mut().zip(gi) {
                *a += x / b as f64;
            }
        }
        Ok((g, ret))
    }

    /// Mean `B(τ̂, at) v` over `batch_trajectories` trajectories sampled at `at`.
    fn batch_hvp(&mut self, at: &[f64], v: &[f64]) -> Result<Vec<f64>> {
        let b = self.config.batch_trajectories;
        let mut hv = vec![0.0; at.len()];
        for _ in 0..b {
            let traj = self.sample(at)?;
            let (hi, _) = hessian_vector_product(&self.policy, at, &traj, self.config.discount, v);
            for (a, x) in hv.iter_mut().zip(hi) {
                *a += x / b as f64;
            }
        }
        Ok(hv)
    }

    /// One iteration of the configured method (see the module docs).
    pub fn iterate(&mut self) -> Result<IterationStats> {
        let cfg = self.config.clone();
        let t = self.iteration;
        let (start_traj, start_step) = (self.trajectories, self.global_step);
        let gamma_t = cfg.method.step_size(cfg.step_size, t);
        let eta_t = cfg.method.momentum(cfg.momentum, t);
        let theta = self.theta.clone();
        let (d, mean_return) = match (cfg.method, self.direction.take(), eta_t) {
            (PgMethod::VanillaPg | PgMethod::NormalizedPg, _, _) | (_, None, _) | (_, _, None) => {
                self.batch_gradient(&theta)?
            }
            (PgMethod::NPgIgt, Some(d_prev), Some(eta)) => {
                let at = igt_extrapolate(&theta, &self.theta_prev, eta);
                let (g, r) = self.batch_gradient(&at)?;
                (momentum_average(&d_prev, &g, eta), r)
            }
            (PgMethod::NHarpg | PgMethod::Harpg, Some(d_prev), Some(eta)) => {
                let q: f64 = self.segment_rng.random();
                let at = segment_point(&theta, &self.theta_prev, q);
                let (g, r) = self.batch_gradient(&theta)?;
                let delta: Vec<f64> = theta
                    .iter()
                    .zip(&self.theta_prev)
                    .map(|(a, b)| a - b)
                    .collect();
                let hv = self.batch_hvp(&at, &delta)?;
                (harpg_direction(&d_prev, &hv, &g, eta), r)
            }
        };
        let direction_norm = d.iter().map(|x| x * x).sum::<f64>().sqrt();
        self.theta = ascent_step(&theta, &d, gamma_t, cfg.method.normalized());
        self.theta_prev = theta;
        if eta_t.is_some() {
            self.direction = Some(d);
        }
        self.iteration += 1;
        Ok(IterationStats {
            step_size: gamma_t,
            momentum: eta_t.unwrap_or(0.0),
            direction_norm,
            trajectories: (self.trajectories - start_traj) as usize,
            steps: self.global_step - start_step,
            mean_return,
        })
    }

    /// Runs iterations until about `total_steps` further env steps are taken (at least one),
    /// reporting each to `callback`.
    pub fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<()> {
        let target = self.global_step + total_steps.max(1);
        let start = Instant::now();
        let first = self.global_step;
        while self.global_step < target {
            let s = self.iterate()?;
            let sps = (self.global_step - first) as f64 / start.elapsed().as_secs_f64().max(1e-9);
            let metrics = [
                ("charts/step_size", s.step_size),
                ("charts/momentum", s.momentum),
                ("charts/episodic_return", s.mean_return),
                ("charts/trajectories", self.trajectories as f64),
                ("charts/SPS", sps),
                ("losses/direction_norm", s.direction_norm),
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

    /// Writes `<stem>.json`: the config, env, seed, counters and the `f64` parameters
    /// (`θ_t`, `θ_{t-1}`, `d_t`), which is all a learner needs to continue exactly.
    pub fn save(&self, stem: &Path) -> Result<()> {
        let value = serde_json::json!({
            "algo": self.config.method.learner(),
            "env_id": self.env_id,
            "seed": self.seed,
            "config": self.config,
            "iteration": self.iteration,
            "trajectories": self.trajectories,
            "global_step": self.global_step,
            "theta": self.theta,
            "theta_prev": self.theta_prev,
            "direction": self.direction,
        });
        write_checkpoint(stem, &value)
    }

    /// Reads a learner written by [`StochasticPg::save`] (the random streams restart from the
    /// seed).
    pub fn load(stem: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Saved {
            env_id: String,
            seed: u64,
            config: StochasticPgConfig,
            iteration: u64,
            trajectories: u64,
            global_step: u64,
            theta: Vec<f64>,
            theta_prev: Vec<f64>,
            direction: Option<Vec<f64>>,
        }
        let s: Saved = read_checkpoint(stem)?;
        let mut learner = Self::new(s.config, &s.env_id, s.seed)?;
        learner.set_params(s.theta)?;
        if s.theta_prev.len() != learner.theta.len() {
            return Err(RlError::Checkpoint {
                path: stem.to_path_buf(),
                reason: "theta_prev has the wrong length".into(),
            });
        }
        learner.theta_prev = s.theta_prev;
        learner.direction = s.direction;
        learner.iteration = s.iteration;
        learner.trajectories = s.trajectories;
        learner.global_step = s.global_step;
        Ok(learner)
    }
}

/// Writes a host-parameter checkpoint `<stem>.json`.
pub(crate) fn write_checkpoint(stem: &Path, value: &serde_json::Value) -> Result<()> {
    let path = kiln_tensor::checkpoint::config_path(stem);
    kiln_track::write_json_atomic(&path, value)?;
    Ok(())
}

/// Reads a host-parameter checkpoint `<stem>.json`.
pub(crate) fn read_checkpoint<T: serde::de::DeserializeOwned>(stem: &Path) -> Result<T> {
    let path = kiln_tensor::checkpoint::config_path(stem);
    let text = std::fs::read_to_string(&path).map_err(|e| RlError::Checkpoint {
        path: stem.to_path_buf(),
        reason: format!("reading {}: {e}", path.display()),
    })?;
    serde_json::from_str(&text).map_err(|e| RlError::Checkpoint {
        path: stem.to_path_buf(),
        reason: e.to_string(),
    })
}
