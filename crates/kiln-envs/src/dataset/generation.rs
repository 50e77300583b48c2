//! Dataset generation from behaviour policies, following §2.2 of "A Dataset
//! Perspective on Offline Reinforcement Learning": **random** (uniform
//! actions), **expert** (the final online policy, greedy), **noisy** (the
//! expert with probability ε = 0.2 of a uniform action), **mixed** (the first
//! 80 % of the random transitions followed by the last 20 % of the expert
//! transitions) and **replay** (every transition a learner saw during
//! training: push them into an [`EpisodeDataset`] as they happen).
//! Every dataset has exactly `T` transitions; a trailing unfinished episode
//! is kept as transitions but has no return.

use rand::{RngExt, SeedableRng};

use crate::dataset::{DatasetError, DatasetMetadata, EpisodeDataset, FORMAT_VERSION};
use crate::env::{Action, Env, EnvRng};
use crate::space::Space;

/// A behaviour policy: maps an observation to an action, with its own randomness.
pub trait BehaviourPolicy {
    /// Name stored in the dataset metadata (`random`, `expert`, `noisy`, ...).
    fn name(&self) -> String;
    /// Called at the start of every episode (e.g. to pick a mode).
    fn episode_start(&mut self, rng: &mut EnvRng) {
        let _ = rng;
    }
    /// The action for `obs`.
    fn act(&mut self, obs: &[f64], rng: &mut EnvRng) -> Action;
}

/// Uniformly random actions from a space.
#[derive(Debug, Clone)]
pub struct RandomPolicy {
    /// The action space.
    pub space: Space,
}

impl BehaviourPolicy for RandomPolicy {
    fn name(&self) -> String {
        "random".into()
    }
    fn act(&mut self, _obs: &[f64], rng: &mut EnvRng) -> Action {
        self.space.sample(rng)
    }
}

/// An expert given as a closure `(obs, rng) -> action`.
pub struct FnPolicy<F> {
    /// Name in the metadata.
    pub name: String,
    /// The policy.
    pub f: F,
}

impl<F: FnMut(&[f64], &mut EnvRng) -> Action> BehaviourPolicy for FnPolicy<F> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn act(&mut self, obs: &[f64], rng: &mut EnvRng) -> Action {
        (self.f)(obs, rng)
    }
}

/// The paper's noisy expert: with probability `epsilon` (0.2 in the paper) a
/// uniformly random action, otherwise the expert's.
pub struct EpsilonNoisy<P> {
    /// The expert.
    pub expert: P,
    /// Probability of a random action.
    pub epsilon: f64,
    /// Action space to sample from.
    pub space: Space,
}

impl<P: BehaviourPolicy> BehaviourPolicy for EpsilonNoisy<P> {
    fn name(&self) -> String {
        "noisy".into()
    }
    fn episode_start(&mut self, rng: &mut EnvRng) {
        self.expert.episode_start(rng);
    }
    fn act(&mut self, obs: &[f64], rng: &mut EnvRng) -> Action {
        // the expert is always queried so that stateful experts stay in sync
        let a = self.expert.act(obs, rng);
        if rng.random::<f64>() < self.epsilon {
            self.space.sample(rng)
        } else {
            a
        }
    }
}

/// Roll out `policy` in `env` for exactly `n_transitions` transitions
/// (auto-resetting after each episode; the first reset uses `seed`, the
/// policy's generator is seeded with `seed` too). Record the env's id and
/// `env_params` in the metadata.
pub fn collect<E: Env + ?Sized, P: BehaviourPolicy + ?Sized>(
    env: &mut E,
    env_params: &serde_json::Value,
    policy: &mut P,
    n_transitions: usize,
    seed: u64,
) -> Result<EpisodeDataset, DatasetError> {
    let metadata = DatasetMetadata {
        format_version: FORMAT_VERSION,
        env_id: env.id().to_string(),
        env_params: env_params.clone(),
        observation_space: env.observation_space().clone(),
        action_space: env.action_space().clone(),
        behaviour_policy: policy.name(),
        seed,
        extra: Default::default(),
    };
    let mut ds = EpisodeDataset::new(metadata);
    let mut rng = EnvRng::seed_from_u64(seed ^ 0x005e_ed0f_be4a_u64);
    let (mut obs, _) = env.reset(Some(seed))?;
    policy.episode_start(&mut rng);
    while ds.len() < n_transitions {
        let a = policy.act(&obs, &mut rng);
        let s = env.step(&a)?;
        ds.push(&obs, &a, s.reward, &s.obs, s.terminated, s.truncated)?;
        if s.terminated || s.truncated {
            obs = env.reset(None)?.0;
            policy.episode_start(&mut rng);
        } else {
            obs = s.obs;
        }
    }
    Ok(ds)
}

/// The paper's mixed dataset (`mix(p_orig = 0.8)`): the first `p_random · T`
/// transitions of `random` followed by the last `T − p_random · T` of
/// `expert`, where `T = min(len)`. Concatenated as in the paper's code (the
/// cut is not marked as an episode end).
pub fn mixed(
    random: &EpisodeDataset,
    expert: &EpisodeDataset,
    p_random: f64,
) -> Result<EpisodeDataset, DatasetError> {
    let t = random.len().min(expert.len());
    let n_random = (p_random.clamp(0.0, 1.0) * t as f64).round() as usize;
    let mut ds = random.slice(0..n_random);
    ds.extend(&expert.slice(expert.len() - (t - n_random)..expert.len()))?;
    ds.metadata.behaviour_policy = "mixed".into();
    ds.metadata.extra.insert(
        "mixed_random_transitions".into(),
        serde_json::json!(n_random),
    );
    Ok(ds)
}
