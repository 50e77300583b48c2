//! The `Env` trait: Gymnasium's `reset`/`step` contract in Rust.
//!
//! Observations are real vectors (`Vec<f64>`, or a caller-owned `&mut [f64]`
//! for the allocation-free `*_into` methods). A `Discrete` observation space
//! writes its integer as one real (`[3.0]`); wrap with
//! [`FlattenObservation`](crate::wrappers::FlattenObservation) for one-hot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::EnvError;
use crate::render::RgbImage;
use crate::space::Space;

/// Extra information returned by `reset` and `step` (Gymnasium's `info`
/// dict of numbers), e.g. `episode_return` from
/// [`RecordEpisodeStatistics`](crate::wrappers::RecordEpisodeStatistics).
/// A small insertion-ordered map; an empty one neither allocates nor costs a
/// non-trivial drop, which keeps vectorized stepping cheap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    entries: Vec<(String, f64)>,
}

impl Info {
    /// An empty info.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
    /// Insert or replace `key`; returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: f64) -> Option<f64> {
        let key = key.into();
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == key) {
            return Some(std::mem::replace(&mut e.1, value));
        }
        self.entries.push((key, value));
        None
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|e| e.0 == key).map(|e| e.1)
    }
    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }
    /// As an ordered map (e.g. to serialize).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        self.entries.iter().cloned().collect()
    }
}

/// `info["key"]`; panics if the key is missing (use [`Info::get`] otherwise).
impl std::ops::Index<&str> for Info {
    type Output = f64;
    fn index(&self, key: &str) -> &f64 {
        match self.entries.iter().find(|e| e.0 == key) {
            Some(e) => &e.1,
            None => panic!("info has no key `{key}`"),
        }
    }
}

impl Extend<(String, f64)> for Info {
    fn extend<I: IntoIterator<Item = (String, f64)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for Info {
    type Item = (String, f64);
    type IntoIter = std::vec::IntoIter<(String, f64)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<const N: usize> From<[(String, f64); N]> for Info {
    fn from(entries: [(String, f64); N]) -> Self {
        let mut info = Info::new();
        info.extend(entries);
        info
    }
}

/// An action: the value of an action space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A value of a `Discrete` space.
    Discrete(i64),
    /// A value of a `Box` space.
    Continuous(Vec<f64>),
    /// A value of a `MultiDiscrete` space.
    MultiDiscrete(Vec<i64>),
}

impl Action {
    /// Name of the action's kind (used in error messages).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Discrete(_) => "discrete",
            Action::Continuous(_) => "continuous",
            Action::MultiDiscrete(_) => "multi-discrete",
        }
    }

    /// The action as a real vector (`[a]` for a discrete action).
    pub fn to_vec(&self) -> Vec<f64> {
        match self {
            Action::Discrete(a) => vec![*a as f64],
            Action::Continuous(a) => a.clone(),
            Action::MultiDiscrete(a) => a.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Parse one action from JSON for `space`: an integer for `Discrete`, an
    /// array of numbers for `Box` (a bare number is accepted for a 1-D box),
    /// an array of integers for `MultiDiscrete`.
    pub fn from_json(value: &serde_json::Value, space: &Space) -> Result<Action, String> {
        match space {
            Space::Discrete { .. } => value
                .as_i64()
                .map(Action::Discrete)
                .ok_or_else(|| format!("expected an integer for a discrete action, got {value}")),
            Space::Box(_) => match value {
                serde_json::Value::Number(n) => n
                    .as_f64()
                    .map(|x| Action::Continuous(vec![x]))
                    .ok_or_else(|| format!("not a number: {value}")),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_f64()
                            .ok_or_else(|| format!("expected a number, got {v}"))
                    })
                    .collect::<Result<Vec<f64>, String>>()
                    .map(Action::Continuous),
                _ => Err(format!(
                    "expected an array of numbers for a continuous action, got {value}"
                )),
            },
            Space::MultiDiscrete { .. } => match value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_i64()
                            .ok_or_else(|| format!("expected an integer, got {v}"))
                    })
                    .collect::<Result<Vec<i64>, String>>()
                    .map(Action::MultiDiscrete),
                _ => Err(format!("expected an array of integers, got {value}")),
            },
        }
    }
}

