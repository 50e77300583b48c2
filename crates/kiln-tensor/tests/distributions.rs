//! Distributions against closed forms, numerical integration and finite differences.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use kiln_tensor::distributions::tensor2;
use kiln_tensor::testing::{cpu, to_vec};
use kiln_tensor::{Categorical, DiagGaussian, Seeds, TanhGaussian};
use proptest::prelude::*;

const LN_2PI: f64 = 1.837_877_066_409_345_3;

fn gauss_logpdf(x: f64, m: f64, log_s: f64) -> f64 {
    let s = log_s.exp();
    -0.5 * ((x - m) / s).powi(2) - log_s - 0.5 * LN_2PI
}

fn tanh_logpdf_pre(u: f64, m: f64, log_s: f64) -> f64 {
    gauss_logpdf(u, m, log_s) - (1.0 - u.tanh().powi(2)).ln()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn gaussian_log_prob_entropy_kl_match_closed_form(
        m in prop::collection::vec(-3.0f64..3.0, 3),
        ls in prop::collection::vec(-2.0f64..1.0, 3),
        m2 in prop::collection::vec(-3.0f64..3.0, 3),
        ls2 in prop::collection::vec(-2.0f64..1.0, 3),
        x in prop::collection::vec(-4.0f64..4.0, 3),
    ) {
        let d = cpu();
        let f = |v: &[f64]| tensor2(&v.iter().map(|&a| a as f32).collect::<Vec<_>>(), 1, 3, &d);
        let p = DiagGaussian::new(f(&m), f(&ls));
        let q = DiagGaussian::new(f(&m2), f(&ls2));
        let lp = to_vec(p.log_prob(f(&x)))[0] as f64;
        let want: f64 = (0..3).map(|i| gauss_logpdf(x[i], m[i], ls[i])).sum();
        prop_assert!((lp - want).abs() < 1e-4 * (1.0 + want.abs()), "{lp} vs {want}");
        let h = to_vec(p.entropy())[0] as f64;
        let want_h: f64 = ls.iter().map(|l| l + 0.5 * (1.0 + LN_2PI)).sum();
        prop_assert!((h - want_h).abs() < 1e-4);
        let kl = to_vec(p.kl(&q))[0] as f64;
        let want_kl: f64 = (0..3).map(|i| {
            let (v1, v2) = ((2.0 * ls[i]).exp(), (2.0 * ls2[i]).exp());
            ls2[i] - ls[i] + (v1 + (m[i] - m2[i]).powi(2)) / (2.0 * v2) - 0.5
        }).sum();
        prop_assert!((kl - want_kl).abs() < 1e-3 * (1.0 + want_kl.abs()), "{kl} vs {want_kl}");
        prop_assert!(kl >= -1e-5);
        prop_assert!(to_vec(p.kl(&p))[0].abs() < 1e-5);
    }

    #[test]
    fn tanh_log_prob_is_stable_and_consistent(
        m in -2.0f64..2.0, ls in -1.5f64..0.5, u in -8.0f64..8.0,
    ) {
        let d = cpu();
        let t = TanhGaussian::new(tensor2(&[m as f32], 1, 1, &d), tensor2(&[ls as f32], 1, 1, &d));
        let got = to_vec(t.log_prob_pre_tanh(tensor2(&[u as f32], 1, 1, &d)))[0] as f64;
        // The stable form keeps working where the naive 1 - tanh^2 underflows in f32.
        let want = tanh_logpdf_pre(u, m, ls);
        prop_assert!(got.is_finite());
        prop_assert!((got - want).abs() < 1e-3 * (1.0 + want.abs()), "{got} vs {want}");
        if u.abs() < 3.0 {
            let via_action = to_vec(t.log_prob(tensor2(&[u.tanh() as f32], 1, 1, &d)))[0] as f64;
            prop_assert!((via_action - want).abs() < 2e-2 * (1.0 + want.abs()), "{via_action} vs {want}");
        }
    }

    #[test]
    fn categorical_matches_log_softmax(logits in prop::collection::vec(-5.0f64..5.0, 5), a in 0usize..5) {
        let d = cpu();
        let c = Categorical::new(tensor2(&logits.iter().map(|&v| v as f32).collect::<Vec<_>>(), 1, 5, &d), None);
        let lse = logits.iter().map(|l| l.exp()).sum::<f64>().ln();
        let lp = to_vec(c.log_prob(Tensor::<1, Int>::from_data(TensorData::new(vec![a as i64], [1]), &d)))[0] as f64;
        prop_assert!((lp - (logits[a] - lse)).abs() < 1e-4);
        let h = to_vec(c.entropy())[0] as f64;
        let want: f64 = logits.iter().map(|l| { let p = (l - lse).exp(); -p * (l - lse) }).sum();
        prop_assert!((h - want).abs() < 1e-4);
        prop_assert!(to_vec(c.kl(&c))[0].abs() < 1e-6);
    }
}

