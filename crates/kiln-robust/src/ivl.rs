//! IV-like regression with outcome-invariant data augmentation ("An Analysis
//! of Causal Effect Estimation using Outcome Invariant Data Augmentation",
//! Akbar, Kilbertus, Shen, Muandet & Dai, NeurIPS 2025), linear estimators
//! and the paper's linear simulation (Example 2, Sec. 6.1).
//!
//! - ERM: OLS of `y` on `X` (Eq. 2).
//! - DA+ERM: OLS of `y` on the augmented `GX` (Eq. 6).
//! - IV / 2SLS with instrument `Z` (Eq. 5): `h = (X^T P X)^+ X^T P y`,
//!   `P = Z (Z^T Z)^+ Z^T`.
//! - IVL_alpha (Eq. 7, closed form of Prop. 1): minimises
//!   `||P (y - X h)||^2 + alpha ||y - X h||^2`, i.e.
//!   `h = (X^T (P + alpha I) X)^+ X^T (P + alpha I) y` (equal to Prop. 1's
//!   OLS on `(K X, K y)` with `K = (sqrt(1+alpha) - sqrt(alpha)) P + sqrt(alpha) I`,
//!   because `K^T K = P + alpha I`).
//!
//! `P` is never formed: `X^T P X = (X^T Z)(Z^T Z)^+(Z^T X)`.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

fn pinv(m: &DMatrix<f64>) -> DMatrix<f64> {
    m.clone()
        .pseudo_inverse(1e-12 * (1.0 + m.amax()))
        .unwrap_or_else(|_| DMatrix::zeros(m.ncols(), m.nrows()))
}

/// Ordinary least squares `argmin_h ||y - X h||^2` (minimum-norm solution).
pub fn ols(x: &DMatrix<f64>, y: &DVector<f64>) -> DVector<f64> {
    pinv(&(x.transpose() * x)) * (x.transpose() * y)
}

/// `(X^T P Z-projection X, X^T P y)` pieces.
fn projected(x: &DMatrix<f64>, y: &DVector<f64>, z: &DMatrix<f64>) -> (DMatrix<f64>, DVector<f64>) {
    let zz = pinv(&(z.transpose() * z));
    let xz = x.transpose() * z;
    (
        &xz * &zz * (z.transpose() * x),
        &xz * &zz * (z.transpose() * y),
    )
}

/// Two-stage least squares with instrument `z`.
pub fn two_stage_least_squares(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    z: &DMatrix<f64>,
) -> DVector<f64> {
    let (a, b) = projected(x, y, z);
    pinv(&a) * b
}

/// IVL_alpha regression (Eq. 7 via Prop. 1).
pub fn ivl_regression(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    z: &DMatrix<f64>,
    alpha: f64,
) -> DVector<f64> {
    let (a, b) = projected(x, y, z);
    pinv(&(a + alpha * (x.transpose() * x))) * (b + alpha * (x.transpose() * y))
}

/// The IV risk `||P (y - X h)||^2 / n` on a data set.
pub fn iv_risk(x: &DMatrix<f64>, y: &DVector<f64>, z: &DMatrix<f64>, h: &DVector<f64>) -> f64 {
    let r = y - x * h;
    let zr = z.transpose() * &r;
    let zz = pinv(&(z.transpose() * z));
    (zr.transpose() * zz * zr)[(0, 0)] / x.nrows().max(1) as f64
}

/// Normalised causal excess risk (Sec. 6, Euclidean CER, null effect 0):
/// `||h - f||^2 / (||h - f||^2 + ||f||^2)`.
pub fn ncer(h: &DVector<f64>, f: &DVector<f64>) -> f64 {
    let e = (h - f).norm_squared();
    e / (e + f.norm_squared())
}

/// Example 2 of the paper (acyclic, `tau = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearSimulationConfig {
    /// Treatment dimension `m` (paper: 32 / 16).
    pub dim: usize,
    /// Samples `n` (paper: 2048).
    pub samples: usize,
    /// Confounding strength `kappa`.
    pub kappa: f64,
    /// Augmentation strength `gamma` (paper: 1).
    pub gamma: f64,
    /// Noise scale `sigma` (paper: 0.1).
    pub sigma: f64,
}

