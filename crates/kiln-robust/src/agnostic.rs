//! Agnostic policy learning over a finite policy class ("Agnostic
//! Reinforcement Learning: Foundations and Algorithms", Gene Li, PhD thesis,
//! TTIC 2025, arXiv 2506.01884; paper A: Jia, Li, Rakhlin, Sekhari & Srebro,
//! NeurIPS 2023, arXiv 2310.06113; paper B: Krishnamurthy, Li & Sekhari,
//! COLT 2025, arXiv 2504.05405).
//!
//! **What is verified and what is reconstructed.** Only the abstracts of the
//! thesis and of papers A and B could be read. Verified: with a generative
//! model the spanning capacity `C(Pi)` characterises agnostic PAC
//! learnability (paper A); with `mu`-resets PSDP (Bagnell et al. 2003) and
//! CPI are the algorithms paper B studies, and it proves they can fail
//! without policy completeness. The algorithms below are the classical ones
//! those results are about, implemented from their original papers; their
//! sample counts are derived here by Hoeffding + union bounds, **not** the
//! thesis's constants (unverified).
//!
//! - Generative access: ERM over trajectory trees (Kearns, Mansour & Ng
//!   1999). Each tree expands, at every node, one generative query per action
//!   some still-consistent policy plays there, so one tree gives every policy
//!   in the class an unbiased return sample while costing at most
//!   `sum_h C_h(Pi)` queries (spanning capacity), not `|Pi| H`. The baseline
//!   rolls out every policy independently.
//!   `N = ceil(2 H^2 ln(2 |Pi| / delta) / eps^2)` trees make every estimate
//!   `eps/2`-accurate w.p. `1 - delta` (returns in `[0, H]`).
//! - `mu`-reset access: PSDP over a product class `Pi_1 x ... x Pi_H`
//!   ([`psdp_exact`], [`psdp_sampled`], sample count [`psdp_samples_needed`]),
//!   checked against [`brute_force_best`] (exact evaluation of every
//!   non-stationary policy of the class).

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

// ---------------------------------------------------------------------------
// Policy Search by Dynamic Programming (mu-reset access).
// ---------------------------------------------------------------------------

/// A non-stationary deterministic policy on a [`LayeredMdp`]: `actions[h][s]`.
pub type LayeredPolicy = Vec<Vec<usize>>;

impl LayeredMdp {
    /// `Q_h(s, a) = r_h(s, a) + E[v_next(s')]` for every state of layer `h`.
    fn q_layer(&self, h: usize, v_next: &[f64]) -> Vec<[f64; 2]> {
        (0..self.width)
            .map(|s| {
                let q = |a: usize| {
                    self.reward[h][s][a]
                        + self.next[h][s][a]
                            .iter()
                            .map(|(t, p)| p * v_next.get(*t).copied().unwrap_or(0.0))
                            .sum::<f64>()
                };
                [q(0), q(1)]
            })
            .collect()
    }

    /// Exact value of a non-stationary policy from the uniform start over
    /// layer 0 (backward induction).
    pub fn evaluate(&self, policy: &[Vec<usize>]) -> f64 {
        let mut v = vec![0.0; self.width];
        for h in (0..self.horizon).rev() {
            let q = self.q_layer(h, &v);
            v = (0..self.width).map(|s| q[s][policy[h][s].min(1)]).collect();
        }
        v.iter().sum::<f64>() / self.width as f64
    }

    /// The state distribution `d_h^pi` of `policy` at every layer (layer 0:
    /// uniform).
    pub fn state_distributions(&self, policy: &[Vec<usize>]) -> Vec<Vec<f64>> {
        let mut d = vec![vec![1.0 / self.width as f64; self.width]];
        for h in 0..self.horizon.saturating_sub(1) {
            let mut next = vec![0.0; self.width];
            for s in 0..self.width {
                for &(t, p) in &self.next[h][s][policy[h][s].min(1)] {
                    next[t] += d[h][s] * p;
                }
            }
            d.push(next);
        }
        d
    }
}

