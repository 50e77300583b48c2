//! The error type of `kiln-tensor`.

use std::path::PathBuf;

/// Everything that can go wrong in `kiln-tensor`. Each variant names the input that failed.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// `KILN_DEVICE` (or a caller) asked for a backend that this build does not contain.
    #[error(
        "backend `{requested}` is not compiled into this build (compiled: {compiled}); \
         rebuild with `--features {requested}` or set KILN_DEVICE to one of the compiled backends"
    )]
    BackendNotCompiled {
        /// The backend asked for.
        requested: String,
        /// Comma-separated list of the backends compiled in.
        compiled: String,
    },
    /// `KILN_DEVICE` holds a name that is no backend at all.
    #[error("KILN_DEVICE=`{value}` is not a backend; expected one of flex, ndarray, wgpu")]
    UnknownBackend {
        /// The value that was given.
        value: String,
    },
    /// A `wgpu` device was asked for but no adapter could be found.
    #[error("no wgpu adapter found on this machine (asked for by {source_of_request})")]
    NoWgpuAdapter {
        /// Who asked for wgpu (`KILN_DEVICE` or the caller).
        source_of_request: String,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid value for `{field}`: {value} ({reason})")]
    InvalidConfig {
        /// The config field.
        field: &'static str,
        /// The offending value, printed.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Input slices or tensors do not have matching lengths or shapes.
    #[error("shape mismatch in `{what}`: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was being checked.
        what: &'static str,
        /// The expected length or shape.
        expected: String,
        /// The length or shape found.
        got: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON config could not be read or written.
    #[error("JSON error in `{path}`: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A checkpoint could not be decoded or does not fit the module.
    #[error("checkpoint `{path}`: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What was wrong, naming the tensor where one is at fault.
        message: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;
