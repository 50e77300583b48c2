//! `VecEnv`'s batch step (the vector kernels of the classic-control
//! environments) against stepping every copy one by one with the scalar code:
//! observations, final observations, rewards, flags, internal states and step
//! counters agree bit for bit after every step, through terminations,
//! truncations and auto-resets, with per-copy parameters, with states far
//! outside the usual ranges, and when an action is rejected part-way through.
//! (The vectors hold at least one full block of 32 copies, and most a partial one.)

use kiln_envs::classic::{Acrobot, CartPole, MountainCarContinuous, Pendulum};
use kiln_envs::wrappers::TimeLimit;
use kiln_envs::{Action, Env, EnvError, Info, Space, Transition, VecEnv};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};

/// The same environment without a batch step: `VecEnv` steps it one by one.
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
    fn state(&self) -> Option<Vec<f64>> {
        self.0.state()
    }
}

fn bits(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Both vectors after a step: same buffers and copies, bit for bit.
fn assert_same<E: Env>(
    batch: &VecEnv<TimeLimit<E>>,
    plain: &VecEnv<OneByOne<TimeLimit<E>>>,
    step: usize,
) {
    let d = batch.obs_dim();
    assert_eq!(
        bits(batch.observations()),
        bits(plain.observations()),
        "observations, step {step}"
    );
    assert_eq!(batch.rewards().len(), plain.rewards().len());
    assert_eq!(
        bits(batch.rewards()),
        bits(plain.rewards()),
        "rewards, step {step}"
    );
    assert_eq!(
        batch.terminated(),
        plain.terminated(),
        "terminated, step {step}"
    );
    assert_eq!(
        batch.truncated(),
        plain.truncated(),
        "truncated, step {step}"
    );
    for i in 0..batch.num_envs() {
        if batch.terminated()[i] || batch.truncated()[i] {
            let row = i * d..(i + 1) * d;
            assert_eq!(
                bits(&batch.final_observations()[row.clone()]),
                bits(&plain.final_observations()[row]),
                "final observation of copy {i}, step {step}"
            );
        }
        let (b, p) = (&batch.envs()[i], &plain.envs()[i].0);
        assert_eq!(
            b.state().map(|s| bits(&s)),
            p.state().map(|s| bits(&s)),
            "state of copy {i}, step {step}"
        );
        assert_eq!(
            b.elapsed_steps(),
            p.elapsed_steps(),
            "copy {i}, step {step}"
        );
    }
    assert_eq!(batch.infos(), plain.infos());
}

/// Draws a start state for one copy.
type DrawState<'a> = &'a dyn Fn(&mut rand::rngs::Xoshiro256PlusPlus) -> Vec<f64>;

/// Step both vectors with the same actions for `steps` steps; copy `bad`
/// gets `bad_action` at step `bad_step` (both must then fail alike).
#[allow(clippy::too_many_arguments)]
fn compare<E: Env>(
    make: impl Fn(usize) -> E,
    limit: impl Fn(usize) -> usize,
    n: usize,
    seed: u64,
    steps: usize,
    mut action: impl FnMut(&mut rand::rngs::Xoshiro256PlusPlus) -> Action,
    states: Option<DrawState<'_>>,
    bad: Option<(usize, usize, Action)>,
) {
    let mut batch = VecEnv::from_fn(n, |i| Ok(TimeLimit::new(make(i), limit(i)))).expect("vec");
    let mut plain =
        VecEnv::from_fn(n, |i| Ok(OneByOne(TimeLimit::new(make(i), limit(i))))).expect("vec");
    let ob = batch.reset(Some(seed)).expect("reset").to_vec();
    let op = plain.reset(Some(seed)).expect("reset").to_vec();
    assert_eq!(bits(&ob), bits(&op));
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed);
    if let Some(draw) = states {
        for i in 0..n {
            let s = draw(&mut rng);
            batch.envs_mut()[i].set_state(&s).expect("state");
            plain.envs_mut()[i].0.set_state(&s).expect("state");
        }
    }
    for step in 0..steps {
        let mut actions: Vec<Action> = (0..n).map(|_| action(&mut rng)).collect();
        if let Some((bad_step, i, a)) = &bad
            && *bad_step == step
        {
            actions[*i] = a.clone();
            let eb = batch.step(&actions).expect_err("bad action");
            let ep = plain.step(&actions).expect_err("bad action");
            assert_eq!(eb.to_string(), ep.to_string());
            for j in 0..n {
                let (b, p) = (&batch.envs()[j], &plain.envs()[j].0);
                assert_eq!(
                    b.state().map(|s| bits(&s)),
                    p.state().map(|s| bits(&s)),
                    "copy {j} after the error"
                );
                assert_eq!(b.elapsed_steps(), p.elapsed_steps());
            }
            return;
        }
        batch.step(&actions).expect("step");
        plain.step(&actions).expect("step");
        assert_same(&batch, &plain, step);
    }
}

