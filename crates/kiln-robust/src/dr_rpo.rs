//! DR-RPO on a d-rectangular linear DRMDP with TV uncertainty ("Policy
//! Regularized Distributionally Robust MDPs with Linear Function
//! Approximation", Gu, He, Liu & Xu, arXiv 2510.14246).
//!
//! **Reconstructed** (reference note `dr-rpo.md` Sec. 2.3): the paper body
//! could not be read, and a search of public sources (arXiv listing, mirrors,
//! summaries, the group's repositories) found only the abstract and no
//! official code, so the update below cannot be verified against the paper. The setting (simplex features, factor TV balls, the
//! dual `nu_{h,i} = max_{alpha in [0,H]} E_{mu_{h,i}}[min(V, alpha)] -
//! rho (alpha - min_s' min(V(s'), alpha))`, ridge estimates per `alpha`) is
//! verified from the companion paper of the same group; the loop below is
//! the note's reading of the abstract:
//! 1. robust optimistic evaluation, backward in `h`, with the per-factor
//!    bonus `Gamma(s,a) = beta_b sum_i phi_i(s,a) sqrt([Lambda_h^{-1}]_{ii})`
//!    and `Q_h = clip(<phi, theta_h + nu_h> + Gamma, 0, H - h + 1)`;
//! 2. KL-regularised mirror ascent toward a reference policy,
//!    `pi^{k+1} ∝ (pi^k)^{1/(1+eta beta)} pi_ref^{eta beta/(1+eta beta)} exp(eta Q / (1 + eta beta))`
//!    (kept as `L <- c L + c eta Q`, `pi = softmax(log pi_ref + L)`, `c = 1/(1+eta beta)`);
//! 3. one episode in the nominal environment.
//!
//! Environment: the simulated linear MDP of `panxulab/Robust-Regularized-
//! Pessimistic-Value-Iteration` (`Simulated_Linear_MDP/env.py`): five states,
//! `H = 3`, `d = 4`, actions `{-1, +1}^4`.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Number of states `x1..x5`.
pub const STATES: usize = 5;
/// Feature dimension.
pub const DIM: usize = 4;
/// Actions `{-1, +1}^4`.
pub const ACTIONS: usize = 16;
/// Horizon.
pub const HORIZON: usize = 3;

/// The simulated linear MDP (parameters `delta`, `xi_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimulatedLinearMdp {
    /// `delta`.
    pub delta: f64,
    /// `||xi||_1`; `xi = xi_norm (1,1,1,1) / 4`.
    pub xi_norm: f64,
}

impl SimulatedLinearMdp {
    /// `phi(s, a)` (simplex features).
    pub fn features(&self, s: usize, a: usize) -> [f64; DIM] {
        let sum: f64 = (0..4)
            .map(|i| if a >> i & 1 == 1 { 1.0 } else { -1.0 })
            .sum();
        let xa = self.xi_norm / 4.0 * sum;
        let mut phi = [0.0; DIM];
        match s {
            0..=2 => {
                phi[s] = 1.0 - self.delta - xa;
                phi[3] = self.delta + xa;
            }
            3 => phi[2] = 1.0,
            _ => phi[3] = 1.0,
        }
        phi
    }

