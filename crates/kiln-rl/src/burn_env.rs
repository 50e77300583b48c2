//! Interop with burn's reinforcement-learning traits (`burn::rl`): any Kiln environment as a
//! [`burn::rl::Environment`], with its observations convertible to the `[1, obs_dim]` tensors
//! burn policies and [`burn::rl::TransitionBuffer`] take.
//!
//! burn's `Environment` is deliberately small: `state`, `step(action) -> StepResult`, `reset()`
//! without a seed and without an error path. The adapter maps Kiln's richer contract onto it:
//! - **Seeding**: episode `k` (counting resets) is reset with seed `seed + k`, so a burn loop over
//!   a [`BurnEnv`] is as reproducible as a Kiln one.
//! - **Truncation**: the Kiln registry's `TimeLimit` truncates (`StepResult::truncated`);
//!   `MAX_STEPS` is therefore unbounded.
//! - **Errors**: burn's `step` cannot fail, but a Kiln env rejects invalid actions with an error.
//!   The adapter never panics: a rejected action ends the episode as truncated with zero reward,
//!   leaves the env untouched, and keeps the error for [`BurnEnv::last_error`].

use burn::rl::{Environment, StepResult, ToObservation};
use burn::tensor::{Device, Tensor, TensorData};
use kiln_envs::{Action, Env, EnvError};

use crate::error::Result;

/// A Kiln environment observation (`f32`, in the env's flattened order), as burn's `State`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation(pub Vec<f32>);

impl ToObservation<Tensor<2>> for Observation {
    /// A `[1, obs_dim]` tensor: one row of the batch a burn policy takes.
    fn to_observation(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(self.0.clone(), [1, self.0.len()]), device)
    }
}

/// A Kiln environment (from the registry, with its default time limit) behind burn's
/// [`Environment`] trait.
pub struct BurnEnv {
    env: Box<dyn Env>,
    obs: Vec<f64>,
    seed: u64,
    episodes: u64,
    last_error: Option<EnvError>,
}

impl std::fmt::Debug for BurnEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnEnv")
            .field("seed", &self.seed)
            .field("episodes", &self.episodes)
            .finish_non_exhaustive()
    }
}

impl BurnEnv {
    /// `kiln_envs::make(env_id)` behind burn's trait, reset once with `seed`.
    pub fn new(env_id: &str, seed: u64) -> Result<Self> {
        Self::from_env(kiln_envs::make(env_id)?, seed)
    }

    /// Wraps an already built env (any wrappers included), reset once with `seed`.
    pub fn from_env(mut env: Box<dyn Env>, seed: u64) -> Result<Self> {
        let mut obs = vec![0.0; env.observation_space().raw_len()];
        env.reset_into(Some(seed), &mut obs)?;
        Ok(Self {
            env,
            obs,
            seed,
            episodes: 1,
            last_error: None,
        })
    }

    /// The error of the last rejected action, if the last step rejected one.
    pub fn last_error(&self) -> Option<&EnvError> {
        self.last_error.as_ref()
    }

    /// The wrapped Kiln env.
    pub fn inner(&self) -> &dyn Env {
        self.env.as_ref()
    }

    fn observation(&self) -> Observation {
        Observation(self.obs.iter().map(|&x| x as f32).collect())
    }
}

impl Environment for BurnEnv {
    type State = Observation;
    type Action = Action;

    /// Unbounded: the registry env's own `TimeLimit` reports truncation.
    const MAX_STEPS: usize = usize::MAX;

    fn state(&self) -> Observation {
        self.observation()
    }

    fn step(&mut self, action: Action) -> StepResult<Observation> {
        match self.env.step_into(&action, &mut self.obs) {
            Ok(t) => {
                self.last_error = None;
                StepResult {
                    next_state: self.observation(),
                    reward: t.reward,
                    done: t.terminated,
                    truncated: t.truncated,
                }
            }
            Err(e) => {
                self.last_error = Some(e);
                StepResult {
                    next_state: self.observation(),
                    reward: 0.0,
                    done: false,
                    truncated: true,
                }
            }
        }
    }

