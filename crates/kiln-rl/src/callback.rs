//! What a learner reports after every update, SB3-style: a callback sees the named
//! diagnostics and may stop training.

use crate::error::Result;

/// Receives the diagnostics of each update (names like `losses/approx_kl`, `charts/SPS`).
pub trait Callback {
    /// Called after each update at `step` environment steps; return `Ok(false)` to stop.
    fn on_update(&mut self, step: u64, metrics: &[(&str, f64)]) -> Result<bool>;
}

/// A callback that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallback;

impl Callback for NoCallback {
    fn on_update(&mut self, _step: u64, _metrics: &[(&str, f64)]) -> Result<bool> {
        Ok(true)
    }
}

/// A closure as a callback: `FnCallback(|step, metrics| true)`.
#[derive(Debug, Clone, Copy)]
pub struct FnCallback<F>(pub F);

impl<F: FnMut(u64, &[(&str, f64)]) -> bool> Callback for FnCallback<F> {
    fn on_update(&mut self, step: u64, metrics: &[(&str, f64)]) -> Result<bool> {
        Ok((self.0)(step, metrics))
    }
}

/// Logging into a run directory: every update becomes one line of `metrics.jsonl`.
impl Callback for kiln_track::RunDir {
    fn on_update(&mut self, step: u64, metrics: &[(&str, f64)]) -> Result<bool> {
        self.log(step, metrics)?;
        Ok(true)
    }
}
