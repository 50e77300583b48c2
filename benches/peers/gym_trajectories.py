"""Record reference trajectories of Gymnasium's classic-control environments.

Kiln's `crates/kiln-envs/tests/gymnasium_trajectories.rs` replays each
episode (same start state, same actions) through `kiln_envs::rollout` and
requires observations, rewards and termination flags to match to 1e-5 per
step and 1e-4 over the whole episode.

Usage (from the repository root; Gymnasium is a peer, never a test dependency):

    python3 -m venv /tmp/gym && /tmp/gym/bin/pip install gymnasium numpy
    /tmp/gym/bin/python benches/peers/gym_trajectories.py

Writes `crates/kiln-envs/tests/data/gym_<id>.json`. The episodes cover the
edge cases named in the issue: termination thresholds (CartPole), the left
wall and the goal of MountainCarContinuous, out-of-range continuous actions
(clipped by Pendulum and MountainCarContinuous), Acrobot's angle wrapping and
termination. Each episode runs on `env.unwrapped` (no TimeLimit) for at most
300 steps or until termination.
"""

import json
import math
import os

import gymnasium as gym
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "kiln-envs", "tests", "data")
MAX_STEPS = 300


def state_of(env):
    return [float(x) for x in np.asarray(env.unwrapped.state, dtype=np.float64)]


def run_episode(env_id, seed, policy, rng, start_state=None):
    env = gym.make(env_id).unwrapped
    obs, _ = env.reset(seed=seed)
    if start_state is not None:
        # same dtype as `reset` produces (float32 for Acrobot, float64 otherwise)
        env.unwrapped.state = np.array(start_state, dtype=env.unwrapped.state.dtype)
        obs = np.zeros(env.observation_space.shape, dtype=np.float32)
    start = state_of(env)
    actions, observations, rewards, terminated, states = [], [], [], [], []
    for t in range(MAX_STEPS):
        a = policy(obs, t, rng)
        obs, r, term, trunc, _ = env.step(a)
        actions.append(int(a) if np.isscalar(a) else [float(x) for x in a])
        observations.append([float(x) for x in obs])
        rewards.append(float(r))
        terminated.append(bool(term))
        states.append(state_of(env))
        if term:
            break
    return {
        "seed": seed,
        "start_state": start,
        "actions": actions,
        "obs": observations,
        "rewards": rewards,
        "terminated": terminated,
        "states": states,
    }


def f32(x):
    return np.array([x], dtype=np.float32)


def cartpole_policies():
    def random(obs, t, rng):
        return int(rng.integers(2))

    def balance(obs, t, rng):
        # lean-following controller with 10% random pushes: long episodes
        if rng.random() < 0.1:
            return int(rng.integers(2))
        return int(obs[2] + 0.5 * obs[3] > 0)

    def drift_right(obs, t, rng):
        # keeps the pole up while drifting until |x| > 2.4 terminates
        return int(obs[2] + 0.3 * obs[3] + 0.02 * (obs[0] - 3.0) + 0.05 * obs[1] > 0)

    return [("random", random), ("balance", balance), ("drift_right", drift_right)]


def pendulum_policies():
    def random_out_of_range(obs, t, rng):
        return f32(rng.uniform(-3.0, 3.0))

    def energy_pump(obs, t, rng):
        cos_t, sin_t, thdot = obs
        return f32(np.clip(2.5 * np.sign(thdot) if cos_t < 0.9 else -(3 * sin_t + thdot), -2.5, 2.5))

    return [("random_out_of_range", random_out_of_range), ("energy_pump", energy_pump)]


def mountain_car_policies():
    def random_out_of_range(obs, t, rng):
        return f32(rng.uniform(-1.5, 1.5))

    def left_wall_then_goal(obs, t, rng):
        # pump energy (hard left, gentle right) until the car hits the left wall, then to the goal
        if t < 200:
            return f32(-1.3 if obs[1] < 0 else 0.5)
        return f32(1.2 if obs[1] >= 0 else -1.0)

    def small_actions(obs, t, rng):
        return f32(rng.uniform(-0.3, 0.3))

    return [("random_out_of_range", random_out_of_range), ("left_wall_then_goal", left_wall_then_goal), ("small_actions", small_actions)]


def acrobot_policies():
    def random(obs, t, rng):
        return int(rng.integers(3))

    def energy_pump(obs, t, rng):
        # torque along the second joint's velocity: swings up and terminates
        return 2 if obs[5] > 0 else 0

    def energy_pump_fast(obs, t, rng):
        # torque along the summed velocities: reaches the 4 pi velocity bound before terminating
        return 2 if obs[4] + obs[5] > 0 else 0

    return [("random", random), ("energy_pump", energy_pump), ("energy_pump_fast", energy_pump_fast)]


# Start states at the edges: CartPole just inside the x and theta thresholds,
# Pendulum at the speed limit, MountainCarContinuous rolling into the left wall,
# Acrobot near the velocity bounds and angle wrap-around.
EDGE_STARTS = {
    "CartPole-v1": [[2.39, 0.6, 0.0, 0.0], [0.0, 0.0, 0.2, 0.3], [-2.399, -0.1, -0.2094, -0.01]],
    "Pendulum-v1": [[3.1, 7.99], [-3.14159, -8.0]],
    "MountainCarContinuous-v0": [[-1.19, -0.07], [0.44, 0.069]],
    "Acrobot-v1": [[0.0, 3.1, 12.5, 28.0], [0.1, -3.14, -12.56, -28.2]],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    table = [
        ("CartPole-v1", cartpole_policies()),
        ("Pendulum-v1", pendulum_policies()),
        ("MountainCarContinuous-v0", mountain_car_policies()),
        ("Acrobot-v1", acrobot_policies()),
    ]
    for env_id, policies in table:
        episodes = []
        for k, (name, policy) in enumerate(policies):
            for seed in (k * 10 + 1, k * 10 + 2):
                rng = np.random.default_rng(seed)
                ep = run_episode(env_id, seed, policy, rng)
                ep["policy"] = name
                episodes.append(ep)
        for k, start in enumerate(EDGE_STARTS[env_id]):
            rng = np.random.default_rng(100 + k)
            name, policy = policies[0]
            ep = run_episode(env_id, 100 + k, policy, rng, start_state=start)
            ep["policy"] = name + "_edge_start"
            episodes.append(ep)
        data = {
            "env_id": env_id,
            "gymnasium_version": gym.__version__,
            "numpy_version": np.__version__,
            "max_steps": MAX_STEPS,
            "episodes": episodes,
        }
        path = os.path.join(OUT, f"gym_{env_id}.json")
        with open(path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        lengths = [len(e["actions"]) for e in episodes]
        terms = [e["terminated"][-1] if e["terminated"] else False for e in episodes]
        print(f"{env_id}: {len(episodes)} episodes, lengths {lengths}, terminated {terms}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
