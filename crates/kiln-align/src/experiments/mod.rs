//! Miniature experiments behind `kiln repro <row>`: each writes a plot into `out_dir` and
//! returns a Markdown report with its table; `quick` shrinks the run to seconds.

pub mod rdpo;
pub mod rdpo_lm;
pub mod step_law;

pub use rdpo::rdpo_loglinear;

use std::path::Path;

use crate::Result;

/// Rows of the paper list whose `kiln repro` reproduction lives in this crate.
pub const ROWS: &[&str] = &["rdpo", "step-law"];

/// Runs row `row`'s miniature, writing its plots into `out_dir`; `Ok(None)` if `row` is not
/// one of [`ROWS`]. `progress` receives one line per finished unit of work (a seed, a grid
/// cell) so a caller can show where a long run stands.
pub fn repro(
    row: &str,
    out_dir: &Path,
    quick: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<String>> {
    let _ = &progress;
    Ok(match row {
        "rdpo" => {
            Some(rdpo_loglinear(out_dir, quick)? + &rdpo_lm::rdpo_lm(out_dir, quick, progress)?)
        }
        "step-law" => Some(step_law::step_law_row(out_dir, quick, progress)?),
        _ => None,
    })
}

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