#[test]
fn tanh_density_integrates_to_one_and_entropy_matches_quadrature() {
    let d = cpu();
    for (m, ls) in [(0.0, 0.0), (0.7, -0.5), (-1.2, 0.4), (2.0, -1.0)] {
        let t = TanhGaussian::new(tensor2(&[m], 1, 1, &d), tensor2(&[ls], 1, 1, &d));
        // Integrate over u (a = tanh u): ∫ p(a) da = ∫ p_a(tanh u) (1 - tanh² u) du.
        let n = 4001;
        let (lo, hi) = (m as f64 - 12.0, m as f64 + 12.0);
        let du = (hi - lo) / (n - 1) as f64;
        let us: Vec<f32> = (0..n).map(|i| (lo + i as f64 * du) as f32).collect();
        let lp = to_vec(t.log_prob_pre_tanh(tensor2(&us, n, 1, &d)));
        let mut mass = 0.0;
        let mut ent = 0.0;
        for (i, &u) in us.iter().enumerate() {
            let jac = 1.0 - (u as f64).tanh().powi(2);
            let pa = (lp[i] as f64).exp();
            let w = if i == 0 || i == n - 1 { 0.5 } else { 1.0 };
            mass += w * pa * jac * du;
            ent -= w * pa * jac * (lp[i] as f64) * du;
        }
        assert!((mass - 1.0).abs() < 1e-3, "mass {mass}");
        let h = to_vec(t.entropy())[0] as f64;
        assert!(
            (h - ent).abs() < 2e-3,
            "quadrature entropy {h} vs numerical {ent}"
        );
    }
}

#[test]
fn tanh_kl_equals_base_kl_and_mode_is_tanh_mean() {
    let d = cpu();
    let p = TanhGaussian::new(
        tensor2(&[0.3, -0.2], 1, 2, &d),
        tensor2(&[-0.5, 0.1], 1, 2, &d),
    );
    let q = TanhGaussian::new(
        tensor2(&[0.0, 0.4], 1, 2, &d),
        tensor2(&[0.0, -0.3], 1, 2, &d),
    );
    assert_eq!(to_vec(p.kl(&q)), to_vec(p.base.kl(&q.base)));
    let mode = to_vec(p.mode());
    assert!((mode[0] - 0.3f32.tanh()).abs() < 1e-6);
}

#[test]
fn masked_actions_are_never_sampled_and_have_zero_mass() {
    let d = cpu();
    Seeds::new(3).seed_device(&d);
    let rows = 2000;
    let logits: Vec<f32> = (0..rows * 4).map(|i| (i % 4) as f32).collect();
    let mask: Vec<bool> = (0..rows * 4).map(|i| i % 4 != 3).collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [rows, 4]), &d);
    let c = Categorical::new(tensor2(&logits, rows, 4, &d), Some(mask));
    let probs = to_vec(c.probs());
    assert!(probs.chunks(4).all(|p| p[3] == 0.0));
    let samples: Vec<i64> = c.sample().into_data().iter::<i64>().collect();
    assert!(samples.iter().all(|&a| (0..3).contains(&a)));
    // Frequencies follow softmax([0, 1, 2]) = [0.090, 0.245, 0.665].
    let freq = |k| samples.iter().filter(|&&a| a == k).count() as f64 / rows as f64;
    for (k, p) in [(0, 0.0900), (1, 0.2447), (2, 0.6652)] {
        assert!(
            (freq(k) - p).abs() < 0.035,
            "action {k}: {} vs {p}",
            freq(k)
        );
    }
    let h = to_vec(c.entropy());
    assert!(h.iter().all(|v| v.is_finite()));
    // Uniform over 3 allowed actions has entropy ln 3.
    let u = Categorical::new(
        tensor2(&[0.0; 4], 1, 4, &d),
        Some(Tensor::<2, Bool>::from_data(
            TensorData::new(vec![true, true, false, true], [1, 4]),
            &d,
        )),
    );
    assert!((to_vec(u.entropy())[0] - 3f32.ln()).abs() < 1e-6);
    assert_eq!(u.mode().into_data().iter::<i64>().next(), Some(0));
}

