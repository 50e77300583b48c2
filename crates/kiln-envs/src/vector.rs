//! Vectorized environments: N copies stepped together into flat buffers.
//!
//! **Auto-reset rule: Gymnasium's `AutoresetMode.SAME_STEP`.** When copy `i`
//! terminates or truncates during `step`, it is reset in the same call:
//! `observations()` row `i` holds the *first observation of the next episode*,
//! `rewards()`, `terminated()`, `truncated()` describe the step that ended the
//! episode, and `final_observations()` row `i` holds the *last observation of
//! the ended episode* (valid where `terminated || truncated`), so a learner can
//! bootstrap `V(final_obs)` on truncation. The action of every call is applied
//! to every copy (no ignored "reset step" as in `NEXT_STEP`).
//!
//! Seeding: `reset(Some(s))` seeds copy `i` with `s + i` (Gymnasium's
//! `seed=[s, s+1, ...]`); auto-resets continue each copy's own stream.

use rayon::prelude::*;

use crate::env::{Action, BatchOut, Env, Info};
use crate::error::EnvError;
use crate::space::Space;

/// Buffers of one vectorized step, row `i` for copy `i`.
#[derive(Debug, Clone, Default)]
struct Buffers {
    obs: Vec<f64>,
    final_obs: Vec<f64>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    infos: Vec<Info>,
}

impl Buffers {
    fn new(n: usize, d: usize) -> Self {
        Self {
            obs: vec![0.0; n * d],
            final_obs: vec![0.0; n * d],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            infos: vec![Info::new(); n],
        }
    }
}

/// Step a contiguous group of copies (shared by the serial and threaded
/// versions): through the environment's batch step where it has one (then
/// auto-reset the copies that ended, up to a failing one), else one by one
/// with the auto-reset of each copy right after its step.
#[allow(clippy::too_many_arguments)]
fn step_group<E: Env>(
    envs: &mut [E],
    actions: &[Action],
    d: usize,
    obs: &mut [f64],
    final_obs: &mut [f64],
    rewards: &mut [f64],
    terminated: &mut [bool],
    truncated: &mut [bool],
    infos: &mut [Info],
) -> Result<(), EnvError> {
    let out = BatchOut {
        obs: &mut *obs,
        rewards: &mut *rewards,
        terminated: &mut *terminated,
        truncated: &mut *truncated,
        infos: &mut *infos,
    };
    if let Some(stepped) = E::try_step_batch(envs, &|e: &mut E| e, actions, out) {
        let upto = match &stepped {
            Ok(()) => envs.len(),
            Err((i, _)) => *i,
        };
        for (i, env) in envs[..upto].iter_mut().enumerate() {
            if terminated[i] || truncated[i] {
                let row = &mut obs[i * d..(i + 1) * d];
                final_obs[i * d..(i + 1) * d].copy_from_slice(row);
                let reset_info = env.reset_into(None, row)?;
                infos[i].extend(reset_info);
            }
        }
        return stepped.map_err(|(_, e)| e);
    }
    for (i, env) in envs.iter_mut().enumerate() {
        let row = &mut obs[i * d..(i + 1) * d];
        let t = env.step_into(&actions[i], row)?;
        rewards[i] = t.reward;
        terminated[i] = t.terminated;
        truncated[i] = t.truncated;
        if !(t.info.is_empty() && infos[i].is_empty()) {
            infos[i] = t.info;
        }
        if t.terminated || t.truncated {
            final_obs[i * d..(i + 1) * d].copy_from_slice(row);
            let reset_info = env.reset_into(None, row)?;
            infos[i].extend(reset_info);
        }
    }
    Ok(())
}

/// N copies of an environment stepped in one thread. Use a concrete `E`
/// (e.g. `VecEnv<CartPole>`) for the fastest loop, or `VecEnv<Box<dyn Env>>`
/// for registry-made environments.
#[derive(Debug)]
pub struct VecEnv<E> {
    envs: Vec<E>,
    d: usize,
    buf: Buffers,
    started: bool,
}

