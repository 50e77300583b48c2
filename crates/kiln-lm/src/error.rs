//! Errors of kiln-lm, each naming the file, tensor, key or value at fault.

use std::path::PathBuf;

/// Everything that can go wrong while loading, configuring or running a language model.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A model file is not what its header promises (truncated, bad magic, bad lengths).
    #[error("{path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offsets involved.
        what: String,
    },
    /// A tensor of a model file is missing, of an unsupported type or of the wrong shape.
    #[error("{path}: tensor `{tensor}`: {what}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name in that file.
        tensor: String,
        /// What is wrong.
        what: String,
    },
    /// A configuration value is missing or out of range.
    #[error("invalid config: `{key}` = {value}: {reason}")]
    Config {
        /// The key at fault (a `config.json` key, a GGUF metadata key or a CLI flag).
        key: String,
        /// The offending value.
        value: String,
        /// What the value must satisfy.
        reason: String,
    },
    /// The tokenizer could not be built or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
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
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, LmError>;

/// A [`LmError::Config`] for `key` = `value`.
pub fn invalid(
    key: impl Into<String>,
    value: impl std::fmt::Display,
    reason: impl Into<String>,
) -> LmError {
    LmError::Config {
        key: key.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LmError + '_ {
    move |source| LmError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn tensor_err(path: &std::path::Path, tensor: &str, what: impl Into<String>) -> LmError {
    LmError::Tensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        what: what.into(),
    }
}
