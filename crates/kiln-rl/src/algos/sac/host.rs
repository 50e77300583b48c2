//! Host engine for SAC: [`super::Sac`]'s gradient step on [`kiln_tensor::host`] (fused `f32`
//! forward passes, hand-written backward passes, Adam on flat slices, preallocated buffers),
//! reproducing the burn step to `f32` rounding on one replay minibatch `(s, a, r, s', d)` of
//! `B` rows with `A`-dimensional actions. The update it implements, with the equations of
//! Haarnoja et al. 2018 ("Soft Actor-Critic Algorithms and Applications", arXiv 1812.05905):
//!
//! Shared inputs: two blocks of standard normal noise `eps` (current state) and `eps'` (next
//! state), each `[B, A]`, drawn in that order from the `noise` stream;
//! `alpha = exp(log_alpha)` read once, before any update; `Hbar = target_entropy` or `-A`.
//!
//! Policy head: the actor MLP (ReLU hidden layers, linear output `[B, 2A]`) gives
//! `mu = out[:, :A]` and `log_sigma = clamp(out[:, A:], -20, 2)` (the clamp passes no gradient
//! outside the interval). `u = mu + exp(log_sigma) eps`, `a~ = tanh(u)`, and
//! `log pi(a~|s) = sum_j [ -1/2 eps_j^2 - log_sigma_j - 1/2 log(2 pi) - 2 (log 2 - u_j - softplus(-2 u_j)) ]`
//! (the exact tanh change-of-variables term `log(1 - tanh(u)^2)`, no epsilon; see
//! [`kiln_tensor::TanhGaussian::log_prob_pre_tanh`]).
//!
//! 1. **Critic target** (eqs. 3 and 5, clipped double-Q), no gradient:
//!    `a' = tanh(mu(s') + sigma(s') eps')` from the current actor;
//!    `y = r + gamma (1 - d) (min(Qbar_1(s', a'), Qbar_2(s', a')) - alpha log pi(a'|s'))`,
//!    `d` the `terminated` flag only (truncation bootstraps); critics take `[s, a]`
//!    concatenated, obs first.
//! 2. **Critic loss** (eq. 5): `J_Q = 1/2 (mean_b (Q_1(s, a) - y)^2 + mean_b (Q_2(s, a) - y)^2)`;
//!    one Adam step (lr, burn 0.22 Adam defaults, no clipping) on both critics' parameters
//!    together; `dJ_Q/dQ_j = (Q_j - y) / B` (eq. 6).
//! 3. **Actor loss** (eq. 7, reparameterized as eq. 9 with `a~ = f(eps; s)` of eq. 8), through
//!    the critics *after* step 2, whose parameters take no gradient:
//!    `J_pi = mean_b (alpha log pi(a~|s) - min_j Q_j(s, a~))` with `eps`; the gradient flows
//!    through `a~` into `mu` and `log_sigma` (via `u`, both in the Gaussian term and the tanh
//!    correction), and through `-log_sigma` directly; the `min` routes the gradient to the
//!    smaller critic per row. One Adam step on the actor; the acting copy is refreshed.
//! 4. **Temperature** (eq. 18, if `autotune`): `J(alpha) = -log_alpha (mean_b log pi(a~|s) + Hbar)`,
//!    gradient `-(mean log pi + Hbar)` with the step-3 log-probs treated as constants; one
//!    scalar Adam step (PyTorch form, `f64`) on `log_alpha`. (Shared with the burn engine, in
//!    [`super::Sac::gradient_step`].)
//! 5. **Targets**: every `target_update_interval` gradient steps,
//!    `Qbar <- (1 - tau) Qbar + tau Q` over every critic parameter.
//!
//! Reported: `J_Q`, `J_pi`, the alpha used, `J(alpha)`, `mean log pi`, `mean Q_1(s, a)`
//! (before the critic step).
//!
//! The derivatives written out (per row `b`, action dimension `j`, with `t = tanh(u)`):
//! `d log pi / d u = 2 t` (the Gaussian term depends on `u` only through `eps`, a constant
//! under reparameterization, and `d/du [-log(1 - t^2)] = 2 t`), `d a~/d u = 1 - t^2`,
//! `d u / d mu = 1`, `d u / d log_sigma = sigma eps`, `d log pi / d log_sigma = -1` directly.
//! So `dJ_pi/du = (alpha 2 t - (dQ_min/da~) (1 - t^2)) / B`, `dJ_pi/dmu = dJ_pi/du` and
//! `dJ_pi/d log_sigma = dJ_pi/du sigma eps - alpha / B` inside the clamp interval, `0` outside.
//!
//! Work is split between two threads ([`rayon::join`]) where it is independent: the actor's
//! forward passes on `s'` and on `s`, the two target critics, and each critic's whole step 2
//! (forward, backward, Adam, Polyak) followed by its forward on `(s, a~)`, then the two
//! critics' input gradients `dQ_j/da~` (each on the rows where it is the smaller). Every
//! matrix product inside runs single-threaded.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use kiln_tensor::host::{HostActivation, HostAdam, HostMlp, MlpCache, polyak_host};
use kiln_tensor::{AdamSettings, EnsembleMlp, Mlp};

use super::{LOG_STD_MAX, LOG_STD_MIN};
use crate::error::{Result, RlError};