/// Autodiff gradients of each distribution's log-density against central differences of the
/// f64 closed form.
#[test]
fn finite_difference_gradient_checks() {
    let d = cpu().autodiff();
    let (m, ls, x) = ([0.3f32, -1.1], [-0.4f32, 0.2], [0.9f32, -0.5]);
    let mean = tensor2(&m, 1, 2, &d).require_grad();
    let log_std = tensor2(&ls, 1, 2, &d).require_grad();
    let g = DiagGaussian::new(mean.clone(), log_std.clone());
    let grads = g.log_prob(tensor2(&x, 1, 2, &d)).sum().backward();
    let gm = to_vec(mean.grad(&grads).unwrap());
    let gs = to_vec(log_std.grad(&grads).unwrap());
    let h = 1e-5;
    for i in 0..2 {
        let f = |mm: f64, ll: f64| gauss_logpdf(x[i] as f64, mm, ll);
        let fd_m =
            (f(m[i] as f64 + h, ls[i] as f64) - f(m[i] as f64 - h, ls[i] as f64)) / (2.0 * h);
        let fd_s =
            (f(m[i] as f64, ls[i] as f64 + h) - f(m[i] as f64, ls[i] as f64 - h)) / (2.0 * h);
        assert!((gm[i] as f64 - fd_m).abs() < 1e-4, "{} vs {fd_m}", gm[i]);
        assert!((gs[i] as f64 - fd_s).abs() < 1e-4, "{} vs {fd_s}", gs[i]);
    }

    // Tanh-Gaussian: gradient w.r.t. the mean through a reparameterized sample, u = m + s eps.
    let eps = [0.5f32, -1.3];
    let mean = tensor2(&m, 1, 2, &d).require_grad();
    let log_std = tensor2(&ls, 1, 2, &d).require_grad();
    let t = TanhGaussian::new(mean.clone(), log_std.clone());
    let s = t.sample_with_noise(tensor2(&eps, 1, 2, &d));
    let grads = t.log_prob_pre_tanh(s.pre_tanh).sum().backward();
    let gm = to_vec(mean.grad(&grads).unwrap());
    let gs = to_vec(log_std.grad(&grads).unwrap());
    for i in 0..2 {
        let f = |mm: f64, ll: f64| tanh_logpdf_pre(mm + ll.exp() * eps[i] as f64, mm, ll);
        let fd_m =
            (f(m[i] as f64 + h, ls[i] as f64) - f(m[i] as f64 - h, ls[i] as f64)) / (2.0 * h);
        let fd_s =
            (f(m[i] as f64, ls[i] as f64 + h) - f(m[i] as f64, ls[i] as f64 - h)) / (2.0 * h);
        assert!((gm[i] as f64 - fd_m).abs() < 1e-3, "{} vs {fd_m}", gm[i]);
        assert!((gs[i] as f64 - fd_s).abs() < 1e-3, "{} vs {fd_s}", gs[i]);
    }

    // Categorical entropy w.r.t. logits.
    let l = [0.2f32, -0.7, 1.1];
    let logits = tensor2(&l, 1, 3, &d).require_grad();
    let grads = Categorical::new(logits.clone(), None)
        .entropy()
        .sum()
        .backward();
    let gl = to_vec(logits.grad(&grads).unwrap());
    let ent = |v: [f64; 3]| {
        let lse = v.iter().map(|x| x.exp()).sum::<f64>().ln();
        v.iter().map(|x| -(x - lse).exp() * (x - lse)).sum::<f64>()
    };
    for i in 0..3 {
        let mut p = l.map(f64::from);
        let mut q = p;
        p[i] += h;
        q[i] -= h;
        let fd = (ent(p) - ent(q)) / (2.0 * h);
        assert!((gl[i] as f64 - fd).abs() < 1e-4, "{} vs {fd}", gl[i]);
    }
}

#[test]
fn same_seed_same_samples() {
    let d = cpu();
    let g = DiagGaussian::new(tensor2(&[0.0; 6], 2, 3, &d), tensor2(&[0.0; 6], 2, 3, &d));
    Seeds::new(11).seed_device(&d);
    let a = to_vec(g.rsample());
    Seeds::new(11).seed_device(&d);
    let b = to_vec(g.rsample());
    Seeds::new(12).seed_device(&d);
    let c = to_vec(g.rsample());
    assert_eq!(a, b);
    assert_ne!(a, c);
}
