use crate::env::{Action, Env, Info, Transition};
use crate::error::EnvError;
use crate::space::{BoxSpace, Space};
use crate::wrappers::forward_env;

fn box_of<'a, E: Env>(env: &'a E, wrapper: &'static str) -> Result<&'a BoxSpace, EnvError> {
    match env.action_space() {
        Space::Box(b) => Ok(b),
        _ => Err(EnvError::Unsupported {
            env: env.id().to_string(),
            what: wrapper,
        }),
    }
}

/// Gymnasium's `ClipAction`: finite continuous actions are clipped to the
/// box; the wrapper's action space is unbounded. NaN is still an error.
#[derive(Debug, Clone)]
pub struct ClipAction<E> {
    env: E,
    low: Vec<f64>,
    high: Vec<f64>,
    space: Space,
    buf: Action,
}

impl<E: Env> ClipAction<E> {
    /// Wrap `env`; errors if its action space is not a box.
    pub fn new(env: E) -> Result<Self, EnvError> {
        let b = box_of(&env, "ClipAction on a non-box action space")?.clone();
        let space = Space::Box(BoxSpace::uniform(
            f64::NEG_INFINITY,
            f64::INFINITY,
            b.dim(),
        )?);
        Ok(Self {
            buf: Action::Continuous(vec![0.0; b.dim()]),
            low: b.low,
            high: b.high,
            space,
            env,
        })
    }
}

impl<E: Env> Env for ClipAction<E> {
    forward_env!(id, observation_space, params, state, render);

    fn action_space(&self) -> &Space {
        &self.space
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        self.env.reset_into(seed, obs)
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        self.space.check(self.env.id(), action)?;
        if let (Action::Continuous(a), Action::Continuous(buf)) = (action, &mut self.buf) {
            for (((b, &x), &l), &h) in buf.iter_mut().zip(a).zip(&self.low).zip(&self.high) {
                *b = x.clamp(l, h);
            }
        }
        self.env.step_into(&self.buf, obs)
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.env.set_state(state)
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        self.env.observe(obs)
    }
}

/// Gymnasium's `RescaleAction`: the agent acts in `[min_action, max_action]`
/// (e.g. `[-1, 1]`) and the action is mapped affinely onto the env's box:
/// `low + (high - low) * (a - min) / (max - min)`. Actions outside
/// `[min_action, max_action]` are errors.
#[derive(Debug, Clone)]
pub struct RescaleAction<E> {
    env: E,
    low: Vec<f64>,
    high: Vec<f64>,
    min_action: f64,
    max_action: f64,
    space: Space,
    buf: Action,
}

impl<E: Env> RescaleAction<E> {
    /// Wrap `env`; errors if its action space is not a bounded box or `min_action >= max_action`.
    pub fn new(env: E, min_action: f64, max_action: f64) -> Result<Self, EnvError> {
        let b = box_of(&env, "RescaleAction on a non-box action space")?.clone();
        if min_action >= max_action || !min_action.is_finite() || !max_action.is_finite() {
            return Err(EnvError::param(
                env.id(),
                "min_action",
                min_action,
                "must be finite and below max_action",
            ));
        }
        if b.low.iter().chain(&b.high).any(|x| !x.is_finite()) {
            return Err(EnvError::Unsupported {
                env: env.id().to_string(),
                what: "RescaleAction on an unbounded box",
            });
        }
        let space = Space::Box(BoxSpace::uniform(min_action, max_action, b.dim())?);
        Ok(Self {
            buf: Action::Continuous(vec![0.0; b.dim()]),
            low: b.low,
            high: b.high,
            min_action,
            max_action,
            space,
            env,
        })
    }
}

impl<E: Env> Env for RescaleAction<E> {
    forward_env!(id, observation_space, params, state, render);

    fn action_space(&self) -> &Space {
        &self.space
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        self.env.reset_into(seed, obs)
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        self.space.check(self.env.id(), action)?;
        if let (Action::Continuous(a), Action::Continuous(buf)) = (action, &mut self.buf) {
            for (((b, &x), &l), &h) in buf.iter_mut().zip(a).zip(&self.low).zip(&self.high) {
                let y = l + (h - l) * ((x - self.min_action) / (self.max_action - self.min_action));
                *b = y.clamp(l, h);
            }
        }
        self.env.step_into(&self.buf, obs)
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.env.set_state(state)
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        self.env.observe(obs)
    }
}
