//! PPO's networks and minibatch update on the host engine ([`kiln_tensor::host`]): the same
//! loss as [`super::ppo_loss`] (the negated eq. 9 of Schulman et al. 2017, with the clipped
//! surrogate of eq. 7), differentiated by hand, then global-norm clipping and Adam, all on
//! preallocated `f32` buffers. The burn [`super::ActorCritic`] stays the source of the
//! initial weights and the form in which a policy is saved, evaluated and exposed.

use burn::tensor::{Tensor, TensorData};
use kiln_tensor::AdamSettings;
use kiln_tensor::host::{HostAdam, HostMlp, MlpCache, clip_grad_norm_host};

use super::{ActorCritic, LN_SQRT_2PI, PolicyHead};
use crate::error::Result;

/// One minibatch, gathered from the rollout buffer (rows `B`).
pub(super) struct Minibatch<'a> {
    pub obs: &'a [f32],
    /// `[B]` action indices (categorical) or `[B, A]` actions (Gaussian), as stored.
    pub actions: &'a [f32],
    pub old_log_prob: &'a [f32],
    /// Already normalized if `norm_adv`.
    pub advantages: &'a [f32],
    pub returns: &'a [f32],
    pub old_value: &'a [f32],
}

/// The loss terms of one minibatch (the values of [`super::PpoLoss`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct LossValues {
    pub loss: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub old_approx_kl: f64,
    pub approx_kl: f64,
    pub clipfrac: f64,
}

/// The PPO loss coefficients of one update.
#[derive(Debug, Clone, Copy)]
pub(super) struct LossCoefs {
    pub clip: f64,
    pub clip_vloss: bool,
    pub ent_coef: f64,
    pub vf_coef: f64,
}

/// Actor, critic and log-std on the host, their Adam states and every buffer an update
/// needs.
#[derive(Debug, Clone)]
pub(super) struct HostAgent {
    pub actor: HostMlp,
    pub critic: HostMlp,
    pub log_std: Vec<f32>,
    gaussian: bool,
    actor_adam: HostAdam,
    critic_adam: HostAdam,
    log_std_adam: HostAdam,
    actor_cache: MlpCache,
    critic_cache: MlpCache,
    d_actor: Vec<f32>,
    d_critic: Vec<f32>,
    pub g_actor: Vec<f32>,
    pub g_critic: Vec<f32>,
    pub g_log_std: Vec<f32>,
}

impl HostAgent {
    /// A host copy of `agent`, with fresh Adam moments, sized for minibatches of `rows`.
    pub fn new(
        agent: &ActorCritic,
        head: &PolicyHead,
        adam: &AdamSettings,
        rows: usize,
    ) -> Result<Self> {
        let actor = agent.actor.to_host()?;
        let critic = agent.critic.to_host()?;
        let log_std: Vec<f32> = agent.log_std.val().into_data().iter::<f32>().collect();
        let out = actor.output_dim();
        Ok(Self {
            gaussian: matches!(head, PolicyHead::Gaussian { .. }),
            actor_adam: HostAdam::new(adam, actor.num_params())?,
            critic_adam: HostAdam::new(adam, critic.num_params())?,
            log_std_adam: HostAdam::new(adam, log_std.len())?,
            actor_cache: MlpCache::new(&actor, rows),
            critic_cache: MlpCache::new(&critic, rows),
            d_actor: vec![0.0; rows * out],
            d_critic: vec![0.0; rows],
            g_actor: vec![0.0; actor.num_params()],
            g_critic: vec![0.0; critic.num_params()],
            g_log_std: vec![0.0; log_std.len()],
            actor,
            critic,
            log_std,
        })
    }

    /// `[actor(x) | critic(x)]` row by row for `rows` observations.
    pub fn forward(&mut self, obs: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.actor.forward(obs, rows, &mut self.actor_cache)?;
        self.critic.forward(obs, rows, &mut self.critic_cache)?;
        let out = self.actor.output_dim();
        let mut joined = Vec::with_capacity(rows * (out + 1));
        for (a, v) in self
            .actor_cache
            .output()
            .chunks_exact(out)
            .zip(self.critic_cache.output())
        {
            joined.extend_from_slice(a);
            joined.push(*v);
        }
        Ok(joined)
    }

