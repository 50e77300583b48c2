//! The learners, one readable file each.

pub mod ppo;
