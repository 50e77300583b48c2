//! SAC, TD3 and DQN end to end: known answers of their pieces, determinism, checkpoints,
//! config errors, and (slow) the learning thresholds on Pendulum-v1 and CartPole-v1.

use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use kiln_rl::{
    Dqn, DqnConfig, Learner, NoCallback, Result, Sac, SacConfig, SacEngine, Td3, Td3Config,
    huber_loss, load_learner, make_learner, mean_std,
};
use kiln_tensor::testing::cpu;

fn small_sac() -> SacConfig {
    SacConfig {
        learning_starts: 50,
        batch_size: 32,
        hidden_sizes: vec![16, 16],
        ..SacConfig::pendulum()
    }
}

fn small_td3() -> Td3Config {
    Td3Config {
        learning_starts: 50,
        batch_size: 32,
        hidden_sizes: vec![16, 16],
        ..Td3Config::pendulum()
    }
}

fn small_dqn() -> DqnConfig {
    DqnConfig {
        learning_starts: 50,
        batch_size: 16,
        train_freq: 16,
        gradient_steps: 4,
        hidden_sizes: vec![16],
        ..DqnConfig::cartpole()
    }
}

#[test]
fn huber_loss_is_quadratic_inside_delta_and_linear_outside() {
    let x = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, -2.0, 3.0, 0.0], [4]), &cpu());
    // 0.125, 1.5 (= 2 - 0.5), 2.5 (= 3 - 0.5), 0 -> mean 1.03125
    let v: Vec<f32> = huber_loss(x.clone(), 1.0)
        .into_data()
        .iter::<f32>()
        .collect();
    assert!((v[0] - 1.03125).abs() < 1e-6, "{v:?}");
    // delta 2: 0.125, 2.0, 4.0 (= 2 * (3 - 1)), 0 -> mean 1.53125
    let v: Vec<f32> = huber_loss(x, 2.0).into_data().iter::<f32>().collect();
    assert!((v[0] - 1.53125).abs() < 1e-6, "{v:?}");
}

#[test]
fn epsilon_follows_sb3_linear_schedule() {
    let cfg = DqnConfig::cartpole();
    assert_eq!(cfg.epsilon(0.0), 1.0);
    assert!((cfg.epsilon(0.08) - (1.0 + 0.5 * (0.04 - 1.0))).abs() < 1e-12);
    assert_eq!(cfg.epsilon(0.16), 0.04);
    assert_eq!(cfg.epsilon(0.9), 0.04);
    assert_eq!(cfg.epsilon_at(0.0), 1.0);
    assert!((cfg.epsilon_at(0.5) - 0.52).abs() < 1e-12);
    assert!((cfg.epsilon_at(3.0) - 0.04).abs() < 1e-12);
}

#[test]
fn sac_same_seed_same_run_and_learns_something() -> Result<()> {
    let run = |seed| -> Result<_> {
        let mut sac = Sac::with_device(small_sac(), "Pendulum-v1", seed, cpu())?;
        let stats = sac.learn(120, &mut NoCallback)?;
        Ok((stats, sac.predict(&[1.0, 0.0, 0.1], true)?, sac.alpha()))
    };
    let (a, act_a, alpha_a) = run(3)?;
    let (b, act_b, alpha_b) = run(3)?;
    assert_eq!(a, b);
    assert_eq!(act_a, act_b);
    assert_eq!(alpha_a, alpha_b);
    let (c, _, _) = run(4)?;
    assert_ne!(a.critic_loss, c.critic_loss);
    assert!(a.critic_loss.is_finite() && a.critic_loss > 0.0);
    // 70 temperature steps at lr 1e-3 move alpha away from 1 (the entropy of the fresh
    // policy is far above the target -1).
    assert!(alpha_a < 1.0 && alpha_a > 0.8, "alpha {alpha_a}");
    Ok(())
}

#[test]
fn td3_same_seed_same_run() -> Result<()> {
    let run = |seed| -> Result<_> {
        let mut td3 = Td3::with_device(small_td3(), "Pendulum-v1", seed, cpu())?;
        let stats = td3.learn(120, &mut NoCallback)?;
        Ok((stats, td3.predict(&[1.0, 0.0, 0.1], true)?))
    };
    let (a, act_a) = run(5)?;
    let (b, act_b) = run(5)?;
    assert_eq!(a, b);
    assert_eq!(act_a, act_b);
    assert!(a.critic_loss.is_finite() && a.critic_loss > 0.0 && a.actor_loss.is_finite());
    Ok(())
}

