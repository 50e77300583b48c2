//! Agnostic policy learning over a finite policy class ("Agnostic
//! Reinforcement Learning: Foundations and Algorithms", Gene Li, PhD thesis,
//! TTIC 2025; paper A: Jia, Li, Rakhlin, Sekhari & Srebro, NeurIPS 2023).
//!
//! **Reconstructed** (reference note `agnostic-rl.md` Sec. 2.3; the thesis
//! body was not readable): with a generative model, ERM over trajectory trees
//! (Kearns, Mansour & Ng 1999). Each tree expands, at every node, one
//! generative query per action some still-consistent policy plays there, so
//! one tree gives every policy in the class an unbiased return sample while
//! costing at most `sum_h C_h(Pi)` queries (spanning capacity), not
//! `|Pi| H`. The baseline rolls out every policy independently.
//! `N = ceil(2 H^2 ln(2 |Pi| / delta) / eps^2)` trees make every estimate
//! `eps/2`-accurate w.p. `1 - delta` (Hoeffding + union bound, returns in
//! `[0, H]`).

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Successors of one `(s, a)`: `(next state, probability)` pairs.
pub type Successors = Vec<(usize, f64)>;

/// A layered episodic MDP: `width` states per layer, `horizon` layers,
/// two actions; each `(s, a)` moves to 3 random next-layer states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayeredMdp {
    /// States per layer.
    pub width: usize,
    /// Layers `H`.
    pub horizon: usize,
    /// `reward[h][s][a]` in `[0, 1]`.
    pub reward: Vec<Vec<[f64; 2]>>,
    /// `next[h][s][a]`: `(next state, probability)` pairs.
    pub next: Vec<Vec<[Successors; 2]>>,
}

impl LayeredMdp {
    /// A random instance; action 1 pays more only on a hidden path, so the
    /// optimal policy lies outside small classes.
    pub fn random<R: Rng + ?Sized>(width: usize, horizon: usize, rng: &mut R) -> Self {
        let mut reward = vec![];
        let mut next = vec![];
        for h in 0..horizon {
            let mut rl = vec![];
            let mut nl = vec![];
            for s in 0..width {
                rl.push([
                    rng.random_range(0.0..0.3),
                    if s % 3 == h % 3 {
                        rng.random_range(0.5..1.0)
                    } else {
                        rng.random_range(0.0..0.3)
                    },
                ]);
                let row = |rng: &mut R| {
                    let w: Vec<f64> = (0..3).map(|_| rng.random_range(0.1..1.0)).collect();
                    let z: f64 = w.iter().sum();
                    (0..3)
                        .map(|k| (rng.random_range(0..width), w[k] / z))
                        .collect::<Vec<_>>()
                };
                nl.push([row(rng), row(rng)]);
            }
            reward.push(rl);
            next.push(nl);
        }
        Self {
            width,
            horizon,
            reward,
            next,
        }
    }

    /// One generative query: reward and a sampled next state.
    pub fn query<R: Rng + ?Sized>(
        &self,
        h: usize,
        s: usize,
        a: usize,
        rng: &mut R,
    ) -> (f64, usize) {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let row = &self.next[h][s][a];
        let mut sp = row[row.len() - 1].0;
        for &(t, p) in row {
            acc += p;
            if u < acc {
                sp = t;
                break;
            }
        }
        (self.reward[h][s][a], sp)
    }
}

/// The "singletons" class: policy 0 plays action 0 everywhere; policy
/// `1 + h * width + s` plays action 1 only at state `s` of layer `h`.
/// `|Pi| = H * width + 1`, spanning capacity `O(H)`.
pub fn singleton_action(policy: usize, width: usize, h: usize, s: usize) -> usize {
    usize::from(policy == 1 + h * width + s)
}

