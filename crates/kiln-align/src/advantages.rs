//! Advantage estimators of the critic-free policy-gradient family, computed on the host from
//! scalar rewards. Rewards of a batch are laid out group-major: `group` consecutive entries
//! are the completions of one prompt. Standard deviations are the unbiased (n - 1) ones, as in
//! TRL's `nanstd` and verl's `torch.std` (reference note `grpo-family.md` Sec. 2.1).

/// Mean of a slice (0 for an empty slice).
fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// Unbiased standard deviation (0 for fewer than two values).
pub fn unbiased_std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Population standard deviation (the form under which NFT's prompt weight reproduces GRPO).
pub fn population_std(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// GRPO outcome advantages (DeepSeekMath, Shao et al. 2024, Sec. 4.1.2):
/// `A_i = (R_i - mean_g R) / (std_g R + eps)` within each group (TRL: eps = 1e-4).
pub fn grpo(rewards: &[f64], group: usize, eps: f64) -> Vec<f64> {
    rewards
        .chunks(group.max(1))
        .flat_map(|g| {
            let (m, s) = (mean(g), unbiased_std(g));
            g.iter().map(move |r| (r - m) / (s + eps))
        })
        .collect()
}

/// GRPO advantages with the population standard deviation (`(R - mean) / std`, 0 for a
/// constant group): the advantages NFT's GRPO-matched prompt weight reproduces.
pub fn grpo_population(rewards: &[f64], group: usize) -> Vec<f64> {
    rewards
        .chunks(group.max(1))
        .flat_map(|g| {
            let (m, s) = (mean(g), population_std(g));
            g.iter()
                .map(move |r| if s > 0.0 { (r - m) / s } else { 0.0 })
        })
        .collect()
}

/// Dr. GRPO advantages (Liu et al. 2025, "Understanding R1-Zero-Like Training", Sec. 3.2):
/// `A_i = R_i - mean_g R`, no division by the group std.
pub fn dr_grpo(rewards: &[f64], group: usize) -> Vec<f64> {
    rewards
        .chunks(group.max(1))
        .flat_map(|g| {
            let m = mean(g);
            g.iter().map(move |r| r - m)
        })
        .collect()
}

/// RLOO leave-one-out advantages (Ahmadian et al. 2024, "Back to Basics", Sec. 3):
/// `A_i = R_i - (1/(k-1)) sum_{j != i} R_j`; 0 for groups of one.
pub fn rloo(rewards: &[f64], group: usize) -> Vec<f64> {
    rewards
        .chunks(group.max(1))
        .flat_map(|g| {
            let k = g.len();
            let total: f64 = g.iter().sum();
            g.iter().map(move |r| {
                if k < 2 {
                    0.0
                } else {
                    r - (total - r) / (k - 1) as f64
                }
            })
        })
        .collect()
}

/// Lite PPO advantages ("Tricks or Traps?", Liu et al. 2025; reference note `lite-ppo.md`
/// Sec. 2): group mean, **batch** standard deviation of the raw rewards,
/// `A_i = (R_i - mean_g R) / (std_batch R + eps)` (ROLL: eps = 1e-6).
pub fn lite_ppo(rewards: &[f64], group: usize, eps: f64) -> Vec<f64> {
    let s = unbiased_std(rewards);
    dr_grpo(rewards, group)
        .into_iter()
        .map(|a| a / (s + eps))
        .collect()
}

/// REINFORCE++ token advantages (Hu et al. 2025, Sec. 3): token rewards
/// `r_t = -beta * kl_t + [t = last] * R` with `kl_t = log pi_old - log pi_ref` (k1), the
/// undiscounted return-to-go `G_t = sum_{s >= t} r_s`, then **global batch** whitening over
/// all completion tokens, `(G - mean) / (std + 1e-8)`. With `group_baseline` the group mean
/// reward is subtracted from `R` first (REINFORCE++-baseline).
///
/// `kl[i]` holds the per-token k1 values of completion `i` (its length is the completion's
/// length). Returns per-token advantages in the same layout.
pub fn reinforce_pp(
    rewards: &[f64],
    kl: &[Vec<f64>],
    beta: f64,
    group: usize,
    group_baseline: bool,
) -> Vec<Vec<f64>> {
    let outcome = if group_baseline {
        dr_grpo(rewards, group)
    } else {
        rewards.to_vec()
    };
    let returns: Vec<Vec<f64>> = outcome
        .iter()
        .zip(kl)
        .map(|(&r, k)| {
            let n = k.len();
            let mut g = vec![0.0; n];
            let mut acc = 0.0;
            for t in (0..n).rev() {
                acc += -beta * k[t] + if t + 1 == n { r } else { 0.0 };
                g[t] = acc;
            }
            g
        })
        .collect();
    let flat: Vec<f64> = returns.iter().flatten().copied().collect();
    let (m, s) = (mean(&flat), unbiased_std(&flat));
    returns
        .into_iter()
        .map(|g| g.into_iter().map(|v| (v - m) / (s + 1e-8)).collect())
        .collect()
}

/// DAPO's dynamic-sampling filter (Yu et al. 2025, Sec. 3.2: `0 < |{correct}| < G`): true for
/// each group whose rewards are not all equal (all-correct and all-wrong groups carry no
/// signal under group normalization).
pub fn informative_groups(rewards: &[f64], group: usize) -> Vec<bool> {
    rewards
        .chunks(group.max(1))
        .map(|g| g.iter().any(|r| (r - g[0]).abs() > 1e-12))
        .collect()
}

/// DAPO's soft overlong punishment (Yu et al. 2025, Sec. 3.4): 0 up to
/// `max_len - cache`, then falling linearly to -1 at `max_len`, and -1 beyond.
pub fn overlong_penalty(len: usize, max_len: usize, cache: usize) -> f64 {
    let safe = max_len.saturating_sub(cache);
    if len <= safe {
        0.0
    } else if len <= max_len {
        (safe as f64 - len as f64) / cache.max(1) as f64
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn known_answers_from_grpo_family_note() {
        let r = [1.0, 0.0, 0.0, 1.0];
        close(
            &grpo(&r, 4, 1e-4),
            &[0.86588, -0.86588, -0.86588, 0.86588],
            1e-5,
        );
        close(&rloo(&r, 4), &[2. / 3., -2. / 3., -2. / 3., 2. / 3.], 1e-12);
        close(&dr_grpo(&r, 4), &[0.5, -0.5, -0.5, 0.5], 1e-12);
        close(&grpo_population(&r, 4), &[1.0, -1.0, -1.0, 1.0], 1e-12);
        // A constant group gives zero advantages, not NaN.
        assert_eq!(grpo(&[1.0; 4], 4, 1e-4), vec![0.0; 4]);
    }

    #[test]
    fn lite_ppo_known_answers_and_invariances() {
        let r = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert!((unbiased_std(&r) - 0.517549).abs() < 1e-6);
        let a = lite_ppo(&r, 4, 1e-6);
        close(
            &a,
            &[0.483045, 0.483045, 0.483045, -1.449135, 0., 0., 0., 0.],
            1e-5,
        );
        close(
            &grpo(&r[..4], 4, 1e-4),
            &[0.49990, 0.49990, 0.49990, -1.49970],
            1e-5,
        );
        let scaled: Vec<f64> = r.iter().map(|x| 10.0 * x + 3.0).collect();
        close(&lite_ppo(&scaled, 4, 0.0), &lite_ppo(&r, 4, 0.0), 1e-9);
    }

    #[test]
    fn reinforce_pp_returns_and_whitening() {
        // Two completions, beta = 0 : returns are the outcome at every token.
        let adv = reinforce_pp(&[1.0, 0.0], &[vec![0.0; 2], vec![0.0; 2]], 0.0, 2, false);
        // Tokens: [1, 1, 0, 0], mean 0.5, unbiased std 0.57735.
        close(&adv[0], &[0.866025, 0.866025], 1e-5);
        close(&adv[1], &[-0.866025, -0.866025], 1e-5);
        // The KL penalty accumulates backwards: G = [R - b(k0 + k1), R - b k1].
        let adv = reinforce_pp(
            &[1.0, 1.0],
            &[vec![0.5, 1.0], vec![0.0, 0.0]],
            0.1,
            2,
            false,
        );
        let g = [0.85, 0.9, 1.0, 1.0];
        let (m, s) = (mean(&g), unbiased_std(&g));
        close(&adv[0], &[(0.85 - m) / s, (0.9 - m) / s], 1e-6);
    }

    #[test]
    fn dapo_pieces() {
        assert_eq!(overlong_penalty(16_000, 20_480, 4_096), 0.0);
        assert!((overlong_penalty(18_432, 20_480, 4_096) + 0.5).abs() < 1e-12);
        assert_eq!(overlong_penalty(20_480, 20_480, 4_096), -1.0);
        assert_eq!(overlong_penalty(30_000, 20_480, 4_096), -1.0);
        assert_eq!(
            informative_groups(&[1., 1., 0., 0., 0., 0., 1., 1., 1.], 3),
            vec![true, false, false]
        );
    }
}
