//! The learners, one readable file each.

pub mod dqn;
pub mod ppo;
pub mod sac;
pub mod td3;
