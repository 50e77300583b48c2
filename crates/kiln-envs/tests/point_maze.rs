//! PointMaze2D: walls, goal, and the bimodal expert.

use kiln_envs::point_maze::{Detour, PointMaze2D, PointMazeExpert, PointMazeParams};
use kiln_envs::{Action, Env};
use rand::SeedableRng;

fn run_expert(env: &mut PointMaze2D, expert: &mut PointMazeExpert, seed: u64) -> (bool, f64) {
    let mut rng = kiln_envs::EnvRng::seed_from_u64(seed);
    let (mut obs, _) = env.reset(Some(seed)).expect("reset");
    let mut min_x: f64 = 0.0;
    let mut max_x: f64 = 0.0;
    for _ in 0..100 {
        let a = expert.act(&obs, 0.1, &mut rng);
        let s = env.step(&Action::Continuous(a.to_vec())).expect("step");
        obs = s.obs;
        min_x = min_x.min(obs[0]);
        max_x = max_x.max(obs[0]);
        if s.terminated {
            return (true, if max_x > -min_x { max_x } else { min_x });
        }
    }
    (false, 0.0)
}

#[test]
fn expert_reaches_goal_by_both_modes() {
    let mut env = PointMaze2D::new(PointMazeParams::default()).expect("valid");
    let layout = env.layout().clone();
    for detour in [Detour::Left, Detour::Right] {
        let mut ex = PointMazeExpert::new(&layout, detour);
        let (ok, side) = run_expert(&mut env, &mut ex, 3);
        assert!(ok, "{detour:?} reaches the goal");
        assert_eq!(
            side < 0.0,
            detour == Detour::Left,
            "{detour:?} passes on its side ({side})"
        );
        assert!(side.abs() > 0.3, "passes beside the block");
    }
    // random mode choice is balanced
    let mut ex = PointMazeExpert::new(&layout, Detour::Left);
    let mut rng = kiln_envs::EnvRng::seed_from_u64(0);
    let lefts = (0..1000)
        .filter(|_| {
            ex.reset(&layout, &mut rng);
            ex.detour == Detour::Left
        })
        .count();
    assert!((400..600).contains(&lefts), "{lefts}");
}

#[test]
fn averaged_unimodal_policy_gets_stuck_on_the_block() {
    // the mean of the two modes' first actions points straight up
    let mut env = PointMaze2D::new(PointMazeParams {
        start_noise: 0.0,
        ..Default::default()
    })
    .expect("valid");
    let layout = env.layout().clone();
    let mut rng = kiln_envs::EnvRng::seed_from_u64(0);
    let (mut obs, _) = env.reset(Some(0)).expect("reset");
    for _ in 0..100 {
        let l = PointMazeExpert::new(&layout, Detour::Left).act(&obs, 0.1, &mut rng);
        let r = PointMazeExpert::new(&layout, Detour::Right).act(&obs, 0.1, &mut rng);
        let mean = vec![(l[0] + r[0]) / 2.0, (l[1] + r[1]) / 2.0];
        let s = env.step(&Action::Continuous(mean)).expect("step");
        obs = s.obs;
        assert!(!s.terminated, "the averaged policy must not reach the goal");
    }
    assert!(
        obs[1] < -0.19 && obs[0].abs() < 0.3,
        "stuck under the block at {obs:?}"
    );
}

#[test]
fn walls_block_and_rewards_follow_variant() {
    let mut env = PointMaze2D::new(PointMazeParams {
        start_noise: 0.0,
        ..Default::default()
    })
    .expect("valid");
    env.reset(Some(0)).expect("reset");
    env.set_state(&[0.0, -0.25]).expect("free");
    let s = env.step(&Action::Continuous(vec![0.0, 1.0])).expect("step");
    assert_eq!(s.obs, vec![0.0, -0.25], "cannot enter the block");
    assert!(env.set_state(&[0.0, 0.0]).is_err(), "inside the block");
    let mut dense = PointMaze2D::new(PointMazeParams {
        dense: true,
        start_noise: 0.0,
        ..Default::default()
    })
    .expect("valid");
    dense.reset(Some(0)).expect("reset");
    dense.set_state(&[0.0, 0.65]).expect("state");
    let s = dense
        .step(&Action::Continuous(vec![0.0, 1.0]))
        .expect("step");
    assert!(
        (s.reward - (1.0 - 0.05)).abs() < 1e-9,
        "goal bonus minus distance: {}",
        s.reward
    );
    assert!(s.terminated);
}
