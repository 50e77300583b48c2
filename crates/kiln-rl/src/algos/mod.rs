//! The learners, one readable file each.

pub mod gpomdp;
pub mod ppo;
pub mod reinforce;
pub mod stochastic_pg;
