//! Generalized advantage estimation (Schulman, Moritz, Levine, Jordan, Abbeel 2016,
//! "High-Dimensional Continuous Control Using Generalized Advantage Estimation").
//!
//! Layout: every array is `[T, N]` row-major (time-major, `N` parallel envs), the layout of
//! [`crate::RolloutBuffer`].

/// GAE(gamma, lambda) advantages and lambda-returns, written into `advantages` and `returns`.
///
/// With the TD residual (eq. 11) `delta_t = r_t + gamma V(s_{t+1}) - V(s_t)`, the estimator is
/// the exponentially weighted sum (eq. 16) `A_t = sum_l (gamma lambda)^l delta_{t+l}`, computed
/// backwards as `A_t = delta_t + gamma lambda A_{t+1}`; the value target is
/// `R_t = A_t + V(s_t)` (the lambda-return).
///
/// Episode ends are where the two kinds of "done" differ (Pardo et al. 2018, "Time Limits in
/// Reinforcement Learning"):
/// * **termination** (`terminated[t, i]`): `s_{t+1}` is terminal, `V(s_{t+1}) = 0`: no bootstrap;
/// * **truncation** (`truncated[t, i]`, e.g. a time limit): the MDP goes on, so the residual
///   bootstraps with the value of the *final observation* of the cut episode,
///   `final_values[t, i]` (read only where truncated);
/// * at either end the recursion stops: `A_{t+1}` belongs to the next episode.
///
/// For steps that did not end an episode `V(s_{t+1})` is `values[t + 1, i]`, and for the last
/// step of the rollout it is `last_values[i]`, the value of the observation after the rollout.
///
/// # Panics
/// If the slice lengths disagree with `last_values.len() = N` and `T = values.len() / N`
/// (a programming error, never a user input).
#[allow(clippy::too_many_arguments)]
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    terminated: &[bool],
    truncated: &[bool],
    final_values: &[f32],
    last_values: &[f32],
    gamma: f32,
    lambda: f32,
    advantages: &mut [f32],
    returns: &mut [f32],
) {
    let n = last_values.len();
    let len = values.len();
    assert!(
        n > 0 && len.is_multiple_of(n),
        "values length {len} is not a multiple of {n} envs"
    );
    for (name, l) in [
        ("rewards", rewards.len()),
        ("terminated", terminated.len()),
        ("truncated", truncated.len()),
        ("final_values", final_values.len()),
        ("advantages", advantages.len()),
        ("returns", returns.len()),
    ] {
        assert_eq!(l, len, "{name} has length {l}, values {len}");
    }
    let t_len = len / n;
    for (i, &last_value) in last_values.iter().enumerate() {
        let mut next_adv = 0.0f32;
        for t in (0..t_len).rev() {
            let k = t * n + i;
            let (next_value, continues) = if terminated[k] {
                (0.0, 0.0)
            } else if truncated[k] {
                (final_values[k], 0.0)
            } else if t + 1 < t_len {
                (values[k + n], 1.0)
            } else {
                (last_value, 1.0)
            };
            // Eq. (11): the TD residual of V with discount gamma.
            let delta = rewards[k] + gamma * next_value - values[k];
            // Eq. (16), written recursively.
            next_adv = delta + gamma * lambda * continues * next_adv;
            advantages[k] = next_adv;
            returns[k] = next_adv + values[k];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < 1e-5, "index {i}: got {x}, want {y}");
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        r: &[f32],
        v: &[f32],
        term: &[bool],
        trunc: &[bool],
        fin: &[f32],
        last: &[f32],
        g: f32,
        l: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut a = vec![0.0; v.len()];
        let mut ret = vec![0.0; v.len()];
        gae(r, v, term, trunc, fin, last, g, l, &mut a, &mut ret);
        (a, ret)
    }

    #[test]
    fn single_env_without_episode_end_matches_hand_computation() {
        // T = 3, N = 1, gamma = 0.9, lambda = 0.5.
        // delta_2 = 1 + 0.9*4 - 3 = 1.6;  A_2 = 1.6
        // delta_1 = 0 + 0.9*3 - 2 = 0.7;  A_1 = 0.7 + 0.45*1.6 = 1.42
        // delta_0 = 1 + 0.9*2 - 1 = 1.8;  A_0 = 1.8 + 0.45*1.42 = 2.439
        let (a, ret) = run(
            &[1.0, 0.0, 1.0],
            &[1.0, 2.0, 3.0],
            &[false; 3],
            &[false; 3],
            &[0.0; 3],
            &[4.0],
            0.9,
            0.5,
        );
        close(&a, &[2.439, 1.42, 1.6]);
        close(&ret, &[3.439, 3.42, 4.6]);
    }

    #[test]
    fn termination_does_not_bootstrap_and_cuts_the_recursion() {
        // Termination at t = 1: delta_1 = 1 - 2 = -1, A_1 = -1 (A_2 not carried over).
        // delta_2 = 1 + 0.9*4 - 3 = 1.6; delta_0 = 1 + 0.9*2 - 1 = 1.8, A_0 = 1.8 + 0.45*(-1).
        let (a, _) = run(
            &[1.0, 1.0, 1.0],
            &[1.0, 2.0, 3.0],
            &[false, true, false],
            &[false; 3],
            &[100.0; 3],
            &[4.0],
            0.9,
            0.5,
        );
        close(&a, &[1.35, -1.0, 1.6]);
    }

    #[test]
    fn truncation_bootstraps_from_the_final_observation() {
        // Truncation at t = 1 with V(final obs) = 10: delta_1 = 1 + 0.9*10 - 2 = 8, A_1 = 8;
        // the recursion still stops there. A_0 = 1.8 + 0.45*8 = 5.4.
        let (a, ret) = run(
            &[1.0, 1.0, 1.0],
            &[1.0, 2.0, 3.0],
            &[false; 3],
            &[false, true, false],
            &[0.0, 10.0, 0.0],
            &[4.0],
            0.9,
            0.5,
        );
        close(&a, &[5.4, 8.0, 1.6]);
        close(&ret, &[6.4, 10.0, 4.6]);
    }

    #[test]
    fn envs_are_independent_columns() {
        // T = 2, N = 2, gamma = 1, lambda = 1: A is the plain return-to-go minus V.
        // env 0: r = [1, 1], V = [0, 0], last 0 -> A = [2, 1].
        // env 1: r = [2, 3], V = [1, 1], terminated at t = 0 -> A_0 = 2 - 1 = 1;
        //        A_1 = 3 + 5 - 1 = 7 with last value 5.
        let (a, _) = run(
            &[1.0, 2.0, 1.0, 3.0],
            &[0.0, 1.0, 0.0, 1.0],
            &[false, true, false, false],
            &[false; 4],
            &[0.0; 4],
            &[0.0, 5.0],
            1.0,
            1.0,
        );
        close(&a, &[2.0, 1.0, 1.0, 7.0]);
    }

    #[test]
    fn lambda_zero_is_one_step_td_and_lambda_one_is_monte_carlo() {
        let r = [1.0, 2.0, 3.0];
        let v = [0.5, 0.25, 0.125];
        let (a0, _) = run(
            &r,
            &v,
            &[false; 3],
            &[false; 3],
            &[0.0; 3],
            &[2.0],
            0.5,
            0.0,
        );
        close(
            &a0,
            &[1.0 + 0.125 - 0.5, 2.0 + 0.0625 - 0.25, 3.0 + 1.0 - 0.125],
        );
        let (a1, _) = run(
            &r,
            &v,
            &[false; 3],
            &[false; 3],
            &[0.0; 3],
            &[2.0],
            0.5,
            1.0,
        );
        // Monte Carlo return with bootstrap 2: G_0 = 1 + 0.5*2 + 0.25*3 + 0.125*2 = 3.0
        close(&a1, &[3.0 - 0.5, 2.0 + 1.5 + 0.5 - 0.25, 3.0 + 1.0 - 0.125]);
    }
}