#[test]
fn dqn_same_seed_same_run() -> Result<()> {
    let run = |seed| -> Result<_> {
        let mut dqn = Dqn::with_device(small_dqn(), "CartPole-v1", seed, cpu())?;
        let stats = dqn.learn(160, &mut NoCallback)?;
        Ok((stats, dqn.predict(&[0.01, 0.02, -0.03, 0.04], true)?))
    };
    let (a, act_a) = run(9)?;
    let (b, act_b) = run(9)?;
    assert_eq!(a, b);
    assert_eq!(act_a, act_b);
    assert!(a.loss.is_finite() && a.loss > 0.0);
    assert!(a.epsilon < 1.0);
    Ok(())
}

#[test]
fn dqn_regresses_q_onto_the_reward_when_gamma_is_near_zero() -> Result<()> {
    // CartPole pays 1 per step; with gamma near 0 the TD target is r = 1 for every
    // transition, so Q(s, a) must approach 1 within a few hundred gradient steps.
    let cfg = DqnConfig {
        gamma: 1e-6,
        learning_starts: 32,
        train_freq: 1,
        gradient_steps: 2,
        learning_rate: 3e-3,
        ..small_dqn()
    };
    let mut dqn = Dqn::with_device(cfg, "CartPole-v1", 1, cpu())?;
    let stats = dqn.learn(400, &mut NoCallback)?;
    assert!((stats.q_value - 1.0).abs() < 0.1, "Q {stats:?}");
    Ok(())
}

#[test]
fn checkpoints_round_trip_through_the_registry() -> Result<()> {
    let cases = [
        ("sac", "Pendulum-v1", serde_json::to_value(small_sac()).ok()),
        ("td3", "Pendulum-v1", serde_json::to_value(small_td3()).ok()),
        ("dqn", "CartPole-v1", serde_json::to_value(small_dqn()).ok()),
    ];
    for (algo, env, cfg) in cases {
        let mut learner = make_learner(algo, env, 2, cfg, cpu())?;
        learner.learn(80, &mut NoCallback)?;
        let dir = tempfile::tempdir().map_err(|e| kiln_rl::RlError::Checkpoint {
            path: Default::default(),
            reason: e.to_string(),
        })?;
        let stem = dir.path().join("ckpt");
        learner.save(&stem)?;
        let mut loaded: Box<dyn Learner> = load_learner(&stem, cpu())?;
        assert_eq!(loaded.algo(), algo);
        assert_eq!(loaded.global_step(), learner.global_step());
        let obs: Vec<f64> = if env == "Pendulum-v1" {
            vec![0.6, 0.8, -0.3]
        } else {
            vec![0.01, 0.02, -0.03, 0.04]
        };
        assert_eq!(
            format!("{:?}", learner.predict(&obs, true)?),
            format!("{:?}", loaded.predict(&obs, true)?),
            "{algo}"
        );
        let returns = loaded.evaluate(1, 0)?;
        assert!(returns[0].is_finite());
    }
    Ok(())
}

