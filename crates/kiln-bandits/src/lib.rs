//! Bandit environments and learners for Kiln, with no tensor library and no
//! other Kiln crate underneath.
//!
//! - Stochastic baselines for Bernoulli arms: [`Ucb1`] (Auer, Cesa-Bianchi &
//!   Fischer 2002), [`ThompsonSampling`] (Beta-Bernoulli) and the adversarial
//!   [`Exp3`] in the implicit-exploration form used by the "Beyond Worst-case
//!   Attacks" adaptive defense.
//! - Recovering-reward bandits ("Offline Planning and Online Learning under
//!   Recovering Rewards", Simchi-Levi, Zheng & Zhu): the model
//!   ([`recovering::RecoveringBandit`]), the LP upper bound and the purely
//!   periodic offline policy ([`recovering::periodic`]), and the UCB online
//!   version ([`recovering::online`]). The paper body was not available: the
//!   upper bound, period rule and UCB epochs follow Kiln's reconstruction
//!   (documented on each item) and are tested for the properties the paper
//!   claims (agreement with brute force, the sqrt(T) regret slope).
//!
//! ```
//! use kiln_bandits::{BanditPolicy, BernoulliBandit, Ucb1, run_stochastic};
//! use rand::{SeedableRng, rngs::StdRng};
//!
//! # fn main() -> Result<(), kiln_bandits::BanditError> {
//! let bandit = BernoulliBandit::new(vec![0.2, 0.5, 0.8])?;
//! let mut ucb = Ucb1::new(3)?;
//! let mut rng = StdRng::seed_from_u64(0);
//! let regret = run_stochastic(&bandit, &mut ucb, 2_000, &mut rng);
//! // logarithmic regret: far below the 0.3 * 2000 of always pulling the middle arm
//! assert!(regret[1_999] < 100.0);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod bernoulli;
mod error;
mod exp3;
pub mod recovering;
mod thompson;
mod ucb1;

pub use bernoulli::{BanditPolicy, BernoulliBandit, loglog_slope, run_stochastic};
pub use error::BanditError;
pub use exp3::{Exp3, Exp3Config};
pub use thompson::ThompsonSampling;
pub use ucb1::Ucb1;