/// What `step` returns besides the observation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transition {
    /// Reward of this step.
    pub reward: f64,
    /// The episode reached a terminal state of the MDP (no bootstrapping).
    pub terminated: bool,
    /// The episode was cut short (time limit); bootstrap from the final observation.
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

/// The full result of [`Env::step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Observation after the step.
    pub obs: Vec<f64>,
    /// Reward of this step.
    pub reward: f64,
    /// Terminal state reached.
    pub terminated: bool,
    /// Time limit reached.
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

/// A reinforcement-learning environment with Gymnasium's semantics.
///
/// Required: the spaces, [`Env::reset_into`] and [`Env::step_into`] (which
/// write the observation into a caller buffer of length
/// `observation_space().raw_len()`, so vectorized stepping never allocates).
/// `reset`/`step` are the allocating conveniences.
///
/// Contract (checked by the test suite for every registered id):
/// * `step` before the first `reset`, or after `terminated || truncated`,
///   returns [`EnvError::NeedsReset`] and changes nothing;
/// * an invalid action (wrong kind or length, NaN, out of range where the
///   environment does not clip like Gymnasium) returns an error and changes nothing;
/// * `reset(Some(seed))` followed by the same actions gives the same trajectory.
pub trait Env: Send {
    /// The environment id used in error messages (e.g. `"CartPole-v1"`).
    fn id(&self) -> &str;

    /// Observation space.
    fn observation_space(&self) -> &Space;

    /// Action space.
    fn action_space(&self) -> &Space;

    /// Start a new episode. `Some(seed)` reseeds the environment's generator
    /// (Gymnasium: `reset(seed=...)`); `None` continues its stream.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError>;

    /// Advance one step with `action`, writing the next observation into `obs`.
    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError>;

    /// Allocating form of [`Env::reset_into`]: `(observation, info)`.
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f64>, Info), EnvError> {
        let mut obs = vec![0.0; self.observation_space().raw_len()];
        let info = self.reset_into(seed, &mut obs)?;
        Ok((obs, info))
    }

    /// Allocating form of [`Env::step_into`].
    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let mut obs = vec![0.0; self.observation_space().raw_len()];
        let t = self.step_into(action, &mut obs)?;
        Ok(Step {
            obs,
            reward: t.reward,
            terminated: t.terminated,
            truncated: t.truncated,
            info: t.info,
        })
    }

    /// The environment's physical/model parameters as JSON (`null` when it has none).
    fn params(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Replace the parameters (robust RL varies physics). Fields missing from
    /// `params` keep their defaults; unknown fields are an error.
    fn set_params(&mut self, params: &serde_json::Value) -> Result<(), EnvError> {
        let _ = params;
        Err(EnvError::Unsupported {
            env: self.id().to_string(),
            what: "set_params",
        })
    }

    /// The internal state vector (Gymnasium's `env.unwrapped.state` order), if it has one.
    fn state(&self) -> Option<Vec<f64>> {
        None
    }

    /// Set the internal state and start an episode from it, so a trajectory can
    /// be replayed from any start. Resets episode bookkeeping (step counters).
    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        let _ = state;
        Err(EnvError::Unsupported {
            env: self.id().to_string(),
            what: "set_state",
        })
    }

    /// Observation of the current state (after `set_state`), if supported.
    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        let _ = obs;
        Err(EnvError::Unsupported {
            env: self.id().to_string(),
            what: "observe",
        })
    }

    /// Step many copies at once, as calling [`Env::step_into`] on each in
    /// order would (without auto-reset): copy `i` is `inner(&mut items[i])`,
    /// stepped with `actions[i]` into row `i` of `out`. `None` (touching
    /// nothing) where the environment has no batch step, so the caller steps
    /// the copies one by one; otherwise `Some(Err((i, e)))` for the first copy
    /// `i` that fails, with the copies before it stepped and it and the later
    /// ones untouched, exactly as the one-by-one loop leaves them.
    ///
    /// [`VecEnv`](crate::VecEnv) steps through this so that environments whose
    /// copies can advance together (classic control, with vector math)
    /// override it; an override must give the one-by-one results bit for bit.
    /// `inner` reaches this environment inside one of the vector's copies, so a
    /// wrapper's override can forward to the environment it wraps.
    fn try_step_batch<T>(
        items: &mut [T],
        inner: &impl Fn(&mut T) -> &mut Self,
        actions: &[Action],
        out: BatchOut<'_>,
    ) -> Option<Result<(), (usize, EnvError)>>
    where
        Self: Sized,
    {
        let _ = (items, inner, actions, out);
        None
    }

    /// Draw the current state.
    fn render(&self) -> Result<RgbImage, EnvError> {
        Err(EnvError::Unsupported {
            env: self.id().to_string(),
            what: "render",
        })
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        (**self).reset_into(seed, obs)
    }
    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        (**self).step_into(action, obs)
    }
    fn params(&self) -> serde_json::Value {
        (**self).params()
    }
    fn set_params(&mut self, params: &serde_json::Value) -> Result<(), EnvError> {
        (**self).set_params(params)
    }
    fn state(&self) -> Option<Vec<f64>> {
        (**self).state()
    }
    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        (**self).set_state(state)
    }
    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        (**self).observe(obs)
    }
    fn render(&self) -> Result<RgbImage, EnvError> {
        (**self).render()
    }
}

