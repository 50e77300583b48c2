//! Regret behaviour of the baselines and known answers of the recovering-reward planner.

use kiln_bandits::recovering::RecoveringBandit;
use kiln_bandits::recovering::online::{
    EpochSchedule, UcbPeriodicConfig, recovery_blind_ucb, ucb_periodic,
};
use kiln_bandits::recovering::periodic::*;
use kiln_bandits::*;
use rand::{SeedableRng, rngs::StdRng};

fn mean_final_regret<P: BanditPolicy>(make: impl Fn() -> P, horizon: usize, seeds: u64) -> f64 {
    let bandit = BernoulliBandit::new(vec![0.3, 0.5, 0.7]).expect("bandit");
    (0..seeds)
        .map(|s| {
            let mut rng = StdRng::seed_from_u64(s);
            run_stochastic(&bandit, &mut make(), horizon, &mut rng)[horizon - 1]
        })
        .sum::<f64>()
        / seeds as f64
}

#[test]
fn stochastic_baselines_have_sublinear_regret() {
    for (name, slope) in [
        (
            "ucb1",
            loglog_slope(&[1_000, 4_000, 16_000].map(|t| {
                (
                    t as f64,
                    mean_final_regret(|| Ucb1::new(3).expect("ucb"), t, 8),
                )
            })),
        ),
        (
            "thompson",
            loglog_slope(&[1_000, 4_000, 16_000].map(|t| {
                (
                    t as f64,
                    mean_final_regret(|| ThompsonSampling::new(3).expect("ts"), t, 8),
                )
            })),
        ),
    ] {
        assert!(slope < 0.6, "{name}: log-log regret slope {slope}");
    }
    // EXP3 (adversarial) on a stochastic instance: regret O(sqrt(T K ln K)).
    let t = 8_000;
    let r = mean_final_regret(
        || Exp3::new(3, Exp3Config::for_horizon(3, t, 1.0)).expect("exp3"),
        t,
        8,
    );
    assert!(
        r < 2.0 * ((t * 3) as f64 * 3f64.ln()).sqrt(),
        "exp3 regret {r}"
    );
}

#[test]
fn exp3_single_arm_and_dominant_arm() {
    let mut one = Exp3::new(
        1,
        Exp3Config {
            eta: 0.5,
            gamma: 0.1,
        },
    )
    .expect("exp3");
    let mut rng = StdRng::seed_from_u64(0);
    for _ in 0..100 {
        let a = one.select(&mut rng);
        one.update(a, 1.0);
        assert_eq!(one.probabilities(), vec![1.0]);
    }
    let mut two = Exp3::new(2, Exp3Config::for_horizon(2, 2_000, 5.0)).expect("exp3");
    for _ in 0..2_000 {
        let a = two.select(&mut rng);
        two.update(a, if a == 1 { 1.0 } else { 0.0 });
    }
    assert!(two.probabilities()[1] > 0.99, "{:?}", two.probabilities());
    assert!(
        Exp3::new(
            0,
            Exp3Config {
                eta: 1.0,
                gamma: 0.0
            }
        )
        .is_err()
    );
}

#[test]
fn single_arm_upper_bound_is_best_rate_and_attained() {
    let curve = vec![0.1, 0.5, 0.7, 0.8];
    let bandit = RecoveringBandit::new(vec![curve.clone()], 1, 0.0).expect("bandit");
    let ub = upper_bound(&bandit.recovery, 1);
    let best = curve
        .iter()
        .enumerate()
        .map(|(j, r)| r / (j + 1) as f64)
        .fold(0.0, f64::max);
    assert!((ub.value - best).abs() < 1e-12);
    assert_eq!(ub.periods, vec![Some(2)]);
    let mut rng = StdRng::seed_from_u64(1);
    let policy = PeriodicPolicy::with_random_offsets(ub.periods.clone(), &mut rng);
    let avg = simulate_periodic(&bandit, &policy, 10_000, &mut rng) / 10_000.0;
    assert!((avg - best).abs() < 1e-3, "{avg} vs {best}");
}

#[test]
fn constant_recovery_pulls_the_top_k_every_period() {
    let mus = [0.9, 0.2, 0.7, 0.4, 0.8];
    let bandit =
        RecoveringBandit::new(mus.iter().map(|m| vec![*m; 3]).collect(), 2, 0.0).expect("bandit");
    let ub = upper_bound(&bandit.recovery, 2);
    assert!((ub.value - 1.7).abs() < 1e-12, "{ub:?}");
    assert_eq!(ub.periods, vec![Some(1), None, None, None, Some(1)]);
}

