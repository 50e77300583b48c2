//! The pieces REINFORCE, N-PG-IGT and (N)-HARPG share: a policy over a flat `f64` parameter
//! vector, a one-trajectory sampler, and the GPOMDP gradient and score-function Hessian-vector
//! estimators of Fatkhullin, Barakat, Kireeva and He, "Stochastic Policy Gradient Methods:
//! Improved Sample Complexity for Fisher-non-degenerate Policies" (ICML 2023), sec. 2.
//!
//! The policy is a tanh MLP (no hidden layer gives a linear policy) evaluated on the host in
//! `f64`: the algorithms work on the flat vector `θ` (extrapolated points, random points on a
//! segment, normalized steps), and one trajectory of CartPole costs about a millisecond this way.
//! Layout of `θ`: for each layer, the weights `W[out][in]` row-major, then the bias `[out]` (if
//! the net has biases); a Gaussian head with a learned log-std appends `log σ [A]`.
//!
//! Estimators (ascent form, horizon `H`, discount `γ`, trajectory `τ = (s_t, a_t, r_t)`):
//! - GPOMDP gradient `g(τ, θ) = Σ_t ∇log π_θ(a_t|s_t) · Σ_{h≥t} γ^h r_h` (unbiased for `∇J_H`);
//!   the weights carry `γ^h` from the start of the trajectory (not garage's per-step
//!   discounting), and no baseline unless the caller passes one.
//! - Surrogate `Φ(τ, θ) = Σ_t (Σ_{h≥t} γ^h r_h) log π_θ(a_t|s_t)`, so `∇Φ = g`.
//! - Score `∇log p(τ|θ) = Σ_t ∇log π_θ(a_t|s_t)`.
//! - Hessian estimate (Shen et al. 2019) `B(τ, θ) = ∇Φ ∇log pᵀ + ∇²Φ`, unbiased for `∇²J_H`;
//!   only `B v = g <∇log p, v> + ∇<∇Φ, v>` is formed, per trajectory. burn 0.22 has no double
//!   backward (see `kiln_tensor::hvp`), so `∇²Φ v` is the central difference of the analytic
//!   `∇Φ` along `v` with the trajectory's actions and weights held fixed, in `f64` (exact for
//!   a linear-Gaussian policy, whose `Φ` is quadratic in `θ`).

use kiln_envs::{Action, Env, Space};
use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RlError};

/// Step along the unit direction of the central difference in [`hessian_vector_product`]:
/// about `u^(1/3)` for `f64` (`u ≈ 1.1e-16`), which balances truncation and rounding error.
pub const HVP_STEP_F64: f64 = 5e-6;

/// A tanh MLP on a flat parameter vector (PyTorch's `nn.Linear` initialization).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatMlp {
    /// Layer widths from input to output.
    pub sizes: Vec<usize>,
    /// Whether every layer has a bias.
    pub bias: bool,
}

/// Activations of one forward pass, kept for the backward pass.
#[derive(Debug, Clone, Default)]
pub struct MlpCache {
    /// `h_0 = x`, `h_l = tanh(z_l)` for hidden layers, the output last.
    layers: Vec<Vec<f64>>,
}

