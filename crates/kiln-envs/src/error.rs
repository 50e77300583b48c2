//! Typed errors. Every variant names the environment (or data set) and the
//! field, index and value that failed, so a user can act on the message.

use thiserror::Error;

/// Errors raised by environments, spaces, wrappers and the registry.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EnvError {
    /// A continuous action component lies outside the action space.
    #[error("{env}: action[{index}] = {value} is outside the action space [{low}, {high}]")]
    ActionOutOfBounds {
        /// Environment id.
        env: String,
        /// Component index.
        index: usize,
        /// Offending value.
        value: f64,
        /// Lower bound of that component.
        low: f64,
        /// Upper bound of that component.
        high: f64,
    },
    /// A continuous action component is NaN or infinite.
    #[error("{env}: action[{index}] = {value} is not a finite number")]
    ActionNotFinite {
        /// Environment id.
        env: String,
        /// Component index.
        index: usize,
        /// Offending value.
        value: f64,
    },
    /// The action has the wrong number of components.
    #[error("{env}: action has {got} components, the action space has {expected}")]
    ActionLength {
        /// Environment id.
        env: String,
        /// Expected length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// A discrete (or multi-discrete) action is outside `start..start + n`.
    #[error("{env}: action[{index}] = {value} is outside the discrete range {start}..{end}")]
    DiscreteOutOfRange {
        /// Environment id.
        env: String,
        /// Component index (0 for `Discrete`).
        index: usize,
        /// Offending value.
        value: i64,
        /// First valid value.
        start: i64,
        /// One past the last valid value.
        end: i64,
    },
    /// The action is of the wrong kind (e.g. continuous for a discrete space).
    #[error("{env}: expected a {expected} action, got a {got} action")]
    ActionKind {
        /// Environment id.
        env: String,
        /// Expected kind.
        expected: &'static str,
        /// Received kind.
        got: &'static str,
    },
    /// `step` was called before `reset` or after the episode ended.
    #[error("{env}: step called {when}; call reset first")]
    NeedsReset {
        /// Environment id.
        env: String,
        /// "before the first reset" or "after the episode ended".
        when: &'static str,
    },
    /// A state vector has the wrong length.
    #[error("{env}: state has {got} components, expected {expected} ({names})")]
    StateLength {
        /// Environment id.
        env: String,
        /// Expected length.
        expected: usize,
        /// Received length.
        got: usize,
        /// Names of the components, in order.
        names: &'static str,
    },
    /// A state component is invalid (NaN, negative population, ...).
    #[error("{env}: state[{index}] ({name}) = {value}: {reason}")]
    InvalidState {
        /// Environment id.
        env: String,
        /// Component index.
        index: usize,
        /// Component name.
        name: &'static str,
        /// Offending value.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A physics/model parameter is invalid.
    #[error("{env}: parameter `{field}` = {value}: {reason}")]
    InvalidParam {
        /// Environment id.
        env: String,
        /// Parameter name.
        field: String,
        /// Offending value, as text.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The JSON parameters could not be parsed (unknown field, wrong type).
    #[error("{env}: cannot parse parameters: {reason}")]
    ParamsJson {
        /// Environment id.
        env: String,
        /// serde's message (names the unknown field or the expected type).
        reason: String,
    },
    /// `make` was given an id that is not registered.
    #[error("unknown environment id `{id}`; known ids: {known}")]
    UnknownId {
        /// Requested id.
        id: String,
        /// Comma-separated list of registered ids.
        known: String,
    },
    /// The environment does not implement an optional capability.
    #[error("{env}: {what} is not supported by this environment")]
    Unsupported {
        /// Environment id.
        env: String,
        /// Capability, e.g. "render" or "set_state".
        what: &'static str,
    },
    /// An observation buffer has the wrong length.
    #[error("{env}: observation buffer has {got} slots, the observation has {expected}")]
    ObservationBuffer {
        /// Environment id.
        env: String,
        /// Expected length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// A vectorized call received the wrong number of actions.
    #[error("vector env of {n_envs} copies of {env}: got {got} actions")]
    VectorLength {
        /// Environment id.
        env: String,
        /// Number of copies.
        n_envs: usize,
        /// Number of actions received.
        got: usize,
    },
    /// A space is malformed (low > high, shape mismatch, n = 0).
    #[error("invalid space: {reason}")]
    InvalidSpace {
        /// What is wrong.
        reason: String,
    },
}

impl EnvError {
    /// Shorthand for [`EnvError::InvalidParam`].
    pub(crate) fn param(env: &str, field: &str, value: impl ToString, reason: &str) -> Self {
        Self::InvalidParam {
            env: env.to_string(),
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}
