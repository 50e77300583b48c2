//! Dataset measures of Schweighofer et al. (2022), "A Dataset Perspective on
//! Offline Reinforcement Learning", §2.1, as defined in the official code
//! (`kschweig/OfflineRL`, `Evaluator`):
//!
//! * **TQ** (trajectory quality): `(ḡ(D) − ḡ(D_random)) / (g_ref − ḡ(D_random))`,
//!   `ḡ` the mean undiscounted return of the complete episodes of a dataset,
//!   `g_ref` the online policy's **best** evaluation return during training.
//! * **SACo** (state-action coverage): `u(D) / u(D_replay)`, `u` the number of
//!   distinct state-action pairs after digitizing every dimension into 100
//!   bins (`np.digitize` with `np.linspace(min, max, 100)` edges, so bin
//!   indices run 0…100 and a value equal to `max` lands in bin 100). The
//!   count is exact ([`unique_state_actions`]) or a HyperLogLog estimate
//!   ([`HyperLogLog`]) for large datasets, as the paper's code uses.

use std::collections::HashSet;

use crate::dataset::EpisodeDataset;

/// Mean return of the complete episodes (`None` if there are none).
pub fn mean_return(ds: &EpisodeDataset) -> Option<f64> {
    let r = ds.episode_returns();
    if r.is_empty() {
        None
    } else {
        Some(r.iter().sum::<f64>() / r.len() as f64)
    }
}

/// TQ from the three returns (the paper's normalization).
pub fn trajectory_quality(
    mean_return: f64,
    random_mean_return: f64,
    best_online_return: f64,
) -> f64 {
    (mean_return - random_mean_return) / (best_online_return - random_mean_return)
}

/// TQ of `ds` relative to the random dataset of the same run and the online
/// agent's best evaluation return. `None` if either dataset has no complete episode.
pub fn tq(ds: &EpisodeDataset, random: &EpisodeDataset, best_online_return: f64) -> Option<f64> {
    Some(trajectory_quality(
        mean_return(ds)?,
        mean_return(random)?,
        best_online_return,
    ))
}

/// SACo from two unique counts.
pub fn saco(unique_pairs: f64, unique_pairs_replay: f64) -> f64 {
    unique_pairs / unique_pairs_replay
}

/// Per-dimension bin edges over the concatenation `[state, action]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binning {
    edges: Vec<Vec<f64>>,
}

impl Binning {
    /// `np.linspace(min_d, max_d, bins)` edges per dimension, min/max taken
    /// over `reference` (the paper: the replay dataset of the same run for
    /// CartPole and MountainCar, the measured dataset itself for MiniGrid/MinAtar).
    pub fn from_reference(reference: &EpisodeDataset, bins: usize) -> Self {
        let d = reference.obs_dim() + reference.act_dim();
        let mut lo = vec![f64::INFINITY; d];
        let mut hi = vec![f64::NEG_INFINITY; d];
        for i in 0..reference.len() {
            for (j, &x) in reference
                .observation(i)
                .iter()
                .chain(reference.action(i))
                .enumerate()
            {
                lo[j] = lo[j].min(x);
                hi[j] = hi[j].max(x);
            }
        }
        Self::from_bounds(&lo, &hi, bins)
    }

    /// Edges from explicit bounds (NumPy's `linspace` arithmetic, last edge = max).
    pub fn from_bounds(lo: &[f64], hi: &[f64], bins: usize) -> Self {
        let edges = lo
            .iter()
            .zip(hi)
            .map(|(&a, &b)| {
                if !a.is_finite() || !b.is_finite() {
                    return vec![];
                }
                let div = bins.saturating_sub(1).max(1) as f64;
                let delta = b - a;
                let step = delta / div;
                let mut e: Vec<f64> = (0..bins)
                    .map(|i| {
                        if step == 0.0 {
                            i as f64 / div * delta + a
                        } else {
                            i as f64 * step + a
                        }
                    })
                    .collect();
                if let Some(last) = e.last_mut() {
                    *last = b;
                }
                e
            })
            .collect();
        Self { edges }
    }

    /// `np.digitize(x, edges[dim])`: the number of edges `<= x` (0…bins).
    #[inline]
    pub fn digitize(&self, dim: usize, x: f64) -> u32 {
        self.edges[dim].partition_point(|&e| e <= x) as u32
    }

    /// The bin key of a state-action pair.
    pub fn key(&self, obs: &[f64], action: &[f64]) -> Vec<u32> {
        obs.iter()
            .chain(action)
            .enumerate()
            .map(|(j, &x)| self.digitize(j, x))
            .collect()
    }
}

/// Exact number of distinct binned state-action pairs of `ds`.
pub fn unique_state_actions(ds: &EpisodeDataset, binning: &Binning) -> usize {
    let mut seen = HashSet::with_capacity(ds.len());
    for i in 0..ds.len() {
        seen.insert(binning.key(ds.observation(i), ds.action(i)));
    }
    seen.len()
}

/// Exact number of distinct raw (unbinned) state-action pairs, for discrete
/// or tabular data where no binning is wanted.
pub fn unique_state_actions_raw(ds: &EpisodeDataset) -> usize {
    let mut seen = HashSet::with_capacity(ds.len());
    for i in 0..ds.len() {
        let key: Vec<u64> = ds
            .observation(i)
            .iter()
            .chain(ds.action(i))
            .map(|x| x.to_bits())
            .collect();
        seen.insert(key);
    }
    seen.len()
}

/// HyperLogLog cardinality estimate (Flajolet et al. 2007) with `2^precision`
/// registers (relative standard error ≈ 1.04 / sqrt(2^precision); precision
/// 16 gives 0.4 %), with the small-range (linear counting) correction.
#[derive(Debug, Clone)]
pub struct HyperLogLog {
    precision: u32,
    registers: Vec<u8>,
}

impl HyperLogLog {
    /// Empty sketch; `precision` is clamped to 4..=18.
    pub fn new(precision: u32) -> Self {
        let p = precision.clamp(4, 18);
        Self {
            precision: p,
            registers: vec![0; 1 << p],
        }
    }

    /// Add an item by its 64-bit hash.
    pub fn insert_hash(&mut self, h: u64) {
        let idx = (h >> (64 - self.precision)) as usize;
        let rest = h << self.precision;
        let rank = (rest.leading_zeros() + 1).min(64 - self.precision + 1) as u8;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    /// Add a bin key.
    pub fn insert_key(&mut self, key: &[u32]) {
        self.insert_hash(hash_key(key));
    }

    /// The cardinality estimate.
    pub fn estimate(&self) -> f64 {
        let m = self.registers.len() as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| (-(r as f64)).exp2()).sum();
        let e = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        if e <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            e
        }
    }
}

/// HyperLogLog estimate of the distinct binned state-action pairs.
pub fn unique_state_actions_hll(ds: &EpisodeDataset, binning: &Binning, precision: u32) -> f64 {
    let mut h = HyperLogLog::new(precision);
    for i in 0..ds.len() {
        h.insert_key(&binning.key(ds.observation(i), ds.action(i)));
    }
    h.estimate()
}

/// SplitMix64 finalizer, a strong 64-bit mixer.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Deterministic (platform- and version-independent) hash of a bin key.
pub fn hash_key(key: &[u32]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15_u64 ^ key.len() as u64;
    for &v in key {
        h = mix64(h ^ u64::from(v)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    mix64(h)
}
