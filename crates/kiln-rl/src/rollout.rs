//! The on-policy rollout buffer: `T` steps of `N` parallel envs, preallocated, `[T, N]` layout.

use crate::gae::gae;

/// One rollout of `T` steps from `N` envs, stored time-major (`[T, N, ...]`, row-major), as
/// in CleanRL. Allocated once; [`RolloutBuffer::clear`] rewinds it for the next rollout.
#[derive(Debug, Clone)]
pub struct RolloutBuffer {
    /// Steps per env (`T`).
    pub num_steps: usize,
    /// Parallel envs (`N`).
    pub num_envs: usize,
    /// Observation width.
    pub obs_dim: usize,
    /// Action width (1 for a discrete action).
    pub act_dim: usize,
    /// Observations `[T, N, obs_dim]`.
    pub obs: Vec<f32>,
    /// Actions `[T, N, act_dim]` (a discrete action is stored as its index).
    pub actions: Vec<f32>,
    /// Log-probabilities of the actions under the behaviour policy `[T, N]`.
    pub log_probs: Vec<f32>,
    /// Value estimates `V(s_t)` `[T, N]`.
    pub values: Vec<f32>,
    /// Rewards `[T, N]`.
    pub rewards: Vec<f32>,
    /// The step ended the episode in a terminal state `[T, N]`.
    pub terminated: Vec<bool>,
    /// The step ended the episode by truncation (time limit) `[T, N]`.
    pub truncated: Vec<bool>,
    /// `V(final observation)` where truncated, else 0 `[T, N]`.
    pub final_values: Vec<f32>,
    /// GAE advantages `[T, N]` (filled by [`RolloutBuffer::compute_gae`]).
    pub advantages: Vec<f32>,
    /// Lambda-returns, the value targets `[T, N]`.
    pub returns: Vec<f32>,
    len: usize,
}

impl RolloutBuffer {
    /// Allocates a buffer for `num_steps` steps of `num_envs` envs.
    pub fn new(num_steps: usize, num_envs: usize, obs_dim: usize, act_dim: usize) -> Self {
        let tn = num_steps * num_envs;
        Self {
            num_steps,
            num_envs,
            obs_dim,
            act_dim,
            obs: vec![0.0; tn * obs_dim],
            actions: vec![0.0; tn * act_dim],
            log_probs: vec![0.0; tn],
            values: vec![0.0; tn],
            rewards: vec![0.0; tn],
            terminated: vec![false; tn],
            truncated: vec![false; tn],
            final_values: vec![0.0; tn],
            advantages: vec![0.0; tn],
            returns: vec![0.0; tn],
            len: 0,
        }
    }

    /// Number of transitions per rollout (`T * N`).
    pub fn batch_size(&self) -> usize {
        self.num_steps * self.num_envs
    }

    /// Steps stored so far in this rollout.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no step is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether all `T` steps are stored.
    pub fn is_full(&self) -> bool {
        self.len == self.num_steps
    }

    /// Rewinds for the next rollout (keeps the allocation).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The index of the step being written: the rows `[t*N, (t+1)*N)` of the per-step arrays.
    /// Call [`RolloutBuffer::advance`] after filling them.
    pub fn step_index(&self) -> usize {
        self.len
    }

    /// Stores the observations (as f64 rows from the vector env) of step `t`.
    pub fn store_obs(&mut self, t: usize, obs: &[f64]) {
        let w = self.num_envs * self.obs_dim;
        for (dst, src) in self.obs[t * w..(t + 1) * w].iter_mut().zip(obs) {
            *dst = *src as f32;
        }
    }

    /// Stores the outcome of step `t` of the vector env (rewards and the two kinds of end).
    pub fn store_outcome(
        &mut self,
        t: usize,
        rewards: &[f64],
        terminated: &[bool],
        truncated: &[bool],
    ) {
        let n = self.num_envs;
        for i in 0..n {
            self.rewards[t * n + i] = rewards[i] as f32;
            self.terminated[t * n + i] = terminated[i];
            self.truncated[t * n + i] = truncated[i] && !terminated[i];
            self.final_values[t * n + i] = 0.0;
        }
    }

    /// Marks step `len` as written.
    pub fn advance(&mut self) {
        self.len += 1;
    }

    /// Fills `advantages` and `returns` by GAE(gamma, lambda) (see [`gae`]), bootstrapping the
    /// last step with `last_values` (`V` of the observations after the rollout).
    pub fn compute_gae(&mut self, last_values: &[f32], gamma: f32, lambda: f32) {
        gae(
            &self.rewards,
            &self.values,
            &self.terminated,
            &self.truncated,
            &self.final_values,
            last_values,
            gamma,
            lambda,
            &mut self.advantages,
            &mut self.returns,
        );
    }
}

/// Fraction of the variance of `targets` that `predictions` explain:
/// `1 - Var(y - y_hat) / Var(y)` (NaN when `Var(y) = 0`, as CleanRL reports it).
pub fn explained_variance(predictions: &[f32], targets: &[f32]) -> f64 {
    let n = targets.len().min(predictions.len());
    if n == 0 {
        return f64::NAN;
    }
    let var = |it: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = it.collect();
        let m = v.iter().sum::<f64>() / n as f64;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64
    };
    let var_y = var(&mut targets.iter().map(|&y| f64::from(y)));
    let var_res = var(&mut targets
        .iter()
        .zip(predictions)
        .map(|(&y, &p)| f64::from(y) - f64::from(p)));
    if var_y == 0.0 {
        f64::NAN
    } else {
        1.0 - var_res / var_y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_time_major_and_truncation_excludes_termination() {
        let mut b = RolloutBuffer::new(2, 3, 2, 1);
        assert_eq!(b.batch_size(), 6);
        b.store_obs(1, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(&b.obs[6..12], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        b.store_outcome(
            1,
            &[1.0, 2.0, 3.0],
            &[true, false, false],
            &[true, true, false],
        );
        assert_eq!(&b.truncated[3..6], &[false, true, false]);
        assert_eq!(&b.rewards[3..6], &[1.0, 2.0, 3.0]);
    }

    #[test]
    fn explained_variance_known_values() {
        assert!((explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        // Predicting the mean explains nothing.
        assert!(explained_variance(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]).abs() < 1e-12);
        assert!(explained_variance(&[0.0, 1.0], &[1.0, 1.0]).is_nan());
    }
}
