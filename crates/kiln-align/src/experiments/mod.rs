//! Miniature experiments behind `kiln repro <row>`: each writes a plot into `out_dir` and
//! returns a Markdown report with its table; `quick` shrinks the run to seconds.

pub mod capo;
pub mod nft;
pub mod rdpo;
pub mod rdpo_lm;
pub mod step_law;
pub mod tricks;
pub mod warm;

pub use capo::capo_row;
pub use nft::nft_row;
pub use rdpo::rdpo_loglinear;
pub use tricks::tricks_or_traps;

use std::path::Path;

use crate::Result;

/// Rows of the paper list whose `kiln repro` reproduction lives in this crate.
pub const ROWS: &[&str] = &["rdpo", "step-law", "tricks-or-traps", "nft", "capo"];

/// Runs row `row`'s miniature, writing its plots into `out_dir`; `Ok(None)` if `row` is not
/// one of [`ROWS`]. `progress` receives one line per finished unit of work (a seed, a grid
/// cell) so a caller can show where a long run stands.
pub fn repro(
    row: &str,
    out_dir: &Path,
    quick: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<String>> {
    Ok(match row {
        "rdpo" => {
            Some(rdpo_loglinear(out_dir, quick)? + &rdpo_lm::rdpo_lm(out_dir, quick, progress)?)
        }
        "step-law" => Some(step_law::step_law_row(out_dir, quick, progress)?),
        "tricks-or-traps" => Some(tricks_or_traps(out_dir, quick, progress)?),
        "nft" => Some(nft_row(out_dir, quick, progress)?),
        "capo" => Some(capo_row(out_dir, quick, progress)?),
        _ => None,
    })
}

pub(crate) fn fmt(x: f64) -> String {
    format!("{x:.4}")
}

/// Mean and half-width of the Student-t 95% interval (half-width 0 for a single sample).
pub(crate) fn mean_hw(samples: &[f64]) -> (f64, f64) {
    let m = kiln_track::stats::mean(samples);
    let (lo, hi) = kiln_track::stats::t_ci95(samples);
    if lo.is_finite() && hi.is_finite() {
        (m, (hi - lo) / 2.0)
    } else {
        (m, 0.0)
    }
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
