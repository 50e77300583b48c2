"""Stable-Baselines3, a jit-compiled JAX PPO (gymnax CartPole, PureJaxRL style) and Kiln,
timed on the same machine in one run with the same hyperparameters (rl-baselines3-zoo).

Usage (peers are never test dependencies):

    python3 -m venv /tmp/venv-sb3
    /tmp/venv-sb3/bin/pip install stable-baselines3 gymnasium jax optax gymnax
    cargo build --release -p kiln-cli
    /tmp/venv-sb3/bin/python benches/peers/sb3_peers.py [--only ppo,sac,td3,dqn,sb3,kiln,jax]
        [--seeds 1,2,3] [--out benches/peers/sb3_peers.json]

Every learner gets 2 threads (torch.set_num_threads(2); Kiln's backend uses both cores).
Wall time is training only; the final return is the mean of 20 deterministic evaluation
episodes (SB3 `evaluate_policy`; Kiln `kiln train`'s summary, 20 episodes too).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (algo, env, steps): the comparison grid.
TASKS = [
    ("ppo", "CartPole-v1", 100_000),
    ("sac", "Pendulum-v1", 15_000),
    ("td3", "Pendulum-v1", 20_000),
    ("dqn", "CartPole-v1", 50_000),
]


def sb3_run(algo, env_id, steps, seed):
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DQN, PPO, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(2)
    if algo == "ppo":
        # rl-baselines3-zoo hyperparams/ppo.yml CartPole-v1
        env = make_vec_env(env_id, n_envs=8, seed=seed)
        model = PPO(
            "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
            n_epochs=20, ent_coef=0.0, learning_rate=lambda f: f * 1e-3,
            clip_range=lambda f: f * 0.2, seed=seed, device="cpu", verbose=0,
        )
    elif algo == "sac":
        # hyperparams/sac.yml Pendulum-v1
        env = gym.make(env_id)
        model = SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, device="cpu", verbose=0)
    elif algo == "td3":
        # hyperparams/td3.yml Pendulum-v1
        env = gym.make(env_id)
        n = env.action_space.shape[0]
        model = TD3(
            "MlpPolicy", env, gamma=0.98, buffer_size=200_000, learning_starts=10_000,
            action_noise=NormalActionNoise(np.zeros(n), 0.1 * np.ones(n)),
            gradient_steps=1, train_freq=1, learning_rate=1e-3,
            policy_kwargs=dict(net_arch=[400, 300]), seed=seed, device="cpu", verbose=0,
        )
    elif algo == "dqn":
        # hyperparams/dqn.yml CartPole-v1
        env = gym.make(env_id)
        model = DQN(
            "MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
            learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
            gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
            policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu", verbose=0,
        )
    else:
        raise ValueError(algo)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    eval_env = gym.make(env_id)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    return {"wall_s": wall, "eval_mean": float(mean), "eval_std": float(std)}


def kiln_run(algo, env_id, steps, seed):
    exe = ROOT / "target" / "release" / "kiln"
    if not exe.exists():
        sys.exit(f"{exe} not found: run `cargo build --release -p kiln-cli` first")
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(exe), "--quiet", "--out", out, "train", "--algo", algo, "--env", env_id,
               "--steps", str(steps), "--seed", str(seed)]
        subprocess.run(cmd, check=True)
        runs = [p for p in Path(out, "runs").iterdir() if p.is_dir()] if Path(out, "runs").exists() \
            else [p for p in Path(out).iterdir() if p.is_dir()]
        run = runs[0]
        summary = json.loads((run / "summary.json").read_text())
        # Training time: the wall clock of the last metrics row (evaluation comes after it).
        last = None
        with open(run / "metrics.jsonl") as f:
            for line in f:
                last = json.loads(line)
        fin = summary["final"]
        return {"wall_s": last["wall_time_s"], "eval_mean": fin["eval_return_mean"],
                "eval_std": fin["eval_return_std"]}


def jax_ppo_cartpole(seed, steps=100_000):
    """PPO on gymnax CartPole-v1, PureJaxRL style (the whole run is one jitted function),
    with the zoo settings above: 8 envs x 32 steps, one minibatch of 256, 20 epochs,
    gamma 0.98, lambda 0.8, lr 1e-3 and clip 0.2 annealed linearly, no entropy bonus."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2")
    import gymnax
    import jax
    import jax.numpy as jnp
    import optax

    n_envs, n_steps, epochs, gamma, lam = 8, 32, 20, 0.98, 0.8
    n_updates = steps // (n_envs * n_steps)
    env, params = gymnax.make("CartPole-v1")

    def init_layer(key, i, o, scale):
        w = jax.nn.initializers.orthogonal(scale)(key, (i, o))
        return {"w": w, "b": jnp.zeros(o)}

    def init(key):
        ks = jax.random.split(key, 6)
        s2 = jnp.sqrt(2.0)
        return {
            "a": [init_layer(ks[0], 4, 64, s2), init_layer(ks[1], 64, 64, s2), init_layer(ks[2], 64, 2, 0.01)],
            "v": [init_layer(ks[3], 4, 64, s2), init_layer(ks[4], 64, 64, s2), init_layer(ks[5], 64, 1, 1.0)],
        }

    def mlp(layers, x):
        for l in layers[:-1]:
            x = jnp.tanh(x @ l["w"] + l["b"])
        return x @ layers[-1]["w"] + layers[-1]["b"]

    def apply(p, obs):
        return mlp(p["a"], obs), mlp(p["v"], obs)[..., 0]

    tx = optax.chain(optax.clip_by_global_norm(0.5),
                     optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, eps=1e-5))

    def train(key):
        key, k = jax.random.split(key)
        p = init(k)
        opt = tx.init(p)
        key, k = jax.random.split(key)
        obs, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k, n_envs), params)

        def update(carry, i):
            p, opt, obs, st, key = carry
            f = 1.0 - i / n_updates

            def step(c, _):
                obs, st, key = c
                key, ka, ks = jax.random.split(key, 3)
                logits, v = apply(p, obs)
                a = jax.random.categorical(ka, logits)
                logp = jax.nn.log_softmax(logits)[jnp.arange(n_envs), a]
                # gymnax's step returns (obs, state, reward, done, ...) with extras by version.
                obs2, st2, r, d = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(ks, n_envs), st, a, params)[:4]
                return (obs2, st2, key), (obs, a, logp, v, r, d)

            (obs, st, key), (o, a, lp, v, r, d) = jax.lax.scan(step, (obs, st, key), None, n_steps)
            _, last_v = apply(p, obs)

            def gae(c, x):
                adv, nv = c
                r_t, d_t, v_t = x
                delta = r_t + gamma * nv * (1 - d_t) - v_t
                adv = delta + gamma * lam * (1 - d_t) * adv
                return (adv, v_t), adv

            _, adv = jax.lax.scan(gae, (jnp.zeros(n_envs), last_v), (r, d, v), reverse=True)
            ret = adv + v
            B = n_envs * n_steps
            flat = lambda x: x.reshape((B,) + x.shape[2:])
            o, a, lp, adv, ret = map(flat, (o, a, lp, adv, ret))
            clip = 0.2 * f

            def loss_fn(p):
                logits, v = apply(p, o)
                nlp = jax.nn.log_softmax(logits)[jnp.arange(B), a]
                ratio = jnp.exp(nlp - lp)
                an = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg = -jnp.minimum(ratio * an, jnp.clip(ratio, 1 - clip, 1 + clip) * an).mean()
                return pg + 0.5 * ((v - ret) ** 2).mean()

            def epoch(c, _):
                p, opt = c
                g = jax.grad(loss_fn)(p)
                opt[1].hyperparams["learning_rate"] = 1e-3 * f
                u, opt = tx.update(g, opt, p)
                return (optax.apply_updates(p, u), opt), None

            (p, opt), _ = jax.lax.scan(epoch, (p, opt), None, epochs)
            return (p, opt, obs, st, key), None

        (p, *_), _ = jax.lax.scan(update, (p, opt, obs, st, key), jnp.arange(n_updates))
        return p

    f = jax.jit(train)
    t0 = time.perf_counter()
    compiled = f.lower(jax.random.PRNGKey(seed)).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = jax.block_until_ready(compiled(jax.random.PRNGKey(seed)))
    wall = time.perf_counter() - t0

    # 20 deterministic evaluation episodes (gymnax CartPole has the 500-step limit).
    def episode(key):
        key, k = jax.random.split(key)
        obs, st = env.reset(k, params)

        def body(c):
            obs, st, key, total, done, t = c
            logits, _ = apply(p, obs)
            key, k = jax.random.split(key)
            obs, st, r, d = env.step(k, st, jnp.argmax(logits), params)[:4]
            return obs, st, key, total + r * (1 - done), jnp.maximum(done, d), t + 1

        out = jax.lax.while_loop(lambda c: (c[4] == 0) & (c[5] < 500), body,
                                 (obs, st, key, 0.0, 0.0, 0))
        return out[3]

    rets = jax.vmap(episode)(jax.random.split(jax.random.PRNGKey(10_000 + seed), 20))
    return {"wall_s": wall, "compile_s": compile_s, "eval_mean": float(rets.mean()),
            "eval_std": float(rets.std())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="ppo,sac,td3,dqn,sb3,kiln,jax",
                    help="algorithms (ppo,sac,td3,dqn) and runners (sb3,kiln,jax) to include")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--out", default=str(ROOT / "benches" / "peers" / "sb3_peers.json"))
    args = ap.parse_args()
    only = set(args.only.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for algo, env_id, steps in TASKS:
        for who in ("sb3", "kiln"):
            if algo not in only or who not in only:
                continue
            for seed in seeds:
                r = (sb3_run if who == "sb3" else kiln_run)(algo, env_id, steps, seed)
                r.update({"who": who, "algo": algo, "env": env_id, "steps": steps, "seed": seed})
                print(json.dumps(r), flush=True)
                results.append(r)
    if "jax" in only:
        for seed in seeds:
            r = jax_ppo_cartpole(seed)
            r.update({"who": "jax", "algo": "ppo", "env": "CartPole-v1", "steps": 100_000, "seed": seed})
            print(json.dumps(r), flush=True)
            results.append(r)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
