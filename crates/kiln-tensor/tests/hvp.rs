//! Hessian-vector products against exact Hessians.

use burn::tensor::{Tensor, TensorData};
use kiln_tensor::hvp::{flatten_params, hvp_central, module_hvp, with_flat_params};
use kiln_tensor::testing::{cpu, to_vec};
use kiln_tensor::{HVP_STEP, MlpConfig, Seeds};
use rand::RngExt;

fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

/// Gradient of `loss(theta)` by burn autodiff, for a loss written in tensor ops.
fn autodiff_grad(theta: &[f32], loss: impl Fn(Tensor<1>) -> Tensor<1>) -> Vec<f32> {
    let d = cpu().autodiff();
    let t =
        Tensor::<1>::from_data(TensorData::new(theta.to_vec(), [theta.len()]), &d).require_grad();
    let grads = loss(t.clone()).backward();
    to_vec(t.grad(&grads).unwrap())
}

#[test]
fn quadratic_hessian_is_recovered() {
    let n = 6;
    let mut rng = Seeds::new(1).stream("test");
    // A = M^T M + I (symmetric positive definite), f = 0.5 x^T A x + b^T x.
    let mvals: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut a = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n)
                .map(|k| mvals[k * n + i] * mvals[k * n + j])
                .sum::<f64>()
                + if i == j { 1.0 } else { 0.0 };
        }
    }
    let b: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let theta: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    let grad = |p: &[f32]| {
        autodiff_grad(p, |t| {
            let d = t.device();
            let am = Tensor::<2>::from_data(TensorData::new(a32.clone(), [n, n]), &d);
            let bv = Tensor::<1>::from_data(TensorData::new(b.clone(), [n]), &d);
            let x = t.clone().reshape([n, 1]);
            let quad = x
                .clone()
                .transpose()
                .matmul(am.matmul(x))
                .reshape([1])
                .mul_scalar(0.5);
            quad + (t * bv).sum()
        })
    };
    let hv = hvp_central(grad, &theta, &v, HVP_STEP).unwrap();
    let exact: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| a[i * n + j] * v[j] as f64).sum())
        .collect();
    let e = rel_err(&hv, &exact);
    assert!(e < 1e-3, "relative error {e}");
}

#[test]
fn logistic_regression_hessian_is_recovered() {
    // L(w) = mean log(1 + exp(-y x^T w)); H = mean s(1-s) x x^T with s = sigmoid(y x^T w).
    let (n, dim) = (40, 5);
    let mut rng = Seeds::new(2).stream("test");
    let x: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = (0..n)
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect();
    let w: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let grad = |p: &[f32]| {
        autodiff_grad(p, |t| {
            let d = t.device();
            let xm = Tensor::<2>::from_data(TensorData::new(x.clone(), [n, dim]), &d);
            let yv = Tensor::<1>::from_data(TensorData::new(y.clone(), [n]), &d);
            let z = xm.matmul(t.reshape([dim, 1])).reshape([n]) * yv;
            burn::tensor::activation::softplus(z.neg(), 1.0).mean()
        })
    };
    let hv = hvp_central(grad, &w, &v, HVP_STEP).unwrap();
    let mut exact = vec![0.0f64; dim];
    for i in 0..n {
        let xi = &x[i * dim..(i + 1) * dim];
        let z: f64 = y[i] as f64
            * xi.iter()
                .zip(&w)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>();
        let s = 1.0 / (1.0 + (-z).exp());
        let xv: f64 = xi.iter().zip(&v).map(|(&a, &b)| a as f64 * b as f64).sum();
        for k in 0..dim {
            exact[k] += s * (1.0 - s) * xi[k] as f64 * xv / n as f64;
        }
    }
    let e = rel_err(&hv, &exact);
    assert!(e < 1e-3, "relative error {e}");
}

#[test]
fn module_hvp_of_least_squares_is_gram_matrix() {
    // One linear layer without hidden units, loss = mean over rows of (f(x) - t)^2:
    // Hessian w.r.t. the weight column [w; b] is (2/n) [X 1]^T [X 1].
    let d = cpu().autodiff();
    let mlp = MlpConfig::new(vec![3, 1]).init(&d).unwrap();
    let n = 8;
    let mut rng = Seeds::new(5).stream("test");
    let xs: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
    let ts: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let p = flatten_params(&mlp);
    assert_eq!(p.len(), 4);
    let v: Vec<f32> = vec![0.3, -0.4, 0.8, 0.5];
    let hv = module_hvp(&mlp, &v, HVP_STEP, |m| {
        let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [n, 3]), &d);
        let t = Tensor::<2>::from_data(TensorData::new(ts.clone(), [n, 1]), &d);
        (m.forward(x) - t).powi_scalar(2).mean()
    })
    .unwrap();
    // Parameter order: weight [3, 1] row-major, then bias [1].
    let mut exact = vec![0.0f64; 4];
    for r in 0..n {
        let row = [
            xs[r * 3] as f64,
            xs[r * 3 + 1] as f64,
            xs[r * 3 + 2] as f64,
            1.0,
        ];
        let rv: f64 = row.iter().zip(&v).map(|(a, &b)| a * b as f64).sum();
        for k in 0..4 {
            exact[k] += 2.0 / n as f64 * row[k] * rv;
        }
    }
    let e = rel_err(&hv, &exact);
    assert!(e < 1e-3, "relative error {e}");
    // Round trip of the flat parameter layout.
    let back = flatten_params(&with_flat_params(mlp, &p).unwrap());
    assert_eq!(back, p);
}

#[test]
fn mismatched_lengths_are_errors() {
    let e = hvp_central(|p| p.to_vec(), &[1.0, 2.0], &[1.0], HVP_STEP).unwrap_err();
    assert!(e.to_string().contains("hvp direction"));
    let mlp = MlpConfig::new(vec![2, 1]).init(&cpu()).unwrap();
    assert!(with_flat_params(mlp, &[0.0; 5]).is_err());
}
