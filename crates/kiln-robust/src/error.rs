//! Errors of the robust solvers and their file formats.

use std::path::PathBuf;

use kiln_envs::MdpError;
use thiserror::Error;

/// Everything that can go wrong loading models or running a solver.
#[derive(Debug, Error)]
pub enum RobustError {
    /// The MDP itself is invalid (names the state and action of a bad row).
    #[error(transparent)]
    Mdp(#[from] MdpError),
    /// A solver or set parameter is outside its range.
    #[error("{what}: `{field}` = {value}: {reason}")]
    Parameter {
        /// Solver or set name.
        what: &'static str,
        /// Field name.
        field: &'static str,
        /// Value as text.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Two objects that must agree in shape do not.
    #[error("{what}: {field} has {got} entries, expected {expected}{at}")]
    Shape {
        /// Which object.
        what: &'static str,
        /// Which field.
        field: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
        /// Location such as " at state 2".
        at: String,
    },
    /// A policy entry is invalid.
    #[error("policy: state {state}: {reason}")]
    Policy {
        /// State whose entry is wrong.
        state: usize,
        /// Why.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid JSON for the expected object.
    #[error("{path}: {message}")]
    Json {
        /// The file (or `<input>`).
        path: PathBuf,
        /// What is wrong, including line and column where known.
        message: String,
    },
    /// Writing a plot or a report failed.
    #[error(transparent)]
    Track(#[from] kiln_track::TrackError),
}

pub(crate) fn param(
    what: &'static str,
    field: &'static str,
    value: impl ToString,
    reason: impl Into<String>,
) -> RobustError {
    RobustError::Parameter {
        what,
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}