impl FlatMlp {
    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.sizes
            .windows(2)
            .map(|w| w[0] * w[1] + if self.bias { w[1] } else { 0 })
            .sum()
    }

    /// Output width.
    pub fn output_dim(&self) -> usize {
        self.sizes.last().copied().unwrap_or(0)
    }

    /// `U(-1/√fan_in, 1/√fan_in)` weights and biases (PyTorch's `nn.Linear` default), the last
    /// layer scaled by `output_scale` (0.01 keeps an initial policy near uniform / zero mean).
    pub fn init(&self, rng: &mut StdRng, output_scale: f64) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.num_params());
        let n = self.sizes.len().saturating_sub(1);
        for (l, w) in self.sizes.windows(2).enumerate() {
            let bound = 1.0 / (w[0] as f64).sqrt();
            let scale = if l + 1 == n { output_scale } else { 1.0 };
            let count = w[0] * w[1] + if self.bias { w[1] } else { 0 };
            for _ in 0..count {
                out.push(scale * rng.random_range(-bound..=bound));
            }
        }
        out
    }

    /// Forward pass of `x` with parameters `p` (the first `num_params()` entries).
    pub fn forward<'c>(&self, p: &[f64], x: &[f64], cache: &'c mut MlpCache) -> &'c [f64] {
        let n = self.sizes.len() - 1;
        cache.layers.resize(n + 1, Vec::new());
        cache.layers[0].clear();
        cache.layers[0].extend_from_slice(x);
        let mut offset = 0;
        for l in 0..n {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            let (prev, rest) = cache.layers.split_at_mut(l + 1);
            let h = &prev[l];
            let z = &mut rest[0];
            z.clear();
            let w = &p[offset..offset + fan_in * fan_out];
            offset += fan_in * fan_out;
            for o in 0..fan_out {
                let row = &w[o * fan_in..(o + 1) * fan_in];
                z.push(row.iter().zip(h).map(|(a, b)| a * b).sum::<f64>());
            }
            if self.bias {
                for (zo, b) in z.iter_mut().zip(&p[offset..offset + fan_out]) {
                    *zo += b;
                }
                offset += fan_out;
            }
            if l + 1 < n {
                for zo in z.iter_mut() {
                    *zo = zo.tanh();
                }
            }
        }
        &cache.layers[n]
    }

    /// Adds `∂(dout · f(x))/∂p` to `grad` for the pass recorded in `cache`.
    pub fn backward(&self, p: &[f64], cache: &MlpCache, dout: &[f64], grad: &mut [f64]) {
        let n = self.sizes.len() - 1;
        let mut offsets = Vec::with_capacity(n);
        let mut offset = 0;
        for w in self.sizes.windows(2) {
            offsets.push(offset);
            offset += w[0] * w[1] + if self.bias { w[1] } else { 0 };
        }
        let mut delta = dout.to_vec();
        for l in (0..n).rev() {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            let h = &cache.layers[l];
            let base = offsets[l];
            for o in 0..fan_out {
                let d = delta[o];
                if d == 0.0 {
                    continue;
                }
                let row = &mut grad[base + o * fan_in..base + (o + 1) * fan_in];
                for (g, hi) in row.iter_mut().zip(h) {
                    *g += d * hi;
                }
            }
            if self.bias {
                let b = base + fan_in * fan_out;
                for (g, d) in grad[b..b + fan_out].iter_mut().zip(&delta) {
                    *g += d;
                }
            }
            if l > 0 {
                let w = &p[base..base + fan_in * fan_out];
                let mut next = vec![0.0; fan_in];
                for (o, d) in delta.iter().enumerate() {
                    for (i, nx) in next.iter_mut().enumerate() {
                        *nx += w[o * fan_in + i] * d;
                    }
                }
                for (nx, hi) in next.iter_mut().zip(h) {
                    *nx *= 1.0 - hi * hi;
                }
                delta = next;
            }
        }
    }
}

/// How a Gaussian head's standard deviation is parameterized.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LogStd {
    /// A fixed `log σ` (the LQR miniature's linear-Gaussian policy).
    Fixed {
        /// The value.
        value: f64,
    },
    /// A learned, state-independent `log σ` per action component, floored at `min` so the
    /// policy stays Fisher-non-degenerate (sec. 6 of the reference note: `σ ≥ σ_min`).
    Learned {
        /// Initial value.
        init: f64,
        /// Lower bound (below it the gradient is zero).
        min: f64,
    },
}

/// The action distribution on top of the MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PolicyHead {
    /// Softmax over `n` logits; actions are `start + index`.
    Categorical {
        /// Number of actions.
        n: usize,
        /// First action value.
        start: i64,
    },
    /// Diagonal Gaussian on the MLP's means; the env receives the sample clipped to
    /// `[low, high]` (Gymnasium's `ClipAction`), the unclipped sample is learned on.
    Gaussian {
        /// Lower bounds.
        low: Vec<f64>,
        /// Upper bounds.
        high: Vec<f64>,
        /// The standard deviation's parameterization.
        log_std: LogStd,
    },
}

