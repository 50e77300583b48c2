"""Peer throughput for Kiln's environment benchmark (`benches/benches/envs.rs`).

Measures steps per second of the classic-control environments in
Gymnasium (single `gym.make` env with its default wrappers, and the
NumPy-vectorized `CartPoleVectorEnv`), EnvPool, and gymnax under
`jax.jit` + `jax.vmap` (a `lax.scan` over steps, auto-reset inside
gymnax's `step`). Every loop auto-resets finished episodes and uses
pre-sampled actions, like the Rust benchmark.

Install (a peer, never a test dependency):

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install gymnasium envpool gymnax jax six
    /tmp/peers/bin/python benches/peers/envs_peers.py [--quick]

Prints a table and writes `benches/peers/envs_peers.json`.
"""

import argparse
import json
import os
import platform
import time

import numpy as np

IDS = ["CartPole-v1", "Pendulum-v1", "MountainCarContinuous-v0", "Acrobot-v1"]
NS = [1, 16, 256]


def best_of(fn, repeats=3):
    """Best steps/s over `repeats` runs (the least disturbed by other processes)."""
    return max(fn() for _ in range(repeats))


def gymnasium_single(env_id, steps):
    import gymnasium as gym

    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [env.action_space.sample() for _ in range(1000)]
    del rng

    def run():
        env.reset(seed=0)
        t0 = time.perf_counter()
        for i in range(steps):
            _, _, term, trunc, _ = env.step(actions[i % 1000])
            if term or trunc:
                env.reset()
        return steps / (time.perf_counter() - t0)

    return best_of(run)


def gymnasium_numpy_vector_cartpole(n, steps):
    import gymnasium as gym

    env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(64)]

    def run():
        t0 = time.perf_counter()
        for i in range(steps):
            env.step(actions[i % 64])
        return steps * n / (time.perf_counter() - t0)

    return best_of(run)


def envpool_vector(env_id, n, steps):
    import envpool

    env = envpool.make_gymnasium(env_id, num_envs=n, seed=0)
    env.reset()
    space = env.action_space
    rng = np.random.default_rng(0)
    if hasattr(space, "n"):
        actions = [rng.integers(space.n, size=n) for _ in range(64)]
    else:
        actions = [rng.uniform(space.low, space.high, size=(n,) + space.shape).astype(np.float32) for _ in range(64)]

    def run():
        t0 = time.perf_counter()
        for i in range(steps):
            env.step(actions[i % 64])
        return steps * n / (time.perf_counter() - t0)

    return best_of(run)


def gymnax_vector(env_id, n, steps):
    import jax
    import gymnax

    env, params = gymnax.make(env_id)
    key = jax.random.PRNGKey(0)
    keys = jax.random.split(key, n)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    vsample = jax.vmap(env.action_space(params).sample)

    @jax.jit
    def rollout(key, state):
        def body(carry, _):
            key, state = carry
            key, k_act, k_step = jax.random.split(key, 3)
            actions = vsample(jax.random.split(k_act, n))
            _, state, reward, _, _, _ = vstep(jax.random.split(k_step, n), state, actions, params)
            return (key, state), reward.sum()

        (key, state), rew = jax.lax.scan(body, (key, state), None, length=steps)
        return state, rew.sum()

    jax.block_until_ready(rollout(key, state))  # compile

    def run():
        t0 = time.perf_counter()
        jax.block_until_ready(rollout(key, state))
        return steps * n / (time.perf_counter() - t0)

    return best_of(run)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke test)")
    args = ap.parse_args()
    scale = 0.1 if args.quick else 1.0
    results = {"machine": platform.processor() or platform.machine(), "load_before": os.getloadavg(), "results": []}

    def record(lib, env_id, mode, n, sps):
        results["results"].append({"library": lib, "env": env_id, "mode": mode, "n": n, "steps_per_s": sps})
        print(f"{lib:<10} {env_id:<26} {mode:<14} N={n:<4} {sps:>14,.0f} steps/s", flush=True)

    single_steps = {"CartPole-v1": 100_000, "Pendulum-v1": 50_000, "MountainCarContinuous-v0": 100_000, "Acrobot-v1": 20_000}
    for env_id in IDS:
        record("gymnasium", env_id, "single", 1, gymnasium_single(env_id, int(single_steps[env_id] * scale)))
    for n in NS:
        record("gymnasium", "CartPole-v1", "numpy-vector", n, gymnasium_numpy_vector_cartpole(n, int(max(2000, 200_000 // n) * scale)))
    for env_id in IDS:
        for n in NS:
            try:
                record("envpool", env_id, "vector", n, envpool_vector(env_id, n, int(max(2000, 200_000 // n) * scale)))
            except Exception as e:  # an id EnvPool lacks
                print(f"envpool {env_id} N={n}: {e}")
    for env_id in IDS:
        for n in NS:
            record("gymnax", env_id, "jit+vmap", n, gymnax_vector(env_id, n, int(max(1000, 1_000_000 // n) * scale)))

    import gymnasium, envpool, jax

    results["versions"] = {"gymnasium": gymnasium.__version__, "envpool": envpool.__version__, "jax": jax.__version__, "numpy": np.__version__}
    results["load_after"] = os.getloadavg()
    out = os.path.join(os.path.dirname(__file__), "envs_peers.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {out}; load before {results['load_before']}, after {results['load_after']}")


if __name__ == "__main__":
    main()
