//! Offline datasets: format round trip, corruption errors, generation, and
//! TQ/SACo on hand-made datasets with answers worked out by hand.

use kiln_envs::dataset::generation::{EpsilonNoisy, FnPolicy, RandomPolicy, collect, mixed};
use kiln_envs::dataset::measures::{
    Binning, HyperLogLog, hash_key, saco, tq, unique_state_actions, unique_state_actions_raw,
};
use kiln_envs::dataset::{DatasetError, DatasetMetadata, EpisodeDataset, FORMAT_VERSION};
use kiln_envs::{Action, Space, make};
use rand::{RngExt, SeedableRng};

fn meta(policy: &str) -> DatasetMetadata {
    DatasetMetadata {
        format_version: FORMAT_VERSION,
        env_id: "Toy-v0".into(),
        env_params: serde_json::Value::Null,
        observation_space: Space::discrete(3),
        action_space: Space::discrete(2),
        behaviour_policy: policy.into(),
        seed: 0,
        extra: Default::default(),
    }
}

/// states {0,1,2}, actions {0,1}: (0,0),(0,0),(1,1),(2,0); rewards 1,2,3,4; episode ends after the 2nd and 4th.
fn toy() -> EpisodeDataset {
    let mut d = EpisodeDataset::new(meta("replay"));
    let rows = [
        (0.0, 0, 1.0, false),
        (0.0, 0, 2.0, true),
        (1.0, 1, 3.0, false),
        (2.0, 0, 4.0, true),
    ];
    for (s, a, r, done) in rows {
        d.push(&[s], &Action::Discrete(a), r, &[s + 1.0], done, false)
            .expect("push");
    }
    d
}

#[test]
fn save_load_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("toy.safetensors");
    let mut d = toy();
    d.metadata
        .extra
        .insert("best_online_return".into(), serde_json::json!(9.5));
    d.save(&path).expect("save");
    let back = EpisodeDataset::load(&path).expect("load");
    assert_eq!(back, d);
    assert_eq!(back.episode_returns(), vec![3.0, 7.0]);
    // no temporary file left behind
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}

#[test]
fn truncated_or_corrupted_files_give_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("toy.safetensors");
    toy().save(&path).expect("save");
    let bytes = std::fs::read(&path).expect("read");
    let cut = &bytes[..bytes.len() - 5];
    let e = EpisodeDataset::from_bytes(cut, "cut.safetensors").expect_err("truncated");
    assert!(
        matches!(e, DatasetError::Format { .. }) && e.to_string().contains("cut.safetensors"),
        "{e}"
    );
    let mut bad = bytes.clone();
    bad[10] = b'#';
    let e = EpisodeDataset::from_bytes(&bad, "bad.safetensors").expect_err("corrupted header");
    assert!(matches!(e, DatasetError::Format { .. }), "{e}");
    let e = EpisodeDataset::from_bytes(&bytes[..4], "tiny").expect_err("tiny");
    assert!(e.to_string().contains("tiny"), "{e}");
    let e = EpisodeDataset::load(dir.path().join("missing.safetensors")).expect_err("missing");
    assert!(matches!(e, DatasetError::Io { .. }));
}

#[test]
fn header_is_plain_safetensors_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("toy.safetensors");
    toy().save(&path).expect("save");
    let bytes = std::fs::read(&path).expect("read");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("json header");
    assert_eq!(header["observations"]["dtype"], "F64");
    assert_eq!(header["observations"]["shape"], serde_json::json!([4, 1]));
    assert_eq!(header["terminations"]["dtype"], "U8");
    let meta: serde_json::Value = serde_json::from_str(
        header["__metadata__"]["kiln_dataset"]
            .as_str()
            .expect("str"),
    )
    .expect("meta");
    assert_eq!(meta["env_id"], "Toy-v0");
}

#[test]
fn saco_toy_answers() {
    let d = toy();
    assert_eq!(unique_state_actions_raw(&d), 3, "(0,0) twice, (1,1), (2,0)");
    let bins = Binning::from_reference(&d, 100);
    assert_eq!(unique_state_actions(&d, &bins), 3);
    assert_eq!(
        saco(3.0, unique_state_actions(&d, &bins) as f64),
        1.0,
        "SACo(replay) = 1"
    );
    // duplicating every transition leaves u (and SACo) unchanged
    let mut dup = d.clone();
    dup.extend(&d).expect("extend");
    assert_eq!(unique_state_actions(&dup, &bins), 3);
    // one new pair adds one
    dup.push(&[1.0], &Action::Discrete(0), 0.0, &[2.0], false, false)
        .expect("push");
    assert_eq!(unique_state_actions(&dup, &bins), 4);
}

