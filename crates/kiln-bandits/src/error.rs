//! Errors of bandit models and learners.

use thiserror::Error;

/// Invalid bandit parameters.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BanditError {
    /// A parameter is outside its allowed range.
    #[error("{what}: `{field}` = {value}: {reason}")]
    Parameter {
        /// Model or learner name.
        what: &'static str,
        /// Field name.
        field: &'static str,
        /// Value as text.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A recovery curve entry is invalid.
    #[error("recovering bandit: R[arm={arm}][idle={idle}] = {value}: {reason}")]
    Recovery {
        /// Arm index.
        arm: usize,
        /// Idle time (1-based).
        idle: usize,
        /// Value.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
}

pub(crate) fn param(
    what: &'static str,
    field: &'static str,
    value: impl ToString,
    reason: &'static str,
) -> BanditError {
    BanditError::Parameter {
        what,
        field,
        value: value.to_string(),
        reason,
    }
}
