//! Miniature experiments behind `kiln repro <row>`: each writes a plot into `out_dir` and
//! returns a Markdown report with its table; `quick` shrinks the run to seconds.

pub mod rdpo;

pub use rdpo::rdpo_loglinear;

pub(crate) fn fmt(x: f64) -> String {
    format!("{x:.4}")
}

/// `mean ± half-width` of the Student-t 95% interval.
pub(crate) fn ci(samples: &[f64]) -> String {
    let m = kiln_track::stats::mean(samples);
    let (lo, hi) = kiln_track::stats::t_ci95(samples);
    if lo.is_finite() && hi.is_finite() {
        format!("{} ± {}", fmt(m), fmt((hi - lo) / 2.0))
    } else {
        fmt(m)
    }
}
