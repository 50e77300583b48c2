use std::collections::VecDeque;
use std::time::Instant;

use crate::env::{Action, Env, Info, Transition};
use crate::error::EnvError;
use crate::wrappers::forward_env;

/// Gymnasium's `RecordEpisodeStatistics`: at the end of an episode the step's
/// info gets `episode_return`, `episode_length` and `episode_time` (seconds),
/// and the last `buffer_length` returns and lengths are kept in queues.
#[derive(Debug, Clone)]
pub struct RecordEpisodeStatistics<E> {
    env: E,
    episode_return: f64,
    episode_length: usize,
    start: Instant,
    buffer_length: usize,
    /// Returns of the most recent episodes (oldest first).
    pub return_queue: VecDeque<f64>,
    /// Lengths of the most recent episodes (oldest first).
    pub length_queue: VecDeque<usize>,
}

impl<E: Env> RecordEpisodeStatistics<E> {
    /// Wrap `env`, keeping the last 100 episodes (Gymnasium's default).
    pub fn new(env: E) -> Self {
        Self::with_buffer(env, 100)
    }
    /// Wrap `env`, keeping the last `buffer_length` episodes.
    pub fn with_buffer(env: E, buffer_length: usize) -> Self {
        Self {
            env,
            episode_return: 0.0,
            episode_length: 0,
            start: Instant::now(),
            buffer_length,
            return_queue: VecDeque::new(),
            length_queue: VecDeque::new(),
        }
    }
    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }
}

impl<E: Env> Env for RecordEpisodeStatistics<E> {
    forward_env!(id, observation_space, action_space, params, state, render);

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        let info = self.env.reset_into(seed, obs)?;
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.start = Instant::now();
        Ok(info)
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        let mut t = self.env.step_into(action, obs)?;
        self.episode_return += t.reward;
        self.episode_length += 1;
        if t.terminated || t.truncated {
            t.info.insert("episode_return", self.episode_return);
            t.info.insert("episode_length", self.episode_length as f64);
            t.info
                .insert("episode_time", self.start.elapsed().as_secs_f64());
            if self.buffer_length > 0 {
                if self.return_queue.len() == self.buffer_length {
                    self.return_queue.pop_front();
                    self.length_queue.pop_front();
                }
                self.return_queue.push_back(self.episode_return);
                self.length_queue.push_back(self.episode_length);
            }
        }
        Ok(t)
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.env.set_state(state)?;
        self.episode_return = 0.0;
        self.episode_length = 0;
        Ok(())
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        self.env.observe(obs)
    }
}
