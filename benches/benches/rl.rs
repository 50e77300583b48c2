//! Learner throughput on the default backend: PPO iterations (rollout + update) at the
//! rl-baselines3-zoo CartPole-v1 setting on the host engine and on burn, and SAC (host engine
//! and burn) / TD3 / DQN gradient steps at their zoo settings (each gradient step with its one
//! env step).
//!
//! `cargo bench -p kiln-benches --bench rl`. Criterion's "elem/s" is environment steps per
//! second for PPO and gradient steps per second for the off-policy learners.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_rl::{
    Dqn, DqnConfig, NoCallback, Ppo, PpoConfig, PpoEngine, Sac, SacConfig, SacEngine, Td3,
    Td3Config,
};
use kiln_tensor::select_device;

fn ppo_iteration(c: &mut Criterion) {
    let device = select_device().expect("device").device;
    let mut g = c.benchmark_group("ppo_cartpole_zoo");
    g.sample_size(10);
    for (name, engine) in [
        ("iteration_host", PpoEngine::Host),
        ("iteration_burn", PpoEngine::Burn),
    ] {
        let cfg = PpoConfig {
            engine,
            ..PpoConfig::cartpole()
        };
        let batch = cfg.batch_size() as u64;
        let mut ppo = Ppo::with_device(cfg, "CartPole-v1", 0, device.clone()).expect("ppo");
        g.throughput(Throughput::Elements(batch));
        g.bench_function(name, |b| {
            b.iter(|| ppo.learn(batch, &mut NoCallback).expect("learn"))
        });
    }
    g.finish();
}

const STEPS: u64 = 100;

fn off_policy_steps(c: &mut Criterion) {
    let device = select_device().expect("device").device;
    let mut g = c.benchmark_group("off_policy_gradient_steps");
    g.sample_size(10);
    g.throughput(Throughput::Elements(STEPS));
    // One SAC gradient step at 256-256, batch 256 on Pendulum (obs 3, action 1) is about
    // 0.55 GFLOP (2 x 2.7e8 multiply-adds: forwards, backwards and input gradients of the
    // actor and both critics), so GFLOP/s = 0.55 / (ms per step) * 1e3.
    for (name, engine) in [
        ("sac_pendulum_256x256_batch256_host", SacEngine::Host),
        ("sac_pendulum_256x256_batch256_burn", SacEngine::Burn),
    ] {
        let mut sac = Sac::with_device(
            SacConfig {
                learning_starts: 256,
                engine,
                ..SacConfig::pendulum()
            },
            "Pendulum-v1",
            0,
            device.clone(),
        )
        .expect("sac");
        sac.learn(257, &mut NoCallback).expect("warm-up");
        g.bench_function(name, |b| {
            b.iter(|| sac.learn(STEPS, &mut NoCallback).expect("learn"))
        });
    }
    let mut td3 = Td3::with_device(
        Td3Config {
            learning_starts: 256,
            ..Td3Config::pendulum()
        },
        "Pendulum-v1",
        0,
        device.clone(),
    )
    .expect("td3");
    td3.learn(257, &mut NoCallback).expect("warm-up");
    g.bench_function("td3_pendulum_400x300_batch256", |b| {
        b.iter(|| td3.learn(STEPS, &mut NoCallback).expect("learn"))
    });
    let mut dqn = Dqn::with_device(
        DqnConfig {
            learning_starts: 256,
            train_freq: 1,
            gradient_steps: 1,
            ..DqnConfig::cartpole()
        },
        "CartPole-v1",
        0,
        device,
    )
    .expect("dqn");
    dqn.learn(257, &mut NoCallback).expect("warm-up");
    g.bench_function("dqn_cartpole_256x256_batch64", |b| {
        b.iter(|| dqn.learn(STEPS, &mut NoCallback).expect("learn"))
    });
    g.finish();
}

criterion_group!(benches, ppo_iteration, off_policy_steps);
criterion_main!(benches);