/// `1/2 log(2 pi)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// One replay minibatch as the host engine reads it (rows `B`).
pub(super) struct Minibatch<'a> {
    /// `[B, obs_dim]`.
    pub obs: &'a [f32],
    /// `[B, A]`, scaled to `[-1, 1]`.
    pub actions: &'a [f32],
    /// `[B]`.
    pub rewards: &'a [f32],
    /// `[B, obs_dim]`.
    pub next_obs: &'a [f32],
    /// `[B]`, `1.0` where terminal.
    pub terminated: &'a [f32],
    /// `eps`, `[B, A]`: the actor-loss sample.
    pub noise: &'a [f32],
    /// `eps'`, `[B, A]`: the critic-target sample.
    pub next_noise: &'a [f32],
}

/// The scalars of one gradient step.
#[derive(Debug, Clone, Copy)]
pub(super) struct StepCoefs {
    pub alpha: f64,
    pub gamma: f64,
    pub lr: f64,
    /// `Some(tau)` when this step ends with a Polyak update of the targets.
    pub polyak: Option<f64>,
}

/// What one gradient step reports (besides the temperature, handled by the learner).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct StepValues {
    pub critic_loss: f64,
    pub actor_loss: f64,
    pub mean_log_prob: f64,
    pub q1_mean: f64,
}

/// One critic of the twin pair with its target, its Adam state and buffers: the unit of work
/// one thread takes.
#[derive(Debug, Clone)]
struct Twin {
    q: HostMlp,
    target: HostMlp,
    adam: HostAdam,
    /// `Qbar_j(s', a')`.
    target_cache: MlpCache,
    /// `Q_j(s, a)`, for the critic loss.
    cache: MlpCache,
    /// `Q_j(s, a~)` with the updated parameters, for the actor loss.
    pi_cache: MlpCache,
    grads: Vec<f32>,
    /// `dJ/dQ_j`, `[B]`.
    d_q: Vec<f32>,
    /// Rows where this critic is the smaller one in the actor loss.
    min_rows: Vec<usize>,
    /// Those rows of `pi_cache`, gathered, for the input gradient.
    min_cache: MlpCache,
    /// `dJ_pi/d[s, a~]` of the gathered rows.
    d_input: Vec<f32>,
}

impl Twin {
    fn new(q: HostMlp, target: HostMlp, adam: &AdamSettings, rows: usize) -> Result<Self> {
        let n = q.num_params();
        let width = q.input_dim();
        Ok(Self {
            adam: HostAdam::new(adam, n)?,
            target_cache: MlpCache::new(&target, rows),
            cache: MlpCache::new(&q, rows),
            pi_cache: MlpCache::new(&q, rows),
            min_cache: MlpCache::new(&q, rows),
            grads: vec![0.0; n],
            d_q: vec![0.0; rows],
            min_rows: Vec::with_capacity(rows),
            d_input: vec![0.0; rows * width],
            q,
            target,
        })
    }

    /// Step 2 for this critic: `Q_j(s, a)`, `dJ_Q/dQ_j = (Q_j - y) / B`, its backward pass,
    /// one Adam step and, if asked, the Polyak update of its target; then step 3's forward
    /// `Q_j(s, a~)` with the new parameters. Returns `(mean (Q_j - y)^2, mean Q_j)`.
    fn critic_step(
        &mut self,
        input: &[f32],
        pi_input: &[f32],
        y: &[f32],
        rows: usize,
        update: Option<(f64, Option<f64>)>,
    ) -> Result<(f64, f64)> {
        self.q.forward(input, rows, &mut self.cache)?;
        let inv_b = 1.0 / rows as f32;
        let (mut sq, mut sum) = (0.0f64, 0.0f64);
        for ((d, &q), &y) in self.d_q.iter_mut().zip(self.cache.output()).zip(y) {
            let diff = q - y;
            sq += f64::from(diff) * f64::from(diff);
            sum += f64::from(q);
            *d = diff * inv_b;
        }
        self.grads.iter_mut().for_each(|g| *g = 0.0);
        self.q
            .backward(&mut self.cache, &self.d_q[..rows], &mut self.grads, None)?;
        if let Some((lr, polyak)) = update {
            self.adam.step(lr, self.q.params_mut(), &self.grads)?;
            if let Some(tau) = polyak {
                polyak_host(self.target.params_mut(), self.q.params(), tau)?;
            }
        }
        self.q.forward(pi_input, rows, &mut self.pi_cache)?;
        Ok((sq / rows as f64, sum / rows as f64))
    }

    /// `dQ_j/d[s, a~]` on the rows in `min_rows` (gathered from `pi_cache`), scaled by `-1/B`.
    fn min_input_gradient(&mut self, rows: usize) -> Result<()> {
        let n = self.min_rows.len();
        if n == 0 {
            return Ok(());
        }
        self.pi_cache
            .gather_rows(&self.min_rows, &mut self.min_cache)?;
        let scale = -1.0 / rows as f32;
        self.d_q[..n].iter_mut().for_each(|d| *d = scale);
        let width = self.q.input_dim();
        self.q.input_gradient(
            &mut self.min_cache,
            &self.d_q[..n],
            &mut self.d_input[..n * width],
        )?;
        Ok(())
    }
}