#[test]
fn digitize_follows_numpy_conventions() {
    let b = Binning::from_bounds(&[0.0], &[1.0], 100);
    assert_eq!(b.digitize(0, -0.1), 0);
    assert_eq!(b.digitize(0, 0.0), 1);
    assert_eq!(
        b.digitize(0, 0.5),
        50,
        "0.5 lies in [edge 49, edge 50) = [0.4949, 0.5050)"
    );
    assert_eq!(b.digitize(0, 1.0), 100, "max goes to bin 100");
    assert_eq!(b.digitize(0, 2.0), 100);
}

#[test]
fn tq_answers() {
    let d = toy(); // returns 3 and 7: mean 5
    let mut random = EpisodeDataset::new(meta("random"));
    random
        .push(&[0.0], &Action::Discrete(1), 1.0, &[0.0], true, false)
        .expect("push"); // mean 1
    assert_eq!(tq(&random, &random, 9.0), Some(0.0), "TQ(random) = 0");
    assert_eq!(tq(&d, &random, 9.0), Some(0.5), "(5 - 1) / (9 - 1)");
    assert_eq!(
        tq(&d, &random, 5.0),
        Some(1.0),
        "returns equal to g_ref give 1"
    );
    // a trailing partial episode contributes no return
    let mut partial = d.clone();
    partial
        .push(&[0.0], &Action::Discrete(0), 100.0, &[1.0], false, false)
        .expect("push");
    assert_eq!(partial.episode_returns(), vec![3.0, 7.0]);
}

#[test]
fn mixed_is_80_percent_random_then_20_percent_expert() {
    let mut random = EpisodeDataset::new(meta("random"));
    let mut expert = EpisodeDataset::new(meta("expert"));
    for i in 0..10 {
        random
            .push(&[0.0], &Action::Discrete(0), i as f64, &[0.0], false, false)
            .expect("push");
        expert
            .push(
                &[1.0],
                &Action::Discrete(1),
                100.0 + i as f64,
                &[1.0],
                false,
                false,
            )
            .expect("push");
    }
    let m = mixed(&random, &expert, 0.8).expect("mixed");
    assert_eq!(m.len(), 10);
    assert_eq!(&m.rewards()[..8], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    assert_eq!(
        &m.rewards()[8..],
        &[108.0, 109.0],
        "the last 20 % of the expert buffer"
    );
    assert_eq!(m.metadata.behaviour_policy, "mixed");
}

#[test]
fn hyperloglog_within_one_percent_on_1e5_keys() {
    let mut rng = kiln_envs::EnvRng::seed_from_u64(42);
    let mut h = HyperLogLog::new(16);
    let mut exact = std::collections::HashSet::new();
    for _ in 0..100_000 {
        let key = [rng.random_range(0..1000u32), rng.random_range(0..1000u32)];
        exact.insert(key);
        h.insert_hash(hash_key(&key));
    }
    let est = h.estimate();
    let rel = (est - exact.len() as f64).abs() / exact.len() as f64;
    assert!(
        rel < 0.01,
        "estimate {est} vs exact {} ({rel})",
        exact.len()
    );
}

#[test]
fn collect_random_expert_noisy_on_cartpole() {
    let mut env = make("CartPole-v1").expect("make");
    let space = env.action_space().clone();
    let random = collect(
        &mut env,
        &serde_json::Value::Null,
        &mut RandomPolicy {
            space: space.clone(),
        },
        2000,
        1,
    )
    .expect("random");
    assert_eq!(random.len(), 2000);
    assert_eq!(random.metadata.behaviour_policy, "random");
    assert_eq!(random.metadata.env_id, "CartPole-v1");
    let expert_fn = |obs: &[f64], _: &mut kiln_envs::EnvRng| {
        Action::Discrete(i64::from(obs[2] + 0.5 * obs[3] > 0.0))
    };
    let expert = collect(
        &mut env,
        &serde_json::Value::Null,
        &mut FnPolicy {
            name: "expert".into(),
            f: expert_fn,
        },
        2000,
        1,
    )
    .expect("expert");
    let mut noisy_policy = EpsilonNoisy {
        expert: FnPolicy {
            name: "expert".into(),
            f: expert_fn,
        },
        epsilon: 0.2,
        space: space.clone(),
    };
    let noisy = collect(
        &mut env,
        &serde_json::Value::Null,
        &mut noisy_policy,
        2000,
        1,
    )
    .expect("noisy");
    let best = 500.0;
    let tq_expert = tq(&expert, &random, best).expect("episodes");
    let tq_noisy = tq(&noisy, &random, best).expect("episodes");
    assert!(
        tq_expert > 0.9 && tq_noisy > 0.0 && tq_noisy < tq_expert,
        "expert {tq_expert}, noisy {tq_noisy}"
    );
    // same seed, same dataset
    let again = collect(
        &mut env,
        &serde_json::Value::Null,
        &mut RandomPolicy { space },
        2000,
        1,
    )
    .expect("random");
    assert_eq!(again, random);
    // coverage: the random data covers more (s, a) bins than the expert's, measured on the random bins
    let bins = Binning::from_reference(&random, 100);
    assert!(unique_state_actions(&random, &bins) > 1000);
}
