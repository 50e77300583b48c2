use crate::env::{Action, Env, Info, Transition};
use crate::error::EnvError;
use crate::space::Space;
use crate::wrappers::forward_env;

/// Gymnasium's `FlattenObservation`: observations become flat vectors
/// (`gymnasium.spaces.flatten`): boxes are reshaped to 1-D, discrete values
/// become one-hot vectors, multi-discrete values concatenated one-hots.
#[derive(Debug, Clone)]
pub struct FlattenObservation<E> {
    env: E,
    inner_space: Space,
    space: Space,
    raw: Vec<f64>,
}

impl<E: Env> FlattenObservation<E> {
    /// Wrap `env`.
    pub fn new(env: E) -> Self {
        let inner_space = env.observation_space().clone();
        let space = inner_space.flatten_space();
        let raw = vec![0.0; inner_space.raw_len()];
        Self {
            env,
            inner_space,
            space,
            raw,
        }
    }

    fn flatten(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        if obs.len() != self.space.raw_len() {
            return Err(EnvError::ObservationBuffer {
                env: self.env.id().to_string(),
                expected: self.space.raw_len(),
                got: obs.len(),
            });
        }
        self.inner_space.flatten_into(&self.raw, obs);
        Ok(())
    }
}

impl<E: Env> Env for FlattenObservation<E> {
    forward_env!(id, action_space, params, state, render);

    fn observation_space(&self) -> &Space {
        &self.space
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        let mut raw = std::mem::take(&mut self.raw);
        let r = self.env.reset_into(seed, &mut raw);
        self.raw = raw;
        let info = r?;
        self.flatten(obs)?;
        Ok(info)
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        if obs.len() != self.space.raw_len() {
            return Err(EnvError::ObservationBuffer {
                env: self.env.id().to_string(),
                expected: self.space.raw_len(),
                got: obs.len(),
            });
        }
        let mut raw = std::mem::take(&mut self.raw);
        let r = self.env.step_into(action, &mut raw);
        self.raw = raw;
        let t = r?;
        self.flatten(obs)?;
        Ok(t)
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.env.set_state(state)
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        let mut raw = vec![0.0; self.inner_space.raw_len()];
        self.env.observe(&mut raw)?;
        if obs.len() != self.space.raw_len() {
            return Err(EnvError::ObservationBuffer {
                env: self.env.id().to_string(),
                expected: self.space.raw_len(),
                got: obs.len(),
            });
        }
        self.inner_space.flatten_into(&raw, obs);
        Ok(())
    }
}
