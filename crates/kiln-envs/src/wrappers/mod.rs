//! Wrappers with Gymnasium's semantics: each takes an environment by value
//! and is itself an [`Env`](crate::Env), so they stack in any order.

mod action;
mod flatten_observation;
mod normalize;
mod record_episode_statistics;
mod time_limit;

pub use action::{ClipAction, RescaleAction};
pub use flatten_observation::FlattenObservation;
pub use normalize::{NormalizeObservation, NormalizeReward, RunningMeanStd};
pub use record_episode_statistics::RecordEpisodeStatistics;
pub use time_limit::TimeLimit;

/// Forward the `Env` methods a wrapper does not change to `self.env`.
macro_rules! forward_env {
    (id) => {
        fn id(&self) -> &str {
            self.env.id()
        }
    };
    (observation_space) => {
        fn observation_space(&self) -> &$crate::space::Space {
            self.env.observation_space()
        }
    };
    (action_space) => {
        fn action_space(&self) -> &$crate::space::Space {
            self.env.action_space()
        }
    };
    (params) => {
        fn params(&self) -> serde_json::Value {
            self.env.params()
        }
        fn set_params(&mut self, params: &serde_json::Value) -> Result<(), $crate::error::EnvError> {
            self.env.set_params(params)
        }
    };
    (state) => {
        fn state(&self) -> Option<Vec<f64>> {
            self.env.state()
        }
    };
    (render) => {
        fn render(&self) -> Result<$crate::render::RgbImage, $crate::error::EnvError> {
            self.env.render()
        }
    };
    ($($m:ident),+) => {
        $( forward_env!($m); )+
    };
}
pub(crate) use forward_env;