fn torque(rng: &mut rand::rngs::Xoshiro256PlusPlus) -> Action {
    let t = match rng.random_range(0..8) {
        0 => rng.random_range(-6.0..6.0),
        1 => [0.0, -0.0, 2.0, -2.0, 1e-30, 1.0][rng.random_range(0..6)],
        _ => rng.random_range(-2.0..2.0),
    };
    Action::Continuous(vec![t])
}

fn force(rng: &mut rand::rngs::Xoshiro256PlusPlus) -> Action {
    let t = match rng.random_range(0..6) {
        0 => rng.random_range(-3.0..3.0),
        _ => rng.random_range(-1.0..1.0),
    };
    Action::Continuous(vec![t])
}

fn discrete(n: i64) -> impl Fn(&mut rand::rngs::Xoshiro256PlusPlus) -> Action {
    move |rng| Action::Discrete(rng.random_range(0..n))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn pendulum_batch_equals_one_by_one(seed in any::<u64>(), n in prop_oneof![Just(32usize), Just(64), 33usize..100]) {
        compare(|_| Pendulum::default(), |i| 20 + i % 13, n, seed, 120, torque, None, None);
    }

    #[test]
    fn pendulum_batch_equals_one_by_one_from_wild_states(seed in any::<u64>()) {
        // spinning pendulums far from [-pi, pi] (angle_normalize's and sin/cos's slow paths)
        let draw = |rng: &mut rand::rngs::Xoshiro256PlusPlus| {
            let th = match rng.random_range(0..4) {
                0 => rng.random_range(-3000.0..3000.0),
                1 => rng.random_range(-1e-9..1e-9),
                2 => (rng.random_range(-8i32..8) as f64) * std::f64::consts::FRAC_PI_2,
                _ => rng.random_range(-40.0..40.0),
            };
            vec![th, rng.random_range(-8.0..8.0)]
        };
        compare(|_| Pendulum::default(), |_| 200, 64, seed, 60, torque, Some(&draw), None);
    }

    #[test]
    fn acrobot_batch_equals_one_by_one(seed in any::<u64>(), n in prop_oneof![Just(32usize), Just(64), 33usize..100]) {
        compare(|_| Acrobot::default(), |i| 30 + i % 17, n, seed, 100, discrete(3), None, None);
    }

    #[test]
    fn acrobot_batch_equals_one_by_one_through_terminations(seed in any::<u64>()) {
        // start near the goal height so that episodes terminate
        let draw = |rng: &mut rand::rngs::Xoshiro256PlusPlus| {
            vec![
                rng.random_range(-3.2..3.2),
                rng.random_range(-3.2..3.2),
                rng.random_range(-12.0..12.0),
                rng.random_range(-28.0..28.0),
            ]
        };
        compare(|_| Acrobot::default(), |_| 500, 64, seed, 80, discrete(3), Some(&draw), None);
    }

    #[test]
    fn mountain_car_and_cartpole_batch_equal_one_by_one(seed in any::<u64>()) {
        compare(|_| MountainCarContinuous::default(), |i| 40 + i, 16, seed, 150, force, None, None);
        compare(|_| CartPole::default(), |i| 10 + i, 16, seed, 60, discrete(2), None, None);
    }

    #[test]
    fn rejected_actions_fail_alike(seed in any::<u64>(), i in 0usize..70, at in 0usize..30, kind in 0usize..4) {
        let bad = match kind {
            0 => Action::Continuous(vec![f64::NAN]),
            1 => Action::Continuous(vec![0.5, 0.5]),
            2 => Action::Discrete(1),
            _ => Action::Continuous(vec![f64::INFINITY]),
        };
        compare(|_| Pendulum::default(), |_| 11, 70, seed, 40, torque, None, Some((at, i, bad)));
        let bad = match kind {
            0 => Action::Discrete(3),
            1 => Action::Discrete(-1),
            2 => Action::Continuous(vec![1.0]),
            _ => Action::Discrete(i64::MAX),
        };
        compare(|_| Acrobot::default(), |_| 9, 70, seed, 40, discrete(3), None, Some((at, i, bad)));
    }
}

/// Copies with their own parameters (robust RL varies physics per copy) take
/// the one-by-one path inside the batch step and still agree.
#[test]
fn per_copy_parameters_agree() {
    let pendulum = |i: usize| {
        let mut e = Pendulum::default();
        if i % 5 == 3 {
            e.set_params(&serde_json::json!({"g": 9.81, "m": 1.2}))
                .expect("params");
        }
        e
    };
    compare(pendulum, |_| 200, 70, 5, 100, torque, None, None);
    let acrobot = |i: usize| {
        let mut e = Acrobot::default();
        if i == 40 {
            e.set_params(&serde_json::json!({"link_mass_2": 1.5, "book": false}))
                .expect("params");
        }
        e
    };
    compare(acrobot, |_| 500, 70, 6, 100, discrete(3), None, None);
}
