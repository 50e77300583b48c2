"""NumPy peer of `benches/benches/robust.rs`: one (s,a)-rectangular robust
Bellman sweep on a Garnet(500, 10, branching 50) MDP for the L1, L-infinity
(closed forms, vectorised over all (s, a) rows) and KL (dual, bisection on
log beta vectorised over rows) balls of radius 0.1. Prints sweeps/s as JSON.

Run: python3 benches/peers/robust_vi_numpy.py
"""
import json
import time

import numpy as np

S, A, B, GAMMA, R = 500, 10, 50, 0.95, 0.1


def garnet(seed=0):
    rng = np.random.default_rng(seed)
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            nxt = rng.choice(S, B, replace=False)
            cuts = np.sort(rng.random(B - 1))
            P[s, a, nxt] = np.diff(np.concatenate([[0.0], cuts, [1.0]]))
    return P, rng.random((S, A))


def l1_sweep(P, Rw, v):
    order = np.argsort(-v)  # descending
    smin = order[-1]
    rows = P.reshape(-1, S)
    delta = np.minimum(R / 2, 1 - rows[:, smin])
    ps = rows[:, order[:-1]]  # highest values first, argmin excluded
    before = np.cumsum(ps, axis=1) - ps
    take = np.clip(delta[:, None] - before, 0, ps)
    val = rows @ v + delta * v[smin] - take @ v[order[:-1]]
    q = Rw.reshape(-1) + GAMMA * val
    return q.reshape(S, A).max(axis=1)


def linf_sweep(P, Rw, v):
    rows = P.reshape(-1, S)
    lo = np.maximum(rows - R, 0)
    hi = np.minimum(rows + R, 1)
    budget = 1 - lo.sum(axis=1)
    order = np.argsort(v)  # ascending
    room = (hi - lo)[:, order]
    before = np.cumsum(room, axis=1) - room
    add = np.clip(budget[:, None] - before, 0, room)
    val = lo @ v + add @ v[order]
    return (Rw.reshape(-1) + GAMMA * val).reshape(S, A).max(axis=1)


def kl_sweep(P, Rw, v):
    rows = P.reshape(-1, S)
    sup = rows > 0
    vmin = np.where(sup, v[None, :], np.inf).min(axis=1)
    vmax = np.where(sup, v[None, :], -np.inf).max(axis=1)
    spread = np.maximum(vmax - vmin, 1e-300)
    lo = np.log(spread) - 40
    hi = np.log(spread) + 40
    x = np.where(sup, v[None, :] - vmin[:, None], 0.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        beta = np.exp(mid)[:, None]
        w = rows * np.exp(-x / beta)
        z = w.sum(axis=1, keepdims=True)
        q = w / z
        kl = (q * (-x / beta - np.log(z))).sum(axis=1)
        lo = np.where(kl > R, mid, lo)
        hi = np.where(kl > R, hi, mid)
    beta = np.exp(hi)[:, None]
    w = rows * np.exp(-x / beta)
    q = w / w.sum(axis=1, keepdims=True)
    val = q @ v
    return (Rw.reshape(-1) + GAMMA * val).reshape(S, A).max(axis=1)


def main():
    P, Rw = garnet()
    v = np.zeros(S)
    for _ in range(20):
        v = (Rw + GAMMA * P @ v).max(axis=1)
    out = {}
    for name, f in [("sa-l1", l1_sweep), ("sa-linf", linf_sweep), ("sa-kl", kl_sweep)]:
        f(P, Rw, v)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            f(P, Rw, v)
            n += 1
        out[name] = n / (time.perf_counter() - t0)
    print(json.dumps({"numpy": np.__version__, "sweeps_per_s": out}))


if __name__ == "__main__":
    main()
