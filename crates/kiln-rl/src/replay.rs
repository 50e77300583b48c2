//! The uniform replay buffer of off-policy learners: a preallocated ring that overwrites the
//! oldest transition when full, sampled uniformly into caller-owned buffers (no allocation).

use rand::{Rng, RngExt};

/// One sampled minibatch, owned by the caller and refilled by [`ReplayBuffer::sample_into`].
#[derive(Debug, Clone, Default)]
pub struct ReplayBatch {
    /// Sampled slot indices.
    pub indices: Vec<usize>,
    /// Observations `[B, obs_dim]`.
    pub obs: Vec<f32>,
    /// Actions `[B, act_dim]`.
    pub actions: Vec<f32>,
    /// Rewards `[B]`.
    pub rewards: Vec<f32>,
    /// Next observations `[B, obs_dim]` (the final observation where the episode ended).
    pub next_obs: Vec<f32>,
    /// `1.0` where `next_obs` is terminal (no bootstrap), else `0.0` `[B]`. Truncation is not
    /// termination: a transition cut by a time limit is stored with `terminated = false`.
    pub terminated: Vec<f32>,
}

/// A ring buffer of `(s, a, r, s', terminated)` transitions.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    act_dim: usize,
    obs: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    next_obs: Vec<f32>,
    terminated: Vec<f32>,
    /// Next slot to write.
    head: usize,
    len: usize,
}

impl ReplayBuffer {
    /// Allocates `capacity` slots (`capacity >= 1`; 0 is raised to 1).
    pub fn new(capacity: usize, obs_dim: usize, act_dim: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            obs_dim,
            act_dim,
            obs: vec![0.0; capacity * obs_dim],
            actions: vec![0.0; capacity * act_dim],
            rewards: vec![0.0; capacity],
            next_obs: vec![0.0; capacity * obs_dim],
            terminated: vec![0.0; capacity],
            head: 0,
            len: 0,
        }
    }

    /// Transitions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of transitions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slot the next [`ReplayBuffer::push`] writes.
    pub fn head(&self) -> usize {
        self.head
    }

    /// Stores one transition, overwriting the oldest when full. `obs`/`next_obs` must have
    /// `obs_dim` entries and `action` `act_dim` (extra entries are ignored, missing ones keep
    /// the slot's old values; callers pass rows of fixed-width buffers).
    pub fn push(
        &mut self,
        obs: &[f32],
        action: &[f32],
        reward: f32,
        next_obs: &[f32],
        terminated: bool,
    ) {
        let (d, a, h) = (self.obs_dim, self.act_dim, self.head);
        copy_row(&mut self.obs[h * d..(h + 1) * d], obs);
        copy_row(&mut self.actions[h * a..(h + 1) * a], action);
        copy_row(&mut self.next_obs[h * d..(h + 1) * d], next_obs);
        self.rewards[h] = reward;
        self.terminated[h] = if terminated { 1.0 } else { 0.0 };
        self.head = (h + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// The reward stored in `slot` (for tests and diagnostics).
    pub fn reward(&self, slot: usize) -> Option<f32> {
        (slot < self.len).then(|| self.rewards[slot])
    }

    /// Samples `batch_size` slots uniformly with replacement into `batch`, reusing its
    /// allocations (no allocation once `batch` has grown to `batch_size`). Does nothing to
    /// `batch` and returns `false` when the buffer is empty.
    pub fn sample_into<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        batch_size: usize,
        batch: &mut ReplayBatch,
    ) -> bool {
        if self.len == 0 {
            return false;
        }
        let (d, a) = (self.obs_dim, self.act_dim);
        batch.indices.resize(batch_size, 0);
        batch.obs.resize(batch_size * d, 0.0);
        batch.next_obs.resize(batch_size * d, 0.0);
        batch.actions.resize(batch_size * a, 0.0);
        batch.rewards.resize(batch_size, 0.0);
        batch.terminated.resize(batch_size, 0.0);
        for b in 0..batch_size {
            let i = rng.random_range(0..self.len);
            batch.indices[b] = i;
            batch.obs[b * d..(b + 1) * d].copy_from_slice(&self.obs[i * d..(i + 1) * d]);
            batch.next_obs[b * d..(b + 1) * d].copy_from_slice(&self.next_obs[i * d..(i + 1) * d]);
            batch.actions[b * a..(b + 1) * a].copy_from_slice(&self.actions[i * a..(i + 1) * a]);
            batch.rewards[b] = self.rewards[i];
            batch.terminated[b] = self.terminated[i];
        }
        true
    }
}

