//! TabularMdp: JSON shape, validation errors, generators with known answers.

use kiln_envs::tabular::{GridWorldConfig, MdpError, TabularMdp, garnet, gridworld, river_swim};

const TWO_STATE: &str = r#"{"n_states":2,"n_actions":1,"gamma":0.9,
  "transitions":[[[0.5,0.5]],[[0.0,1.0]]],"rewards":[[1.0],[0.0]],"initial":[1.0,0.0]}"#;

#[test]
fn json_shape_round_trips_and_values_are_exact() {
    let m = TabularMdp::from_json(TWO_STATE).expect("valid");
    assert_eq!(m.p(0, 0, 1), 0.5);
    assert_eq!(m.next_state_distribution(1, 0), &[0.0, 1.0]);
    assert_eq!(m.reward(0, 0), 1.0);
    let back = TabularMdp::from_json(&m.to_json()).expect("round trip");
    assert_eq!(back, m);
    let v: serde_json::Value = serde_json::from_str(&m.to_json()).expect("json");
    assert_eq!(v["transitions"][0][0][1], 0.5, "nested P[s][a][s']");
    // V(1) = 0; V(0) = 1 + 0.9 (0.5 V(0)) => V(0) = 1 / 0.55
    let v = m.policy_evaluation(&[0, 0]);
    assert!(
        (v[0] - 1.0 / 0.55).abs() < 1e-12 && v[1].abs() < 1e-12,
        "{v:?}"
    );
}

#[test]
fn validation_errors_name_state_and_action() {
    let bad_sum = TWO_STATE.replace("[[0.5,0.5]],[[0.0,1.0]]", "[[0.5,0.4]],[[0.0,1.0]]");
    let e = TabularMdp::from_json(&bad_sum).expect_err("row sum");
    assert!(e.contains("P[s=0][a=0]") && e.contains("0.9"), "{e}");
    let negative = TWO_STATE.replace("[[0.0,1.0]]]", "[[-0.5,1.5]]]");
    let e = TabularMdp::from_json(&negative).expect_err("negative");
    assert!(e.contains("P[s=1][a=0][s'=0] = -0.5"), "{e}");
    let shape = TWO_STATE.replace("[[0.0,1.0]]]", "[[0.0,0.5,0.5]]]");
    let e = TabularMdp::from_json(&shape).expect_err("shape");
    assert!(
        e.contains("state 1, action 0") && e.contains("expected 2"),
        "{e}"
    );
    let init = TWO_STATE.replace("\"initial\":[1.0,0.0]", "\"initial\":[0.7,0.0]");
    assert!(
        TabularMdp::from_json(&init)
            .expect_err("initial")
            .contains("initial distribution")
    );
    let e = TabularMdp::new(1, 1, 1.5, vec![1.0], vec![0.0], vec![1.0]).expect_err("gamma");
    assert_eq!(e, MdpError::Gamma(1.5));
    let e = TabularMdp::new(1, 1, 0.9, vec![1.0], vec![f64::NAN], vec![1.0]).expect_err("reward");
    assert!(matches!(
        e,
        MdpError::Reward {
            state: 0,
            action: 0,
            ..
        }
    ));
}

#[test]
fn river_swim_optimal_policy_swims_right() {
    let m = river_swim(6, 0.95).expect("valid");
    let (v, pi) = m.value_iteration(1e-12, 100_000);
    assert_eq!(pi, vec![1; 6], "values {v:?}");
    // myopic left-swimming is worth 0.005 / (1 - 0.95) = 0.1 at the first state; swimming right beats it
    assert!(v[0] > 0.1);
    let left = m.policy_evaluation(&[0; 6]);
    assert!((left[0] - 0.1).abs() < 1e-12);
    assert!((m.policy_evaluation(&pi)[0] - v[0]).abs() < 1e-8);
    assert!(river_swim(1, 0.9).is_err());
}

#[test]
fn gridworld_deterministic_values() {
    // no slip, 1x3 corridor, goal at the right end: V(start) = gamma * 1 (two moves, reward on entry)
    let cfg = GridWorldConfig {
        width: 3,
        height: 1,
        slip: 0.0,
        start: (0, 0),
        goal: (2, 0),
        gamma: 0.9,
        ..Default::default()
    };
    let m = gridworld(&cfg).expect("valid");
    let (v, pi) = m.value_iteration(1e-12, 10_000);
    assert!(
        (v[0] - 0.9).abs() < 1e-12 && (v[1] - 1.0).abs() < 1e-12,
        "{v:?}"
    );
    assert_eq!(pi[0], 1, "move right");
    // slip: intended move keeps 1 - slip + slip/4
    let s = gridworld(&GridWorldConfig {
        slip: 0.2,
        ..Default::default()
    })
    .expect("valid");
    assert!((s.p(0, 1, 1) - 0.85).abs() < 1e-12);
    assert!(
        (s.p(0, 1, 0) - 0.1).abs() < 1e-12,
        "up and left bump into the border"
    );
    let e = gridworld(&GridWorldConfig {
        goal: (9, 9),
        ..Default::default()
    })
    .expect_err("goal outside");
    assert!(e.to_string().contains("goal"));
}

#[test]
fn garnet_has_branching_successors_and_is_seeded() {
    let m = garnet(20, 3, 4, 0.9, 7).expect("valid");
    for s in 0..20 {
        for a in 0..3 {
            let nz = m
                .next_state_distribution(s, a)
                .iter()
                .filter(|&&p| p > 0.0)
                .count();
            assert!((1..=4).contains(&nz), "s {s} a {a}: {nz}");
        }
    }
    assert_eq!(m, garnet(20, 3, 4, 0.9, 7).expect("same seed"));
    assert_ne!(m, garnet(20, 3, 4, 0.9, 8).expect("other seed"));
    assert!(garnet(5, 2, 6, 0.9, 0).is_err());
}
