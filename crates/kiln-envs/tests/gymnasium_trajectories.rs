//! Replays trajectories recorded from Gymnasium 1.x (by
//! `benches/peers/gym_trajectories.py`) through `kiln_envs::rollout::replay`,
//! the same code path as `kiln env rollout`, and requires the observations
//! and rewards to match to 1e-5 at every step, the termination flags exactly,
//! and the accumulated deviation over each (up to 300-step) episode to stay within 1e-4.

use kiln_envs::Action;
use kiln_envs::rollout::{Start, replay};
use serde::Deserialize;

#[derive(Deserialize)]
struct Recording {
    env_id: String,
    gymnasium_version: String,
    episodes: Vec<Episode>,
}

#[derive(Deserialize)]
struct Episode {
    policy: String,
    seed: u64,
    start_state: Vec<f64>,
    actions: Vec<serde_json::Value>,
    obs: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    states: Vec<Vec<f64>>,
}

fn check(file: &str) {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rec: Recording = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        rec.gymnasium_version.starts_with('1'),
        "recorded with Gymnasium {}",
        rec.gymnasium_version
    );
    let space = kiln_envs::make(&rec.env_id)
        .expect("registered")
        .action_space()
        .clone();
    for ep in &rec.episodes {
        let actions: Vec<Action> = ep
            .actions
            .iter()
            .map(|a| Action::from_json(a, &space).expect("action"))
            .collect();
        let roll = replay(
            &rec.env_id,
            &serde_json::Value::Null,
            &Start::State(ep.start_state.clone()),
            &actions,
            false,
        )
        .unwrap_or_else(|e| panic!("{} {} seed {}: {e}", rec.env_id, ep.policy, ep.seed));
        assert_eq!(
            roll.steps.len(),
            ep.obs.len(),
            "{} {} seed {}: episode length",
            rec.env_id,
            ep.policy,
            ep.seed
        );
        let mut max_dev: f64 = 0.0;
        for (t, step) in roll.steps.iter().enumerate() {
            let ctx = format!("{} {} seed {} step {t}", rec.env_id, ep.policy, ep.seed);
            for (i, (a, b)) in step.obs.iter().zip(&ep.obs[t]).enumerate() {
                // Gymnasium returns float32 observations; compare after the same rounding.
                let d = ((*a as f32) as f64 - b).abs();
                assert!(
                    d <= 1e-5,
                    "{ctx}: obs[{i}] kiln {a} gymnasium {b} (|diff| {d:e})"
                );
                max_dev = max_dev.max(d);
            }
            let dr = (step.reward - ep.rewards[t]).abs();
            assert!(
                dr <= 1e-5,
                "{ctx}: reward kiln {} gymnasium {} (|diff| {dr:e})",
                step.reward,
                ep.rewards[t]
            );
            max_dev = max_dev.max(dr);
            assert_eq!(step.terminated, ep.terminated[t], "{ctx}: terminated");
            assert!(!step.truncated, "{ctx}: no time limit in replays");
        }
        assert!(
            max_dev <= 1e-4,
            "{} {}: max deviation {max_dev:e}",
            rec.env_id,
            ep.policy
        );
    }
}

/// Stronger than the 1e-5 requirement: the float64 internal state
/// (`env.unwrapped.state`) is reproduced bit for bit at every step.
fn check_states_bitwise(file: &str) {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let rec: Recording =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("data")).expect("json");
    let mut env =
        kiln_envs::make_with(&rec.env_id, &serde_json::Value::Null, false).expect("registered");
    let space = env.action_space().clone();
    for ep in &rec.episodes {
        env.reset(Some(0)).expect("reset");
        env.set_state(&ep.start_state).expect("state");
        for (t, a) in ep.actions.iter().enumerate() {
            env.step(&Action::from_json(a, &space).expect("action"))
                .expect("step");
            let s = env.state().expect("state vector");
            assert_eq!(
                s, ep.states[t],
                "{} {} seed {} step {t}: internal state",
                rec.env_id, ep.policy, ep.seed
            );
        }
    }
}

#[test]
fn internal_states_are_bit_identical_to_gymnasium() {
    for f in [
        "gym_CartPole-v1.json",
        "gym_Pendulum-v1.json",
        "gym_MountainCarContinuous-v0.json",
        "gym_Acrobot-v1.json",
    ] {
        check_states_bitwise(f);
    }
}

#[test]
fn cartpole_matches_gymnasium() {
    check("gym_CartPole-v1.json");
}

#[test]
fn pendulum_matches_gymnasium() {
    check("gym_Pendulum-v1.json");
}

#[test]
fn mountain_car_continuous_matches_gymnasium() {
    check("gym_MountainCarContinuous-v0.json");
}

#[test]
fn acrobot_matches_gymnasium() {
    check("gym_Acrobot-v1.json");
}