/// Exact value of every policy of the singletons class from a uniform start
/// over layer 0 (backward induction per policy).
pub fn exact_values(mdp: &LayeredMdp) -> Vec<f64> {
    let n = mdp.horizon * mdp.width + 1;
    (0..n)
        .map(|pi| {
            let mut v = vec![0.0; mdp.width];
            for h in (0..mdp.horizon).rev() {
                v = (0..mdp.width)
                    .map(|s| {
                        let a = singleton_action(pi, mdp.width, h, s);
                        mdp.reward[h][s][a]
                            + mdp.next[h][s][a]
                                .iter()
                                .map(|(t, p)| p * v[*t])
                                .sum::<f64>()
                    })
                    .collect();
            }
            v.iter().sum::<f64>() / mdp.width as f64
        })
        .collect()
}

/// Optimal value (over all policies) from the uniform start.
pub fn optimal_value(mdp: &LayeredMdp) -> f64 {
    let mut v = vec![0.0; mdp.width];
    for h in (0..mdp.horizon).rev() {
        v = (0..mdp.width)
            .map(|s| {
                (0..2)
                    .map(|a| {
                        mdp.reward[h][s][a]
                            + mdp.next[h][s][a]
                                .iter()
                                .map(|(t, p)| p * v[*t])
                                .sum::<f64>()
                    })
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
    }
    v.iter().sum::<f64>() / mdp.width as f64
}

fn expand<R: Rng + ?Sized>(
    mdp: &LayeredMdp,
    h: usize,
    s: usize,
    active: &[usize],
    returns: &mut [f64],
    queries: &mut usize,
    rng: &mut R,
) {
    if h == mdp.horizon || active.is_empty() {
        return;
    }
    for a in 0..2 {
        let group: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&p| singleton_action(p, mdp.width, h, s) == a)
            .collect();
        if group.is_empty() {
            continue;
        }
        let (r, sp) = mdp.query(h, s, a, rng);
        *queries += 1;
        for &p in &group {
            returns[p] += r;
        }
        expand(mdp, h + 1, sp, &group, returns, queries, rng);
    }
}

/// ERM over `trees` trajectory trees: returns the chosen policy, the
/// generative queries spent, and the estimated values.
pub fn trajectory_tree_erm<R: Rng + ?Sized>(
    mdp: &LayeredMdp,
    trees: usize,
    rng: &mut R,
) -> (usize, usize, Vec<f64>) {
    let n = mdp.horizon * mdp.width + 1;
    let all: Vec<usize> = (0..n).collect();
    let mut sums = vec![0.0; n];
    let mut queries = 0;
    for _ in 0..trees {
        let s0 = rng.random_range(0..mdp.width);
        let mut returns = vec![0.0; n];
        expand(mdp, 0, s0, &all, &mut returns, &mut queries, rng);
        for (a, b) in sums.iter_mut().zip(&returns) {
            *a += b;
        }
    }
    let est: Vec<f64> = sums.iter().map(|x| x / trees.max(1) as f64).collect();
    let best = (0..n)
        .max_by(|&a, &b| est[a].total_cmp(&est[b]))
        .unwrap_or(0);
    (best, queries, est)
}

/// Naive ERM: `rounds` independent rollouts of every policy.
pub fn rollout_erm<R: Rng + ?Sized>(
    mdp: &LayeredMdp,
    rounds: usize,
    rng: &mut R,
) -> (usize, usize) {
    let n = mdp.horizon * mdp.width + 1;
    let mut sums = vec![0.0; n];
    for (pi, sum) in sums.iter_mut().enumerate() {
        for _ in 0..rounds {
            let mut s = rng.random_range(0..mdp.width);
            for h in 0..mdp.horizon {
                let (r, sp) = mdp.query(h, s, singleton_action(pi, mdp.width, h, s), rng);
                *sum += r;
                s = sp;
            }
        }
    }
    (
        (0..n)
            .max_by(|&a, &b| sums[a].total_cmp(&sums[b]))
            .unwrap_or(0),
        n * rounds * mdp.horizon,
    )
}

/// Trees sufficient for `eps`-optimality in class w.p. `1 - delta`.
pub fn trees_needed(horizon: usize, class_size: usize, eps: f64, delta: f64) -> usize {
    let h = horizon as f64;
    (2.0 * h * h * (2.0 * class_size as f64 / delta).ln() / (eps * eps)).ceil() as usize
}