/// A stochastic policy `π_θ(a|s)` over a flat parameter vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatPolicy {
    /// The network producing logits or means.
    pub net: FlatMlp,
    /// The distribution.
    pub head: PolicyHead,
}

impl FlatPolicy {
    /// A policy for an env's spaces with the given hidden widths.
    pub fn for_spaces(
        env: &str,
        algo: &'static str,
        observation: &Space,
        action: &Space,
        hidden: &[usize],
        bias: bool,
        log_std: LogStd,
    ) -> Result<Self> {
        let obs_dim = match observation {
            Space::Box(b) => b.dim(),
            other => {
                return Err(RlError::UnsupportedSpace {
                    env: env.to_string(),
                    what: "observation",
                    space: other.describe(),
                    algo,
                });
            }
        };
        let head = match action {
            Space::Discrete { n, start } if *n >= 1 => PolicyHead::Categorical {
                n: *n as usize,
                start: *start,
            },
            Space::Box(b) if b.dim() >= 1 => PolicyHead::Gaussian {
                low: b.low.clone(),
                high: b.high.clone(),
                log_std,
            },
            other => {
                return Err(RlError::UnsupportedSpace {
                    env: env.to_string(),
                    what: "action",
                    space: other.describe(),
                    algo,
                });
            }
        };
        let out = match &head {
            PolicyHead::Categorical { n, .. } => *n,
            PolicyHead::Gaussian { low, .. } => low.len(),
        };
        let mut sizes = vec![obs_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(out);
        Ok(Self {
            net: FlatMlp { sizes, bias },
            head,
        })
    }

    /// Number of parameters (network plus learned log-std).
    pub fn num_params(&self) -> usize {
        self.net.num_params() + self.learned_log_std_len()
    }

    fn learned_log_std_len(&self) -> usize {
        match &self.head {
            PolicyHead::Gaussian {
                low,
                log_std: LogStd::Learned { .. },
                ..
            } => low.len(),
            _ => 0,
        }
    }

    /// Initial parameters: the MLP's init with the output layer scaled by `output_scale`, then
    /// the initial log-std.
    pub fn init(&self, rng: &mut StdRng, output_scale: f64) -> Vec<f64> {
        let mut p = self.net.init(rng, output_scale);
        if let PolicyHead::Gaussian {
            low,
            log_std: LogStd::Learned { init, .. },
            ..
        } = &self.head
        {
            p.extend(std::iter::repeat_n(*init, low.len()));
        }
        p
    }

    /// `log σ` of component `j` (after the floor) and whether the floor is active.
    fn log_std(&self, p: &[f64], j: usize) -> (f64, bool) {
        match &self.head {
            PolicyHead::Gaussian { log_std, .. } => match *log_std {
                LogStd::Fixed { value } => (value, true),
                LogStd::Learned { min, .. } => {
                    let v = p[self.net.num_params() + j];
                    if v < min { (min, true) } else { (v, false) }
                }
            },
            PolicyHead::Categorical { .. } => (0.0, true),
        }
    }

    /// Samples an action for `obs`: the env's action and the stored (learned-on) action.
    pub fn sample(
        &self,
        p: &[f64],
        obs: &[f64],
        rng: &mut StdRng,
        cache: &mut MlpCache,
    ) -> (Action, Vec<f64>) {
        let out = self.net.forward(p, obs, cache).to_vec();
        match &self.head {
            PolicyHead::Categorical { start, .. } => {
                let probs = softmax(&out);
                let u: f64 = rng.random();
                let mut acc = 0.0;
                let mut k = probs.len() - 1;
                for (i, pr) in probs.iter().enumerate() {
                    acc += pr;
                    if u < acc {
                        k = i;
                        break;
                    }
                }
                (Action::Discrete(start + k as i64), vec![k as f64])
            }
            PolicyHead::Gaussian { low, high, .. } => {
                let raw: Vec<f64> = out
                    .iter()
                    .enumerate()
                    .map(|(j, m)| m + self.log_std(p, j).0.exp() * standard_normal(rng))
                    .collect();
                let sent = raw
                    .iter()
                    .zip(low.iter().zip(high))
                    .map(|(a, (l, h))| a.clamp(*l, *h))
                    .collect();
                (Action::Continuous(sent), raw)
            }
        }
    }

    /// The mode: the most likely action, or the clipped mean.
    pub fn mode(&self, p: &[f64], obs: &[f64], cache: &mut MlpCache) -> Action {
        let out = self.net.forward(p, obs, cache);
        match &self.head {
            PolicyHead::Categorical { start, .. } => {
                let mut best = 0;
                for (i, v) in out.iter().enumerate() {
                    if *v > out[best] {
                        best = i;
                    }
                }
                Action::Discrete(start + best as i64)
            }
            PolicyHead::Gaussian { low, high, .. } => Action::Continuous(
                out.iter()
                    .zip(low.iter().zip(high))
                    .map(|(m, (l, h))| m.clamp(*l, *h))
                    .collect(),
            ),
        }
    }

    /// `log π_θ(a|s)`; adds `weight · ∇_θ log π_θ(a|s)` to `grad` (when `weight != 0`).
    pub fn log_prob_grad(
        &self,
        p: &[f64],
        obs: &[f64],
        action: &[f64],
        weight: f64,
        grad: &mut [f64],
        cache: &mut MlpCache,
    ) -> f64 {
        let out = self.net.forward(p, obs, cache).to_vec();
        let (logp, dout) = match &self.head {
            PolicyHead::Categorical { .. } => {
                let k = action[0] as usize;
                let probs = softmax(&out);
                let logp = probs[k].max(f64::MIN_POSITIVE).ln();
                let dout: Vec<f64> = probs
                    .iter()
                    .enumerate()
                    .map(|(i, pr)| weight * (f64::from(u8::from(i == k)) - pr))
                    .collect();
                (logp, dout)
            }
            PolicyHead::Gaussian { .. } => {
                let n_net = self.net.num_params();
                let mut logp = 0.0;
                let mut dout = Vec::with_capacity(out.len());
                for (j, (m, a)) in out.iter().zip(action).enumerate() {
                    let (ls, floored) = self.log_std(p, j);
                    let var = (2.0 * ls).exp();
                    let z2 = (a - m) * (a - m) / var;
                    logp += -0.5 * z2 - ls - 0.5 * (2.0 * std::f64::consts::PI).ln();
                    dout.push(weight * (a - m) / var);
                    if !floored && weight != 0.0 {
                        grad[n_net + j] += weight * (z2 - 1.0);
                    }
                }
                (logp, dout)
            }
        };
        if weight != 0.0 {
            self.net.backward(p, cache, &dout, grad);
        }
        logp
    }
}

/// A numerically stable softmax.
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// One `N(0, 1)` draw (Box–Muller).
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One sampled trajectory, at most `H` steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trajectory {
    /// `s_t`.
    pub observations: Vec<Vec<f64>>,
    /// `a_t` as learned on (a categorical index as `f64`, the unclipped Gaussian sample).
    pub actions: Vec<Vec<f64>>,
    /// `r_t`.
    pub rewards: Vec<f64>,
}

impl Trajectory {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// Whether the trajectory has no step.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// The undiscounted return `Σ_t r_t`.
    pub fn undiscounted_return(&self) -> f64 {
        self.rewards.iter().sum()
    }