/// The rows a batch step writes ([`Env::try_step_batch`]), row `i` for copy `i`.
#[derive(Debug)]
pub struct BatchOut<'a> {
    /// Observations, one row of `obs.len() / rewards.len()` values per copy.
    pub obs: &'a mut [f64],
    /// Rewards.
    pub rewards: &'a mut [f64],
    /// Termination flags.
    pub terminated: &'a mut [bool],
    /// Truncation flags.
    pub truncated: &'a mut [bool],
    /// Infos (a step with an empty info clears the row's).
    pub infos: &'a mut [Info],
}

impl BatchOut<'_> {
    /// The first `n` rows (all of them if there are fewer).
    pub fn head(&mut self, n: usize) -> BatchOut<'_> {
        let d = self.row_len();
        let n = n.min(self.len());
        BatchOut {
            obs: &mut self.obs[..n * d],
            rewards: &mut self.rewards[..n],
            terminated: &mut self.terminated[..n],
            truncated: &mut self.truncated[..n],
            infos: &mut self.infos[..n],
        }
    }

    /// Number of rows (copies).
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// `true` when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// `true` when every buffer has one entry per row for `n` copies with
    /// `d` observation values each (what a batch step may index).
    pub fn fits(&self, n: usize, d: usize) -> bool {
        self.rewards.len() == n
            && self.terminated.len() == n
            && self.truncated.len() == n
            && self.infos.len() == n
            && Some(self.obs.len()) == n.checked_mul(d)
    }

    /// Length of one observation row.
    pub fn row_len(&self) -> usize {
        self.obs.len().checked_div(self.rewards.len()).unwrap_or(0)
    }

    /// Record copy `i`'s transition (its observation is already in its row).
    #[inline]
    pub(crate) fn record(&mut self, i: usize, t: Transition) {
        self.rewards[i] = t.reward;
        self.terminated[i] = t.terminated;
        self.truncated[i] = t.truncated;
        if !(t.info.is_empty() && self.infos[i].is_empty()) {
            self.infos[i] = t.info;
        }
    }

    /// Record a step of copy `i` with an empty info and no truncation, as
    /// [`BatchOut::record`] would (kept inline: batch kernels call it per copy).
    #[inline(always)]
    pub(crate) fn record_untruncated(&mut self, i: usize, reward: f64, terminated: bool) {
        self.rewards[i] = reward;
        self.terminated[i] = terminated;
        self.truncated[i] = false;
        if !self.infos[i].is_empty() {
            self.infos[i] = Info::new();
        }
    }

    /// Step copy `i` one by one with [`Env::step_into`] (the fallback of batch steps).
    #[inline]
    pub(crate) fn step_one<E: Env>(
        &mut self,
        i: usize,
        env: &mut E,
        action: &Action,
    ) -> Result<(), (usize, EnvError)> {
        let d = self.row_len();
        let t = env
            .step_into(action, &mut self.obs[i * d..(i + 1) * d])
            .map_err(|e| (i, e))?;
        self.record(i, t);
        Ok(())
    }
}

