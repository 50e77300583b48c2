//! The `Env` contract for every registered id, the registry, vectorized
//! stepping and the wrappers' documented behaviour.

use kiln_envs::wrappers::{
    ClipAction, FlattenObservation, NormalizeObservation, RecordEpisodeStatistics, RescaleAction,
    TimeLimit,
};
use kiln_envs::{Action, Env, EnvError, Space, VecEnv, make, make_with, specs};
use rand::SeedableRng;

fn rng(seed: u64) -> kiln_envs::EnvRng {
    kiln_envs::EnvRng::seed_from_u64(seed)
}

#[test]
fn unknown_id_lists_known_ids() {
    let Err(err) = make("CartPole-v0") else {
        panic!("CartPole-v0 is not registered")
    };
    let msg = err.to_string();
    assert!(
        msg.contains("CartPole-v0") && msg.contains("CartPole-v1") && msg.contains("Fishery3-v0"),
        "{msg}"
    );
}

#[test]
fn every_id_honours_the_env_contract() {
    for spec in specs() {
        let mut env = make(spec.id).unwrap_or_else(|e| panic!("{}: {e}", spec.id));
        let id = spec.id;
        // step before reset
        let a = env.action_space().sample(&mut rng(0));
        assert!(
            matches!(env.step(&a), Err(EnvError::NeedsReset { .. })),
            "{id}: step before reset"
        );
        let (obs, _) = env.reset(Some(7)).expect("reset");
        assert_eq!(obs.len(), env.observation_space().raw_len(), "{id}");
        // same seed, same trajectory
        let mut r = rng(1);
        let actions: Vec<Action> = (0..50).map(|_| env.action_space().sample(&mut r)).collect();
        let run = |env: &mut Box<dyn Env>| -> Vec<(Vec<f64>, f64)> {
            let mut out = vec![(env.reset(Some(3)).expect("reset").0, 0.0)];
            for a in &actions {
                let s = env.step(a).expect("step");
                out.push((s.obs, s.reward));
                if s.terminated || s.truncated {
                    break;
                }
            }
            out
        };
        let first = run(&mut env);
        let second = run(&mut env);
        assert_eq!(
            first, second,
            "{id}: reset(seed) must reproduce the trajectory"
        );
        // wrong kind of action: error, state unchanged
        env.reset(Some(1)).expect("reset");
        let before = env.state();
        let wrong = match env.action_space() {
            Space::Discrete { .. } => Action::Continuous(vec![0.0]),
            _ => Action::Discrete(0),
        };
        assert!(
            matches!(env.step(&wrong), Err(EnvError::ActionKind { .. })),
            "{id}: wrong kind"
        );
        assert_eq!(
            env.state(),
            before,
            "{id}: a rejected action must not change the state"
        );
        // NaN / wrong length for continuous spaces
        if let Space::Box(b) = env.action_space().clone() {
            let mut nan = vec![0.0; b.dim()];
            nan[b.dim() - 1] = f64::NAN;
            let e = env
                .step(&Action::Continuous(nan))
                .expect_err("NaN rejected");
            assert!(
                matches!(e, EnvError::ActionNotFinite { index, .. } if index == b.dim() - 1),
                "{id}: {e}"
            );
            let e = env
                .step(&Action::Continuous(vec![0.0; b.dim() + 1]))
                .expect_err("length");
            assert!(
                e.to_string().contains(id) && matches!(e, EnvError::ActionLength { .. }),
                "{id}: {e}"
            );
            assert_eq!(env.state(), before, "{id}");
        }
        // run to the end, then stepping is an error until reset
        env.reset(Some(2)).expect("reset");
        let mut steps = 0;
        let mut r = rng(9);
        loop {
            let s = env.step(&env.action_space().sample(&mut r)).expect("step");
            steps += 1;
            if s.terminated || s.truncated {
                break;
            }
            assert!(
                steps <= spec.max_episode_steps.unwrap_or(10_000),
                "{id}: time limit not applied"
            );
        }
        assert!(
            matches!(
                env.step(&env.action_space().sample(&mut r)),
                Err(EnvError::NeedsReset { .. })
            ),
            "{id}: step after end"
        );
        env.reset(None).expect("reset again");
    }
}

#[test]
fn discrete_out_of_range_names_env_index_and_value() {
    let mut env = make("CartPole-v1").expect("make");
    env.reset(Some(0)).expect("reset");
    let e = env.step(&Action::Discrete(2)).expect_err("rejected");
    assert_eq!(
        e,
        EnvError::DiscreteOutOfRange {
            env: "CartPole-v1".into(),
            index: 0,
            value: 2,
            start: 0,
            end: 2
        }
    );
    assert!(e.to_string().contains("CartPole-v1") && e.to_string().contains('2'));
}

