//! Known answers and invariants of the robust solvers.
#![allow(clippy::needless_range_loop)] // index-heavy linear algebra reads closer to the maths

use kiln_envs::TabularMdp;
use kiln_envs::tabular::garnet;
use kiln_robust::worst_case::{
    ValueOrder, kl_dual_objective, kl_worst_case, l1_worst_case, linf_worst_case,
};
use kiln_robust::*;
use proptest::prelude::*;

fn cfg() -> RobustValueIterationConfig {
    RobustValueIterationConfig {
        epsilon: 1e-9,
        max_sweeps: 100_000,
    }
}

fn set(d: Distance, r: f64, rect: Rectangularity) -> UncertaintySet {
    UncertaintySet::new(d, r, rect).expect("valid set")
}

/// The doc example MDP: action 1 of state 0 pays more but may fall into the absorbing bad state 1.
fn two_state() -> TabularMdp {
    TabularMdp::new(
        2,
        2,
        0.9,
        vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.0, 1.0],
        vec![0.5, 1.0, 0.0, 0.0],
        vec![1.0, 0.0],
    )
    .expect("valid MDP")
}

const ALL: [Distance; 3] = [Distance::L1, Distance::Linf, Distance::Kl];

#[test]
fn radius_zero_is_plain_value_iteration() {
    let mdp = garnet(15, 3, 5, 0.9, 7).expect("garnet");
    let (v_star, _) = mdp.value_iteration(1e-12, 100_000);
    for d in ALL {
        for rect in [Rectangularity::Sa, Rectangularity::S] {
            let sol = robust_value_iteration(&mdp, &set(d, 0.0, rect), &cfg()).expect("solve");
            for (a, b) in sol.value.iter().zip(&v_star) {
                assert!((a - b).abs() < 1e-6, "{d:?} {rect:?}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn values_are_monotone_in_the_radius() {
    monotone_in_the_radius(&garnet(8, 3, 4, 0.8, 3).expect("garnet"));
}

#[test]
#[ignore = "slow: the same check on a larger Garnet (s-rectangular VI in debug)"]
fn values_are_monotone_in_the_radius_larger() {
    monotone_in_the_radius(&garnet(40, 5, 6, 0.9, 3).expect("garnet"));
}

fn monotone_in_the_radius(mdp: &TabularMdp) {
    let mdp = mdp.clone();
    let loose = RobustValueIterationConfig {
        epsilon: 1e-7,
        max_sweeps: 100_000,
    };
    for d in ALL {
        for rect in [Rectangularity::Sa, Rectangularity::S] {
            let mut prev: Option<Vec<f64>> = None;
            let radii: &[f64] = if rect == Rectangularity::S {
                &[0.0, 0.3, 1.0]
            } else {
                &[0.0, 0.05, 0.3, 1.0]
            };
            for &r in radii {
                let v = robust_value_iteration(&mdp, &set(d, r, rect), &loose)
                    .expect("solve")
                    .value;
                if let Some(p) = &prev {
                    for (a, b) in v.iter().zip(p) {
                        assert!(*a <= b + 1e-7, "{d:?} {rect:?} r={r}: {a} > {b}");
                    }
                }
                prev = Some(v);
            }
        }
    }
}

#[test]
fn hand_solved_two_state_l1_and_linf() {
    let mdp = two_state();
    // L1 radius 0.4 and Linf radius 0.2 both move 0.2 of each row's mass to the bad state:
    // V(0) = max(0.5 + 0.9 * 0.8 V(0), 1 + 0.9 * 0.7 V(0)) = 1 / 0.37 with action 1.
    for s in [
        set(Distance::L1, 0.4, Rectangularity::Sa),
        set(Distance::Linf, 0.2, Rectangularity::Sa),
    ] {
        let sol = robust_value_iteration(&mdp, &s, &cfg()).expect("solve");
        assert!(
            (sol.value[0] - 1.0 / 0.37).abs() < 1e-7,
            "{:?}: {:?}",
            s.distance,
            sol.value
        );
        assert_eq!(sol.value[1], 0.0);
        assert_eq!(sol.policy, Policy::Deterministic(vec![1, 0]));
        let row = &sol.worst_kernel[2..4];
        assert!(
            (row[0] - 0.7).abs() < 1e-12 && (row[1] - 0.3).abs() < 1e-12,
            "{row:?}"
        );
        let row0 = &sol.worst_kernel[0..2];
        assert!((row0[0] - 0.8).abs() < 1e-12, "{row0:?}");
    }
}

#[test]
fn hand_solved_two_state_kl_keeps_the_support() {
    let mdp = two_state();
    // KL([0.7, 0.3] || [0.9, 0.1]): the adversary reaches [0.7, 0.3] on the risky row but cannot
    // move the safe row [1, 0] at all (no support on the bad state): V(0) = 0.5 / 0.1 = 5 > 1/0.37.
    let r = 0.7 * (0.7f64 / 0.9).ln() + 0.3 * 3f64.ln();
    let sol = robust_value_iteration(&mdp, &set(Distance::Kl, r, Rectangularity::Sa), &cfg())
        .expect("solve");
    assert!((sol.value[0] - 5.0).abs() < 1e-7, "{:?}", sol.value);
    assert_eq!(sol.policy, Policy::Deterministic(vec![0, 0]));
    let row = &sol.worst_kernel[2..4];
    assert!((row[1] - 0.3).abs() < 1e-8, "{row:?}");
}

#[test]
fn hand_solved_s_rectangular_single_action_equals_sa() {
    // With one action an s-rectangular set is the (s,a)-rectangular one.
    let mdp = TabularMdp::new(
        2,
        1,
        0.9,
        vec![0.9, 0.1, 0.0, 1.0],
        vec![1.0, 0.0],
        vec![1.0, 0.0],
    )
    .expect("mdp");
    for d in ALL {
        let a = robust_value_iteration(&mdp, &set(d, 0.2, Rectangularity::Sa), &cfg()).expect("sa");
        let b = robust_value_iteration(&mdp, &set(d, 0.2, Rectangularity::S), &cfg()).expect("s");
        assert!(
            (a.value[0] - b.value[0]).abs() < 1e-6,
            "{d:?}: {} vs {}",
            a.value[0],
            b.value[0]
        );
    }
    // L1 0.2 moves 0.1 mass: V(0) = 1 / (1 - 0.9 * 0.8).
    let b = robust_value_iteration(&mdp, &set(Distance::L1, 0.2, Rectangularity::S), &cfg())
        .expect("s");
    assert!((b.value[0] - 1.0 / 0.28).abs() < 1e-6);
}

#[test]
fn s_rectangular_sits_between_sa_bounds_and_its_policy_attains_its_value() {
    s_rectangular_bounds_and_exact_evaluation(&garnet(6, 3, 4, 0.8, 11).expect("garnet"));
}

#[test]
#[ignore = "slow: the same check on a larger Garnet (s-rectangular VI to 1e-11 in debug)"]
fn s_rectangular_sits_between_sa_bounds_and_its_policy_attains_its_value_larger() {
    s_rectangular_bounds_and_exact_evaluation(&garnet(30, 4, 6, 0.9, 11).expect("garnet"));
}

/// The s-rectangular value lies between the (s,a)-rectangular values at
/// radius `r` and `r / A`, and robust evaluation of its policy (exact budget
/// split) reproduces the robust VI value to 1e-8 relative.
fn s_rectangular_bounds_and_exact_evaluation(mdp: &TabularMdp) {
    let mdp = mdp.clone();
    let na = mdp.n_actions as f64;
    for d in ALL {
        let r = 0.3;
        let sa = robust_value_iteration(&mdp, &set(d, r, Rectangularity::Sa), &cfg()).expect("sa");
        let s = robust_value_iteration(
            &mdp,
            &set(d, r, Rectangularity::S),
            &RobustValueIterationConfig {
                epsilon: 1e-11,
                max_sweeps: 10_000,
            },
        )
        .expect("s");
        let sa_small = robust_value_iteration(&mdp, &set(d, r / na, Rectangularity::Sa), &cfg())
            .expect("sa/A");
        for i in 0..mdp.n_states {
            assert!(sa.value[i] <= s.value[i] + 1e-6, "{d:?} {i}");
            assert!(s.value[i] <= sa_small.value[i] + 1e-6, "{d:?} {i}");
        }
        let (ev, kernel) = robust_policy_evaluation(
            &mdp,
            &set(d, r, Rectangularity::S),
            &s.policy,
            &RobustEvaluationConfig::default(),
        )
        .expect("evaluate");
        for i in 0..mdp.n_states {
            assert!(
                (ev[i] - s.value[i]).abs() < 1e-8 * (1.0 + s.value[i].abs()),
                "{d:?} state {i}: {} vs {}",
                ev[i],
                s.value[i]
            );
        }
        assert!(set(d, r, Rectangularity::S).contains(
            &mdp.transitions,
            &kernel,
            mdp.n_states,
            mdp.n_actions,
            1e-6
        ));
    }
}

#[test]
fn robust_policy_iteration_matches_value_iteration_and_evaluation() {
    let mdp = garnet(25, 4, 5, 0.95, 5).expect("garnet");
    for d in ALL {
        let s = set(d, 0.2, Rectangularity::Sa);
        let vi = robust_value_iteration(&mdp, &s, &cfg()).expect("vi");
        let pi = robust_policy_iteration(&mdp, &s, &RobustEvaluationConfig::default()).expect("pi");
        for (a, b) in vi.value.iter().zip(&pi.value) {
            assert!((a - b).abs() < 1e-6, "{d:?}: {a} vs {b}");
        }
        let (ev, k) =
            robust_policy_evaluation(&mdp, &s, &vi.policy, &RobustEvaluationConfig::default())
                .expect("eval");
        for (a, b) in vi.value.iter().zip(&ev) {
            assert!((a - b).abs() < 1e-6, "{d:?}: {a} vs {b}");
        }
        // The worst kernel reproduces the robust value by plain evaluation.
        let direct = evaluate_on_kernel(&mdp, &k, &vi.policy);
        for (a, b) in direct.iter().zip(&ev) {
            assert!((a - b).abs() < 1e-8);
        }
    }
}

/// Minimise `v . q` over `{q : sum q = 1, A q <= b}` by enumerating vertices
/// (every choice of `n - 1` tight inequalities plus the equality).
fn vertex_lp_min(a: &[Vec<f64>], b: &[f64], v: &[f64]) -> f64 {
    let n = v.len();
    let m = a.len();
    let mut best = f64::INFINITY;
    let mut idx: Vec<usize> = (0..n - 1).collect();
    loop {
        let mut mat: Vec<Vec<f64>> = idx
            .iter()
            .map(|&i| {
                let mut r = a[i].clone();
                r.push(b[i]);
                r
            })
            .collect();
        let mut eq = vec![1.0; n];
        eq.push(1.0);
        mat.push(eq);
        if let Some(q) = solve(mat) {
            let feasible =
                (0..m).all(|i| a[i].iter().zip(&q).map(|(x, y)| x * y).sum::<f64>() <= b[i] + 1e-9);
            if feasible {
                best = best.min(q.iter().zip(v).map(|(x, y)| x * y).sum());
            }
        }
        // next combination
        let k = n - 1;
        let mut i = k;
        loop {
            if i == 0 {
                return best;
            }
            i -= 1;
            if idx[i] < m - k + i {
                idx[i] += 1;
                for j in i + 1..k {
                    idx[j] = idx[j - 1] + 1;
                }
                break;
            }
        }
    }
}

fn solve(mut m: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let n = m.len();
    for c in 0..n {
        let piv = (c..n).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))?;
        if m[piv][c].abs() < 1e-12 {
            return None;
        }
        m.swap(c, piv);
        for r in 0..n {
            if r != c {
                let f = m[r][c] / m[c][c];
                for k in c..=n {
                    m[r][k] -= f * m[c][k];
                }
            }
        }
    }
    Some((0..n).map(|i| m[i][n] / m[i][i]).collect())
}

fn l1_constraints(p: &[f64], r: f64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let n = p.len();
    let (mut a, mut b) = (vec![], vec![]);
    for i in 0..n {
        let mut row = vec![0.0; n];
        row[i] = -1.0;
        a.push(row);
        b.push(0.0);
    }
    for mask in 0..(1u32 << n) {
        let sign: Vec<f64> = (0..n)
            .map(|i| if mask >> i & 1 == 1 { 1.0 } else { -1.0 })
            .collect();
        b.push(r + sign.iter().zip(p).map(|(s, x)| s * x).sum::<f64>());
        a.push(sign);
    }
    (a, b)
}

fn linf_constraints(p: &[f64], r: f64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let n = p.len();
    let (mut a, mut b) = (vec![], vec![]);
    for i in 0..n {
        for (sign, rhs) in [(-1.0, 0.0), (1.0, p[i] + r), (-1.0, r - p[i])] {
            let mut row = vec![0.0; n];
            row[i] = sign;
            a.push(row);
            b.push(rhs);
        }
    }
    (a, b)
}

fn simplex_point(raw: &[f64]) -> Vec<f64> {
    let z: f64 = raw.iter().sum();
    raw.iter().map(|x| x / z).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    #[ignore = "slow: 128 more random MDPs for the worst-kernel invariant"]
    fn worst_kernel_stays_in_the_set_many(
        seed in 0u64..100_000,
        d in 0usize..3,
        rect in any::<bool>(),
        r in 0.0f64..1.2,
    ) {
        for k in 0..4 {
            worst_kernel_invariant(seed * 4 + k, d, rect, r)?;
        }
    }

    #[test]
    fn l1_and_linf_closed_forms_equal_the_lp(
        raw in prop::collection::vec(0.01f64..1.0, 4),
        v in prop::collection::vec(-5.0f64..5.0, 4),
        zero in 0usize..5,
        r in 0.0f64..2.5,
    ) {
        let mut raw = raw;
        if zero < 4 { raw[zero] = 0.0; }
        let p = simplex_point(&raw);
        let order = ValueOrder::new(&v);
        let mut q = vec![0.0; 4];
        let (a, b) = l1_constraints(&p, r);
        let ours = l1_worst_case(&p, &v, r, &order, &mut q);
        let lp = vertex_lp_min(&a, &b, &v);
        prop_assert!((ours - lp).abs() < 1e-8, "L1 {} vs LP {}", ours, lp);
        let (a, b) = linf_constraints(&p, r / 2.0);
        let ours = linf_worst_case(&p, &v, r / 2.0, &order, &mut q);
        let lp = vertex_lp_min(&a, &b, &v);
        prop_assert!((ours - lp).abs() < 1e-8, "Linf {} vs LP {}", ours, lp);
    }

    #[test]
    fn kl_dual_matches_brute_force(
        raw in prop::collection::vec(0.05f64..1.0, 3),
        v in prop::collection::vec(-3.0f64..3.0, 3),
        r in 0.001f64..1.5,
    ) {
        let p = simplex_point(&raw);
        let mut q = vec![0.0; 3];
        let ours = kl_worst_case(&p, &v, r, &mut q);
        prop_assert!(Distance::Kl.between(&q, &p) <= r + 1e-9);
        // weak duality: every dual value lower-bounds the primal; the bisection attains it
        let mut best_dual = f64::NEG_INFINITY;
        for k in -60..60 {
            let beta = (k as f64 / 6.0).exp();
            let d = kl_dual_objective(&p, &v, r, beta);
            prop_assert!(d <= ours + 1e-9, "dual {} above primal {}", d, ours);
            best_dual = best_dual.max(d);
        }
        // brute force over a grid of the simplex
        let steps = 300;
        let mut brute = f64::INFINITY;
        for i in 0..=steps {
            for j in 0..=(steps - i) {
                let x = [i as f64 / steps as f64, j as f64 / steps as f64, (steps - i - j) as f64 / steps as f64];
                if Distance::Kl.between(&x, &p) <= r {
                    brute = brute.min(x.iter().zip(&v).map(|(a, b)| a * b).sum());
                }
            }
        }
        prop_assert!(ours <= brute + 1e-9, "ours {} above grid {}", ours, brute);
        prop_assert!(ours >= brute - 0.05 * (1.0 + brute.abs()), "ours {} far below grid {}", ours, brute);
        prop_assert!(ours - best_dual < 0.05, "dual gap {}", ours - best_dual);
    }

    #[test]
    fn worst_kernel_stays_in_the_set_and_rows_sum_to_one(
        seed in 0u64..1000,
        d in 0usize..3,
        rect in any::<bool>(),
        r in 0.0f64..1.2,
    ) {
        worst_kernel_invariant(seed, d, rect, r)?;
    }
}

fn worst_kernel_invariant(seed: u64, d: usize, rect: bool, r: f64) -> Result<(), TestCaseError> {
    let mdp = garnet(5, 2, 3, 0.8, seed).expect("garnet");
    let s = set(
        ALL[d],
        r,
        if rect {
            Rectangularity::S
        } else {
            Rectangularity::Sa
        },
    );
    let sol = robust_value_iteration(
        &mdp,
        &s,
        &RobustValueIterationConfig {
            epsilon: 1e-5,
            max_sweeps: 10_000,
        },
    )
    .expect("solve");
    prop_assert!(s.contains(
        &mdp.transitions,
        &sol.worst_kernel,
        mdp.n_states,
        mdp.n_actions,
        1e-7
    ));
    for row in sol.worst_kernel.chunks(mdp.n_states) {
        prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        prop_assert!(row.iter().all(|x| *x >= 0.0));
    }
    Ok(())
}

#[test]
fn malformed_mdp_errors_name_state_and_action() {
    let bad_sum = r#"{"n_states": 2, "n_actions": 1, "gamma": 0.9,
        "transitions": [[[0.5, 0.4]], [[0.0, 1.0]]], "rewards": [[1.0], [0.0]], "initial": [1.0, 0.0]}"#;
    let e = parse_mdp(bad_sum, std::path::Path::new("m.json"))
        .expect_err("bad row")
        .to_string();
    assert!(
        e.contains("s=0") && e.contains("a=0") && e.contains("0.9"),
        "{e}"
    );
    let negative = bad_sum.replace("[[0.5, 0.4]], [[0.0, 1.0]]", "[[1.0, 0.0]], [[-0.5, 1.5]]");
    let e = parse_mdp(&negative, std::path::Path::new("m.json"))
        .expect_err("negative")
        .to_string();
    assert!(
        e.contains("s=1") && e.contains("a=0") && e.contains("-0.5"),
        "{e}"
    );
    let shape = bad_sum.replace("[[0.5, 0.4]], [[0.0, 1.0]]", "[[1.0, 0.0]], [[1.0]]");
    let e = parse_mdp(&shape, std::path::Path::new("m.json"))
        .expect_err("shape")
        .to_string();
    assert!(e.contains("state 1") && e.contains("action 0"), "{e}");
    let missing = r#"{"n_states": 1}"#;
    let e = parse_mdp(missing, std::path::Path::new("m.json"))
        .expect_err("missing")
        .to_string();
    assert!(e.contains("n_actions"), "{e}");
}

#[test]
fn sets_and_policies_round_trip_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = set(Distance::Kl, 0.25, Rectangularity::S);
    let path = dir.path().join("set.json");
    save_json(&path, &s).expect("save");
    let back: UncertaintySet = load_json(&path).expect("load");
    assert_eq!(back, s);
    let text = serde_json::to_string(&s).expect("json");
    assert_eq!(
        text,
        r#"{"distance":"kl","radius":0.25,"rectangularity":"s"}"#
    );
    for p in [
        Policy::Deterministic(vec![0, 2]),
        Policy::Stochastic(vec![vec![0.5, 0.5], vec![0.0, 1.0]]),
    ] {
        let path = dir.path().join("policy.json");
        save_json(&path, &p).expect("save");
        let back: Policy = load_json(&path).expect("load");
        assert_eq!(back, p);
    }
    let mdp = two_state();
    let path = dir.path().join("mdp.json");
    std::fs::write(&path, mdp.to_json()).expect("write");
    assert_eq!(load_mdp(&path).expect("load"), mdp);
    assert!(matches!(
        load_mdp(&dir.path().join("absent.json")),
        Err(RobustError::Io { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The exact s-rectangular budget split is no worse than any split on a
    /// fine grid (two actions: `xi_0 = k r / n`, `xi_1 = r - xi_0`), and at
    /// most one grid step's worth better.
    #[test]
    fn s_rectangular_split_beats_every_grid_split(
        raw in prop::collection::vec(0.02f64..1.0, 8),
        v in prop::collection::vec(-3.0f64..3.0, 4),
        w in 0.05f64..0.95,
        r in 0.01f64..1.5,
        d in 0usize..3,
    ) {
        let p0 = simplex_point(&raw[..4]);
        let p1 = simplex_point(&raw[4..]);
        let mut transitions = vec![];
        for _ in 0..4 {
            transitions.extend_from_slice(&p0);
            transitions.extend_from_slice(&p1);
        }
        let mdp = TabularMdp::new(4, 2, 0.9, transitions, vec![0.0; 8], vec![0.25; 4]).expect("mdp");
        let s = set(ALL[d], r, Rectangularity::S);
        let order = ValueOrder::new(&v);
        let pi = [w, 1.0 - w];
        let (ours, rows) = kiln_robust::robust_pi::s_rectangular_response(&mdp, &s, &v, &order, 0, &pi);
        // the rows are feasible and give the value
        let spent = ALL[d].between(&rows[..4], &p0) + ALL[d].between(&rows[4..], &p1);
        prop_assert!(spent <= r + 1e-9, "spent {} > {}", spent, r);
        let direct: f64 = (0..4).map(|k| pi[0] * rows[k] * v[k] + pi[1] * rows[4 + k] * v[k]).sum();
        prop_assert!((direct - ours).abs() < 1e-9);
        let n = 2000;
        let mut q = vec![0.0; 4];
        let mut grid = f64::INFINITY;
        for k in 0..=n {
            let x = r * k as f64 / n as f64;
            let f0 = kiln_robust::worst_case::worst_case(ALL[d], &p0, &v, x, &order, &mut q);
            let f1 = kiln_robust::worst_case::worst_case(ALL[d], &p1, &v, r - x, &order, &mut q);
            grid = grid.min(pi[0] * f0 + pi[1] * f1);
        }
        prop_assert!(ours <= grid + 1e-10, "{:?}: exact {} above grid {}", ALL[d], ours, grid);
        // slopes are bounded by the value range times the state count (Linf)
        // or by sqrt-type growth near zero (KL): a loose band per grid step
        prop_assert!(ours >= grid - 0.05, "{:?}: exact {} far below grid {}", ALL[d], ours, grid);
    }
}
