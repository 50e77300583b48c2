//! Errors of kiln-align, each naming the key, value, task or file at fault.

use std::path::PathBuf;

/// Everything that can go wrong while configuring or running an alignment experiment.
#[derive(Debug, thiserror::Error)]
pub enum AlignError {
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
    /// A task name that no generator knows.
    #[error("unknown task {name:?}: expected one of addition, multiplication, countdown, linear")]
    UnknownTask {
        /// The name given.
        name: String,
    },
    /// A text contains a character outside the vocabulary.
    #[error("character {ch:?} in {text:?} is not in the vocabulary")]
    UnknownChar {
        /// The character.
        ch: char,
        /// The text it came from.
        text: String,
    },
    /// A sequence does not fit into the model's context window.
    #[error("sequence of {len} tokens exceeds the context window of {max} tokens")]
    TooLong {
        /// Length of the sequence.
        len: usize,
        /// The model's context length.
        max: usize,
    },
    /// Inputs of mismatched shapes.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// What was passed.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Size given.
        got: usize,
    },
    /// A language-model failure (loading, shapes, token ids).
    #[error("model: {0}")]
    Model(String),
    /// A tensor-glue failure (optimizer settings, checkpoints, Step Law).
    #[error(transparent)]
    Tensor(#[from] kiln_tensor::TensorError),
    /// A run-directory, plot or file failure.
    #[error(transparent)]
    Track(#[from] kiln_track::TrackError),
    /// A callback failure.
    #[error(transparent)]
    Rl(#[from] kiln_rl::RlError),
    /// An I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result alias of kiln-align.
pub type Result<T, E = AlignError> = std::result::Result<T, E>;

pub(crate) fn invalid(
    field: &'static str,
    value: impl ToString,
    reason: &'static str,
) -> AlignError {
    AlignError::InvalidConfig {
        field,
        value: value.to_string(),
        reason,
    }
}