    /// GPOMDP weights `w_t = Σ_{h≥t} γ^h r_h` (reward-to-go discounted from the start).
    pub fn gpomdp_weights(&self, gamma: f64) -> Vec<f64> {
        let mut disc = 1.0;
        self.returns_to_go(gamma)
            .into_iter()
            .map(|g| {
                let w = disc * g;
                disc *= gamma;
                w
            })
            .collect()
    }

    /// Returns-to-go `G_t = Σ_{h≥t} γ^(h-t) r_h` (the REINFORCE target, Sutton & Barto eq. 13.8).
    pub fn returns_to_go(&self, gamma: f64) -> Vec<f64> {
        let mut g = vec![0.0; self.len()];
        let mut acc = 0.0;
        for t in (0..self.len()).rev() {
            acc = self.rewards[t] + gamma * acc;
            g[t] = acc;
        }
        g
    }
}

/// Samples one trajectory of at most `horizon` steps from `π_θ`, resetting `env` with `seed`.
pub fn sample_trajectory(
    env: &mut dyn Env,
    policy: &FlatPolicy,
    params: &[f64],
    horizon: usize,
    seed: u64,
    rng: &mut StdRng,
) -> Result<Trajectory> {
    let mut obs = vec![0.0; env.observation_space().raw_len()];
    env.reset_into(Some(seed), &mut obs)?;
    let mut traj = Trajectory::default();
    let mut cache = MlpCache::default();
    for _ in 0..horizon {
        let (action, stored) = policy.sample(params, &obs, rng, &mut cache);
        traj.observations.push(obs.clone());
        let tr = env.step_into(&action, &mut obs)?;
        traj.actions.push(stored);
        traj.rewards.push(tr.reward);
        if tr.terminated || tr.truncated {
            break;
        }
    }
    Ok(traj)
}

/// `Σ_t c_t ∇log π_θ(a_t|s_t)` for per-step coefficients `c`.
pub fn weighted_score(policy: &FlatPolicy, p: &[f64], traj: &Trajectory, coef: &[f64]) -> Vec<f64> {
    let mut grad = vec![0.0; policy.num_params()];
    let mut cache = MlpCache::default();
    for ((s, a), c) in traj.observations.iter().zip(&traj.actions).zip(coef) {
        policy.log_prob_grad(p, s, a, *c, &mut grad, &mut cache);
    }
    grad
}

/// The GPOMDP gradient `g(τ, θ) = ∇Φ(τ, θ)` (sec. 2.1 of the note).
pub fn gpomdp_gradient(policy: &FlatPolicy, p: &[f64], traj: &Trajectory, gamma: f64) -> Vec<f64> {
    weighted_score(policy, p, traj, &traj.gpomdp_weights(gamma))
}

/// The trajectory score `∇log p(τ|θ) = Σ_t ∇log π_θ(a_t|s_t)`.
pub fn trajectory_score(policy: &FlatPolicy, p: &[f64], traj: &Trajectory) -> Vec<f64> {
    weighted_score(policy, p, traj, &vec![1.0; traj.len()])
}

/// `B(τ, θ) v = g(τ, θ) <∇log p(τ|θ), v> + ∇²Φ(τ, θ) v` (Shen et al. 2019; HARPG's correction,
/// sec. 2.3 step 3 of the note), for one trajectory; also returns `g(τ, θ)`.
pub fn hessian_vector_product(
    policy: &FlatPolicy,
    p: &[f64],
    traj: &Trajectory,
    gamma: f64,
    v: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let weights = traj.gpomdp_weights(gamma);
    let g = weighted_score(policy, p, traj, &weights);
    let score = trajectory_score(policy, p, traj);
    let sv: f64 = score.iter().zip(v).map(|(a, b)| a * b).sum();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut out: Vec<f64> = g.iter().map(|gi| gi * sv).collect();
    if norm > 0.0 {
        let shifted = |sign: f64| -> Vec<f64> {
            p.iter()
                .zip(v)
                .map(|(pi, vi)| pi + sign * HVP_STEP_F64 * vi / norm)
                .collect()
        };
        let plus = weighted_score(policy, &shifted(1.0), traj, &weights);
        let minus = weighted_score(policy, &shifted(-1.0), traj, &weights);
        for ((o, a), b) in out.iter_mut().zip(&plus).zip(&minus) {
            *o += (a - b) * norm / (2.0 * HVP_STEP_F64);
        }
    }
    (out, g)
}

/// Draws a reset seed for the next trajectory from the learner's stream.
pub fn next_episode_seed(rng: &mut StdRng) -> u64 {
    rng.next_u64()
}
