//! Errors of the learners, each naming the input that failed and why.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, training, saving or loading a learner.
#[derive(Debug, thiserror::Error)]
pub enum RlError {
    /// A configuration value is out of range.
    #[error("invalid config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The serde key of the field at fault.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },
    /// A config file could not be parsed (unknown key, wrong type, ...).
    #[error("cannot read config {path}: {source}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// serde's message, which names the unknown or mistyped key.
        source: serde_json::Error,
    },
    /// A config given as JSON could not be parsed (unknown key, wrong type, ...).
    #[error("invalid {algo} config: {source}")]
    ConfigValue {
        /// The learner whose config it is.
        algo: &'static str,
        /// serde's message, which names the unknown or mistyped key.
        source: serde_json::Error,
    },
    /// `--algo` names no known learner.
    #[error("unknown learner `{algo}` (known: {known})")]
    UnknownAlgo {
        /// The name given.
        algo: String,
        /// The known names.
        known: String,
    },
    /// The environment's spaces are not supported by this learner.
    #[error("environment {env}: {what} space {space} is not supported by {algo}")]
    UnsupportedSpace {
        /// The environment id.
        env: String,
        /// `observation` or `action`.
        what: &'static str,
        /// The space, described.
        space: String,
        /// The learner.
        algo: &'static str,
    },
    /// An observation or action has the wrong length.
    #[error("{what}: expected length {expected}, got {got}")]
    Shape {
        /// What was passed.
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A checkpoint belongs to another learner or environment.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint stem.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// An environment error.
    #[error(transparent)]
    Env(#[from] kiln_envs::EnvError),
    /// A tensor, optimizer or checkpoint error.
    #[error(transparent)]
    Tensor(#[from] kiln_tensor::TensorError),
    /// A tracking (run directory) error.
    #[error(transparent)]
    Track(#[from] kiln_track::TrackError),
}

/// Result with [`RlError`].
pub type Result<T, E = RlError> = std::result::Result<T, E>;