#[test]
fn point_maze_rejects_out_of_range_unless_clip_action() {
    let env = make_with("PointMaze2D-v0", &serde_json::Value::Null, false).expect("make");
    let mut strict = make_with("PointMaze2D-v0", &serde_json::Value::Null, false).expect("make");
    strict.reset(Some(0)).expect("reset");
    let e = strict
        .step(&Action::Continuous(vec![0.0, 1.5]))
        .expect_err("out of range");
    assert_eq!(
        e,
        EnvError::ActionOutOfBounds {
            env: "PointMaze2D-v0".into(),
            index: 1,
            value: 1.5,
            low: -1.0,
            high: 1.0
        }
    );
    let mut clipped = ClipAction::new(env).expect("box");
    let (o0, _) = clipped.reset(Some(0)).expect("reset");
    let s = clipped
        .step(&Action::Continuous(vec![0.0, 1.5]))
        .expect("clipped");
    assert!(
        (s.obs[1] - o0[1] - 0.1).abs() < 1e-12,
        "moved by max_speed*dt"
    );
}

#[test]
fn params_are_settable_and_validated() {
    let mut env =
        make_with("CartPole-v1", &serde_json::json!({"length": 0.7}), true).expect("make");
    assert_eq!(env.params()["length"], 0.7);
    let e = env
        .set_params(&serde_json::json!({"lenght": 1.0}))
        .expect_err("typo");
    assert!(e.to_string().contains("lenght"), "{e}");
    let e = env
        .set_params(&serde_json::json!({"masscart": -1.0}))
        .expect_err("negative");
    assert!(
        matches!(e, EnvError::InvalidParam { ref field, .. } if field == "masscart"),
        "{e}"
    );
    env.set_params(&serde_json::json!({"gravity": 3.7}))
        .expect("mars");
    assert_eq!(env.params()["gravity"], 3.7);
    assert_eq!(
        env.params()["length"],
        0.5,
        "fields missing from set_params take their defaults"
    );
}

#[test]
fn state_round_trip_replays_from_any_start() {
    for id in [
        "CartPole-v1",
        "Pendulum-v1",
        "MountainCarContinuous-v0",
        "Acrobot-v1",
        "PointMaze2D-v0",
        "Fishery3-v0",
    ] {
        let mut env = make_with(id, &serde_json::Value::Null, false).expect("make");
        env.reset(Some(5)).expect("reset");
        let mut r = rng(4);
        for _ in 0..5 {
            let a = env.action_space().sample(&mut r);
            if env.step(&a).expect("step").terminated {
                break;
            }
        }
        let s = env.state().expect("vector state");
        let mut copy = make_with(id, &serde_json::Value::Null, false).expect("make");
        copy.reset(Some(99)).expect("reset");
        copy.set_state(&s).expect("set");
        assert_eq!(copy.state(), Some(s.clone()), "{id}");
        let e = copy.set_state(&s[..s.len() - 1]).expect_err("short state");
        assert!(matches!(e, EnvError::StateLength { .. }), "{id}: {e}");
    }
}

#[test]
fn time_limit_truncates_and_blocks() {
    let mut env = TimeLimit::new(
        make_with("Pendulum-v1", &serde_json::Value::Null, false).expect("make"),
        3,
    );
    env.reset(Some(0)).expect("reset");
    let a = Action::Continuous(vec![0.0]);
    assert!(!env.step(&a).expect("1").truncated);
    assert!(!env.step(&a).expect("2").truncated);
    assert!(env.step(&a).expect("3").truncated);
    assert!(matches!(env.step(&a), Err(EnvError::NeedsReset { .. })));
    assert_eq!(
        make("Pendulum-v1")
            .expect("make")
            .step(&a)
            .err()
            .map(|e| e.to_string().contains("reset")),
        Some(true)
    );
}

#[test]
fn record_episode_statistics_reports_return_and_length() {
    let mut env = RecordEpisodeStatistics::new(make("CartPole-v1").expect("make"));
    env.reset(Some(0)).expect("reset");
    let mut n = 0;
    loop {
        let s = env.step(&Action::Discrete(1)).expect("step");
        n += 1;
        if s.terminated || s.truncated {
            assert_eq!(s.info["episode_length"], n as f64);
            assert_eq!(
                s.info["episode_return"], n as f64,
                "CartPole pays 1 per step"
            );
            break;
        }
        assert!(s.info.is_empty());
    }
    assert_eq!(env.return_queue.len(), 1);
}

