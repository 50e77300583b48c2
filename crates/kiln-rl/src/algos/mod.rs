//! The learners, one readable file each.

pub mod ppo;
pub mod gpomdp;
pub mod reinforce;
pub mod stochastic_pg;
