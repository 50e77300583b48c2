//! Miniature experiments behind `kiln repro <row>`: each `run(out_dir, quick)`
//! writes a plot (`<row>.png`, `<row>.svg`) into `out_dir` and returns a
//! Markdown report with its table. `quick` shrinks the run to seconds.

pub mod agnostic_rl;
pub mod beyond_worst_case;
pub mod causal_ivl;
pub mod dr_rpo;
pub mod iwocs;
pub mod recovering_rewards;

pub(crate) fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

pub(crate) fn ci(samples: &[f64]) -> String {
    let m = kiln_track::stats::mean(samples);
    let (lo, hi) = kiln_track::stats::t_ci95(samples);
    if lo.is_finite() && hi.is_finite() {
        format!("{} ± {}", fmt(m), fmt((hi - lo) / 2.0))
    } else {
        fmt(m)
    }
}
