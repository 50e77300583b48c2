//! Recovering-reward bandits ("Offline Planning and Online Learning under
//! Recovering Rewards", Simchi-Levi, Zheng & Zhu, arXiv 2106.14813; ICML 2021
//! as "Dynamic Planning and Learning under Recovering Rewards").
//!
//! Each period the learner pulls up to `K` of `N` arms; an arm pulled after
//! `d` idle periods pays `R_i(d)` plus noise, where `R_i` is non-decreasing
//! and flat after `d_max`. Only the abstracts could be read: the idle-time
//! convention (`d = 1` for consecutive pulls, all arms fully recovered at the
//! start), the LP upper bound, the period rule and the UCB epochs are Kiln's
//! **reconstruction** (reference note `recovering-rewards.md`, Sec. 2.2-2.4),
//! checked by tests against brute force and the claimed sqrt(T) regret.

pub mod model;
pub mod online;
pub mod periodic;

pub use model::RecoveringBandit;
