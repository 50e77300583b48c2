//! Known answers of the reference note's sec. 5 for the GPOMDP / HVP estimators, N-PG-IGT and
//! (N)-HARPG, plus a REINFORCE learning check and config errors.

use kiln_rl::algos::gpomdp::{
    FlatMlp, FlatPolicy, LogStd, PolicyHead, Trajectory, gpomdp_gradient, hessian_vector_product,
    standard_normal,
};
use kiln_rl::algos::stochastic_pg::{
    PgMethod, ascent_step, harpg_direction, igt_extrapolate, momentum_average, segment_point,
};
use kiln_rl::{NoCallback, Reinforce, ReinforceConfig, load_learner, make_learner};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// `π = N(θ, σ²)` as a linear policy on the constant observation 1.
fn bandit_policy(sigma: f64) -> FlatPolicy {
    FlatPolicy {
        net: FlatMlp {
            sizes: vec![1, 1],
            bias: false,
        },
        head: PolicyHead::Gaussian {
            low: vec![f64::NEG_INFINITY],
            high: vec![f64::INFINITY],
            log_std: LogStd::Fixed { value: sigma.ln() },
        },
    }
}

fn one_step(a: f64, r: f64) -> Trajectory {
    Trajectory {
        observations: vec![vec![1.0]],
        actions: vec![vec![a]],
        rewards: vec![r],
    }
}

#[test]
fn bandit_gradient_and_hessian_estimates_are_unbiased() {
    let (theta, sigma, c) = (0.3, 0.5, 1.0);
    let policy = bandit_policy(sigma);
    let mut rng = StdRng::seed_from_u64(42);
    let n = 200_000;
    let (mut g_sum, mut b_sum) = (0.0, 0.0);
    for _ in 0..n {
        let a = theta + sigma * standard_normal(&mut rng);
        let r = -(a - c) * (a - c);
        let traj = one_step(a, r);
        let (bv, g) = hessian_vector_product(&policy, &[theta], &traj, 0.99, &[1.0]);
        g_sum += g[0];
        b_sum += bv[0];
    }
    let (g_mean, b_mean) = (g_sum / n as f64, b_sum / n as f64);
    // Standard errors at n = 2e5 are about 0.004 (g) and 0.01 (B); tolerances are ~5 of them.
    assert!(
        (g_mean - (-2.0 * (theta - c))).abs() < 0.03,
        "E[g] ~ {g_mean}"
    );
    assert!((b_mean - (-2.0)).abs() < 0.06, "E[B] ~ {b_mean}");
}

#[test]
fn hvp_matches_the_explicit_bandit_formula() {
    let (theta, sigma, c) = (-0.4, 0.7, 0.5);
    let policy = bandit_policy(sigma);
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..50 {
        let a = theta + sigma * standard_normal(&mut rng);
        let r = -(a - c) * (a - c);
        let v = 1.7;
        let (bv, g) = hessian_vector_product(&policy, &[theta], &one_step(a, r), 0.9, &[v]);
        let s2 = sigma * sigma;
        let explicit_b = r * ((a - theta).powi(2) / (s2 * s2) - 1.0 / s2);
        assert!((g[0] - r * (a - theta) / s2).abs() < 1e-9);
        assert!(
            (bv[0] - explicit_b * v).abs() < 1e-6 * (1.0 + explicit_b.abs()),
            "{} vs {}",
            bv[0],
            explicit_b * v
        );
    }
}

#[test]
fn gpomdp_gradient_of_a_categorical_mlp_matches_finite_differences() {
    let policy = FlatPolicy {
        net: FlatMlp {
            sizes: vec![3, 4, 2],
            bias: true,
        },
        head: PolicyHead::Categorical { n: 2, start: 0 },
    };
    let mut rng = StdRng::seed_from_u64(9);
    let p = policy.init(&mut rng, 1.0);
    let traj = Trajectory {
        observations: vec![vec![0.1, -0.3, 0.5], vec![0.7, 0.2, -0.1]],
        actions: vec![vec![1.0], vec![0.0]],
        rewards: vec![1.0, 2.0],
    };
    let g = gpomdp_gradient(&policy, &p, &traj, 0.9);
    let w = traj.gpomdp_weights(0.9);
    let phi = |q: &[f64]| -> f64 {
        let mut cache = Default::default();
        let mut sink = vec![0.0; q.len()];
        (0..2)
            .map(|t| {
                w[t] * policy.log_prob_grad(
                    q,
                    &traj.observations[t],
                    &traj.actions[t],
                    0.0,
                    &mut sink,
                    &mut cache,
                )
            })
            .sum()
    };
    for i in 0..p.len() {
        let mut plus = p.clone();
        let mut minus = p.clone();
        plus[i] += 1e-6;
        minus[i] -= 1e-6;
        let fd = (phi(&plus) - phi(&minus)) / 2e-6;
        assert!((fd - g[i]).abs() < 1e-6, "param {i}: {fd} vs {}", g[i]);
    }
}