    /// `V(x)` for `rows` observations.
    pub fn values(&mut self, obs: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.critic.forward(obs, rows, &mut self.critic_cache)?;
        Ok(self.critic_cache.output().to_vec())
    }

    /// The loss of one minibatch and its gradients, left in `g_actor`, `g_critic` and
    /// `g_log_std`. With `r = exp(log pi - log pi_old)` (eq. 6), per sample:
    /// - surrogate (eq. 7): `max(-A r, -A clip(r, 1 - eps, 1 + eps))`, whose derivative in
    ///   `r` is `-A` where the unclipped branch is the larger (always so inside the clip
    ///   range) and `0` where the clipped one is;
    /// - value: `0.5 (V - R)^2`, or with value clipping
    ///   `0.5 max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)`;
    /// - entropy bonus `-c2 S`; a categorical's `dS/dl_k = -p_k (log p_k + S)`, a
    ///   state-independent Gaussian's `dS/d log_std = 1`;
    /// - `d log pi / dl_k = [k = a] - p_k` (categorical), and for a Gaussian
    ///   `d log pi / d mu = z / sigma`, `d log pi / d log_std = z^2 - 1` with `z = (a - mu) / sigma`.
    ///
    /// Each term is averaged over the minibatch and combined as eq. 9 (negated).
    pub fn loss_and_grads(&mut self, mb: &Minibatch<'_>, c: LossCoefs) -> Result<LossValues> {
        let rows = mb.old_log_prob.len();
        self.actor.forward(mb.obs, rows, &mut self.actor_cache)?;
        self.critic.forward(mb.obs, rows, &mut self.critic_cache)?;
        let out = self.actor.output_dim();
        let inv_b = 1.0 / rows as f64;
        self.d_actor.resize(rows * out, 0.0);
        self.d_critic.resize(rows, 0.0);
        self.g_log_std.iter_mut().for_each(|g| *g = 0.0);
        let sigma: Vec<f64> = self.log_std.iter().map(|&s| f64::from(s).exp()).collect();
        let mut sums = LossValues::default();
        let outputs = self.actor_cache.output();
        let values = self.critic_cache.output();
        for i in 0..rows {
            let row = &outputs[i * out..(i + 1) * out];
            let d_row = &mut self.d_actor[i * out..(i + 1) * out];
            // log pi(a|s) and S(s); then the surrogate's gradient in log pi.
            let (log_prob, entropy) = if self.gaussian {
                let a = &mb.actions[i * out..(i + 1) * out];
                let mut lp = 0.0;
                let mut ent = 0.0;
                for j in 0..out {
                    let s = f64::from(self.log_std[j]);
                    let z = (f64::from(a[j]) - f64::from(row[j])) / sigma[j];
                    lp += -0.5 * z * z - s - LN_SQRT_2PI;
                    ent += s + 0.5 + LN_SQRT_2PI;
                }
                (lp, ent)
            } else {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z: f64 = row.iter().map(|&l| f64::from(l - max).exp()).sum();
                let log_z = f64::from(max) + z.ln();
                let mut ent = 0.0;
                for &l in row {
                    let lp = f64::from(l) - log_z;
                    ent -= lp.exp() * lp;
                }
                (f64::from(row[mb.actions[i] as usize]) - log_z, ent)
            };
            let adv = f64::from(mb.advantages[i]);
            let log_ratio = log_prob - f64::from(mb.old_log_prob[i]);
            let ratio = log_ratio.exp();
            let pg1 = -adv * ratio;
            let pg2 = -adv * ratio.clamp(1.0 - c.clip, 1.0 + c.clip);
            let d_ratio = if pg1 >= pg2 { -adv } else { 0.0 };
            let d_log_prob = d_ratio * ratio * inv_b;
            sums.policy_loss += pg1.max(pg2);
            sums.entropy += entropy;
            sums.old_approx_kl -= log_ratio;
            sums.approx_kl += (ratio - 1.0) - log_ratio;
            if (ratio - 1.0).abs() > c.clip {
                sums.clipfrac += 1.0;
            }
            if self.gaussian {
                let a = &mb.actions[i * out..(i + 1) * out];
                for j in 0..out {
                    let z = (f64::from(a[j]) - f64::from(row[j])) / sigma[j];
                    d_row[j] = (d_log_prob * z / sigma[j]) as f32;
                    self.g_log_std[j] += (d_log_prob * (z * z - 1.0) - c.ent_coef * inv_b) as f32;
                }
            } else {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z: f64 = row.iter().map(|&l| f64::from(l - max).exp()).sum();
                let log_z = f64::from(max) + z.ln();
                let act = mb.actions[i] as usize;
                for (k, (&l, d)) in row.iter().zip(d_row.iter_mut()).enumerate() {
                    let lp = f64::from(l) - log_z;
                    let p = lp.exp();
                    let onehot = if k == act { 1.0 } else { 0.0 };
                    *d = (d_log_prob * (onehot - p) + c.ent_coef * inv_b * p * (lp + entropy))
                        as f32;
                }
            }
            // Value loss.
            let v = f64::from(values[i]);
            let ret = f64::from(mb.returns[i]);
            let (vl, dv) = if c.clip_vloss {
                let old = f64::from(mb.old_value[i]);
                let unclipped = (v - ret).powi(2);
                let delta = v - old;
                let clipped_v = old + delta.clamp(-c.clip, c.clip);
                let clipped = (clipped_v - ret).powi(2);
                if unclipped >= clipped {
                    (unclipped, v - ret)
                } else if delta.abs() < c.clip {
                    (clipped, clipped_v - ret)
                } else {
                    (clipped, 0.0)
                }
            } else {
                ((v - ret).powi(2), v - ret)
            };
            sums.value_loss += 0.5 * vl;
            self.d_critic[i] = (c.vf_coef * dv * inv_b) as f32;
        }
        let mean = |x: f64| x * inv_b;
        let values = LossValues {
            policy_loss: mean(sums.policy_loss),
            value_loss: mean(sums.value_loss),
            entropy: mean(sums.entropy),
            old_approx_kl: mean(sums.old_approx_kl),
            approx_kl: mean(sums.approx_kl),
            clipfrac: mean(sums.clipfrac),
            loss: 0.0,
        };
        self.g_actor.iter_mut().for_each(|g| *g = 0.0);
        self.g_critic.iter_mut().for_each(|g| *g = 0.0);
        self.actor.backward(
            &mut self.actor_cache,
            &self.d_actor[..rows * out],
            &mut self.g_actor,
            None,
        )?;
        self.critic.backward(
            &mut self.critic_cache,
            &self.d_critic[..rows],
            &mut self.g_critic,
            None,
        )?;
        Ok(LossValues {
            loss: values.policy_loss - c.ent_coef * values.entropy + c.vf_coef * values.value_loss,
            ..values
        })
    }

