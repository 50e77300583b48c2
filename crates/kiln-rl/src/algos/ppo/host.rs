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

#[cfg(test)]
mod tests {
    use super::super::{ActionBatch, PpoConfig, PpoLossInputs, ppo_loss};
    use super::*;
    use burn::optim::GradientsParams;
    use burn::tensor::Int;
    use kiln_tensor::Seeds;
    use kiln_tensor::testing::{cpu, host_values, max_abs_diff};

    /// Relative error of `got` against `want`, scaled by the largest entry of `want`: the
    /// two sides sum the same products in different orders in `f32` (burn) and `f64`/`f32`
    /// (host), so entries agree to about 1e-6 of the gradient's scale; 1e-4 leaves room for
    /// the 5e-7 difference of the two `tanh` implementations propagated through two layers.
    fn rel_err(want: &[f32], got: &[f32]) -> f32 {
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        max_abs_diff(want, got) / scale
    }

    fn check(head: PolicyHead, clip_vloss: bool) {
        let rows = 64;
        let obs_dim = 5;
        let config = PpoConfig {
            hidden_sizes: vec![32, 32],
            init_log_std: -0.3,
            ..PpoConfig::default()
        };
        let device = cpu().autodiff();
        let agent =
            ActorCritic::init(&config, obs_dim, &head, &Seeds::new(11), &device).expect("init");
        // Larger output weights than the 0.01 init, so ratios leave the clip range.
        let mut host = HostAgent::new(&agent, &head, &AdamSettings::default(), rows).expect("host");
        let bump = host_values(5, host.actor.num_params());
        host.actor
            .params_mut()
            .iter_mut()
            .zip(bump)
            .for_each(|(p, b)| *p += 0.3 * b);
        let agent = host.write_into(agent).expect("write");
        let obs: Vec<f32> = host_values(1, rows * obs_dim)
            .iter()
            .map(|v| 2.0 * v)
            .collect();
        let a_dim = head.action_dim();
        let actions: Vec<f32> = match &head {
            PolicyHead::Categorical { n, .. } => (0..rows).map(|i| (i % n) as f32).collect(),
            PolicyHead::Gaussian { .. } => host_values(2, rows * a_dim),
        };
        let old_log_prob: Vec<f32> = host_values(3, rows).iter().map(|v| v - 1.2).collect();
        let advantages = host_values(4, rows);
        let returns: Vec<f32> = host_values(6, rows).iter().map(|v| 3.0 * v).collect();
        let old_value: Vec<f32> = host_values(7, rows);
        let coefs = LossCoefs {
            clip: 0.2,
            clip_vloss,
            ent_coef: 0.05,
            vf_coef: 0.5,
        };
        let l = host
            .loss_and_grads(
                &Minibatch {
                    obs: &obs,
                    actions: &actions,
                    old_log_prob: &old_log_prob,
                    advantages: &advantages,
                    returns: &returns,
                    old_value: &old_value,
                },
                coefs,
            )
            .expect("host loss");
        // burn autodiff of `ppo_loss` on the same weights and minibatch.
        let x = Tensor::<2>::from_data(TensorData::new(obs.clone(), [rows, obs_dim]), &device);
        let batch = match &head {
            PolicyHead::Categorical { .. } => ActionBatch::Discrete(Tensor::<1, Int>::from_data(
                TensorData::new(
                    actions.iter().map(|&a| a as i64).collect::<Vec<_>>(),
                    [rows],
                ),
                &device,
            )),
            PolicyHead::Gaussian { .. } => ActionBatch::Continuous(Tensor::from_data(
                TensorData::new(actions.clone(), [rows, a_dim]),
                &device,
            )),
        };
        let (new_log_prob, entropy, new_value) = agent.evaluate(x, &batch);
        let v1 = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [rows]), &device);
        let loss = ppo_loss(
            PpoLossInputs {
                new_log_prob,
                entropy,
                new_value,
                old_log_prob: v1(&old_log_prob),
                advantages: v1(&advantages),
                returns: v1(&returns),
                old_value: v1(&old_value),
            },
            coefs.clip,
            clip_vloss,
            coefs.ent_coef,
            coefs.vf_coef,
        );
        let scalar = |t: Tensor<1>| f64::from(t.into_data().iter::<f32>().next().unwrap_or(0.0));
        let want_loss = scalar(loss.loss.clone());
        assert!((want_loss - l.loss).abs() < 1e-5 * (1.0 + want_loss.abs()));
        assert!((scalar(loss.clipfrac.clone()) - l.clipfrac).abs() < 1e-9);
        assert!(
            l.clipfrac > 0.0,
            "the test should exercise the clipped branch"
        );
        assert!((scalar(loss.approx_kl.clone()) - l.approx_kl).abs() < 1e-5);
        let grads = GradientsParams::from_grads(loss.loss.backward(), &agent);
        let ga = agent.actor.grads_to_host(&grads);
        let gc = agent.critic.grads_to_host(&grads);
        assert!(
            rel_err(&ga, &host.g_actor) < 1e-4,
            "actor {}",
            rel_err(&ga, &host.g_actor)
        );
        assert!(
            rel_err(&gc, &host.g_critic) < 1e-4,
            "critic {}",
            rel_err(&gc, &host.g_critic)
        );
        match grads.get::<1>(agent.log_std.id) {
            Some(g) => {
                let g: Vec<f32> = g.into_data().iter::<f32>().collect();
                assert!(rel_err(&g, &host.g_log_std) < 1e-4, "log_std");
            }
            None => assert!(matches!(head, PolicyHead::Categorical { .. })),
        }
    }

    #[test]
    fn host_gradients_match_burn_autodiff_of_ppo_loss() {
        for clip_vloss in [false, true] {
            check(PolicyHead::Categorical { n: 3, start: 0 }, clip_vloss);
            check(
                PolicyHead::Gaussian {
                    low: vec![-1.0; 2],
                    high: vec![1.0; 2],
                },
                clip_vloss,
            );
        }
    }
}
