//! Evaluation episodes: run a (usually deterministic) policy for whole episodes.

use kiln_envs::{Action, Env};

use crate::error::Result;

/// Runs `episodes` full episodes of `env`, episode `k` reset with seed `seed + k`, choosing
/// actions with `act(observation)`; returns the undiscounted return of each episode.
pub fn evaluate_episodes<E: Env + ?Sized>(
    env: &mut E,
    episodes: usize,
    seed: u64,
    mut act: impl FnMut(&[f64]) -> Result<Action>,
) -> Result<Vec<f64>> {
    let mut obs = vec![0.0; env.observation_space().raw_len()];
    let mut returns = Vec::with_capacity(episodes);
    for k in 0..episodes {
        env.reset_into(Some(seed.wrapping_add(k as u64)), &mut obs)?;
        let mut total = 0.0;
        loop {
            let action = act(&obs)?;
            let t = env.step_into(&action, &mut obs)?;
            total += t.reward;
            if t.terminated || t.truncated {
                break;
            }
        }
        returns.push(total);
    }
    Ok(returns)
}

/// Mean and population standard deviation of a sample (NaN for an empty one).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let m = values.iter().sum::<f64>() / n;
    let v = values.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, v.sqrt())
}