/// One simulated data set.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSimulation {
    /// Causal effect `f`.
    pub f: DVector<f64>,
    /// Treatments `X` (n x m).
    pub x: DMatrix<f64>,
    /// Outcomes `y`.
    pub y: DVector<f64>,
    /// Augmentation parameters `G` (n x k), the IV-like instrument.
    pub g: DMatrix<f64>,
    /// Augmented treatments `GX = X + gamma G Gamma` (n x m).
    pub gx: DMatrix<f64>,
}

fn normal_matrix<R: Rng + ?Sized>(r: usize, c: usize, rng: &mut R) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| StandardNormal.sample(rng))
}

/// An orthonormal basis of `null(f^T)` as the rows of a `(m-1) x m` matrix
/// (Gram-Schmidt on the unit vectors after removing `f`).
pub fn null_space_basis(f: &DVector<f64>) -> DMatrix<f64> {
    let m = f.len();
    let mut basis: Vec<DVector<f64>> = vec![f.normalize()];
    for i in 0..m {
        let mut e = DVector::<f64>::zeros(m);
        e[i] = 1.0;
        for b in &basis {
            let c = b.dot(&e);
            e -= c * b;
        }
        if e.norm() > 1e-8 && basis.len() < m {
            basis.push(e.normalize());
        }
    }
    let rows: Vec<_> = basis[1..].iter().map(|b| b.transpose()).collect();
    DMatrix::from_rows(&rows)
}

/// Draws `f, eps, T` and a data set from Example 2:
/// `X = T^T C + sigma N_X`, `Y = f^T X + kappa eps^T C + sigma N_Y`,
/// `GX = X + gamma G Gamma` with `Gamma` spanning `null(f^T)`, `G ~ N(0, I)`.
pub fn simulate<R: Rng + ?Sized>(config: &LinearSimulationConfig, rng: &mut R) -> LinearSimulation {
    let (m, n) = (config.dim, config.samples);
    let f = DVector::from_fn(m, |_, _| StandardNormal.sample(rng));
    let eps = DVector::from_fn(m, |_, _| StandardNormal.sample(rng));
    let t = normal_matrix(m, m, rng);
    let c = normal_matrix(n, m, rng);
    let x = &c * &t + config.sigma * normal_matrix(n, m, rng);
    let ny = DVector::from_fn(n, |_, _| StandardNormal.sample(rng));
    let y = &x * &f + config.kappa * (&c * &eps) + config.sigma * ny;
    let gamma_basis = null_space_basis(&f);
    let g = normal_matrix(n, gamma_basis.nrows(), rng);
    let gx = &x + config.gamma * (&g * &gamma_basis);
    LinearSimulation { f, x, y, g, gx }
}

/// DA+IVL with `alpha` chosen on a 20% hold-out from `candidates`, by the
/// held-out IV risk (Kiln's reading of the paper's vanilla CV, App. D).
pub fn ivl_cross_validated(sim: &LinearSimulation, candidates: &[f64]) -> (DVector<f64>, f64) {
    let n = sim.gx.nrows();
    let cut = n * 4 / 5;
    let (xt, xv) = (
        sim.gx.rows(0, cut).into_owned(),
        sim.gx.rows(cut, n - cut).into_owned(),
    );
    let (yt, yv) = (
        sim.y.rows(0, cut).into_owned(),
        sim.y.rows(cut, n - cut).into_owned(),
    );
    let (zt, zv) = (
        sim.g.rows(0, cut).into_owned(),
        sim.g.rows(cut, n - cut).into_owned(),
    );
    let best = candidates
        .iter()
        .map(|&a| (a, iv_risk(&xv, &yv, &zv, &ivl_regression(&xt, &yt, &zt, a))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|p| p.0)
        .unwrap_or(1.0);
    (ivl_regression(&sim.gx, &sim.y, &sim.g, best), best)
}
