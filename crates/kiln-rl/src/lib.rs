//! # kiln-rl
//!
//! Kiln's shared reinforcement-learning layer: the plumbing every learner calls, and the
//! baseline learners other papers are measured against.
//!
//! - **Buffers**: [`RolloutBuffer`] (on-policy, `[T, N]` layout) with [`gae`] (GAE(lambda),
//!   bootstrapping on truncation but not on termination), and [`ReplayBuffer`] (a
//!   preallocated ring sampled into caller buffers).
//! - **Learners** ([`algos`]), one readable file each, with the life cycle of
//!   Stable-Baselines3 (`new`, `learn`, `predict`, `save`/`load`): [`Ppo`] (CleanRL's `ppo.py`
//!   and `ppo_continuous_action.py`), [`Sac`] (twin critics, automatic temperature),
//!   [`Td3`] (target smoothing, delayed actor) and [`Dqn`] (target network, epsilon schedule,
//!   Huber loss, double-DQN switch), the off-policy three with SB3's defaults and the
//!   rl-baselines3-zoo settings per env.
//!   [`Reinforce`] (REINFORCE with a learned baseline, Sutton & Barto eq. 13.11) and
//!   [`StochasticPg`] (vanilla / normalized PG, N-PG-IGT and (N)-HARPG of Fatkhullin et al.
//!   2023) on the shared flat-parameter policy, sampler and GPOMDP estimators of
//!   [`algos::gpomdp`] (`--algo reinforce | pg-igt | harpg`).
//! - **Callbacks** ([`Callback`]): every update reports named diagnostics
//!   (`losses/approx_kl`, `charts/SPS`, ...); a [`kiln_track::RunDir`] is a callback.
//!
//! ```no_run
//! use kiln_rl::{NoCallback, Ppo, PpoConfig};
//!
//! let mut ppo = Ppo::new(PpoConfig::cartpole(), "CartPole-v1", 1)?;
//! ppo.learn(100_000, &mut NoCallback)?;
//! let returns = ppo.evaluate(10, 1_000)?;
//! println!("mean eval return {}", returns.iter().sum::<f64>() / 10.0);
//! # Ok::<(), kiln_rl::RlError>(())
//! ```

#![warn(missing_docs)]

pub mod algos;
pub mod burn_env;
mod callback;
mod error;
pub mod eval;
pub mod experiments;
pub mod gae;
mod learner;
mod off_policy;
pub mod replay;
pub mod rollout;

pub use algos::dqn::{Dqn, DqnConfig, DqnStats, huber_loss};
pub use algos::ppo::{
    ActorCritic, PolicyHead, Ppo, PpoConfig, PpoEngine, PpoLoss, PpoLossInputs, UpdateStats,
    ppo_loss,
};
pub use algos::reinforce::{Reinforce, ReinforceConfig};
pub use algos::sac::{Sac, SacConfig, SacEngine, SacStats};
pub use algos::stochastic_pg::{PgMethod, StochasticPg, StochasticPgConfig};
pub use algos::td3::{Td3, Td3Config, Td3Stats};
pub use callback::{Callback, FnCallback, NoCallback};
pub use error::{Result, RlError};
pub use eval::{evaluate_episodes, mean_std};
pub use gae::gae;
pub use learner::{ALGOS, Learner, load_learner, make_learner, parse_config};
pub use off_policy::ActionBox;
pub use replay::{ReplayBatch, ReplayBuffer};
pub use rollout::{RolloutBuffer, explained_variance};
