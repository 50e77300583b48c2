//! # kiln-envs
//!
//! Environments for learning parameterized policies, with Gymnasium's
//! semantics and Rust's speed, in plain Rust (no deep-learning framework):
//!
//! * the [`Env`] trait, [`Space`]s, vectorized stepping ([`VecEnv`],
//!   [`ParallelVecEnv`]) and [`wrappers`];
//! * a registry ([`make`]) of Gymnasium-style ids;
//! * classic control bit-identical to Gymnasium 1.x ([`classic`]);
//! * `PointMaze2D` with a bimodal scripted expert ([`point_maze`]);
//! * the fishery models of "Pretty darn good control" with CMort/CEsc grid search ([`fishery`]);
//! * tabular MDPs as data with generators ([`tabular`]);
//! * `TaxEconomy` (LLM Economist with rational or learning workers) ([`tax_economy`]);
//! * offline episode datasets with TQ and SACo ([`dataset`]);
//!
//! ```
//! use kiln_envs::{make, Action, Env};
//!
//! let mut env = make("CartPole-v1")?;
//! let (mut obs, _info) = env.reset(Some(42))?;
//! let mut ret = 0.0;
//! loop {
//!     // push the cart towards the side the pole leans to
//!     let a = if obs[2] > 0.0 { 1 } else { 0 };
//!     let step = env.step(&Action::Discrete(a))?;
//!     ret += step.reward;
//!     obs = step.obs;
//!     if step.terminated || step.truncated {
//!         break;
//!     }
//! }
//! assert!(ret >= 20.0);
//! # Ok::<(), kiln_envs::EnvError>(())
//! ```

pub mod classic;
pub mod dataset;
pub mod env;
pub mod error;
pub mod fishery;
pub mod point_maze;
pub mod registry;
pub mod render;
pub mod rollout;
pub mod space;
pub mod tabular;
pub mod tax_economy;
pub mod vector;
pub mod wrappers;

pub use env::{Action, BatchOut, Env, EnvRng, Info, Step, Transition, seeded_rng};
pub use error::EnvError;
pub use registry::{EnvSpec, make, make_with, spec, specs};
pub use render::{RgbImage, save_gif};
pub use space::{BoxSpace, Space};
pub use tabular::{MdpError, TabularEnv, TabularMdp};
pub use vector::{ParallelVecEnv, VecEnv};