#[test]
fn slack_budget_bound_is_sum_of_best_rates() {
    let mut rng = StdRng::seed_from_u64(3);
    let bandit = RecoveringBandit::exponential(4, 4, 6, 0.0, &mut rng).expect("bandit");
    let ub = upper_bound(&bandit.recovery, 4);
    let sum: f64 = bandit
        .recovery
        .iter()
        .map(|c| {
            c.iter()
                .enumerate()
                .map(|(j, r)| r / (j + 1) as f64)
                .fold(0.0, f64::max)
        })
        .sum();
    assert!((ub.value - sum).abs() < 1e-12);
    // K >= N: no conflicts, the periodic policy attains the bound up to boundary terms.
    let policy = PeriodicPolicy::with_random_offsets(ub.periods.clone(), &mut rng);
    let avg = simulate_periodic(&bandit, &policy, 20_000, &mut rng) / 20_000.0;
    assert!((avg - sum).abs() < 1e-3, "{avg} vs {sum}");
}

#[test]
fn periodic_policy_is_near_the_brute_force_optimum_on_tiny_instances() {
    let horizon = 40;
    for seed in 0..5 {
        let mut rng = StdRng::seed_from_u64(seed);
        let bandit = RecoveringBandit::exponential(4, 2, 4, 0.0, &mut rng).expect("bandit");
        let opt = brute_force_optimum(&bandit, horizon).expect("tiny");
        let ub = upper_bound(&bandit.recovery, bandit.k);
        // the LP bound dominates every policy up to the fully recovered start
        assert!(opt <= ub.value * horizon as f64 + bandit.n_arms() as f64 + 1e-9);
        let periodic = (0..200)
            .map(|_| {
                let p = PeriodicPolicy::with_random_offsets(ub.periods.clone(), &mut rng);
                simulate_periodic(&bandit, &p, horizon, &mut rng)
            })
            .sum::<f64>()
            / 200.0;
        assert!(periodic <= opt + 1e-9);
        assert!(
            periodic >= 0.8 * opt,
            "seed {seed}: periodic {periodic} vs optimum {opt}"
        );
    }
}

#[test]
fn served_fraction_bound_matches_known_values() {
    assert!((poisson_served_fraction(1) - (1.0 - (-1f64).exp())).abs() < 1e-12);
    assert!(poisson_served_fraction(16) > poisson_served_fraction(4));
}

#[test]
fn ucb_periodic_approaches_the_known_curve_periodic_policy() {
    let mut rng = StdRng::seed_from_u64(7);
    let bandit = RecoveringBandit::exponential(6, 2, 5, 0.1, &mut rng).expect("bandit");
    let g = periodic_average(&bandit, 50_000, 4, &mut rng);
    let horizons = [2_000usize, 8_000, 32_000];
    let mut ucb = vec![];
    let mut blind = vec![];
    for &t in &horizons {
        let mut r_ucb = 0.0;
        let mut r_blind = 0.0;
        for s in 0..4 {
            let mut rng = StdRng::seed_from_u64(100 + s);
            let cfg = UcbPeriodicConfig {
                horizon: t,
                bonus_scale: 0.1,
                first_epoch: 0,
                epochs: EpochSchedule::Constant,
            };
            r_ucb += g * t as f64 - ucb_periodic(&bandit, &cfg, &mut rng)[t - 1];
            r_blind += g * t as f64 - recovery_blind_ucb(&bandit, t, &mut rng)[t - 1];
        }
        ucb.push((t as f64, r_ucb / 4.0));
        blind.push((t as f64, r_blind / 4.0));
    }
    // The reconstructed UCB-periodic learner approaches the known-curve periodic policy: its
    // regret per period shrinks with T and ends within 10% of the benchmark's reward.
    assert!(
        ucb[2].1 / horizons[2] as f64 <= ucb[0].1 / horizons[0] as f64,
        "{ucb:?}"
    );
    assert!(
        ucb[2].1 < 0.1 * g * horizons[2] as f64,
        "{ucb:?} (benchmark {g} per period)"
    );
    // Recovery-blind UCB is recorded for the repro (on small K it can beat the periodic benchmark,
    // whose random offsets lose ~K^K e^-K / K! of the due pulls).
    assert!(blind.iter().all(|(_, r)| r.is_finite()));
}

#[test]
fn invalid_models_are_rejected_with_arm_and_idle() {
    let e = RecoveringBandit::new(vec![vec![0.5, 0.4]], 1, 0.0)
        .expect_err("decreasing")
        .to_string();
    assert!(e.contains("arm=0") && e.contains("idle=2"), "{e}");
    assert!(BernoulliBandit::new(vec![1.5]).is_err());
    assert!(Ucb1::new(0).is_err());
}
