//! IWOCS, IVL regression and the quick reproductions.
#![allow(clippy::needless_range_loop)] // index-heavy linear algebra reads closer to the maths

use kiln_envs::TabularMdp;
use kiln_robust::experiments;
use kiln_robust::ivl::*;
use kiln_robust::iwocs::{IwocsConfig, iwocs, optimal_q};
use kiln_robust::static_models::{StaticModels, rectangular_hull_value_iteration, start_value};
use nalgebra::{DMatrix, DVector};
use rand::{SeedableRng, rngs::StdRng};

#[test]
fn iwocs_on_a_singleton_set_is_value_iteration() {
    let mdp = kiln_envs::tabular::garnet(10, 3, 3, 0.9, 1).expect("garnet");
    let models = StaticModels {
        kernels: vec![mdp.transitions.clone()],
    };
    let res = iwocs(&mdp, &models, &IwocsConfig::default()).expect("iwocs");
    assert_eq!(res.iterations.len(), 1);
    let (v, _) = mdp.value_iteration(1e-12, 100_000);
    assert!((res.value - start_value(&mdp, &v)).abs() < 1e-8);
    assert_eq!(res.worst_model, 0);
}

#[test]
fn iwocs_on_the_windy_walk_matches_robust_value_iteration_within_two_iterations() {
    let alphas: Vec<f64> = (0..25).map(|i| 0.5 * i as f64 / 24.0).collect();
    let walks: Vec<TabularMdp> = alphas
        .iter()
        .map(|&a| experiments::iwocs::windy_walk(a).expect("walk"))
        .collect();
    let models = StaticModels {
        kernels: walks.iter().map(|m| m.transitions.clone()).collect(),
    };
    let res = iwocs(&walks[0], &models, &IwocsConfig::default()).expect("iwocs");
    assert!(res.iterations.len() <= 3, "{:?}", res.iterations);
    assert_eq!(
        res.iterations[0].worst_model, 24,
        "first worst case is alpha = 0.5"
    );
    let (hull, _) = rectangular_hull_value_iteration(&walks[0], &models, 1e-12).expect("rvi");
    assert!(
        (res.value - start_value(&walks[0], &hull)).abs() < 1e-6,
        "{} vs {}",
        res.value,
        start_value(&walks[0], &hull)
    );
    // Property 2: the optimistic estimate never increases.
    for w in res.iterations.windows(2) {
        assert!(w[1].q_start <= w[0].q_start + 1e-9);
    }
}

#[test]
fn static_and_dynamic_worst_cases_coincide_on_a_rectangular_set() {
    // 2 states x 2 actions x 2 choices per pair = 16 static kernels; their product is rectangular,
    // so min_T V*_T = hull-robust value (Iyengar Lemma 3.3 + no duality gap).
    let choices = [[0.9, 0.1], [0.4, 0.6]];
    let mut kernels = vec![];
    for mask in 0..16u32 {
        let mut k = vec![];
        for sa in 0..4 {
            let c = choices[(mask >> sa & 1) as usize];
            let row = if sa % 2 == 0 { c } else { [c[1], c[0]] };
            k.extend_from_slice(&row);
        }
        kernels.push(k);
    }
    let mdp = TabularMdp::new(
        2,
        2,
        0.9,
        kernels[0].clone(),
        vec![1.0, 0.0, 0.2, 0.5],
        vec![0.5, 0.5],
    )
    .expect("mdp");
    let models = StaticModels { kernels };
    let (hull, _) = rectangular_hull_value_iteration(&mdp, &models, 1e-13).expect("rvi");
    for s in 0..2 {
        let static_min = (0..16)
            .map(|j| models.model(&mdp, j).value_iteration(1e-13, 100_000).0[s])
            .fold(f64::INFINITY, f64::min);
        assert!(
            (hull[s] - static_min).abs() < 1e-8,
            "state {s}: {} vs {static_min}",
            hull[s]
        );
    }
    let res = iwocs(&mdp, &models, &IwocsConfig::default()).expect("iwocs");
    assert!((res.value - start_value(&mdp, &hull)).abs() < 1e-7);
    // Property 1: Q_i >= hull-robust Q.
    let q = optimal_q(&models.model(&mdp, 0), 1e-12);
    assert!(q.iter().zip(&res.q).all(|(a, b)| b <= a));
}

#[test]
fn estimators_recover_f_on_noise_free_unconfounded_data() {
    let mut rng = StdRng::seed_from_u64(3);
    let sim = simulate(
        &LinearSimulationConfig {
            dim: 5,
            samples: 200,
            kappa: 0.0,
            gamma: 1.0,
            sigma: 0.0,
        },
        &mut rng,
    );
    let close = |h: &DVector<f64>| (h - &sim.f).norm() < 1e-8;
    assert!(close(&ols(&sim.x, &sim.y)));
    assert!(
        close(&ols(&sim.gx, &sim.y)),
        "outcome invariance: f^T GX = f^T X"
    );
    assert!(close(&two_stage_least_squares(&sim.x, &sim.y, &sim.x)));
    for a in [1e-4, 0.1, 10.0] {
        assert!(close(&ivl_regression(&sim.gx, &sim.y, &sim.g, a)));
    }
    assert!(ncer(&sim.f, &sim.f) == 0.0);
    assert!((ncer(&DVector::zeros(5), &sim.f) - 0.5).abs() < 1e-12);
}