/// Runs `a` and `b` on two threads, or one after the other.
fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if parallel {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// Actor and twin critics (with targets) on the host, their Adam states and every buffer a
/// gradient step needs, allocated once for minibatches of `rows`.
#[derive(Debug, Clone)]
pub(super) struct HostSac {
    pub actor: HostMlp,
    twins: [Twin; 2],
    actor_adam: HostAdam,
    obs_dim: usize,
    act_dim: usize,
    rows: usize,
    /// Whether the twin critics run on two threads.
    pub parallel: bool,
    /// The actor on `s'` (step 1) and on `s` (step 3).
    next_cache: MlpCache,
    cache: MlpCache,
    /// The actor on one observation, for acting.
    act_cache: MlpCache,
    /// `[s', a']`, `[s, a]`, `[s, a~]`: `[B, obs_dim + A]`.
    next_input: Vec<f32>,
    input: Vec<f32>,
    pi_input: Vec<f32>,
    /// `y`, `[B]`.
    y: Vec<f32>,
    /// `log pi(a~|s)`, `[B]`.
    log_prob: Vec<f64>,
    /// `u`, `tanh(u)` and `sigma` of the actor-loss sample, `[B, A]`.
    u: Vec<f32>,
    squashed: Vec<f32>,
    sigma: Vec<f32>,
    /// `dJ_pi/d[mu | log_sigma]`, `[B, 2A]`.
    d_actor: Vec<f32>,
    pub g_actor: Vec<f32>,
}

impl HostSac {
    /// Host copies of `actor`, `critic` and `target` (twin ensembles), with fresh Adam
    /// moments, sized for minibatches of `rows`.
    pub fn new(
        actor: &Mlp,
        critic: &EnsembleMlp,
        target: &EnsembleMlp,
        adam: &AdamSettings,
        rows: usize,
    ) -> Result<Self> {
        let actor = actor.to_host()?;
        let [q1, q2] = ensemble_to_host(critic)?;
        let [t1, t2] = ensemble_to_host(target)?;
        let obs_dim = actor.input_dim();
        let act_dim = actor.output_dim() / 2;
        let width = q1.input_dim();
        if actor.output_dim() != 2 * act_dim || width != obs_dim + act_dim {
            return Err(RlError::Shape {
                what: "SAC critic input",
                expected: obs_dim + act_dim,
                got: width,
            });
        }
        Ok(Self {
            twins: [
                Twin::new(q1, t1, adam, rows)?,
                Twin::new(q2, t2, adam, rows)?,
            ],
            actor_adam: HostAdam::new(adam, actor.num_params())?,
            obs_dim,
            act_dim,
            rows,
            parallel: true,
            next_cache: MlpCache::new(&actor, rows),
            cache: MlpCache::new(&actor, rows),
            act_cache: MlpCache::new(&actor, 1),
            next_input: vec![0.0; rows * width],
            input: vec![0.0; rows * width],
            pi_input: vec![0.0; rows * width],
            y: vec![0.0; rows],
            log_prob: vec![0.0; rows],
            u: vec![0.0; rows * act_dim],
            squashed: vec![0.0; rows * act_dim],
            sigma: vec![0.0; rows * act_dim],
            d_actor: vec![0.0; rows * 2 * act_dim],
            g_actor: vec![0.0; actor.num_params()],
            actor,
        })
    }

    /// The actor's output `[mu | log_sigma (unclamped)]` for one observation.
    pub fn act(&mut self, obs: &[f32]) -> Result<&[f32]> {
        self.actor.forward(obs, 1, &mut self.act_cache)?;
        Ok(self.act_cache.output())
    }

    /// The critic gradients of the last step, member by member.
    #[cfg(test)]
    pub fn critic_grads(&self) -> [&[f32]; 2] {
        [&self.twins[0].grads, &self.twins[1].grads]
    }

    fn check(&self, mb: &Minibatch<'_>) -> Result<()> {
        let (b, d, a) = (self.rows, self.obs_dim, self.act_dim);
        for (what, expected, got) in [
            ("minibatch observations", b * d, mb.obs.len()),
            ("minibatch next observations", b * d, mb.next_obs.len()),
            ("minibatch actions", b * a, mb.actions.len()),
            ("minibatch rewards", b, mb.rewards.len()),
            ("minibatch terminal flags", b, mb.terminated.len()),
            ("actor-loss noise", b * a, mb.noise.len()),
            ("critic-target noise", b * a, mb.next_noise.len()),
        ] {
            if expected != got {
                return Err(RlError::Shape {
                    what,
                    expected,
                    got,
                });
            }
        }
        Ok(())
    }

    /// Steps 1-3 and 5 of the module docs on one minibatch (step 4 is the learner's).
    pub fn gradient_step(&mut self, mb: &Minibatch<'_>, c: StepCoefs) -> Result<StepValues> {
        self.check(mb)?;
        self.critic_target(mb, c.alpha, c.gamma)?;
        let (critic_loss, q1_mean) = self.critics(Some((c.lr, c.polyak)))?;
        let (actor_loss, mean_log_prob) = self.actor_grads(mb, c.alpha)?;
        self.actor_adam
            .step(c.lr, self.actor.params_mut(), &self.g_actor)?;
        Ok(StepValues {
            critic_loss,
            actor_loss,
            mean_log_prob,
            q1_mean,
        })
    }

    /// Step 1: the actor on `s'` (giving `a'`, `log pi(a'|s')`) and on `s` (giving the
    /// actor-loss sample `u`, `a~`, `log pi(a~|s)`, kept for step 3), the target critics on
    /// `[s', a']`, and `y` (eqs. 3 and 5).
    fn critic_target(&mut self, mb: &Minibatch<'_>, alpha: f64, gamma: f64) -> Result<()> {
        let (b, d, a) = (self.rows, self.obs_dim, self.act_dim);
        let w = d + a;
        let Self {
            actor,
            next_cache,
            cache,
            parallel,
            ..
        } = self;
        let (r1, r2) = join(
            *parallel,
            || actor.forward(mb.next_obs, b, next_cache),
            || actor.forward(mb.obs, b, cache),
        );
        r1?;
        r2?;
        // a' and log pi(a'|s') into `[s', a']`; `y` holds -alpha log pi(a'|s') for now.
        let out = self.next_cache.output();
        for i in 0..b {
            let row = &out[i * 2 * a..(i + 1) * 2 * a];
            let dst = &mut self.next_input[i * w..(i + 1) * w];
            dst[..d].copy_from_slice(&mb.next_obs[i * d..(i + 1) * d]);
            let mut lp = 0.0;
            for j in 0..a {
                let eps = mb.next_noise[i * a + j];
                let (u, log_sigma, _) = sample(row[j], row[a + j], eps);
                dst[d + j] = u.tanh() as f32;
                lp += log_prob_term(f64::from(eps), log_sigma, u);
            }
            self.y[i] = (-alpha * lp) as f32;
        }
        // The actor-loss sample: `[s, a~]` and what step 3's backward needs.
        let out = self.cache.output();
        for i in 0..b {
            let row = &out[i * 2 * a..(i + 1) * 2 * a];
            let dst = &mut self.pi_input[i * w..(i + 1) * w];
            dst[..d].copy_from_slice(&mb.obs[i * d..(i + 1) * d]);
            self.input[i * w..i * w + d].copy_from_slice(&mb.obs[i * d..(i + 1) * d]);
            self.input[i * w + d..(i + 1) * w].copy_from_slice(&mb.actions[i * a..(i + 1) * a]);
            let mut lp = 0.0;
            for j in 0..a {
                let eps = mb.noise[i * a + j];
                let (u, log_sigma, sigma) = sample(row[j], row[a + j], eps);
                let t = u.tanh();
                dst[d + j] = t as f32;
                self.u[i * a + j] = u as f32;
                self.squashed[i * a + j] = t as f32;
                self.sigma[i * a + j] = sigma as f32;
                lp += log_prob_term(f64::from(eps), log_sigma, u);
            }
            self.log_prob[i] = lp;
        }
        let [t0, t1] = &mut self.twins;
        let x = &self.next_input;
        let (r1, r2) = join(
            self.parallel,
            || t0.target.forward(x, b, &mut t0.target_cache),
            || t1.target.forward(x, b, &mut t1.target_cache),
        );
        r1?;
        r2?;
        for (i, y) in self.y.iter_mut().enumerate() {
            let q_next = t0.target_cache.output()[i].min(t1.target_cache.output()[i]);
            let soft = f64::from(q_next) + f64::from(*y);
            *y = (f64::from(mb.rewards[i]) + gamma * (1.0 - f64::from(mb.terminated[i])) * soft)
                as f32;
        }
        Ok(())
    }

    /// Step 2 on both critics (with `update`: their Adam steps and the Polyak update), then
    /// their forward passes on `[s, a~]`. Returns `(J_Q, mean Q_1(s, a))`.
    fn critics(&mut self, update: Option<(f64, Option<f64>)>) -> Result<(f64, f64)> {
        let b = self.rows;
        let [t0, t1] = &mut self.twins;
        let (input, pi_input, y) = (&self.input, &self.pi_input, &self.y);
        let (r1, r2) = join(
            self.parallel,
            || t0.critic_step(input, pi_input, y, b, update),
            || t1.critic_step(input, pi_input, y, b, update),
        );
        let ((l1, q1_mean), (l2, _)) = (r1?, r2?);
        Ok((0.5 * (l1 + l2), q1_mean))
    }

    /// Step 3's gradient (eq. 7 through eq. 9's reparameterization) into `g_actor`, through
    /// the critics' current forward passes on `[s, a~]`. Returns `(J_pi, mean log pi)`.
    fn actor_grads(&mut self, mb: &Minibatch<'_>, alpha: f64) -> Result<(f64, f64)> {
        let (b, d, a) = (self.rows, self.obs_dim, self.act_dim);
        let w = d + a;
        let [t0, t1] = &mut self.twins;
        t0.min_rows.clear();
        t1.min_rows.clear();
        let mut loss = 0.0;
        for i in 0..b {
            let (q0, q1) = (t0.pi_cache.output()[i], t1.pi_cache.output()[i]);
            if q0 <= q1 {
                t0.min_rows.push(i);
            } else {
                t1.min_rows.push(i);
            }
            loss += alpha * self.log_prob[i] - f64::from(q0.min(q1));
        }
        let (r1, r2) = join(
            self.parallel,
            || t0.min_input_gradient(b),
            || t1.min_input_gradient(b),
        );
        r1?;
        r2?;
        let inv_b = 1.0 / b as f64;
        let out = self.cache.output();
        for twin in [&*t0, &*t1] {
            for (k, &i) in twin.min_rows.iter().enumerate() {
                let d_a = &twin.d_input[k * w + d..(k + 1) * w];
                let row = &out[i * 2 * a..(i + 1) * 2 * a];
                let d_row = &mut self.d_actor[i * 2 * a..(i + 1) * 2 * a];
                for j in 0..a {
                    let t = f64::from(self.squashed[i * a + j]);
                    let d_u = alpha * 2.0 * t * inv_b + f64::from(d_a[j]) * (1.0 - t * t);
                    d_row[j] = d_u as f32;
                    let raw = f64::from(row[a + j]);
                    d_row[a + j] = if (LOG_STD_MIN..=LOG_STD_MAX).contains(&raw) {
                        let eps = f64::from(mb.noise[i * a + j]);
                        (d_u * f64::from(self.sigma[i * a + j]) * eps - alpha * inv_b) as f32
                    } else {
                        0.0
                    };
                }
            }
        }
        self.g_actor.iter_mut().for_each(|g| *g = 0.0);
        self.actor.backward(
            &mut self.cache,
            &self.d_actor[..b * 2 * a],
            &mut self.g_actor,
            None,
        )?;
        let mean_log_prob = self.log_prob.iter().sum::<f64>() * inv_b;
        Ok((loss * inv_b, mean_log_prob))
    }

    /// The burn networks with the host weights written in (parameter ids kept).
    pub fn write_into(
        &self,
        actor: Mlp,
        critic: EnsembleMlp,
        target: EnsembleMlp,
    ) -> Result<(Mlp, EnsembleMlp, EnsembleMlp)> {
        let [t0, t1] = &self.twins;
        Ok((
            actor.load_host(&self.actor)?,
            ensemble_load_host(critic, [&t0.q, &t1.q])?,
            ensemble_load_host(target, [&t0.target, &t1.target])?,
        ))
    }
}

/// `(u, log_sigma, sigma)` of one action dimension: `log_sigma = clamp(raw, -20, 2)`,
/// `u = mu + exp(log_sigma) eps`.
#[inline]
fn sample(mu: f32, raw_log_sigma: f32, eps: f32) -> (f64, f64, f64) {
    let log_sigma = f64::from(raw_log_sigma).clamp(LOG_STD_MIN, LOG_STD_MAX);
    let sigma = log_sigma.exp();
    (f64::from(mu) + sigma * f64::from(eps), log_sigma, sigma)
}

/// One dimension's term of `log pi(tanh(u)|s)`:
/// `-1/2 eps^2 - log_sigma - 1/2 log(2 pi) - 2 (log 2 - u - softplus(-2 u))`.
#[inline]
fn log_prob_term(eps: f64, log_sigma: f64, u: f64) -> f64 {
    let x = -2.0 * u;
    let softplus = x.max(0.0) + (-x.abs()).exp().ln_1p();
    -0.5 * eps * eps - log_sigma - LN_SQRT_2PI - 2.0 * (std::f64::consts::LN_2 - u - softplus)
}

/// Every float parameter of a module, in visiting order, with its shape.
struct Collect(Vec<(Vec<usize>, Vec<f32>)>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let dims = t.dims().to_vec();
        self.0.push((dims, t.into_data().iter::<f32>().collect()));
    }
}

