//! Statistics over seeds (or episodes): mean, spread, confidence intervals
//! and the interquartile mean.
//!
//! Conventions: an undefined statistic is `NaN` (the mean of nothing, the
//! spread of one sample); JSON output writes it as `null`. Inputs are assumed
//! finite; a `NaN` input propagates.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Arithmetic mean; `NaN` for an empty slice.
pub fn mean(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.iter().sum::<f64>() / samples.len() as f64
}

/// Sample standard deviation (divides by `n - 1`); `NaN` for fewer than two samples.
pub fn std(samples: &[f64]) -> f64 {
    let n = samples.len();
    if n < 2 {
        return f64::NAN;
    }
    let m = mean(samples);
    let ss: f64 = samples.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// Standard error of the mean, `std / sqrt(n)`; `NaN` for fewer than two samples.
pub fn stderr(samples: &[f64]) -> f64 {
    std(samples) / (samples.len() as f64).sqrt()
}

/// Two-sided 95% critical value of Student's t distribution with `df`
/// degrees of freedom: exact table for 1..=30, then the value of the nearest
/// smaller tabulated df (40, 60, 120: conservative), 1.96 beyond 120.
/// `df = 0` gives `NaN`.
pub fn t_critical_95(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        31..=39 => TABLE[29],
        40..=59 => 2.021,
        60..=119 => 2.000,
        120 => 1.980,
        _ => 1.96,
    }
}

/// 95% confidence interval of the mean, `mean ± t(n-1) · stderr`.
/// `(NaN, NaN)` for fewer than two samples.
pub fn t_ci95(samples: &[f64]) -> (f64, f64) {
    if samples.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let m = mean(samples);
    let half = t_critical_95(samples.len() - 1) * stderr(samples);
    (m - half, m + half)
}