/// The policy class of one layer of a product class `Pi = Pi_1 x ... x Pi_H`
/// (PSDP searches non-stationary policies layer by layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LayerClass {
    /// Every deterministic map from layer states to actions (`2^width`
    /// members): the complete class, for which PSDP is backward induction.
    Complete,
    /// An explicit finite list of maps `state -> action`.
    Finite(Vec<Vec<usize>>),
}

impl LayerClass {
    /// Threshold class on a per-state feature: for every threshold `theta`,
    /// the maps `s -> 1[x(s) >= theta]` and `s -> 1[x(s) < theta]`
    /// (`theta = 0` gives the constant policies).
    pub fn thresholds(features: &[f64], thetas: &[f64]) -> Self {
        let mut members = vec![];
        for &theta in thetas {
            members.push(features.iter().map(|&x| usize::from(x >= theta)).collect());
            members.push(features.iter().map(|&x| usize::from(x < theta)).collect());
        }
        Self::Finite(members)
    }

    /// `ln |Pi_h|` for a layer of `width` states.
    pub fn ln_size(&self, width: usize) -> f64 {
        match self {
            Self::Complete => width as f64 * std::f64::consts::LN_2,
            Self::Finite(m) => (m.len().max(1) as f64).ln(),
        }
    }

    /// `argmax_{pi in class} sum_s score[s][pi(s)]` (ties: the first member,
    /// or action 0 for the complete class).
    pub fn argmax(&self, score: &[[f64; 2]]) -> Vec<usize> {
        match self {
            Self::Complete => score.iter().map(|q| usize::from(q[1] > q[0])).collect(),
            Self::Finite(members) => {
                let total = |m: &Vec<usize>| -> f64 {
                    m.iter().zip(score).map(|(&a, q)| q[a.min(1)]).sum()
                };
                let mut best = 0;
                let mut best_score = f64::NEG_INFINITY;
                for (i, m) in members.iter().enumerate() {
                    let t = total(m);
                    if t > best_score {
                        best = i;
                        best_score = t;
                    }
                }
                members
                    .get(best)
                    .cloned()
                    .unwrap_or_else(|| vec![0; score.len()])
            }
        }
    }
}

/// PSDP (Bagnell, Kakade, Ng & Schneider 2003, Sec. 3) with exact
/// evaluation: for `h = H-1, ..., 0`,
/// `pi_h = argmax_{pi in Pi_h} E_{s ~ mu_h}[Q_h^{pi_{h+1:H}}(s, pi(s))]`,
/// the tail `pi_{h+1:H}` being the policies already chosen.
///
/// Why it finds the best of the class: by the performance-difference lemma,
/// for every `pi_ref` of the product class
/// `V(pi_ref) - V(pi) = sum_h E_{s ~ d_h^{pi_ref}}[Q_h^{pi}(s, pi_ref_h(s)) - Q_h^{pi}(s, pi_h(s))]`
/// with `Q_h^{pi}` the value of acting at layer `h` and following the
/// learned tail, exactly what layer `h` maximises under `mu_h`. So with
/// `mu_h = d_h^{pi_ref}` every term is `<= 0`, and with `pi_ref` the best
/// member of the class PSDP returns a best non-stationary policy of the
/// class; otherwise the loss is governed by the mismatch of `mu_h` and
/// `d_h^{pi_ref}` (Bagnell et al. 2003, Thm. 1: `V(pi) >= V(pi_ref) - T eps -
/// T d_var(mu, mu_{pi_ref})`). With the complete class and `mu_h > 0`
/// everywhere PSDP is backward induction and returns an optimal policy.
pub fn psdp_exact(mdp: &LayeredMdp, classes: &[LayerClass], mu: &[Vec<f64>]) -> LayeredPolicy {
    let mut policy = vec![vec![0; mdp.width]; mdp.horizon];
    let mut v = vec![0.0; mdp.width];
    for h in (0..mdp.horizon).rev() {
        let q = mdp.q_layer(h, &v);
        let score: Vec<[f64; 2]> = q
            .iter()
            .zip(&mu[h])
            .map(|(q, &m)| [m * q[0], m * q[1]])
            .collect();
        policy[h] = classes[h].argmax(&score);
        v = (0..mdp.width).map(|s| q[s][policy[h][s].min(1)]).collect();
    }
    policy
}