/// Replaces every float parameter's values, in visiting order, keeping ids and autodiff flags.
struct Replace(std::vec::IntoIter<Vec<f32>>);

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(values) = self.0.next() else {
            return param;
        };
        param.map(|t| {
            let require_grad = t.is_require_grad();
            Tensor::<D>::from_data(TensorData::new(values, t.shape()), &t.device())
                .set_require_grad(require_grad)
        })
    }
}

/// The per-layer `(in, out)` widths of a twin ensemble from its visited parameters: the
/// weights `[2, in, out]` of every layer, then the biases `[2, 1, out]`.
fn ensemble_layers(params: &[(Vec<usize>, Vec<f32>)]) -> Result<Vec<(usize, usize)>> {
    let bad = |got: usize| RlError::Shape {
        what: "SAC twin critic parameters",
        expected: 2,
        got,
    };
    let layers = params.len() / 2;
    if layers == 0 || params.len() != 2 * layers {
        return Err(bad(params.len()));
    }
    let mut widths = Vec::with_capacity(layers);
    for l in 0..layers {
        match (params[l].0.as_slice(), params[layers + l].0.as_slice()) {
            (&[2, i, o], &[2, 1, ob]) if ob == o => widths.push((i, o)),
            (w, _) => return Err(bad(w.first().copied().unwrap_or(0))),
        }
    }
    Ok(widths)
}

