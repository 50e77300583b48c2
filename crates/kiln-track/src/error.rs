//! The one error type of the crate. Every variant names the file involved.

use std::path::PathBuf;

/// What went wrong while tracking, reading or plotting a run.
///
/// Every variant carries the path it concerns (and the line number or key
/// where one applies), so a message is actionable without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// Reading, writing, creating or renaming a file or directory failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON document (config, summary) could not be parsed or serialized.
    #[error("invalid JSON in {}: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A complete (newline-terminated) line of a JSON-lines file is malformed.
    #[error("malformed line {line} of {}: {message}", path.display())]
    MetricsLine {
        /// The JSON-lines file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A metric name passed to [`RunDir::log`](crate::RunDir::log) is not allowed.
    #[error("invalid metric key {key:?} for {}: {reason}", path.display())]
    InvalidKey {
        /// The metrics file the key was meant for.
        path: PathBuf,
        /// The offending key.
        key: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A plot could not be drawn.
    #[error("cannot plot {}: {message}", path.display())]
    Plot {
        /// The output file (or stem) of the plot.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl TrackError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn plot(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Plot {
            path: path.into(),
            message: message.into(),
        }
    }
}
