//! Agnostic RL: PSDP and trajectory-tree ERM against brute-force evaluation
//! of every policy in the class.

use kiln_robust::agnostic::{
    LayerClass, LayeredMdp, brute_force_best, exact_values, optimal_value, psdp_exact,
    psdp_sampled, psdp_samples_needed, trajectory_tree_erm,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// Two layers of two states, deterministic moves (action a leads to layer-1
/// state a), uniform start. Layer 0 pays 0.9 for action 0; layer-1 state 0
/// pays 0.6 for action 1, state 1 pays 1 for action 0.
fn hand_mdp() -> LayeredMdp {
    let det = |t: usize| vec![(t, 1.0)];
    LayeredMdp {
        width: 2,
        horizon: 2,
        reward: vec![vec![[0.9, 0.0], [0.9, 0.0]], vec![[0.0, 0.6], [1.0, 0.0]]],
        next: vec![
            vec![[det(0), det(1)], [det(0), det(1)]],
            vec![[det(0), det(0)], [det(1), det(1)]],
        ],
    }
}

fn constants() -> LayerClass {
    LayerClass::Finite(vec![vec![0, 0], vec![1, 1]])
}

#[test]
fn psdp_on_a_hand_solved_mdp() {
    let mdp = hand_mdp();
    let classes = vec![constants(), constants()];
    // Brute force: V(0,1) = 0.9 + 0.6 = 1.5, V(1,0) = 0 + 1 = 1, V(0,0) = 0.9, V(1,1) = 0.
    let (best, v_best, count) = brute_force_best(&mdp, &classes).expect("finite classes");
    assert_eq!(count, 4);
    assert_eq!(best, vec![vec![0, 0], vec![1, 1]]);
    assert!((v_best - 1.5).abs() < 1e-12);
    // Uniform mu: layer 1 scores 0.5 (all-0) vs 0.3 (all-1), so PSDP commits
    // to the tail that is wrong for the states the best policy visits, then
    // layer 0 prefers action 1 (0 + 1 > 0.9 + 0): V = 1, not 1.5.
    let uniform = vec![vec![0.5, 0.5]; 2];
    let pi = psdp_exact(&mdp, &classes, &uniform);
    assert_eq!(pi, vec![vec![1, 1], vec![0, 0]]);
    assert!((mdp.evaluate(&pi) - 1.0).abs() < 1e-12);
    // Baseline distribution = the best policy's state distributions: PSDP
    // returns the best non-stationary policy of the class.
    let d = mdp.state_distributions(&best);
    assert_eq!(d[1], vec![1.0, 0.0]);
    let pi = psdp_exact(&mdp, &classes, &d);
    assert_eq!(pi, best);
    // Complete classes with full-support mu: backward induction, V* = 1.5.
    let pi = psdp_exact(
        &mdp,
        &[LayerClass::Complete, LayerClass::Complete],
        &uniform,
    );
    assert!((mdp.evaluate(&pi) - optimal_value(&mdp)).abs() < 1e-12);
    assert!((optimal_value(&mdp) - 1.5).abs() < 1e-12);
}

fn threshold_classes(mdp: &LayeredMdp, rng: &mut StdRng) -> Vec<LayerClass> {
    (0..mdp.horizon)
        .map(|_| {
            let x: Vec<f64> = (0..mdp.width).map(|_| rng.random_range(0.0..1.0)).collect();
            LayerClass::thresholds(&x, &[0.0, 1.0 / 3.0, 2.0 / 3.0])
        })
        .collect()
}

#[test]
fn exact_psdp_with_the_best_policys_distributions_equals_brute_force() {
    for seed in 0..8 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mdp = LayeredMdp::random(6, 4, &mut rng);
        let classes = threshold_classes(&mdp, &mut rng);
        let (best, v_best, count) = brute_force_best(&mdp, &classes).expect("finite");
        assert_eq!(count, 6usize.pow(4));
        let pi = psdp_exact(&mdp, &classes, &mdp.state_distributions(&best));
        let v = mdp.evaluate(&pi);
        assert!(
            (v - v_best).abs() < 1e-12,
            "seed {seed}: PSDP {v} vs best in class {v_best}"
        );
        // The class is restrictive: its best is below V*, and complete-class
        // PSDP under a uniform baseline reaches V*.
        let v_star = optimal_value(&mdp);
        assert!(v_best < v_star - 1e-6);
        let uniform = vec![vec![1.0 / 6.0; 6]; 4];
        let complete = vec![LayerClass::Complete; 4];
        assert!((mdp.evaluate(&psdp_exact(&mdp, &complete, &uniform)) - v_star).abs() < 1e-12);
        // PSDP never returns more than the best of the class.
        let pu = psdp_exact(&mdp, &classes, &uniform);
        assert!(mdp.evaluate(&pu) <= v_best + 1e-12);
    }
}