fn sample_from<R: Rng + ?Sized>(dist: &[f64], rng: &mut R) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, &p) in dist.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    dist.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

/// PSDP from samples (mu-reset access): at layer `h`, draw `samples[h]`
/// states `s ~ mu_h`; from each, for both actions, query `(s, a)` and roll
/// the already-learned `pi_{h+1:H}` to the end; the return `G(s, a)` is an
/// unbiased sample of `Q_h^{pi_{h+1:H}}(s, a)`, and every member of `Pi_h` is
/// scored on the same samples, `(1/m) sum_i G(s_i, pi(s_i))`. Returns the
/// policy and the generative queries spent (`2 (H - h)` per sampled state).
pub fn psdp_sampled<R: Rng + ?Sized>(
    mdp: &LayeredMdp,
    classes: &[LayerClass],
    mu: &[Vec<f64>],
    samples: &[usize],
    rng: &mut R,
) -> (LayeredPolicy, usize) {
    let mut policy = vec![vec![0; mdp.width]; mdp.horizon];
    let mut queries = 0;
    for h in (0..mdp.horizon).rev() {
        let m = samples[h].max(1);
        let mut score = vec![[0.0; 2]; mdp.width];
        for _ in 0..m {
            let s = sample_from(&mu[h], rng);
            for (a, slot) in score[s].iter_mut().enumerate() {
                let (mut g, mut sp) = mdp.query(h, s, a, rng);
                for (k, layer) in policy.iter().enumerate().skip(h + 1) {
                    let (r, t) = mdp.query(k, sp, layer[sp], rng);
                    g += r;
                    sp = t;
                }
                queries += mdp.horizon - h;
                *slot += g / m as f64;
            }
        }
        policy[h] = classes[h].argmax(&score);
    }
    (policy, queries)
}

/// Reset samples per layer that make sampled PSDP `eps`-close to exact PSDP
/// w.p. `1 - delta` (derived, not the thesis's constant): returns from layer
/// `h` lie in `[0, H - h]`; Hoeffding plus a union bound over the `|Pi_h|`
/// members and the `H` layers make every score `eps / (2H)`-accurate when
/// `m_h = ceil(2 H^2 (H - h)^2 ln(2 H |Pi_h| / delta) / eps^2)`, so each
/// layer's choice is `eps / H`-optimal and the performance-difference
/// lemma sums the `H` losses to `eps`. `ln_class` is `ln |Pi_h|`.
pub fn psdp_samples_needed(horizon: usize, h: usize, ln_class: f64, eps: f64, delta: f64) -> usize {
    let big_h = horizon as f64;
    let range = horizon.saturating_sub(h) as f64;
    let log_term = (2.0 * big_h / delta).ln() + ln_class;
    (2.0 * big_h * big_h * range * range * log_term / (eps * eps)).ceil() as usize
}

/// Brute force over a product of finite classes: every non-stationary
/// policy is evaluated exactly; returns the best policy, its value and the
/// number of policies evaluated. `None` if a layer's class is
/// [`LayerClass::Complete`] or empty.
pub fn brute_force_best(
    mdp: &LayeredMdp,
    classes: &[LayerClass],
) -> Option<(LayeredPolicy, f64, usize)> {
    let members: Vec<&Vec<Vec<usize>>> = classes
        .iter()
        .map(|c| match c {
            LayerClass::Finite(m) if !m.is_empty() => Some(m),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let mut idx = vec![0usize; members.len()];
    let mut best: Option<(LayeredPolicy, f64)> = None;
    let mut count = 0;
    loop {
        let policy: LayeredPolicy = idx
            .iter()
            .zip(&members)
            .map(|(&i, m)| m[i].clone())
            .collect();
        let v = mdp.evaluate(&policy);
        count += 1;
        if best.as_ref().is_none_or(|(_, bv)| v > *bv) {
            best = Some((policy, v));
        }
        // mixed-radix increment
        let mut k = 0;
        loop {
            if k == idx.len() {
                let (p, v) = best?;
                return Some((p, v, count));
            }
            idx[k] += 1;
            if idx[k] < members[k].len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
    }
}