    /// Clips the gradients of the last [`HostAgent::loss_and_grads`] to a global norm of
    /// `max_norm` and takes one Adam step; returns the norm before clipping. A categorical
    /// head's log-std takes no part (it has no gradient), as in the burn path.
    pub fn step(&mut self, lr: f64, max_norm: f64) -> Result<f64> {
        let norm = if self.gaussian {
            clip_grad_norm_host(
                &mut [&mut self.g_actor, &mut self.g_critic, &mut self.g_log_std],
                max_norm,
            )
        } else {
            clip_grad_norm_host(&mut [&mut self.g_actor, &mut self.g_critic], max_norm)
        };
        self.actor_adam
            .step(lr, self.actor.params_mut(), &self.g_actor)?;
        self.critic_adam
            .step(lr, self.critic.params_mut(), &self.g_critic)?;
        if self.gaussian {
            self.log_std_adam
                .step(lr, &mut self.log_std, &self.g_log_std)?;
        }
        Ok(norm)
    }

    /// `agent` with the host weights written in (parameter ids kept).
    pub fn write_into(&self, agent: ActorCritic) -> Result<ActorCritic> {
        let ActorCritic {
            actor,
            critic,
            log_std,
        } = agent;
        let values = self.log_std.clone();
        let log_std = log_std.map(|t: Tensor<1>| {
            let require_grad = t.is_require_grad();
            Tensor::<1>::from_data(TensorData::new(values, [self.log_std.len()]), &t.device())
                .set_require_grad(require_grad)
        });
        Ok(ActorCritic {
            actor: actor.load_host(&self.actor)?,
            critic: critic.load_host(&self.critic)?,
            log_std,
        })
    }
}