#[test]
fn sampled_psdp_is_eps_close_with_the_hoeffding_sample_count() {
    let (eps, delta) = (0.5, 0.1);
    for seed in 0..6 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        let mdp = LayeredMdp::random(5, 3, &mut rng);
        let classes = threshold_classes(&mdp, &mut rng);
        let (best, v_best, _) = brute_force_best(&mdp, &classes).expect("finite");
        let mu = mdp.state_distributions(&best);
        let m: Vec<usize> = (0..3)
            .map(|h| psdp_samples_needed(3, h, classes[h].ln_size(5), eps, delta))
            .collect();
        assert!(m[0] > m[1] && m[1] > m[2]);
        let (pi, queries) = psdp_sampled(&mdp, &classes, &mu, &m, &mut rng);
        assert_eq!(queries, 2 * (3 * m[0] + 2 * m[1] + m[2]));
        let v = mdp.evaluate(&pi);
        assert!(v >= v_best - eps, "seed {seed}: {v} vs {v_best}");
        assert!(v <= v_best + 1e-12);
    }
}

#[test]
fn sampled_psdp_converges_to_exact_psdp() {
    // With many samples the sampled choice equals the exact one (the class
    // has distinct scores), for both a uniform and the oracle baseline.
    let mut rng = StdRng::seed_from_u64(7);
    let mdp = LayeredMdp::random(4, 3, &mut rng);
    let classes = threshold_classes(&mdp, &mut rng);
    let uniform = vec![vec![0.25; 4]; 3];
    let exact = psdp_exact(&mdp, &classes, &uniform);
    let (sampled, _) = psdp_sampled(&mdp, &classes, &uniform, &[40_000; 3], &mut rng);
    assert!((mdp.evaluate(&sampled) - mdp.evaluate(&exact)).abs() < 1e-12);
}

#[test]
fn a_single_policy_class_returns_that_policy() {
    let mut rng = StdRng::seed_from_u64(3);
    let mdp = LayeredMdp::random(4, 3, &mut rng);
    let only: Vec<Vec<usize>> = vec![vec![1, 0, 1, 1], vec![0, 0, 1, 0], vec![1, 1, 1, 0]];
    let classes: Vec<LayerClass> = only
        .iter()
        .map(|m| LayerClass::Finite(vec![m.clone()]))
        .collect();
    let uniform = vec![vec![0.25; 4]; 3];
    assert_eq!(psdp_exact(&mdp, &classes, &uniform), only);
    assert_eq!(
        psdp_sampled(&mdp, &classes, &uniform, &[3; 3], &mut rng).0,
        only
    );
}

#[test]
fn trajectory_trees_are_unbiased_and_their_size_is_bounded_by_the_spanning_capacity() {
    let mut rng = StdRng::seed_from_u64(11);
    let mdp = LayeredMdp::random(5, 4, &mut rng);
    let exact = exact_values(&mdp);
    let trees = 20_000;
    let (best, queries, est) = trajectory_tree_erm(&mdp, trees, &mut rng);
    // singletons class: at most H (H + 1) / 2 + H queries per tree
    assert!(queries <= trees * (4 * 5 / 2 + 4));
    for (e, x) in est.iter().zip(&exact) {
        // returns in [0, 4]: 5 standard errors is 5 * 4 / sqrt(4 * 20000)
        assert!((e - x).abs() < 0.071, "{e} vs {x}");
    }
    let top = exact.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert!(exact[best] >= top - 0.15);
}
