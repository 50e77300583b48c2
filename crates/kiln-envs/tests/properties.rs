//! Property tests: spaces, wrappers' space contracts, running statistics vs a
//! two-pass computation, seeding determinism.

use kiln_envs::wrappers::{
    ClipAction, FlattenObservation, NormalizeObservation, RescaleAction, RunningMeanStd, TimeLimit,
};
use kiln_envs::{Action, BoxSpace, Env, Space, VecEnv, make, make_with, specs};
use proptest::prelude::*;
use rand::SeedableRng;

fn space_strategy() -> impl Strategy<Value = Space> {
    prop_oneof![
        (1u64..50, -5i64..5).prop_map(|(n, start)| Space::Discrete { n, start }),
        proptest::collection::vec(1u64..6, 1..5).prop_map(|nvec| Space::MultiDiscrete { nvec }),
        proptest::collection::vec((-10.0f64..10.0, 0.0f64..5.0, 0u8..4), 1..6).prop_map(|dims| {
            let low: Vec<f64> = dims
                .iter()
                .map(|(l, _, k)| if *k == 0 { f64::NEG_INFINITY } else { *l })
                .collect();
            let high: Vec<f64> = dims
                .iter()
                .map(|(l, w, k)| if *k == 1 { f64::INFINITY } else { l + w })
                .collect();
            Space::Box(BoxSpace::new(low, high).expect("valid box"))
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sampled_actions_lie_in_their_space(space in space_strategy(), seed in any::<u64>()) {
        let mut rng = kiln_envs::EnvRng::seed_from_u64(seed);
        for _ in 0..20 {
            let a = space.sample(&mut rng);
            prop_assert!(space.contains(&a), "{a:?} not in {}", space.describe());
            // flattening: the raw value maps to a vector of flat_dim with one-hots summing per component
            let raw = a.to_vec();
            let mut flat = vec![0.0; space.flat_dim()];
            prop_assert!(space.flatten_into(&raw, &mut flat));
            prop_assert!(space.flatten_space().contains_raw(&flat));
        }
    }

    #[test]
    fn same_seed_same_trajectory(idx in 0usize..64, seed in 0u64..1000, act_seed in any::<u64>()) {
        let spec = &specs()[idx % specs().len()];
        let mut a = make(spec.id).expect("make");
        let mut b = make(spec.id).expect("make");
        let mut ra = kiln_envs::EnvRng::seed_from_u64(act_seed);
        let mut rb = kiln_envs::EnvRng::seed_from_u64(act_seed);
        prop_assert_eq!(a.reset(Some(seed)).expect("r").0, b.reset(Some(seed)).expect("r").0);
        for _ in 0..30 {
            let sa = a.step(&a.action_space().sample(&mut ra)).expect("s");
            let sb = b.step(&b.action_space().sample(&mut rb)).expect("s");
            prop_assert_eq!(&sa, &sb);
            if sa.terminated || sa.truncated { break; }
        }
    }

    #[test]
    fn wrappers_preserve_space_contracts(seed in 0u64..500) {
        let mut rng = kiln_envs::EnvRng::seed_from_u64(seed);
        let base = || make_with("Pendulum-v1", &serde_json::Value::Null, false).expect("make");
        let mut envs: Vec<Box<dyn Env>> = vec![
            Box::new(TimeLimit::new(base(), 7)),
            Box::new(ClipAction::new(base()).expect("box")),
            Box::new(RescaleAction::new(base(), -1.0, 1.0).expect("box")),
            Box::new(NormalizeObservation::new(base()).expect("box")),
            Box::new(FlattenObservation::new(make("RiverSwim-v0").expect("make"))),
            Box::new(FlattenObservation::new(base())),
        ];
        for env in &mut envs {
            let (obs, _) = env.reset(Some(seed)).expect("reset");
            prop_assert!(env.observation_space().contains_raw(&obs), "{} reset obs {obs:?}", env.id());
            for _ in 0..10 {
                let a = env.action_space().sample(&mut rng);
                let s = env.step(&a).expect("a sampled action of the wrapper's space is accepted");
                prop_assert!(env.observation_space().contains_raw(&s.obs), "{} obs {:?} not in {}", env.id(), s.obs, env.observation_space().describe());
                if s.terminated || s.truncated { break; }
            }
        }
    }

    #[test]
    fn running_mean_std_matches_two_pass(
        batches in proptest::collection::vec(proptest::collection::vec(-100.0f64..100.0, 3..30), 1..8)
    ) {
        let dim = 3;
        let mut rms = RunningMeanStd::new(dim);
        let mut all: Vec<f64> = vec![];
        for b in &batches {
            let rows = b.len() / dim * dim;
            if rows == 0 { continue; }
            rms.update(&b[..rows]);
            all.extend_from_slice(&b[..rows]);
        }
        let n = (all.len() / dim) as f64;
        prop_assume!(n > 0.0);
        for j in 0..dim {
            let col: Vec<f64> = all.iter().skip(j).step_by(dim).cloned().collect();
            let mean = col.iter().sum::<f64>() / n;
            let var = col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
            // the initial pseudo-count 1e-4 (mean 0, var 1) perturbs by O(1e-4 / n)
            let eps = 1e-4 / n;
            let tol_m = 1e-9 + eps * (mean.abs() + 1.0) * 2.0;
            let tol_v = 1e-9 * (1.0 + var) + eps * (var + 1.0 + mean * mean) * 2.0;
            prop_assert!((rms.mean[j] - mean).abs() <= tol_m, "mean {} vs {mean}", rms.mean[j]);
            prop_assert!((rms.var[j] - var).abs() <= tol_v, "var {} vs {var}", rms.var[j]);
        }
    }

    #[test]
    fn vec_env_rows_equal_single_envs(n in 1usize..6, seed in 0u64..100) {
        let mut v = VecEnv::from_fn(n, |_| make("Acrobot-v1")).expect("vec");
        let mut singles: Vec<_> = (0..n).map(|_| make("Acrobot-v1").expect("make")).collect();
        v.reset(Some(seed)).expect("reset");
        for (i, s) in singles.iter_mut().enumerate() {
            let (o, _) = s.reset(Some(seed + i as u64)).expect("reset");
            prop_assert_eq!(&v.observations()[i * 6..(i + 1) * 6], &o[..]);
        }
        for t in 0..20 {
            let acts: Vec<Action> = (0..n).map(|i| Action::Discrete(((t + i) % 3) as i64)).collect();
            v.step(&acts).expect("step");
            for (i, s) in singles.iter_mut().enumerate() {
                let st = s.step(&acts[i]).expect("step");
                prop_assert_eq!(&v.observations()[i * 6..(i + 1) * 6], &st.obs[..]);
            }
        }
    }
}