    /// Factor measures `mu_i` over the 5 states (time-homogeneous): `mu_1 =
    /// 0.999 x2 + 0.001 x4`, `mu_2 = 0.999 x3 + 0.001 x4`, `mu_3 = x4`, `mu_4 = x5`.
    pub fn factors() -> [[f64; STATES]; DIM] {
        [
            [0.0, 0.999, 0.0, 0.001, 0.0],
            [0.0, 0.0, 0.999, 0.001, 0.0],
            [0.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    }

    /// Reward parameters: `theta_1 = 0`, `theta_2 = theta_3 = e_4`.
    pub fn theta(h: usize) -> [f64; DIM] {
        if h == 0 {
            [0.0; DIM]
        } else {
            [0.0, 0.0, 0.0, 1.0]
        }
    }

    /// Next-state distribution at step `h` (0-based) with perturbation `q`:
    /// from `x1` at the first step, the `phi_4` mass goes to `x4` w.p. `q`.
    pub fn next(&self, h: usize, s: usize, a: usize, q: f64) -> [f64; STATES] {
        let phi = self.features(s, a);
        let mu = Self::factors();
        let mut p = [0.0; STATES];
        for i in 0..DIM {
            for sp in 0..STATES {
                p[sp] += phi[i] * mu[i][sp];
            }
        }
        if h == 0 && s == 0 && q > 0.0 {
            p[4] -= q * phi[3];
            p[3] += q * phi[3];
        }
        p
    }
}

/// `min_{TV(mu', mu) <= rho} E_mu'[V]` through its dual, exact over the
/// breakpoints `alpha in {0} ∪ {V(s)}` (the objective is piecewise linear).
pub fn tv_dual(mu: &[f64], v: &[f64], rho: f64) -> f64 {
    let vmin = v.iter().cloned().fold(f64::INFINITY, f64::min);
    std::iter::once(0.0f64)
        .chain(v.iter().cloned())
        .map(|alpha| {
            mu.iter().zip(v).map(|(m, x)| m * x.min(alpha)).sum::<f64>()
                - rho * (alpha - vmin.min(alpha))
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

/// A non-stationary stochastic policy `pi[h][s][a]`.
pub type StepPolicy = Vec<Vec<Vec<f64>>>;

/// Exact robust (`rho > 0`) or perturbed-nominal value of `pi` from `x1`,
/// with the KL regulariser `beta KL(pi || uniform)` subtracted (`beta = 0`
/// for plain returns). `q` perturbs the first transition (used with `rho = 0`).
#[allow(clippy::needless_range_loop)] // (h, s, a) indices mirror the Bellman equation
pub fn evaluate(env: &SimulatedLinearMdp, pi: &StepPolicy, rho: f64, beta: f64, q: f64) -> f64 {
    let mut v = [0.0; STATES];
    for h in (0..HORIZON).rev() {
        let nu: Vec<f64> = SimulatedLinearMdp::factors()
            .iter()
            .map(|mu| tv_dual(mu, &v, rho))
            .collect();
        let mut next_v = [0.0; STATES];
        for s in 0..STATES {
            let mut val = 0.0;
            for a in 0..ACTIONS {
                let phi = env.features(s, a);
                let th = SimulatedLinearMdp::theta(h);
                let r: f64 = (0..DIM).map(|i| phi[i] * th[i]).sum();
                let cont = if rho > 0.0 || q == 0.0 {
                    (0..DIM).map(|i| phi[i] * nu[i]).sum::<f64>()
                } else {
                    env.next(h, s, a, q)
                        .iter()
                        .zip(&v)
                        .map(|(p, x)| p * x)
                        .sum()
                };
                let p = pi[h][s][a];
                val += p * (r + cont);
                if beta > 0.0 && p > 0.0 {
                    val -= beta * p * (p * ACTIONS as f64).ln();
                }
            }
            next_v[s] = val;
        }
        v = next_v;
    }
    v[0]
}

/// The regularised robust optimum `max_pi` of [`evaluate`] (soft backward
/// induction: `V(s) = beta ln mean_a exp(Q(s,a) / beta)`), and its policy.
pub fn regularised_optimum(env: &SimulatedLinearMdp, rho: f64, beta: f64) -> (f64, StepPolicy) {
    let mut v = [0.0; STATES];
    let mut pi = vec![vec![vec![0.0; ACTIONS]; STATES]; HORIZON];
    for h in (0..HORIZON).rev() {
        let nu: Vec<f64> = SimulatedLinearMdp::factors()
            .iter()
            .map(|mu| tv_dual(mu, &v, rho))
            .collect();
        let mut next_v = [0.0; STATES];
        for s in 0..STATES {
            let q: Vec<f64> = (0..ACTIONS)
                .map(|a| {
                    let phi = env.features(s, a);
                    let th = SimulatedLinearMdp::theta(h);
                    (0..DIM).map(|i| phi[i] * (th[i] + nu[i])).sum()
                })
                .collect();
            let m = q.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = q.iter().map(|x| ((x - m) / beta).exp()).collect();
            let z: f64 = w.iter().sum();
            next_v[s] = m + beta * (z / ACTIONS as f64).ln();
            pi[h][s] = w.iter().map(|x| x / z).collect();
        }
        v = next_v;
    }
    (v[0], pi)
}

/// DR-RPO options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DrRpoConfig {
    /// TV radius `rho` (0: the non-robust optimistic policy optimisation baseline).
    pub rho: f64,
    /// Regularisation strength `beta` toward the uniform reference policy.
    pub beta: f64,
    /// Mirror-ascent step `eta`.
    pub eta: f64,
    /// Ridge `lambda`.
    pub lambda: f64,
    /// Bonus scale `beta_b`.
    pub bonus: f64,
    /// Episodes `K`.
    pub episodes: usize,
}

impl Default for DrRpoConfig {
    fn default() -> Self {
        Self {
            rho: 0.3,
            beta: 0.01,
            eta: 1.0,
            lambda: 1.0,
            bonus: 0.1,
            episodes: 1000,
        }
    }
}

/// Per-episode record of a DR-RPO run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrRpoRun {
    /// Regret of each episode's policy against the regularised robust optimum.
    pub instant_regret: Vec<f64>,
    /// The final policy.
    pub policy: StepPolicy,
}

/// Runs DR-RPO (the reconstructed loop of the module docs) on the nominal
/// environment.
pub fn dr_rpo<R: Rng + ?Sized>(
    env: &SimulatedLinearMdp,
    config: &DrRpoConfig,
    rng: &mut R,
) -> DrRpoRun {
    let (opt, _) = regularised_optimum(env, config.rho, config.beta);
    let c = 1.0 / (1.0 + config.eta * config.beta);
    let mut logits = vec![vec![vec![0.0; ACTIONS]; STATES]; HORIZON];
    let mut data: Vec<Vec<([f64; DIM], usize)>> = vec![vec![]; HORIZON];
    let mut regret = Vec::with_capacity(config.episodes);
    let softmax = |l: &[f64]| -> Vec<f64> {
        let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = l.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = w.iter().sum();
        w.iter().map(|x| x / z).collect()
    };
    for _ in 0..config.episodes {
        let pi: StepPolicy = logits
            .iter()
            .map(|lh| lh.iter().map(|l| softmax(l)).collect())
            .collect();
        regret.push(opt - evaluate(env, &pi, config.rho, config.beta, 0.0));
        // 1. robust optimistic evaluation from the data so far.
        let mut v = [0.0; STATES];
        for h in (0..HORIZON).rev() {
            let mut lam = DMatrix::<f64>::identity(DIM, DIM) * config.lambda;
            for (phi, _) in &data[h] {
                let p = DVector::from_row_slice(phi);
                lam += &p * p.transpose();
            }
            let inv = lam
                .clone()
                .try_inverse()
                .unwrap_or_else(|| DMatrix::identity(DIM, DIM));
            let vmin = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let mut nu = [f64::NEG_INFINITY; DIM];
            for alpha in std::iter::once(0.0).chain(v.iter().cloned()) {
                let mut rhs = DVector::<f64>::zeros(DIM);
                for (phi, sp) in &data[h] {
                    rhs += DVector::from_row_slice(phi) * v[*sp].min(alpha);
                }
                let z = &inv * rhs;
                for i in 0..DIM {
                    nu[i] = nu[i].max(z[i] - config.rho * (alpha - vmin.min(alpha)));
                }
            }
            let cap = (HORIZON - h) as f64;
            let mut next_v = [0.0; STATES];
            for s in 0..STATES {
                let mut val = 0.0;
                for a in 0..ACTIONS {
                    let phi = env.features(s, a);
                    let th = SimulatedLinearMdp::theta(h);
                    let bonus: f64 =
                        (0..DIM).map(|i| phi[i] * inv[(i, i)].sqrt()).sum::<f64>() * config.bonus;
                    let q = ((0..DIM).map(|i| phi[i] * (th[i] + nu[i])).sum::<f64>() + bonus)
                        .clamp(0.0, cap);
                    // 2. mirror ascent on this step's Q (the update of pi^{k+1}).
                    logits[h][s][a] = c * logits[h][s][a] + c * config.eta * q;
                    let p = pi[h][s][a];
                    val += p * q;
                    if p > 0.0 {
                        val -= config.beta * p * (p * ACTIONS as f64).ln();
                    }
                }
                next_v[s] = val;
            }
            v = next_v;
        }
        // 3. one episode with pi^k in the nominal environment.
        let mut s = 0;
        for (h, dh) in data.iter_mut().enumerate() {
            let a = sample(&pi[h][s], rng);
            let p = env.next(h, s, a, 0.0);
            let sp = sample(&p, rng);
            dh.push((env.features(s, a), sp));
            s = sp;
        }
    }
    let policy = logits
        .iter()
        .map(|lh| lh.iter().map(|l| softmax(l)).collect())
        .collect();
    DrRpoRun {
        instant_regret: regret,
        policy,
    }
}

fn sample<R: Rng + ?Sized>(p: &[f64], rng: &mut R) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return i;
        }
    }
    p.len() - 1
}