impl<E: Env> VecEnv<E> {
    /// Build from copies; errors if there are none or their spaces differ.
    pub fn new(envs: Vec<E>) -> Result<Self, EnvError> {
        let d = check_copies(&envs)?;
        let n = envs.len();
        Ok(Self {
            envs,
            d,
            buf: Buffers::new(n, d),
            started: false,
        })
    }

    /// `n` copies made by `make(i)`.
    pub fn from_fn(
        n: usize,
        make: impl FnMut(usize) -> Result<E, EnvError>,
    ) -> Result<Self, EnvError> {
        Self::new((0..n).map(make).collect::<Result<Vec<E>, EnvError>>()?)
    }

    /// Number of copies.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }
    /// Length of one observation row.
    pub fn obs_dim(&self) -> usize {
        self.d
    }
    /// Observation space of one copy.
    pub fn single_observation_space(&self) -> &Space {
        self.envs[0].observation_space()
    }
    /// Action space of one copy.
    pub fn single_action_space(&self) -> &Space {
        self.envs[0].action_space()
    }
    /// The copies.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }
    /// The copies, mutably (e.g. to `set_params` on each).
    pub fn envs_mut(&mut self) -> &mut [E] {
        &mut self.envs
    }

    /// Reset every copy (copy `i` with seed `s + i`); returns the observations (N × d, row-major).
    pub fn reset(&mut self, seed: Option<u64>) -> Result<&[f64], EnvError> {
        let d = self.d;
        for (i, env) in self.envs.iter_mut().enumerate() {
            let s = seed.map(|s| s.wrapping_add(i as u64));
            self.buf.infos[i] = env.reset_into(s, &mut self.buf.obs[i * d..(i + 1) * d])?;
        }
        self.buf.terminated.fill(false);
        self.buf.truncated.fill(false);
        self.started = true;
        Ok(&self.buf.obs)
    }

    /// Step every copy with `actions[i]`, auto-resetting finished copies
    /// (same-step rule, see the module docs). On error the copies before the
    /// failing one have stepped; reset before continuing.
    pub fn step(&mut self, actions: &[Action]) -> Result<(), EnvError> {
        if actions.len() != self.envs.len() {
            return Err(EnvError::VectorLength {
                env: self.envs[0].id().to_string(),
                n_envs: self.envs.len(),
                got: actions.len(),
            });
        }
        if !self.started {
            return Err(EnvError::NeedsReset {
                env: self.envs[0].id().to_string(),
                when: "before the first reset",
            });
        }
        let b = &mut self.buf;
        let r = step_group(
            &mut self.envs,
            actions,
            self.d,
            &mut b.obs,
            &mut b.final_obs,
            &mut b.rewards,
            &mut b.terminated,
            &mut b.truncated,
            &mut b.infos,
        );
        if r.is_err() {
            self.started = false;
        }
        r
    }

    /// Current observations (N × d, row-major).
    pub fn observations(&self) -> &[f64] {
        &self.buf.obs
    }
    /// Last observations of the episodes that ended in the last step (rows valid where done).
    pub fn final_observations(&self) -> &[f64] {
        &self.buf.final_obs
    }
    /// Rewards of the last step.
    pub fn rewards(&self) -> &[f64] {
        &self.buf.rewards
    }
    /// Termination flags of the last step.
    pub fn terminated(&self) -> &[bool] {
        &self.buf.terminated
    }
    /// Truncation flags of the last step.
    pub fn truncated(&self) -> &[bool] {
        &self.buf.truncated
    }
    /// Infos of the last step (an auto-reset merges the reset info).
    pub fn infos(&self) -> &[Info] {
        &self.buf.infos
    }
}

/// N copies split into `threads` contiguous groups stepped in parallel on rayon's
/// thread pool (persistent, so a step costs a task hand-off, not a thread spawn).
/// Pays once a step holds tens of microseconds of work (e.g. Acrobot at N = 256, or
/// `TaxEconomy` with many workers); for cheap classic control at small N the serial
/// [`VecEnv`] is faster. Same auto-reset rule and seeding as [`VecEnv`].
#[derive(Debug)]
pub struct ParallelVecEnv<E> {
    inner: VecEnv<E>,
    threads: usize,
}