/// The two members of a twin [`EnsembleMlp`] (ReLU, as SAC builds it) as host MLPs.
fn ensemble_to_host(ens: &EnsembleMlp) -> Result<[HostMlp; 2]> {
    let mut c = Collect(Vec::new());
    ens.visit(&mut c);
    let widths = ensemble_layers(&c.0)?;
    let layers = widths.len();
    let mut sizes = vec![widths[0].0];
    sizes.extend(widths.iter().map(|&(_, o)| o));
    let member = |m: usize| -> Result<HostMlp> {
        let weights: Vec<Vec<f32>> = (0..layers)
            .map(|l| {
                let (i, o) = widths[l];
                c.0[l].1[m * i * o..(m + 1) * i * o].to_vec()
            })
            .collect();
        let biases: Vec<Vec<f32>> = (0..layers)
            .map(|l| {
                let o = widths[l].1;
                c.0[layers + l].1[m * o..(m + 1) * o].to_vec()
            })
            .collect();
        Ok(HostMlp::from_layers(
            sizes.clone(),
            HostActivation::Relu,
            &weights,
            &biases,
        )?)
    };
    Ok([member(0)?, member(1)?])
}

/// `ens` with its two members' weights replaced by `members`' (same widths).
fn ensemble_load_host(ens: EnsembleMlp, members: [&HostMlp; 2]) -> Result<EnsembleMlp> {
    let mut c = Collect(Vec::new());
    ens.visit(&mut c);
    let widths = ensemble_layers(&c.0)?;
    for m in members {
        let mut sizes = vec![widths[0].0];
        sizes.extend(widths.iter().map(|&(_, o)| o));
        if m.sizes() != sizes.as_slice() {
            return Err(RlError::Shape {
                what: "SAC host critic depth",
                expected: sizes.len(),
                got: m.sizes().len(),
            });
        }
    }
    let mut values = Vec::with_capacity(2 * widths.len());
    for l in 0..widths.len() {
        let mut w = Vec::with_capacity(2 * members[0].layer(l).0.len());
        for m in members {
            w.extend_from_slice(m.layer(l).0);
        }
        values.push(w);
    }
    for l in 0..widths.len() {
        let mut b = Vec::with_capacity(2 * members[0].layer(l).1.len());
        for m in members {
            b.extend_from_slice(m.layer(l).1);
        }
        values.push(b);
    }
    Ok(ens.map(&mut Replace(values.into_iter())))
}