#[test]
fn ivl_closed_form_equals_proposition_one_and_its_limits() {
    let mut rng = StdRng::seed_from_u64(4);
    let sim = simulate(
        &LinearSimulationConfig {
            dim: 4,
            samples: 60,
            kappa: 1.0,
            gamma: 1.0,
            sigma: 0.1,
        },
        &mut rng,
    );
    let z = &sim.g;
    let p = z * (z.transpose() * z).try_inverse().expect("invertible") * z.transpose();
    for alpha in [1e-3f64, 0.5, 3.0] {
        let kmat = (1.0 + alpha).sqrt() * &p - alpha.sqrt() * &p
            + alpha.sqrt() * DMatrix::identity(60, 60);
        let prop1 = ols(&(&kmat * &sim.gx), &(&kmat * &sim.y));
        let ours = ivl_regression(&sim.gx, &sim.y, z, alpha);
        assert!((prop1 - ours).norm() < 1e-8);
    }
    let erm = ols(&sim.gx, &sim.y);
    assert!((ivl_regression(&sim.gx, &sim.y, z, 1e9) - erm).norm() < 1e-5);
    // 2SLS with a full-rank valid instrument is the alpha -> 0 limit.
    let tsls = two_stage_least_squares(&sim.x, &sim.y, &sim.x);
    assert!((ivl_regression(&sim.x, &sim.y, &sim.x, 1e-12) - tsls).norm() < 1e-6);
}

#[test]
fn da_ivl_beats_erm_under_confounding() {
    let mut errs = [0.0; 3];
    for seed in 0..6 {
        let mut rng = StdRng::seed_from_u64(seed);
        let sim = simulate(
            &LinearSimulationConfig {
                dim: 8,
                samples: 2048,
                kappa: 1.0,
                gamma: 1.0,
                sigma: 0.1,
            },
            &mut rng,
        );
        let alphas: Vec<f64> = (0..10)
            .map(|i| 10f64.powf(-4.0 + 4.0 * i as f64 / 9.0))
            .collect();
        errs[0] += ncer(&ols(&sim.x, &sim.y), &sim.f);
        errs[1] += ncer(&ols(&sim.gx, &sim.y), &sim.f);
        errs[2] += ncer(&ivl_cross_validated(&sim, &alphas).0, &sim.f);
    }
    assert!(errs[1] < errs[0], "{errs:?}");
    assert!(errs[2] < errs[1], "{errs:?}");
}

#[test]
fn quick_reproductions_write_tables_and_plots() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (row, md) in [
        (
            "iwocs",
            experiments::iwocs::run(dir.path(), true).expect("iwocs"),
        ),
        (
            "causal-ivl",
            experiments::causal_ivl::run(dir.path(), true).expect("ivl"),
        ),
        (
            "recovering-rewards",
            experiments::recovering_rewards::run(dir.path(), true).expect("rr"),
        ),
    ] {
        assert!(md.contains("| "), "{row}");
        assert!(dir.path().join(format!("{row}.png")).exists(), "{row}");
    }
}

#[test]
fn tv_dual_matches_the_primal_mass_moving_solution() {
    use kiln_robust::dr_rpo::tv_dual;
    let mu = [0.1, 0.2, 0.3, 0.4];
    let v = [3.0, 0.0, 2.0, 1.0];
    let mean: f64 = mu.iter().zip(&v).map(|(a, b)| a * b).sum();
    assert!((tv_dual(&mu, &v, 0.0) - mean).abs() < 1e-12);
    assert!(tv_dual(&mu, &v, 1.0).abs() < 1e-12, "rho >= 1 gives min V");
    // rho = 0.25: move 0.1 from V=3 and 0.15 from V=2 onto V=0.
    let primal = mean - 0.1 * 3.0 - 0.15 * 2.0;
    assert!((tv_dual(&mu, &v, 0.25) - primal).abs() < 1e-12);
}

#[test]
fn dr_rpo_regret_is_sublinear_on_the_simulated_linear_mdp() {
    use kiln_robust::dr_rpo::*;
    let env = SimulatedLinearMdp {
        delta: 0.3,
        xi_norm: 0.1,
    };
    let mut rng = StdRng::seed_from_u64(0);
    let run = dr_rpo(
        &env,
        &DrRpoConfig {
            episodes: 400,
            ..Default::default()
        },
        &mut rng,
    );
    let first: f64 = run.instant_regret[..100].iter().sum();
    let last: f64 = run.instant_regret[300..].iter().sum();
    assert!(
        last < 0.5 * first,
        "regret per episode must shrink: {first} -> {last}"
    );
    assert!(
        run.instant_regret.iter().all(|r| *r > -1e-9),
        "the regularised optimum is an upper bound"
    );
}

#[test]
fn discovery_adds_the_policy_best_where_the_set_is_weakest() {
    use kiln_robust::adaptive_defense::{discover_non_dominated, gap};
    // 3 policies x 3 attackers; policy 2 is dominated by {0, 1}.
    let j = vec![
        vec![1.0, 0.0, 0.2],
        vec![0.3, 0.9, 0.1],
        vec![0.3, 0.5, 0.15],
    ];
    let (set, imps) = discover_non_dominated(&j, 0, 10);
    assert_eq!(set, vec![0, 1]);
    assert!((imps[0] - 0.9).abs() < 1e-12);
    assert!(gap(&j, &set).abs() < 1e-12);
    assert!(gap(&j, &[0]) > gap(&j, &set));
}