/// Percentile-bootstrap confidence interval of the mean at level
/// `confidence` (e.g. 0.95), from `resamples` resamples drawn with a
/// [`StdRng`] seeded by `seed`: the same inputs always give the same interval.
///
/// Percentiles interpolate linearly between order statistics (NumPy's
/// default). `(NaN, NaN)` for no samples, zero resamples or a confidence
/// outside (0, 1).
pub fn bootstrap_ci(samples: &[f64], confidence: f64, resamples: usize, seed: u64) -> (f64, f64) {
    let n = samples.len();
    if n == 0 || resamples == 0 || !(confidence > 0.0 && confidence < 1.0) {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| samples[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    (
        quantile_sorted(&means, alpha / 2.0),
        quantile_sorted(&means, 1.0 - alpha / 2.0),
    )
}

/// Interquartile mean: the mean of the middle 50% of the samples, as in
/// rliable (`scipy.stats.trim_mean(x, 0.25)`): after sorting, `floor(n / 4)`
/// samples are dropped from each end. `NaN` for an empty slice.
pub fn iqm(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = sorted.len() / 4;
    mean(&sorted[cut..sorted.len() - cut])
}

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted, non-empty data, interpolating
/// linearly between neighbours.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn known_answers() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&x), 5.0);
        // Sum of squared deviations is 32, so the sample variance is 32/7.
        assert!(close(std(&x), (32.0f64 / 7.0).sqrt(), 1e-12));
        assert!(close(
            stderr(&x),
            (32.0f64 / 7.0).sqrt() / 8f64.sqrt(),
            1e-12
        ));
        // 1, 2, 3: mean 2, std 1, stderr 1/sqrt(3), t(2) = 4.303.
        let (lo, hi) = t_ci95(&[1.0, 2.0, 3.0]);
        let half = 4.303 / 3f64.sqrt();
        assert!(close(lo, 2.0 - half, 1e-12) && close(hi, 2.0 + half, 1e-12));
    }

    #[test]
    fn undefined_cases_are_nan() {
        assert!(mean(&[]).is_nan());
        assert!(std(&[3.0]).is_nan());
        assert!(stderr(&[3.0]).is_nan());
        assert!(t_ci95(&[3.0]).0.is_nan());
        assert!(iqm(&[]).is_nan());
        assert!(bootstrap_ci(&[], 0.95, 100, 0).0.is_nan());
        assert!(bootstrap_ci(&[1.0], 1.5, 100, 0).0.is_nan());
        assert!(t_critical_95(0).is_nan());
    }

    #[test]
    fn t_table_values() {
        assert_eq!(t_critical_95(1), 12.706);
        assert_eq!(t_critical_95(9), 2.262);
        assert_eq!(t_critical_95(30), 2.042);
        assert_eq!(t_critical_95(35), 2.042);
        assert_eq!(t_critical_95(1000), 1.96);
        // Critical values shrink as df grows.
        for df in 1..200 {
            assert!(t_critical_95(df + 1) <= t_critical_95(df), "df {df}");
        }
    }

    #[test]
    fn iqm_matches_scipy_trim_mean() {
        // scipy.stats.trim_mean(range(1, 9), 0.25) == 4.5 (drops 1, 2 and 7, 8).
        assert_eq!(iqm(&[8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]), 4.5);
        // n = 5: floor(5/4) = 1 from each end -> mean(2, 3, 100) = 35.
        assert_eq!(iqm(&[1.0, 2.0, 3.0, 100.0, 1000.0]), 35.0);
        // n = 3: nothing dropped.
        assert_eq!(iqm(&[1.0, 2.0, 6.0]), 3.0);
        // An outlier among 4 is dropped: mean(2, 3) = 2.5.
        assert_eq!(iqm(&[1.0, 2.0, 3.0, 1e9]), 2.5);
    }

    #[test]
    fn bootstrap_is_deterministic_and_sensible() {
        let x: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.5).collect();
        let a = bootstrap_ci(&x, 0.95, 2000, 42);
        let b = bootstrap_ci(&x, 0.95, 2000, 42);
        assert_eq!(a, b);
        let m = mean(&x);
        assert!(a.0 < m && m < a.1, "{a:?} vs {m}");
        // The percentile interval of the mean is close to the normal one:
        // mean 4.75, stderr ~0.665, so roughly 4.75 ± 1.3 (allowing for the
        // bootstrap's n/(n-1) shrinkage and resampling noise).
        assert!(close(a.0, m - 1.96 * stderr(&x), 0.25), "{a:?}");
        assert!(close(a.1, m + 1.96 * stderr(&x), 0.25), "{a:?}");
        // A different seed gives (slightly) different resamples.
        assert_ne!(bootstrap_ci(&x, 0.95, 2000, 43), a);
        // A constant sample has a degenerate interval.
        assert_eq!(bootstrap_ci(&[3.0; 5], 0.9, 50, 1), (3.0, 3.0));
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 1.0), 4.0);
        assert_eq!(quantile_sorted(&s, 0.5), 2.5);
        assert!(close(quantile_sorted(&s, 0.25), 1.75, 1e-12));
    }

    fn finite_samples(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(-1e6f64..1e6, 1..max_len)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mean_between_min_and_max(x in finite_samples(50)) {
            let m = mean(&x);
            let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(lo - 1e-6 <= m && m <= hi + 1e-6);
        }

        #[test]
        fn confidence_intervals_contain_the_mean(x in finite_samples(30), seed in any::<u64>()) {
            let m = mean(&x);
            let tol = 1e-9 * (1.0 + m.abs());
            if x.len() >= 2 {
                let (lo, hi) = t_ci95(&x);
                prop_assert!(lo - tol <= m && m <= hi + tol);
            }
            // A percentile bootstrap interval need not contain the mean in
            // general, but a 99.9% interval from 200 resamples is about the
            // range of the resampled means, which brackets the sample mean
            // unless all 200 fall strictly on one side: astronomically unlikely.
            let (lo, hi) = bootstrap_ci(&x, 0.999, 200, seed);
            prop_assert!(lo - tol <= m && m <= hi + tol, "{} not in [{}, {}]", m, lo, hi);
            let xmin = x.iter().copied().fold(f64::INFINITY, f64::min);
            let xmax = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(xmin - tol <= lo && hi <= xmax + tol);
        }

        #[test]
        fn iqm_of_constant_is_the_constant(c in -1e6f64..1e6, n in 1usize..40) {
            let v = iqm(&vec![c; n]);
            prop_assert!((v - c).abs() <= 1e-12 * (1.0 + c.abs()), "{} vs {}", v, c);
        }

        #[test]
        fn iqm_is_permutation_invariant(x in finite_samples(40), seed in any::<u64>()) {
            let mut shuffled = x.clone();
            let mut rng = StdRng::seed_from_u64(seed);
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.random_range(0..=i));
            }
            let a = iqm(&x);
            let b = iqm(&shuffled);
            prop_assert!((a - b).abs() <= 1e-9 * (1.0 + a.abs()), "{} vs {}", a, b);
        }
    }
}
