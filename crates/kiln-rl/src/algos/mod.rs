//! The learners, one readable file each.

pub mod dqn;
pub mod gpomdp;
pub mod ppo;
pub mod reinforce;
pub mod sac;
pub mod stochastic_pg;
pub mod td3;