fn copy_row(dst: &mut [f32], src: &[f32]) {
    let k = dst.len().min(src.len());
    dst[..k].copy_from_slice(&src[..k]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    proptest! {
        #[test]
        fn len_is_min_of_pushes_and_capacity(capacity in 1usize..40, pushes in 0usize..120) {
            let mut buf = ReplayBuffer::new(capacity, 2, 1);
            for k in 0..pushes {
                buf.push(&[k as f32, 0.0], &[0.0], k as f32, &[0.0, 0.0], false);
            }
            prop_assert_eq!(buf.len(), pushes.min(capacity));
            prop_assert_eq!(buf.head(), pushes % capacity);
        }

        #[test]
        fn overwrites_oldest_first(capacity in 1usize..30, pushes in 1usize..100) {
            let mut buf = ReplayBuffer::new(capacity, 1, 1);
            for k in 0..pushes {
                buf.push(&[k as f32], &[0.0], k as f32, &[0.0], false);
            }
            // The stored rewards are exactly the last min(pushes, capacity) pushes.
            let mut stored: Vec<u32> = (0..buf.len()).map(|s| buf.reward(s).unwrap() as u32).collect();
            stored.sort_unstable();
            let first = pushes.saturating_sub(capacity) as u32;
            let want: Vec<u32> = (first..pushes as u32).collect();
            prop_assert_eq!(stored, want);
        }

        #[test]
        fn sampled_rows_are_valid_stored_transitions(
            capacity in 1usize..30, pushes in 1usize..80, batch in 1usize..64, seed in any::<u64>()
        ) {
            let mut buf = ReplayBuffer::new(capacity, 2, 1);
            for k in 0..pushes {
                let x = k as f32;
                buf.push(&[x, -x], &[x * 2.0], x, &[x + 1.0, -x - 1.0], k % 3 == 0);
            }
            let mut rng = StdRng::seed_from_u64(seed);
            let mut out = ReplayBatch::default();
            prop_assert!(buf.sample_into(&mut rng, batch, &mut out));
            prop_assert_eq!(out.indices.len(), batch);
            for (b, &i) in out.indices.iter().enumerate() {
                prop_assert!(i < buf.len());
                let x = out.rewards[b];
                prop_assert_eq!(out.obs[2 * b], x);
                prop_assert_eq!(out.obs[2 * b + 1], -x);
                prop_assert_eq!(out.actions[b], 2.0 * x);
                prop_assert_eq!(out.next_obs[2 * b], x + 1.0);
                prop_assert_eq!(out.terminated[b], if (x as usize).is_multiple_of(3) { 1.0 } else { 0.0 });
            }
        }
    }

    #[test]
    fn sampling_reuses_the_caller_buffers() {
        let mut buf = ReplayBuffer::new(8, 3, 2);
        for k in 0..8 {
            buf.push(&[k as f32; 3], &[0.0; 2], 0.0, &[0.0; 3], false);
        }
        let mut rng = StdRng::seed_from_u64(1);
        let mut out = ReplayBatch::default();
        buf.sample_into(&mut rng, 16, &mut out);
        let ptr = out.obs.as_ptr();
        buf.sample_into(&mut rng, 16, &mut out);
        assert_eq!(ptr, out.obs.as_ptr());
        assert!(!ReplayBuffer::new(4, 1, 1).sample_into(&mut rng, 4, &mut out));
    }
}