    fn reset(&mut self) {
        let seed = self.seed.wrapping_add(self.episodes);
        self.episodes += 1;
        // A registry env built successfully always resets; keep any error for the caller.
        if let Err(e) = self.env.reset_into(Some(seed), &mut self.obs) {
            self.last_error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::rl::{Batchable, Policy, PolicyState, TransitionBuffer};

    /// A linear softmax policy over CartPole's observation, written against burn's `Policy`
    /// trait only: what a burn user brings to a Kiln env.
    #[derive(Module, Debug)]
    struct Linear {
        w: Param<Tensor<2>>,
    }

    #[derive(Clone)]
    struct LinearPolicy {
        net: Linear,
    }

    #[derive(Clone)]
    struct Actions(Vec<Action>);

    impl Batchable for Actions {
        fn batch(value: Vec<Self>) -> Self {
            Actions(value.into_iter().flat_map(|a| a.0).collect())
        }
        fn unbatch(self) -> Vec<Self> {
            self.0.into_iter().map(|a| Actions(vec![a])).collect()
        }
    }

    #[derive(Clone)]
    struct Weights(Linear);

    impl PolicyState for Weights {
        type Record = Linear;
        fn into_record(self) -> Linear {
            self.0
        }
        fn load_record(&self, record: Linear) -> Self {
            Weights(record)
        }
    }

    impl Policy for LinearPolicy {
        type Observation = Tensor<2>;
        type ActionDistribution = Tensor<2>;
        type Action = Actions;
        type ActionContext = ();
        type PolicyState = Weights;

        fn forward(&mut self, obs: Tensor<2>) -> Tensor<2> {
            burn::tensor::activation::softmax(obs.matmul(self.net.w.val()), 1)
        }
        fn action(&mut self, obs: Tensor<2>, _deterministic: bool) -> (Actions, Vec<()>) {
            let greedy: Vec<i64> = self
                .forward(obs)
                .argmax(1)
                .into_data()
                .iter::<i64>()
                .collect();
            let n = greedy.len();
            (
                Actions(greedy.into_iter().map(Action::Discrete).collect()),
                vec![(); n],
            )
        }
        fn update(&mut self, update: Weights) {
            self.net = update.0;
        }
        fn state(&self) -> Weights {
            Weights(self.net.clone())
        }
        fn to_device(self, device: &Device) -> Self {
            LinearPolicy {
                net: self.net.to_device(device),
            }
        }
        fn load_record(self, record: Linear) -> Self {
            LinearPolicy { net: record }
        }
    }

    fn balancing_policy(device: &Device) -> LinearPolicy {
        // Push right when the pole leans or falls right: logits (left, right) = (-u, u) with
        // u = theta + 0.5 * theta_dot, a policy that keeps CartPole up for a while.
        let w = [[0.0f32, 0.0], [0.0, 0.0], [-1.0, 1.0], [-0.5, 0.5]];
        LinearPolicy {
            net: Linear {
                w: Param::from_tensor(Tensor::from_data(w, device)),
            },
        }
    }

    fn run_episode(env: &mut BurnEnv, policy: &mut LinearPolicy, device: &Device) -> (f64, usize) {
        let mut total = 0.0;
        let mut steps = 0;
        loop {
            let obs = env.state().to_observation(device);
            let (actions, _) = policy.action(obs, true);
            let Some(a) = actions.unbatch().pop().and_then(|a| a.0.into_iter().next()) else {
                return (total, steps);
            };
            let r = env.step(a);
            total += r.reward;
            steps += 1;
            if r.done || r.truncated {
                return (total, steps);
            }
        }
    }

    #[test]
    fn burn_policy_drives_a_kiln_env_through_burns_traits() {
        let device = kiln_tensor::testing::cpu();
        let mut policy = balancing_policy(&device);
        let mut env = BurnEnv::new("CartPole-v1", 7).expect("env");
        let (ret, steps) = run_episode(&mut env, &mut policy, &device);
        assert!(env.last_error().is_none());
        assert_eq!(ret, steps as f64, "CartPole pays 1 per step");
        // The heuristic balances far longer than a random policy's ~22 steps.
        assert!(steps >= 100, "{steps}");

        // Same seed, same episodes: burn's seedless reset stays reproducible.
        env.reset();
        let second = run_episode(&mut env, &mut policy, &device);
        let mut again = BurnEnv::new("CartPole-v1", 7).expect("env");
        run_episode(&mut again, &mut policy, &device);
        again.reset();
        assert_eq!(run_episode(&mut again, &mut policy, &device), second);
    }

    #[test]
    fn transitions_fill_burns_buffer_with_kiln_observations() {
        let device = kiln_tensor::testing::cpu();
        let mut policy = balancing_policy(&device);
        let mut env = BurnEnv::new("CartPole-v1", 3).expect("env");
        let mut buffer: TransitionBuffer<Tensor<2>, Tensor<2>> = TransitionBuffer::new(64, &device);
        let mut rows = vec![];
        for _ in 0..64 {
            let state = env.state();
            let (actions, _) = policy.action(state.to_observation(&device), true);
            let a = actions.0[0].clone();
            let Action::Discrete(k) = a else {
                panic!("CartPole is discrete")
            };
            let r = env.step(a);
            rows.push(state.0.clone());
            buffer.push(
                state.to_observation(&device),
                r.next_state.to_observation(&device),
                Tensor::from_data([[k as f32]], &device),
                r.reward as f32,
                r.done,
            );
            if r.done || r.truncated {
                env.reset();
            }
        }
        assert_eq!(buffer.len(), 64);
        let batch = buffer.sample(16);
        let states: Vec<f32> = batch.states.into_data().iter::<f32>().collect();
        // Every sampled state row is one the env produced.
        for row in states.chunks(4) {
            assert!(rows.iter().any(|r| r.as_slice() == row), "{row:?}");
        }
    }

    #[test]
    fn rejected_action_truncates_without_panicking() {
        let mut env = BurnEnv::new("CartPole-v1", 1).expect("env");
        let before = env.state();
        let r = env.step(Action::Discrete(5));
        assert!(r.truncated && !r.done);
        assert_eq!(r.reward, 0.0);
        assert_eq!(
            r.next_state, before,
            "a rejected action leaves the env as it was"
        );
        let msg = env
            .last_error()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(msg.contains("CartPole") && msg.contains('5'), "{msg}");
    }
}
