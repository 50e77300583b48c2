//! Replaying a fixed action sequence: the code path behind
//! `kiln env rollout` and the Gymnasium-trajectory tests, so what users
//! cross-check against another simulator is exactly what is tested.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::env::{Action, Env};
use crate::error::EnvError;
use crate::registry::make_with;
use crate::space::Space;

/// Errors of a replay.
#[derive(Debug, Error)]
pub enum RolloutError {
    /// The environment rejected something (id, params, state, an action).
    #[error("{0}")]
    Env(#[from] EnvError),
    /// An action could not be parsed.
    #[error("action {index}: {reason}")]
    Action {
        /// 0-based position in the action list.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The actions text is neither a JSON array nor a comma-separated list.
    #[error("cannot parse actions: {0}")]
    Actions(String),
}

/// How the replayed episode starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// `reset(seed)`.
    Seed(u64),
    /// `reset(0)` then `set_state(state)` (Gymnasium's `env.unwrapped.state = ...`).
    State(Vec<f64>),
}

/// One step of a replay, as printed by `kiln env rollout` (one JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutStep {
    /// 0-based step index.
    pub t: usize,
    /// Observation after the step.
    pub obs: Vec<f64>,
    /// Reward of the step.
    pub reward: f64,
    /// Terminal state reached.
    pub terminated: bool,
    /// Time limit reached.
    pub truncated: bool,
}

/// A replayed episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Observation at the start (after reset / set_state).
    pub initial_obs: Vec<f64>,
    /// The steps taken; stops early at termination or truncation.
    pub steps: Vec<RolloutStep>,
}

/// Replay `actions` in a fresh `make_with(id, params, time_limit)` environment
/// from `start`. The rollout stops at termination or truncation; actions after
/// that are ignored. Out-of-range continuous actions are treated as the
/// environment treats them (Pendulum and MountainCarContinuous clip, like Gymnasium).
pub fn replay(
    id: &str,
    params: &serde_json::Value,
    start: &Start,
    actions: &[Action],
    time_limit: bool,
) -> Result<Rollout, RolloutError> {
    let mut env = make_with(id, params, time_limit)?;
    replay_env(&mut env, start, actions)
}

/// [`replay`] on an existing environment.
pub fn replay_env<E: Env + ?Sized>(
    env: &mut E,
    start: &Start,
    actions: &[Action],
) -> Result<Rollout, RolloutError> {
    let initial_obs = match start {
        Start::Seed(s) => env.reset(Some(*s))?.0,
        Start::State(state) => {
            env.reset(Some(0))?;
            env.set_state(state)?;
            let mut obs = vec![0.0; env.observation_space().raw_len()];
            env.observe(&mut obs)?;
            obs
        }
    };
    let mut steps = Vec::with_capacity(actions.len());
    for (t, a) in actions.iter().enumerate() {
        let s = env.step(a)?;
        let done = s.terminated || s.truncated;
        steps.push(RolloutStep {
            t,
            obs: s.obs,
            reward: s.reward,
            terminated: s.terminated,
            truncated: s.truncated,
        });
        if done {
            break;
        }
    }
    Ok(Rollout { initial_obs, steps })
}

/// Parse an action list for `space`: a JSON array with one entry per step (an
/// integer for a discrete space, an array of floats — or a bare float for a
/// 1-D box — for a box space), or an inline comma-separated list of integers
/// for a discrete space (`"0,1,1,0"`), or of floats for a 1-D box (`"0.5,-2"`).
pub fn parse_actions(text: &str, space: &Space) -> Result<Vec<Action>, RolloutError> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let v: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| RolloutError::Actions(e.to_string()))?;
        let items = v
            .as_array()
            .ok_or_else(|| RolloutError::Actions("expected a JSON array".into()))?;
        return items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                Action::from_json(item, space)
                    .map_err(|reason| RolloutError::Action { index, reason })
            })
            .collect();
    }
    match space {
        Space::Discrete { .. } => trimmed
            .split(',')
            .enumerate()
            .filter(|(_, s)| !s.trim().is_empty())
            .map(|(index, s)| {
                s.trim()
                    .parse::<i64>()
                    .map(Action::Discrete)
                    .map_err(|e| RolloutError::Action {
                        index,
                        reason: format!("`{}`: {e}", s.trim()),
                    })
            })
            .collect(),
        Space::Box(b) if b.dim() == 1 => trimmed
            .split(',')
            .enumerate()
            .filter(|(_, s)| !s.trim().is_empty())
            .map(|(index, s)| {
                s.trim()
                    .parse::<f64>()
                    .map(|x| Action::Continuous(vec![x]))
                    .map_err(|e| RolloutError::Action {
                        index,
                        reason: format!("`{}`: {e}", s.trim()),
                    })
            })
            .collect(),
        other => Err(RolloutError::Actions(format!(
            "an inline comma-separated list is only for discrete or 1-D box actions; the action space is {}: pass a JSON file",
            other.describe()
        ))),
    }
}

/// Parse a comma-separated state vector (`"0.1,-0.2,0,0"`).
pub fn parse_state(text: &str) -> Result<Vec<f64>, RolloutError> {
    text.split(',')
        .enumerate()
        .map(|(i, s)| {
            s.trim().parse::<f64>().map_err(|e| {
                RolloutError::Actions(format!("state component {i} `{}`: {e}", s.trim()))
            })
        })
        .collect()
}