/// Episode bookkeeping shared by the environments: enforces "reset before
/// step" and "no step after the end".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    #[default]
    NotStarted,
    Running,
    Ended,
}

impl Phase {
    #[inline]
    pub(crate) fn ensure_running(self, env: &str) -> Result<(), EnvError> {
        match self {
            Phase::Running => Ok(()),
            Phase::NotStarted => Err(EnvError::NeedsReset {
                env: env.to_string(),
                when: "before the first reset",
            }),
            Phase::Ended => Err(EnvError::NeedsReset {
                env: env.to_string(),
                when: "after the episode ended",
            }),
        }
    }
}

#[inline]
pub(crate) fn check_obs_len(env: &str, expected: usize, obs: &[f64]) -> Result<(), EnvError> {
    if obs.len() != expected {
        return Err(EnvError::ObservationBuffer {
            env: env.to_string(),
            expected,
            got: obs.len(),
        });
    }
    Ok(())
}

pub(crate) fn check_state_len(
    env: &str,
    names: &'static str,
    expected: usize,
    state: &[f64],
) -> Result<(), EnvError> {
    if state.len() != expected {
        return Err(EnvError::StateLength {
            env: env.to_string(),
            expected,
            got: state.len(),
            names,
        });
    }
    if let Some((i, &v)) = state.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(EnvError::InvalidState {
            env: env.to_string(),
            index: i,
            name: names.split(", ").nth(i).unwrap_or("?"),
            value: v,
            reason: "not a finite number",
        });
    }
    Ok(())
}

/// Parse JSON parameters over the defaults `P::default()` (missing fields keep
/// their defaults; unknown fields are rejected by `#[serde(deny_unknown_fields)]`).
pub(crate) fn parse_params<P>(env: &str, params: &serde_json::Value) -> Result<P, EnvError>
where
    P: Serialize + serde::de::DeserializeOwned + Default,
{
    if params.is_null() {
        return Ok(P::default());
    }
    let mut base = serde_json::to_value(P::default()).map_err(|e| EnvError::ParamsJson {
        env: env.to_string(),
        reason: e.to_string(),
    })?;
    match (base.as_object_mut(), params.as_object()) {
        (Some(b), Some(p)) => {
            for (k, v) in p {
                b.insert(k.clone(), v.clone());
            }
        }
        _ => {
            return Err(EnvError::ParamsJson {
                env: env.to_string(),
                reason: format!("expected a JSON object, got {params}"),
            });
        }
    }
    serde_json::from_value(base).map_err(|e| EnvError::ParamsJson {
        env: env.to_string(),
        reason: e.to_string(),
    })
}

/// Seeded generator used by every environment: xoshiro256++ (portable and
/// fast; `seed_from_u64` expands the seed with SplitMix64).
pub type EnvRng = rand::rngs::Xoshiro256PlusPlus;

/// A seeded generator of the type the environments use (for sampling
/// actions from spaces without depending on `rand` directly).
pub fn seeded_rng(seed: u64) -> EnvRng {
    use rand::SeedableRng;
    EnvRng::seed_from_u64(seed)
}

/// Create the generator for `seed`, or from a fixed default stream when `None`
/// (environments are deterministic unless seeded differently).
pub(crate) fn env_rng(seed: Option<u64>) -> EnvRng {
    use rand::SeedableRng;
    EnvRng::seed_from_u64(seed.unwrap_or(0x6b69_6c6e))
}
