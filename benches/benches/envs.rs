//! Environment throughput (steps per second) for the classic-control
//! environments: a single environment (concrete type and the boxed
//! registry path with its `TimeLimit`), and `VecEnv` with N = 1, 16, 256
//! copies. Finished episodes auto-reset, as in the Gymnasium/EnvPool/gymnax
//! peers measured by `benches/peers/envs_peers.py`.
//!
//! From 32 copies on, `VecEnv` advances Pendulum and Acrobot with their batch
//! kernels (vector math, bit-identical to the scalar step, where the CPU has
//! AVX2/AVX-512 and FMA); `envs/vec_one_by_one/.../N=256` steps the same
//! vectors copy by copy, the A/B of that path in one run.
//!
//! Run: `cargo bench -p kiln-benches --bench envs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_envs::classic::{Acrobot, CartPole, MountainCarContinuous, Pendulum};
use kiln_envs::wrappers::TimeLimit;
use kiln_envs::{Action, Env, EnvError, Info, ParallelVecEnv, Space, Transition, VecEnv, make};

/// Steps per timed iteration of the single-environment loops.
const STEPS: usize = 1000;

/// A fixed pseudo-random action sequence (sampling cost stays out of the loop).
fn actions(env: &dyn Env, n: usize) -> Vec<Action> {
    let mut rng = kiln_envs::seeded_rng(0);
    (0..n)
        .map(|_| env.action_space().sample(&mut rng))
        .collect()
}

fn single<E: Env>(c: &mut Criterion, name: &str, mut env: E) {
    let acts = actions(&env, STEPS);
    let mut obs = vec![0.0; env.observation_space().raw_len()];
    env.reset_into(Some(0), &mut obs).expect("reset");
    let mut group = c.benchmark_group("envs/single");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for a in &acts {
                let t = env.step_into(a, &mut obs).expect("step");
                if t.terminated || t.truncated {
                    env.reset_into(None, &mut obs).expect("reset");
                }
            }
            black_box(&obs);
        })
    });
    group.finish();
}

fn single_boxed(c: &mut Criterion, id: &str) {
    let mut env = make(id).expect("registered");
    let acts = actions(env.as_ref(), STEPS);
    let mut obs = vec![0.0; env.observation_space().raw_len()];
    env.reset_into(Some(0), &mut obs).expect("reset");
    let mut group = c.benchmark_group("envs/single_boxed");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.bench_function(id, |b| {
        b.iter(|| {
            for a in &acts {
                let t = env.step_into(a, &mut obs).expect("step");
                if t.terminated || t.truncated {
                    env.reset_into(None, &mut obs).expect("reset");
                }
            }
            black_box(&obs);
        })
    });
    group.finish();
}

fn vectorized<E: Env>(c: &mut Criterion, name: &str, make_env: impl Fn() -> E) {
    let mut group = c.benchmark_group(format!("envs/vec/{name}"));
    for n in [1usize, 16, 256] {
        let mut v = VecEnv::from_fn(n, |_| Ok(make_env())).expect("vec env");
        v.reset(Some(0)).expect("reset");
        // 64 rounds of pre-sampled actions, cycled
        let probe = make_env();
        let rounds: Vec<Vec<Action>> = (0..64).map(|_| actions(&probe, n)).collect();
        let mut k = 0;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("N={n}"), |b| {
            b.iter(|| {
                v.step(&rounds[k & 63]).expect("step");
                k += 1;
                black_box(v.observations());
            })
        });
    }
    group.finish();
}

/// `ParallelVecEnv` of N = 256 copies in two groups on rayon's pool (both cores).
fn parallel<E: Env>(c: &mut Criterion, name: &str, make_env: impl Fn() -> E) {
    let mut group = c.benchmark_group(format!("envs/par2/{name}"));
    let n = 256;
    let mut v = ParallelVecEnv::new((0..n).map(|_| make_env()).collect(), 2).expect("vec env");
    v.reset(Some(0)).expect("reset");
    let probe = make_env();
    let rounds: Vec<Vec<Action>> = (0..64).map(|_| actions(&probe, n)).collect();
    let mut k = 0;
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(format!("N={n}"), |b| {
        b.iter(|| {
            v.step(&rounds[k & 63]).expect("step");
            k += 1;
            black_box(v.observations());
        })
    });
    group.finish();
}

/// An environment without a batch step, so `VecEnv` steps it copy by copy.
struct OneByOne<E>(E);

impl<E: Env> Env for OneByOne<E> {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn observation_space(&self) -> &Space {
        self.0.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.0.action_space()
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        self.0.reset_into(seed, obs)
    }
    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        self.0.step_into(action, obs)
    }
}

/// `VecEnv` of N = 256 copies stepped one by one (the path before batch kernels).
fn vectorized_one_by_one<E: Env>(c: &mut Criterion, name: &str, make_env: impl Fn() -> E) {
    let mut group = c.benchmark_group(format!("envs/vec_one_by_one/{name}"));
    let n = 256;
    let mut v = VecEnv::from_fn(n, |_| Ok(OneByOne(make_env()))).expect("vec env");
    v.reset(Some(0)).expect("reset");
    let probe = make_env();
    let rounds: Vec<Vec<Action>> = (0..64).map(|_| actions(&probe, n)).collect();
    let mut k = 0;
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(format!("N={n}"), |b| {
        b.iter(|| {
            v.step(&rounds[k & 63]).expect("step");
            k += 1;
            black_box(v.observations());
        })
    });
    group.finish();
}

fn classic_control(c: &mut Criterion) {
    single(c, "CartPole-v1", CartPole::default());
    single(c, "Pendulum-v1", Pendulum::default());
    single(
        c,
        "MountainCarContinuous-v0",
        MountainCarContinuous::default(),
    );
    single(c, "Acrobot-v1", Acrobot::default());
    for id in [
        "CartPole-v1",
        "Pendulum-v1",
        "MountainCarContinuous-v0",
        "Acrobot-v1",
    ] {
        single_boxed(c, id);
    }
    // with the ids' default time limits, like the peers' vector envs
    vectorized(c, "CartPole-v1", || {
        TimeLimit::new(CartPole::default(), 500)
    });
    vectorized(c, "Pendulum-v1", || {
        TimeLimit::new(Pendulum::default(), 200)
    });
    vectorized(c, "MountainCarContinuous-v0", || {
        TimeLimit::new(MountainCarContinuous::default(), 999)
    });
    vectorized(c, "Acrobot-v1", || TimeLimit::new(Acrobot::default(), 500));
    vectorized_one_by_one(c, "Pendulum-v1", || {
        TimeLimit::new(Pendulum::default(), 200)
    });
    vectorized_one_by_one(c, "Acrobot-v1", || TimeLimit::new(Acrobot::default(), 500));
    parallel(c, "Pendulum-v1", || {
        TimeLimit::new(Pendulum::default(), 200)
    });
    parallel(c, "Acrobot-v1", || TimeLimit::new(Acrobot::default(), 500));
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(30);
    targets = classic_control
}
criterion_main!(benches);