#[test]
fn bad_configs_and_spaces_are_named() {
    let err = |algo: &str, env: &str, cfg: serde_json::Value| {
        make_learner(algo, env, 1, Some(cfg), cpu())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("sac", "Pendulum-v1", serde_json::json!({"gamma": 1.5}));
    assert!(e.contains("gamma") && e.contains("1.5"), "{e}");
    let e = err("td3", "Pendulum-v1", serde_json::json!({"policy_dely": 2}));
    assert!(e.contains("policy_dely"), "{e}");
    let e = err(
        "dqn",
        "CartPole-v1",
        serde_json::json!({"exploration_final_eps": 2.0}),
    );
    assert!(e.contains("exploration_final_eps"), "{e}");
    let e = err(
        "sac",
        "Pendulum-v1",
        serde_json::json!({"learning_rate": -1.0}),
    );
    assert!(e.contains("learning_rate"), "{e}");
    let e = err("dqn", "Pendulum-v1", serde_json::json!({}));
    assert!(e.contains("action") && e.contains("DQN"), "{e}");
    let e = err("sac", "CartPole-v1", serde_json::json!({}));
    assert!(e.contains("action") && e.contains("SAC"), "{e}");
}

#[test]
fn sac_engine_is_a_validated_config_key() {
    let c: SacConfig = serde_json::from_str(r#"{"engine": "burn"}"#).unwrap();
    assert_eq!(c.engine, SacEngine::Burn);
    assert_eq!(SacConfig::default().engine, SacEngine::Auto);
    assert!(SacEngine::Auto.uses_host(&cpu()));
    let err = serde_json::from_str::<SacConfig>(r#"{"engine": "jax"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("jax"), "{err}");
}

/// The host engine writes its trained weights into the burn networks that a checkpoint saves:
/// the reloaded learner acts as the trained one did.
#[test]
fn sac_host_engine_checkpoint_keeps_the_trained_policy() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let stem = dir.path().join("sac");
    let mut sac = Sac::with_device(
        SacConfig {
            engine: SacEngine::Host,
            ..small_sac()
        },
        "Pendulum-v1",
        5,
        cpu(),
    )?;
    sac.learn(120, &mut NoCallback)?;
    let obs = [0.3, -0.9, 0.4];
    let want = sac.predict(&obs, true)?;
    sac.save(&stem)?;
    let mut back = Sac::load_with_device(&stem, cpu())?;
    assert_eq!(back.predict(&obs, true)?, want);
    assert_eq!(back.global_step(), 120);
    Ok(())
}

/// Trains seeds 1-3 for `steps` env steps in chunks of `chunk`, evaluating 10 deterministic
/// episodes after each chunk (SB3's `EvalCallback`); a seed passes when an evaluation within
/// the budget reaches `threshold`.
fn threshold_run(
    name: &str,
    steps: u64,
    chunk: u64,
    threshold: f64,
    mut build: impl FnMut(u64) -> Result<Box<dyn Learner>>,
) -> Result<()> {
    let mut failures = Vec::new();
    for seed in [1u64, 2, 3] {
        let start = Instant::now();
        let mut learner = build(seed)?;
        let mut curve = Vec::new();
        let mut best = f64::NEG_INFINITY;
        while learner.global_step() < steps {
            learner.learn(chunk.min(steps - learner.global_step()), &mut NoCallback)?;
            let returns = learner.evaluate(10, 10_000 + seed)?;
            let (mean, _) = mean_std(&returns);
            curve.push(format!("{}k: {mean:.0}", learner.global_step() / 1000));
            best = best.max(mean);
        }
        println!(
            "{name} seed {seed}: best eval return {best:.1} (10 episodes each) within {steps} steps, {:.1} s; [{}]",
            start.elapsed().as_secs_f64(),
            curve.join(", ")
        );
        if best < threshold {
            failures.push((seed, best));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: seeds below {threshold}: {failures:?}"
    );
    Ok(())
}

#[test]
#[ignore = "slow: run with cargo xtask test --slow"]
fn sac_reaches_minus_200_on_pendulum_within_15k_steps() -> Result<()> {
    threshold_run("SAC Pendulum-v1", 15_000, 5_000, -200.0, |seed| {
        Ok(Box::new(Sac::with_device(
            SacConfig::pendulum(),
            "Pendulum-v1",
            seed,
            cpu(),
        )?))
    })
}

#[test]
#[ignore = "slow: run with cargo xtask test --slow"]
fn td3_reaches_minus_200_on_pendulum_within_20k_steps() -> Result<()> {
    threshold_run("TD3 Pendulum-v1", 20_000, 5_000, -200.0, |seed| {
        Ok(Box::new(Td3::with_device(
            Td3Config::pendulum(),
            "Pendulum-v1",
            seed,
            cpu(),
        )?))
    })
}

#[test]
#[ignore = "slow: run with cargo xtask test --slow"]
fn dqn_reaches_400_on_cartpole_within_100k_steps() -> Result<()> {
    // The zoo's setting with the double-DQN switch (van Hasselt et al. 2016, eq. 4) and its
    // epsilon schedule (16% of 100k steps) over the whole run, not per chunk. Plain DQN with
    // the zoo's setting reaches 500 / 500 / 353 on seeds 1-3 (seed 3 never gets past 353 in
    // 10 evaluations; the zoo setting misses a seed on SB3 as well); double DQN reaches 500
    // on all three.
    let config = DqnConfig {
        exploration_steps: Some(16_000),
        double_q: true,
        ..DqnConfig::cartpole()
    };
    threshold_run("DQN CartPole-v1", 100_000, 10_000, 400.0, |seed| {
        Ok(Box::new(Dqn::with_device(
            config.clone(),
            "CartPole-v1",
            seed,
            cpu(),
        )?))
    })
}