#[cfg(test)]
mod tests {
    use super::super::{Sac, SacConfig, SacEngine};
    use super::*;
    use burn::optim::GradientsParams;
    use kiln_tensor::testing::{cpu, host_values, max_abs_diff};
    use kiln_tensor::{EnsembleMlpConfig, MlpConfig, MlpInit, TanhGaussian};

    /// Error of `got` against `want`, relative to the largest entry of `want`.
    fn rel_err(want: &[f32], got: &[f32]) -> f32 {
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        max_abs_diff(want, got) / scale
    }

    /// An ensemble's gradients in `grads`, member by member in the layout of
    /// [`HostMlp::params`].
    fn ensemble_grads(ens: &EnsembleMlp, grads: &GradientsParams) -> [Vec<f32>; 2] {
        struct Grads<'a>(&'a GradientsParams, Vec<(Vec<usize>, Vec<f32>)>);
        impl ModuleVisitor for Grads<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let dims = param.val().dims().to_vec();
                let n = dims.iter().product();
                let g = match self.0.get::<D>(param.id) {
                    Some(g) => g.into_data().iter::<f32>().collect(),
                    None => vec![0.0; n],
                };
                self.1.push((dims, g));
            }
        }
        let mut v = Grads(grads, Vec::new());
        ens.visit(&mut v);
        let widths = ensemble_layers(&v.1).expect("twin layout");
        let layers = widths.len();
        let member = |m: usize| {
            let mut out = Vec::new();
            for (l, &(i, o)) in widths.iter().enumerate() {
                out.extend_from_slice(&v.1[l].1[m * i * o..(m + 1) * i * o]);
                out.extend_from_slice(&v.1[layers + l].1[m * o..(m + 1) * o]);
            }
            out
        };
        [member(0), member(1)]
    }

    struct Fixture {
        obs: Vec<f32>,
        actions: Vec<f32>,
        rewards: Vec<f32>,
        next_obs: Vec<f32>,
        terminated: Vec<f32>,
        noise: Vec<f32>,
        next_noise: Vec<f32>,
    }

    impl Fixture {
        fn new(rows: usize, d: usize, a: usize) -> Self {
            let scaled = |seed, n, k: f32| -> Vec<f32> {
                host_values(seed, n).iter().map(|v| k * v).collect()
            };
            Self {
                obs: scaled(1, rows * d, 2.0),
                actions: host_values(2, rows * a),
                rewards: scaled(3, rows, 3.0),
                next_obs: scaled(4, rows * d, 2.0),
                terminated: (0..rows)
                    .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
                    .collect(),
                noise: scaled(6, rows * a, 1.7),
                next_noise: scaled(7, rows * a, 1.7),
            }
        }

        fn minibatch(&self) -> Minibatch<'_> {
            Minibatch {
                obs: &self.obs,
                actions: &self.actions,
                rewards: &self.rewards,
                next_obs: &self.next_obs,
                terminated: &self.terminated,
                noise: &self.noise,
                next_noise: &self.next_noise,
            }
        }
    }

    /// On a fixed minibatch and fixed noise, the host engine's critic gradients (eq. 6), actor
    /// gradients (eq. 9 through the twin critics' min, the tanh-Gaussian log-density and the
    /// log-sigma clamp) and temperature gradient (eq. 18) equal burn autodiff's.
    #[test]
    fn host_gradients_match_burn_autodiff() {
        let (rows, d, a) = (64, 3, 2);
        let (alpha, gamma) = (0.37, 0.99);
        let device = cpu().autodiff();
        let (actor, critic, target) = {
            let _guard = crate::off_policy::INIT_LOCK
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            kiln_tensor::Seeds::new(11).seed_device(&device);
            let actor = MlpConfig::new(vec![d, 32, 32, 2 * a])
                .with_init(MlpInit::Default)
                .init(&device)
                .expect("actor");
            let critic = EnsembleMlpConfig::new(2, vec![d + a, 32, 32, 1])
                .init(&device)
                .expect("critic");
            let target = EnsembleMlpConfig::new(2, vec![d + a, 32, 32, 1])
                .init(&device)
                .expect("target")
                .valid();
            kiln_tensor::materialize(&actor);
            kiln_tensor::materialize(&critic);
            kiln_tensor::materialize(&target);
            (actor, critic, target)
        };
        let mut h =
            HostSac::new(&actor, &critic, &target, &AdamSettings::default(), rows).expect("host");
        // Larger actor outputs, and log-sigma biases near the upper clamp, so some entries
        // are clamped (no gradient) and some are not.
        let bump = host_values(9, h.actor.num_params());
        h.actor
            .params_mut()
            .iter_mut()
            .zip(bump)
            .for_each(|(p, b)| *p += 0.4 * b);
        let depth = h.actor.depth();
        h.actor.layer_mut(depth - 1).1[a..]
            .iter_mut()
            .for_each(|b| *b = 1.6);
        // Critics without an output offset between them, so each is the smaller on some rows.
        for (j, twin) in h.twins.iter_mut().enumerate() {
            let bump = host_values(20 + j as u64, twin.q.num_params());
            twin.q
                .params_mut()
                .iter_mut()
                .zip(bump)
                .for_each(|(p, b)| *p += 0.2 * b);
            let depth = twin.q.depth();
            twin.q
                .layer_mut(depth - 1)
                .1
                .iter_mut()
                .for_each(|b| *b = 0.0);
        }
        let (actor, critic, target) = h.write_into(actor, critic, target).expect("write");
        let fx = Fixture::new(rows, d, a);
        let mb = fx.minibatch();
        h.critic_target(&mb, alpha, gamma).expect("target");
        let (critic_loss, q1_mean) = h.critics(None).expect("critics");
        let (actor_loss, mean_log_prob) = h.actor_grads(&mb, alpha).expect("actor");

        let inner = cpu();
        let m = |v: &[f32], cols: usize, dev: &burn::tensor::Device| {
            Tensor::<2>::from_data(TensorData::new(v.to_vec(), [rows, cols]), dev)
        };
        let v1 = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [rows]), &inner);
        let dist = |out: Tensor<2>| {
            let mean = out.clone().narrow(1, 0, a);
            let log_std = out.narrow(1, a, a).clamp(LOG_STD_MIN, LOG_STD_MAX);
            TanhGaussian::new(mean, log_std)
        };
        // Step 1 on burn.
        let next_obs = m(&fx.next_obs, d, &inner);
        let next_dist = dist(actor.valid().forward(next_obs.clone()));
        let next = next_dist.sample_with_noise(m(&fx.next_noise, a, &inner));
        let next_lp = next_dist.log_prob_pre_tanh(next.pre_tanh);
        let q_next = target
            .forward_shared(Tensor::cat(vec![next_obs, next.action], 1))
            .min_dim(0)
            .reshape([rows]);
        let y = v1(&fx.rewards)
            + (v1(&fx.terminated).neg() + 1.0)
                * (q_next - next_lp.mul_scalar(alpha)).mul_scalar(gamma);
        let y_host: Vec<f32> = y.clone().into_data().iter::<f32>().collect();
        assert!(
            rel_err(&y_host, &h.y) < 1e-5,
            "y {}",
            rel_err(&y_host, &h.y)
        );
        // Step 2.
        let obs = m(&fx.obs, d, &device);
        let q = critic
            .forward_shared(Tensor::cat(
                vec![obs.clone(), m(&fx.actions, a, &device)],
                1,
            ))
            .reshape([2, rows]);
        let q1 = q.clone().narrow(0, 0, 1).mean().into_scalar::<f32>() as f64;
        let loss = (q - y.reshape([1, rows]).autodiff())
            .powi_scalar(2)
            .mean_dim(1)
            .sum()
            .mul_scalar(0.5);
        let want_loss = loss.clone().into_scalar::<f32>() as f64;
        assert!((want_loss - critic_loss).abs() < 1e-5 * want_loss.abs().max(1.0));
        assert!((q1 - q1_mean).abs() < 1e-5 * q1.abs().max(1.0));
        let grads = GradientsParams::from_grads(loss.backward(), &critic);
        for (j, (want, got)) in ensemble_grads(&critic, &grads)
            .iter()
            .zip(h.critic_grads())
            .enumerate()
        {
            let e = rel_err(want, got);
            eprintln!("critic {j} gradient rel. error {e:.1e}");
            assert!(e < 1e-4, "critic {j}: {e}");
        }
        // Step 3, through the same critics (no Adam step in between here).
        let pi = dist(actor.forward(obs.clone()));
        let raw: Vec<f32> = pi.base.log_std.clone().into_data().iter::<f32>().collect();
        let clamped = raw.iter().filter(|&&v| v >= LOG_STD_MAX as f32).count();
        assert!(
            clamped > 0 && clamped < raw.len(),
            "the clamp should be active on some entries only ({clamped} of {})",
            raw.len()
        );
        let sample = pi.sample_with_noise(m(&fx.noise, a, &device));
        let lp = pi.log_prob_pre_tanh(sample.pre_tanh);
        let q_pi = critic
            .clone()
            .no_grad()
            .forward_shared(Tensor::cat(vec![obs, sample.action], 1));
        let both: Vec<f32> = q_pi.clone().into_data().iter::<f32>().collect();
        let routed = (0..rows).filter(|&i| both[i] <= both[rows + i]).count();
        assert!(
            routed > 0 && routed < rows,
            "both critics should be the min somewhere: {routed} {:?}",
            &both[..8]
        );
        let q_pi = q_pi.min_dim(0).reshape([rows]);
        let actor_obj = (lp.clone().mul_scalar(alpha) - q_pi).mean();
        let want_actor = actor_obj.clone().into_scalar::<f32>() as f64;
        assert!((want_actor - actor_loss).abs() < 1e-5 * want_actor.abs().max(1.0));
        let want_lp = lp.mean().into_scalar::<f32>() as f64;
        assert!((want_lp - mean_log_prob).abs() < 1e-5 * want_lp.abs().max(1.0));
        let grads = GradientsParams::from_grads(actor_obj.backward(), &actor);
        let want = actor.grads_to_host(&grads);
        let e = rel_err(&want, &h.g_actor);
        eprintln!("actor gradient rel. error {e:.1e}");
        assert!(e < 1e-4, "actor: {e}");
        // Step 4: d J(alpha) / d log alpha = -(mean log pi + Hbar), from the same mean.
        let hbar = -(a as f64);
        let (want_g, got_g) = (-(want_lp + hbar), -(mean_log_prob + hbar));
        assert!((want_g - got_g).abs() < 1e-5 * want_g.abs().max(1.0));
    }

    fn learner(engine: SacEngine) -> Sac {
        let config = SacConfig {
            learning_starts: 100,
            batch_size: 64,
            hidden_sizes: vec![32, 32],
            target_update_interval: 2,
            engine,
            ..SacConfig::pendulum()
        };
        let mut sac = Sac::with_device(config, "Pendulum-v1", 4, cpu()).expect("sac");
        sac.learn(100, &mut crate::NoCallback)
            .expect("random phase");
        sac
    }

    fn params(sac: &Sac) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let critic = sac.critic.as_ref().expect("critic");
        let flat = |e: &EnsembleMlp| {
            let [q1, q2] = ensemble_to_host(e).expect("critic");
            [q1.params(), q2.params()].concat()
        };
        (
            sac.policy.to_host().expect("actor").params().to_vec(),
            flat(critic),
            flat(&sac.critic_target),
        )
    }

    /// From the same initial weights, replay buffer and noise, full gradient steps (critic
    /// Adam step, actor Adam step, temperature step, Polyak update on every second step)
    /// leave the same parameters on both engines.
    #[test]
    fn gradient_steps_agree_across_engines() {
        let mut host = learner(SacEngine::Host);
        let mut burn = learner(SacEngine::Burn);
        assert!(host.host.is_some() && burn.host.is_none());
        let before = params(&burn);
        assert_eq!(params(&host), before, "same initial weights");
        for _ in 0..3 {
            let sh = host.gradient_step().expect("host step");
            let sb = burn.gradient_step().expect("burn step");
            assert!((sh.critic_loss - sb.critic_loss).abs() < 1e-4 * sb.critic_loss.max(1.0));
            assert!((sh.actor_loss - sb.actor_loss).abs() < 1e-4 * sb.actor_loss.abs().max(1.0));
            assert!((sh.alpha - sb.alpha).abs() < 1e-6);
        }
        host.sync_burn().expect("sync");
        let (after_h, after_b) = (params(&host), params(&burn));
        assert_ne!(after_b.0, before.0, "the steps moved the actor");
        assert_ne!(after_b.2, before.2, "the Polyak update moved the targets");
        for (what, h, b) in [
            ("actor", &after_h.0, &after_b.0),
            ("critics", &after_h.1, &after_b.1),
            ("target critics", &after_h.2, &after_b.2),
        ] {
            let e = rel_err(b, h);
            eprintln!("{what} after 3 steps: rel. error {e:.1e}");
            assert!(e < 1e-5, "{what}: {e}");
        }
        assert!((host.log_alpha - burn.log_alpha).abs() < 1e-6);
    }

    #[test]
    fn gathered_rows_give_the_rows_input_gradient() {
        let mlp = {
            let mut m = HostMlp::zeros(vec![3, 8, 8, 1], HostActivation::Relu).expect("mlp");
            let v = host_values(5, m.num_params());
            m.params_mut().copy_from_slice(&v);
            m
        };
        let rows = 6;
        let x: Vec<f32> = host_values(6, rows * 3);
        let mut full = MlpCache::new(&mlp, rows);
        mlp.forward(&x, rows, &mut full).expect("forward");
        let pick = [4usize, 1, 2];
        let mut part = MlpCache::new(&mlp, 1);
        full.gather_rows(&pick, &mut part).expect("gather");
        let mut d_part = vec![0.0; pick.len() * 3];
        mlp.input_gradient(&mut part, &[1.0; 3], &mut d_part)
            .expect("part");
        let mut d_full = vec![0.0; rows * 3];
        mlp.input_gradient(&mut full, &[1.0; 6], &mut d_full)
            .expect("full");
        for (k, &r) in pick.iter().enumerate() {
            assert_eq!(&d_part[k * 3..(k + 1) * 3], &d_full[r * 3..(r + 1) * 3]);
        }
        assert!(full.gather_rows(&[rows], &mut part).is_err());
    }

    /// Milliseconds per gradient step at the Pendulum zoo setting (256-256, batch 256) on the
    /// host engine with the twin critics on two threads and on one, and on burn, interleaved
    /// in one process. Prints only; run in release.
    #[test]
    #[ignore = "timing: cargo test --release -p kiln-rl --lib sac_gradient_step_timing -- --ignored --nocapture"]
    fn sac_gradient_step_timing() {
        let make = |engine| {
            let config = SacConfig {
                learning_starts: 256,
                engine,
                ..SacConfig::pendulum()
            };
            let mut sac = Sac::with_device(config, "Pendulum-v1", 0, cpu()).expect("sac");
            sac.learn(256, &mut crate::NoCallback)
                .expect("random phase");
            sac
        };
        let (mut host, mut burn) = (make(SacEngine::Host), make(SacEngine::Burn));
        let time = |sac: &mut Sac, steps: usize| {
            let start = std::time::Instant::now();
            for _ in 0..steps {
                sac.gradient_step().expect("step");
            }
            start.elapsed().as_secs_f64() * 1e3 / steps as f64
        };
        time(&mut host, 20);
        time(&mut burn, 5);
        for round in 0..3 {
            let mut row = Vec::new();
            for parallel in [true, false] {
                if let Some(h) = host.host.as_mut() {
                    h.parallel = parallel;
                }
                row.push(time(&mut host, 200));
            }
            let b = time(&mut burn, 40);
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            println!(
                "round {round}: host two threads {:.2} ms, host one thread {:.2} ms, burn {b:.2} ms per gradient step; loadavg {}",
                row[0],
                row[1],
                load.trim()
            );
        }
    }
}
