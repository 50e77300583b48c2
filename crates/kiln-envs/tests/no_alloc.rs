//! The hot paths allocate nothing: stepping a classic-control environment
//! through its concrete type (with resets of finished episodes), and stepping a
//! `VecEnv` of them with same-step auto-reset. Counted with a global allocator
//! that tallies this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kiln_envs::classic::{Acrobot, CartPole, MountainCarContinuous, Pendulum};
use kiln_envs::wrappers::TimeLimit;
use kiln_envs::{Action, Env, VecEnv};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

fn actions(env: &dyn Env, n: usize) -> Vec<Action> {
    let mut rng = kiln_envs::seeded_rng(1);
    (0..n)
        .map(|_| env.action_space().sample(&mut rng))
        .collect()
}

fn single<E: Env>(mut env: E) {
    let acts = actions(&env, 5_000);
    let mut obs = vec![0.0; env.observation_space().raw_len()];
    env.reset_into(Some(0), &mut obs).expect("reset");
    let mut episodes = 0;
    let n = allocations(|| {
        for a in &acts {
            let t = env.step_into(a, &mut obs).expect("step");
            if t.terminated || t.truncated {
                episodes += 1;
                env.reset_into(None, &mut obs).expect("reset");
            }
        }
    });
    assert_eq!(n, 0, "{}: {n} allocations in 5000 steps", env.id());
    let _ = episodes;
}

/// 40 copies: one full block of the batch kernels (32) and a rest stepped one by one.
fn vectorized<E: Env>(make: impl Fn() -> E) {
    let mut v = VecEnv::from_fn(40, |_| Ok(make())).expect("vec env");
    v.reset(Some(0)).expect("reset");
    let probe = make();
    let rounds: Vec<Vec<Action>> = (0..8).map(|_| actions(&probe, 40)).collect();
    let mut done = 0;
    let n = allocations(|| {
        for k in 0..2_000 {
            v.step(&rounds[k % 8]).expect("step");
            done += v.terminated().iter().filter(|&&t| t).count();
            done += v.truncated().iter().filter(|&&t| t).count();
        }
    });
    assert_eq!(n, 0, "VecEnv<{}>: {n} allocations", probe.id());
    assert!(
        done > 0,
        "{}: no episode ended, auto-reset not exercised",
        probe.id()
    );
}

#[test]
fn classic_control_steps_without_allocating() {
    single(CartPole::default());
    single(Pendulum::default());
    single(MountainCarContinuous::default());
    single(Acrobot::default());
    vectorized(|| TimeLimit::new(CartPole::default(), 500));
    vectorized(|| TimeLimit::new(Pendulum::default(), 200));
    vectorized(|| TimeLimit::new(MountainCarContinuous::default(), 999));
    vectorized(|| TimeLimit::new(Acrobot::default(), 500));
}