fn quad_grad(h: &[[f64; 2]; 2], b: &[f64; 2], x: &[f64]) -> Vec<f64> {
    (0..2)
        .map(|i| h[i][0] * x[0] + h[i][1] * x[1] + b[i])
        .collect()
}

#[test]
fn igt_is_exact_on_a_quadratic_for_several_eta() {
    let h = [[-2.0, 0.5], [0.5, -1.0]];
    let b = [0.3, -0.7];
    let theta_prev = [0.4, -1.2];
    let theta = [0.9, 0.1];
    for eta in [1.0, 0.8, 0.5, 0.2, 0.05] {
        let d_prev = quad_grad(&h, &b, &theta_prev);
        let at = igt_extrapolate(&theta, &theta_prev, eta);
        let d = momentum_average(&d_prev, &quad_grad(&h, &b, &at), eta);
        let exact = quad_grad(&h, &b, &theta);
        for (x, y) in d.iter().zip(&exact) {
            assert!((x - y).abs() < 1e-12, "eta {eta}: {d:?} vs {exact:?}");
        }
    }
}

#[test]
fn harpg_is_exact_on_a_quadratic_with_the_exact_hessian() {
    let h = [[-2.0, 0.5], [0.5, -1.0]];
    let b = [0.3, -0.7];
    let theta_prev = [0.4, -1.2];
    let theta = [0.9, 0.1];
    let delta = [theta[0] - theta_prev[0], theta[1] - theta_prev[1]];
    let hv: Vec<f64> = (0..2)
        .map(|i| h[i][0] * delta[0] + h[i][1] * delta[1])
        .collect();
    for eta in [1.0, 0.5, 0.1] {
        let d_prev = quad_grad(&h, &b, &theta_prev);
        let d = harpg_direction(&d_prev, &hv, &quad_grad(&h, &b, &theta), eta);
        let exact = quad_grad(&h, &b, &theta);
        for (x, y) in d.iter().zip(&exact) {
            assert!((x - y).abs() < 1e-12);
        }
    }
    let q = segment_point(&theta, &theta_prev, 0.25);
    assert!((q[0] - (0.25 * 0.9 + 0.75 * 0.4)).abs() < 1e-15);
}

#[test]
fn normalized_step_has_length_gamma() {
    let theta = [1.0, -2.0, 0.5];
    let d = [3.0, 4.0, -12.0];
    for gamma in [0.1, 0.03] {
        let next = ascent_step(&theta, &d, gamma, true);
        let len = next
            .iter()
            .zip(&theta)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        assert!((len - gamma).abs() < 1e-12);
    }
    let plain = ascent_step(&theta, &d, 0.5, false);
    assert!((plain[0] - 2.5).abs() < 1e-12);
}

#[test]
fn schedules_match_the_table_at_t_0_1_8() {
    let g0 = 0.1;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    for (t, r) in [(0u64, 1.0), (1, 2.0 / 3.0), (8, 0.2)] {
        let r: f64 = r;
        assert!(close(
            PgMethod::VanillaPg.step_size(g0, t),
            g0 * r.powf(2.0 / 3.0)
        ));
        assert!(close(
            PgMethod::NormalizedPg.step_size(g0, t),
            g0 * r.powf(2.0 / 3.0)
        ));
        assert!(close(PgMethod::NPgIgt.step_size(g0, t), g0 * r));
        assert!(close(PgMethod::NHarpg.step_size(g0, t), g0 * r));
        assert!(close(PgMethod::Harpg.step_size(g0, t), g0 * r.sqrt()));
        assert_eq!(PgMethod::VanillaPg.momentum(1.0, t), None);
        assert!(close(
            PgMethod::NPgIgt.momentum(1.0, t).unwrap_or(0.0),
            r.powf(0.8)
        ));
        assert!(close(PgMethod::NHarpg.momentum(1.0, t).unwrap_or(0.0), r));
        assert!(close(PgMethod::Harpg.momentum(1.0, t).unwrap_or(0.0), r));
    }
    assert!(close(PgMethod::NPgIgt.step_size(g0, 8), 0.02));
}

#[test]
fn extrapolation_with_eta_one_and_half() {
    let theta = [1.0, 2.0];
    let prev = [0.5, -1.0];
    assert_eq!(igt_extrapolate(&theta, &prev, 1.0), theta.to_vec());
    assert_eq!(igt_extrapolate(&theta, &prev, 0.5), vec![1.5, 5.0]);
}

