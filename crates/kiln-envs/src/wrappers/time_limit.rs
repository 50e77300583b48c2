use crate::env::{Action, BatchOut, Env, Info, Transition};
use crate::error::EnvError;
use crate::wrappers::forward_env;

/// Gymnasium's `TimeLimit`: `truncated = true` once `max_episode_steps` steps
/// have been taken since the last reset (it may coincide with `terminated`).
/// Stepping past the end is an error until the next `reset`.
#[derive(Debug, Clone)]
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: usize,
    elapsed: usize,
    ended: bool,
}

impl<E: Env> TimeLimit<E> {
    /// Wrap `env` with a limit of `max_episode_steps` steps per episode.
    pub fn new(env: E, max_episode_steps: usize) -> Self {
        Self {
            env,
            max_episode_steps,
            elapsed: 0,
            ended: false,
        }
    }
    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }
    /// The limit.
    pub fn max_episode_steps(&self) -> usize {
        self.max_episode_steps
    }
    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }
    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    forward_env!(id, observation_space, action_space, params, state, render);

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        let info = self.env.reset_into(seed, obs)?;
        self.elapsed = 0;
        self.ended = false;
        Ok(info)
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        if self.ended {
            return Err(EnvError::NeedsReset {
                env: self.env.id().to_string(),
                when: "after the episode ended",
            });
        }
        let mut t = self.env.step_into(action, obs)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            t.truncated = true;
        }
        self.ended = t.terminated || t.truncated;
        Ok(t)
    }

    /// The wrapped environment's batch step for the copies up to the first
    /// ended one (which then fails as [`Env::step_into`] would), then this
    /// wrapper's step counting and truncation for each stepped copy.
    fn try_step_batch<T>(
        items: &mut [T],
        inner: &impl Fn(&mut T) -> &mut Self,
        actions: &[Action],
        mut out: BatchOut<'_>,
    ) -> Option<Result<(), (usize, EnvError)>> {
        if actions.len() != items.len() || out.len() != items.len() {
            return None;
        }
        // An empty batch (which touches nothing) asks whether the wrapped
        // environment has a batch step at all, before the scan below costs
        // the one-by-one path anything.
        E::try_step_batch(&mut items[..0], &wrapped(inner), &[], out.head(0))?.ok()?;
        let live = items
            .iter_mut()
            .position(|t| inner(t).ended)
            .unwrap_or(items.len());
        let stepped = E::try_step_batch(
            &mut items[..live],
            &wrapped(inner),
            &actions[..live],
            out.head(live),
        )?;
        let upto = match &stepped {
            Ok(()) => live,
            Err((i, _)) => *i,
        };
        for (i, item) in items[..upto].iter_mut().enumerate() {
            let tl = inner(item);
            tl.elapsed += 1;
            if tl.elapsed >= tl.max_episode_steps {
                out.truncated[i] = true;
            }
            tl.ended = out.terminated[i] || out.truncated[i];
        }
        if let Err(e) = stepped {
            return Some(Err(e));
        }
        if let Some(item) = items.get_mut(live) {
            let env = &inner(item).env;
            return Some(Err((
                live,
                EnvError::NeedsReset {
                    env: env.id().to_string(),
                    when: "after the episode ended",
                },
            )));
        }
        Some(Ok(()))
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.env.set_state(state)?;
        self.elapsed = 0;
        self.ended = false;
        Ok(())
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        self.env.observe(obs)
    }
}

/// The environment inside the `TimeLimit` that `inner` reaches.
fn wrapped<T, E>(inner: &impl Fn(&mut T) -> &mut TimeLimit<E>) -> impl Fn(&mut T) -> &mut E + '_ {
    move |t| &mut inner(t).env
}