impl<E: Env> ParallelVecEnv<E> {
    /// Build from copies with `threads` worker threads (at least 1).
    pub fn new(envs: Vec<E>, threads: usize) -> Result<Self, EnvError> {
        Ok(Self {
            inner: VecEnv::new(envs)?,
            threads: threads.max(1),
        })
    }
    /// The serial view (buffers, spaces, `reset`).
    pub fn as_serial(&self) -> &VecEnv<E> {
        &self.inner
    }
    /// Reset every copy (serially; resets are rare).
    pub fn reset(&mut self, seed: Option<u64>) -> Result<&[f64], EnvError> {
        self.inner.reset(seed)
    }
    /// Step every copy in parallel.
    pub fn step(&mut self, actions: &[Action]) -> Result<(), EnvError> {
        let v = &mut self.inner;
        let n = v.envs.len();
        if actions.len() != n {
            return Err(EnvError::VectorLength {
                env: v.envs[0].id().to_string(),
                n_envs: n,
                got: actions.len(),
            });
        }
        if !v.started {
            return Err(EnvError::NeedsReset {
                env: v.envs[0].id().to_string(),
                when: "before the first reset",
            });
        }
        let d = v.d;
        let per = n.div_ceil(self.threads);
        let b = &mut v.buf;
        // Rayon's pool persists across steps: spawning threads per step cost more than the
        // step itself for classic control.
        type Group<'a, E> = (
            (
                (
                    (
                        (((&'a mut [E], &'a [Action]), &'a mut [f64]), &'a mut [f64]),
                        &'a mut [f64],
                    ),
                    &'a mut [bool],
                ),
                &'a mut [bool],
            ),
            &'a mut [Info],
        );
        let groups: Vec<Group<'_, E>> = v
            .envs
            .chunks_mut(per)
            .zip(actions.chunks(per))
            .zip(b.obs.chunks_mut(per * d))
            .zip(b.final_obs.chunks_mut(per * d))
            .zip(b.rewards.chunks_mut(per))
            .zip(b.terminated.chunks_mut(per))
            .zip(b.truncated.chunks_mut(per))
            .zip(b.infos.chunks_mut(per))
            .collect();
        let results: Vec<Result<(), EnvError>> = groups
            .into_par_iter()
            .map(|(((((((e, a), o), f), r), te), tr), inf)| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    step_group(e, a, d, o, f, r, te, tr, inf)
                }))
                .unwrap_or_else(|_| {
                    Err(EnvError::Unsupported {
                        env: "worker thread".into(),
                        what: "panicking environments",
                    })
                })
            })
            .collect();
        for r in results {
            if r.is_err() {
                v.started = false;
                return r;
            }
        }
        Ok(())
    }
    /// Current observations.
    pub fn observations(&self) -> &[f64] {
        self.inner.observations()
    }
    /// Final observations of ended episodes.
    pub fn final_observations(&self) -> &[f64] {
        self.inner.final_observations()
    }
    /// Rewards of the last step.
    pub fn rewards(&self) -> &[f64] {
        self.inner.rewards()
    }
    /// Termination flags.
    pub fn terminated(&self) -> &[bool] {
        self.inner.terminated()
    }
    /// Truncation flags.
    pub fn truncated(&self) -> &[bool] {
        self.inner.truncated()
    }
}

fn check_copies<E: Env>(envs: &[E]) -> Result<usize, EnvError> {
    let first = envs.first().ok_or_else(|| EnvError::InvalidSpace {
        reason: "a vector env needs at least one copy".into(),
    })?;
    for (i, e) in envs.iter().enumerate().skip(1) {
        if e.observation_space() != first.observation_space()
            || e.action_space() != first.action_space()
        {
            return Err(EnvError::InvalidSpace {
                reason: format!(
                    "copy {i} ({}) has different spaces from copy 0 ({})",
                    e.id(),
                    first.id()
                ),
            });
        }
    }
    Ok(first.observation_space().raw_len())
}