#[test]
fn rescale_action_maps_unit_box_to_env_box() {
    let env = make_with("Pendulum-v1", &serde_json::Value::Null, false).expect("make");
    let mut w = RescaleAction::new(env, -1.0, 1.0).expect("box");
    assert_eq!(
        w.action_space(),
        &Space::Box(kiln_envs::BoxSpace::uniform(-1.0, 1.0, 1).expect("box"))
    );
    w.reset(Some(0)).expect("reset");
    w.set_state(&[0.0, 0.0]).expect("state");
    // a = 0.5 maps to torque 1.0: theta_dot = 3/(m l^2) * 1.0 * dt = 0.15
    let s = w.step(&Action::Continuous(vec![0.5])).expect("step");
    assert!((s.obs[2] - 0.15).abs() < 1e-6, "{:?}", s.obs);
    assert!(w.step(&Action::Continuous(vec![1.5])).is_err());
}

#[test]
fn flatten_observation_one_hot_for_discrete() {
    let env = make_with("RiverSwim-v0", &serde_json::Value::Null, true).expect("make");
    let mut f = FlattenObservation::new(env);
    assert_eq!(f.observation_space().raw_len(), 6);
    let (obs, _) = f.reset(Some(0)).expect("reset");
    assert_eq!(obs, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn normalize_observation_statistics_restore() {
    let mut w = NormalizeObservation::new(make("CartPole-v1").expect("make")).expect("box");
    w.reset(Some(0)).expect("reset");
    for _ in 0..5 {
        w.step(&Action::Discrete(0)).expect("step");
    }
    let stats = w.statistics().clone();
    let json = serde_json::to_string(&stats).expect("ser");
    let back: kiln_envs::wrappers::RunningMeanStd = serde_json::from_str(&json).expect("de");
    assert_eq!(back, stats);
    let mut fresh = NormalizeObservation::new(make("CartPole-v1").expect("make")).expect("box");
    fresh.set_statistics(back).expect("same dim");
    assert!(
        fresh
            .set_statistics(kiln_envs::wrappers::RunningMeanStd::new(3))
            .is_err()
    );
}

#[test]
fn vec_env_same_step_autoreset_keeps_final_observation() {
    let mut v = VecEnv::from_fn(4, |_| make("CartPole-v1")).expect("vec");
    v.reset(Some(10)).expect("reset");
    let actions = vec![Action::Discrete(1); 4];
    let mut saw_done = false;
    for _ in 0..100 {
        let before = v.observations().to_vec();
        v.step(&actions).expect("step");
        for i in 0..4 {
            if v.terminated()[i] || v.truncated()[i] {
                saw_done = true;
                let fin = &v.final_observations()[i * 4..(i + 1) * 4];
                // final obs is the failing state (|theta| or |x| past the threshold)...
                assert!(fin[2].abs() > 0.2094 || fin[0].abs() > 2.4, "{fin:?}");
                // ...and the row now holds a fresh reset observation
                let now = &v.observations()[i * 4..(i + 1) * 4];
                assert!(
                    now.iter().all(|x| x.abs() <= 0.05),
                    "{now:?} (was {:?})",
                    &before[i * 4..(i + 1) * 4]
                );
            }
        }
    }
    assert!(saw_done);
    // seeds s + i: copy 1 of seed 10 equals copy 0 of seed 11
    let mut a = VecEnv::from_fn(2, |_| make("CartPole-v1")).expect("vec");
    let mut b = VecEnv::from_fn(1, |_| make("CartPole-v1")).expect("vec");
    let oa = a.reset(Some(10)).expect("reset")[4..8].to_vec();
    let ob = b.reset(Some(11)).expect("reset").to_vec();
    assert_eq!(oa, ob);
    assert!(matches!(
        a.step(&actions[..1]),
        Err(EnvError::VectorLength { .. })
    ));
}

#[test]
fn parallel_vec_env_matches_serial() {
    let mk = |_| make("Acrobot-v1");
    let mut s = VecEnv::from_fn(7, mk).expect("vec");
    let mut p = kiln_envs::ParallelVecEnv::new(
        (0..7).map(mk).collect::<Result<Vec<_>, _>>().expect("envs"),
        3,
    )
    .expect("par");
    s.reset(Some(1)).expect("reset");
    p.reset(Some(1)).expect("reset");
    let mut r = rng(2);
    for _ in 0..600 {
        let acts: Vec<Action> = (0..7)
            .map(|_| Action::Discrete(rand::RngExt::random_range(&mut r, 0..3)))
            .collect();
        s.step(&acts).expect("s");
        p.step(&acts).expect("p");
        assert_eq!(s.observations(), p.observations());
        assert_eq!(s.rewards(), p.rewards());
        assert_eq!(s.truncated(), p.truncated());
    }
}

#[test]
fn tabular_env_follows_the_mdp() {
    let mut env = make("GridWorld-v0").expect("make");
    let (obs, _) = env.reset(Some(0)).expect("reset");
    assert_eq!(obs, vec![0.0]);
    assert!(env.set_state(&[25.0]).is_err());
    assert!(env.set_state(&[0.5]).is_err());
}