#[test]
fn reinforce_improves_cartpole_return() {
    let cfg = ReinforceConfig {
        learning_rate: 0.01,
        batch_trajectories: 5,
        hidden_sizes: vec![16],
        value_hidden_sizes: vec![16],
        ..ReinforceConfig::default()
    };
    let mut agent = Reinforce::new(cfg, "CartPole-v1", 1).expect("reinforce");
    let mut returns = Vec::new();
    for _ in 0..60 {
        returns.push(agent.update().expect("update").mean_return);
    }
    let first: f64 = returns[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = returns[55..].iter().sum::<f64>() / 5.0;
    assert!(last > first + 10.0, "first {first}, last {last}");
}

#[test]
fn n_pg_igt_and_n_harpg_improve_cartpole_return() {
    for algo in ["pg-igt", "harpg"] {
        let cfg = serde_json::json!({"step_size": 0.3, "batch_trajectories": 4,
                                     "hidden_sizes": [16]});
        let mut learner = make_learner(
            algo,
            "CartPole-v1",
            2,
            Some(cfg),
            kiln_tensor::testing::cpu(),
        )
        .expect("learner");
        let before: f64 = learner.evaluate(5, 100).expect("eval").iter().sum::<f64>() / 5.0;
        learner.learn(15_000, &mut NoCallback).expect("learn");
        let after: f64 = learner.evaluate(5, 100).expect("eval").iter().sum::<f64>() / 5.0;
        assert!(after > before, "{algo}: {before} -> {after}");
    }
}

#[test]
fn config_errors_name_the_field_and_value() {
    let device = kiln_tensor::testing::cpu;
    let err = |algo: &str, cfg: serde_json::Value| {
        make_learner(algo, "CartPole-v1", 1, Some(cfg), device())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("harpg", serde_json::json!({"step_size": -1.0}));
    assert!(e.contains("step_size") && e.contains("-1"), "{e}");
    let e = err("pg-igt", serde_json::json!({"momentum": 1.5}));
    assert!(e.contains("momentum") && e.contains("1.5"), "{e}");
    let e = err("pg-igt", serde_json::json!({"method": "n-harpg"}));
    assert!(e.contains("method") && e.contains("n-harpg"), "{e}");
    let e = err("reinforce", serde_json::json!({"learnin_rate": 0.1}));
    assert!(e.contains("learnin_rate"), "{e}");
    let e = err("reinforce", serde_json::json!({"discount": 2.0}));
    assert!(e.contains("discount") && e.contains('2'), "{e}");
}

#[test]
fn save_and_load_round_trip_through_the_registry() {
    for algo in ["reinforce", "pg-igt", "harpg"] {
        let cfg = serde_json::json!({"hidden_sizes": [8]});
        let mut learner = make_learner(
            algo,
            "CartPole-v1",
            4,
            Some(cfg),
            kiln_tensor::testing::cpu(),
        )
        .expect("learner");
        learner.learn(300, &mut NoCallback).expect("learn");
        let dir = tempfile::tempdir().expect("tempdir");
        let stem = dir.path().join("ckpt");
        learner.save(&stem).expect("save");
        let mut loaded = load_learner(&stem, kiln_tensor::testing::cpu()).expect("load");
        assert_eq!(loaded.algo(), algo);
        assert_eq!(loaded.global_step(), learner.global_step());
        let obs = [0.01, -0.02, 0.03, 0.04];
        assert_eq!(
            format!("{:?}", learner.predict(&obs, true).expect("predict")),
            format!("{:?}", loaded.predict(&obs, true).expect("predict"))
        );
    }
}

/// The full comparison (about 20 s in release on 2 cores). Observed with seeds 1..5:
/// N-PG-IGT and N-HARPG beat vanilla PG in area on both tasks, with lower across-seed spread on
/// the LQR but not on CartPole (vanilla PG barely moves there, so its spread is small); the
/// test asserts what was observed, the area ordering on both tasks and the LQR spread.
#[test]
#[ignore = "slow: full stochastic-pg comparison, run in release"]
fn full_comparison_normalized_momentum_beats_vanilla_pg() {
    use kiln_rl::experiments::stochastic_pg::{StochasticPgRepro, stochastic_pg_with};
    use kiln_track::stats::{mean, std};
    let dir = tempfile::tempdir().expect("tempdir");
    let report =
        stochastic_pg_with(&StochasticPgRepro::full(), dir.path(), &mut |_| {}).expect("repro");
    let get = |rs: &[kiln_rl::experiments::stochastic_pg::MethodResult], name: &str| {
        rs.iter()
            .find(|r| r.method == name)
            .map(|r| (mean(&r.areas), std(&r.areas)))
            .expect("method present")
    };
    let (lqr_vanilla, lqr_vanilla_sd) = get(&report.lqr, "vanilla PG");
    let (cp_vanilla, _) = get(&report.cartpole, "vanilla PG");
    for name in ["N-PG-IGT", "N-HARPG"] {
        let (a, sd) = get(&report.lqr, name);
        assert!(
            a < lqr_vanilla && sd < lqr_vanilla_sd,
            "LQR {name}: {a} ± {sd}"
        );
        let (c, _) = get(&report.cartpole, name);
        assert!(c > cp_vanilla, "CartPole {name}: {c} vs {cp_vanilla}");
    }
}
