//! Models as data: tabular MDPs, uncertainty sets, policies and solutions in
//! JSON.
//!
//! A tabular MDP file is
//! `{"n_states": S, "n_actions": A, "gamma": g, "transitions": P[s][a][s'],
//! "rewards": R[s][a], "initial": mu[s]}`; extra keys (comments, provenance)
//! are allowed and ignored. Loading validates it: a row that does not sum to
//! one, a negative entry or a wrong length is reported with its state and
//! action.

use std::path::Path;

use kiln_envs::TabularMdp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::RobustError;
use crate::robust_vi::RobustSolution;

const MDP_KEYS: [&str; 6] = [
    "n_states",
    "n_actions",
    "gamma",
    "transitions",
    "rewards",
    "initial",
];

fn read(path: &Path) -> Result<String, RobustError> {
    std::fs::read_to_string(path).map_err(|source| RobustError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn json_err(path: &Path, e: impl std::fmt::Display) -> RobustError {
    RobustError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Parse and validate a tabular MDP from JSON text (`origin` names it in errors).
pub fn parse_mdp(text: &str, origin: &Path) -> Result<TabularMdp, RobustError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| json_err(origin, e))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(json_err(origin, "a tabular MDP must be a JSON object"));
    };
    if let Some(missing) = MDP_KEYS.iter().find(|k| !map.contains_key(**k)) {
        return Err(json_err(origin, format!("missing key `{missing}`")));
    }
    map.retain(|k, _| MDP_KEYS.contains(&k.as_str()));
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| json_err(origin, e))
}

/// Load and validate a tabular MDP file.
pub fn load_mdp(path: &Path) -> Result<TabularMdp, RobustError> {
    parse_mdp(&read(path)?, path)
}

/// Load any JSON object of this crate (an [`UncertaintySet`](crate::UncertaintySet),
/// a [`Policy`](crate::Policy), a [`StaticModels`](crate::static_models::StaticModels)).
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T, RobustError> {
    serde_json::from_str(&read(path)?).map_err(|e| json_err(path, e))
}

/// Write any serialisable object as pretty JSON, atomically.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RobustError> {
    kiln_track::write_json_atomic(path, value)?;
    Ok(())
}

/// A flat `[s][a][s']` kernel as nested arrays.
pub fn nested_kernel(kernel: &[f64], n_states: usize, n_actions: usize) -> Vec<Vec<Vec<f64>>> {
    (0..n_states)
        .map(|s| {
            (0..n_actions)
                .map(|a| {
                    kernel[(s * n_actions + a) * n_states..(s * n_actions + a + 1) * n_states]
                        .to_vec()
                })
                .collect()
        })
        .collect()
}

/// The JSON object `kiln robust solve` prints: `value` per state, `policy`
/// (an action or a distribution per state), `worst_kernel[s][a][s']`, and the
/// solver diagnostics.
pub fn solution_json(
    solution: &RobustSolution,
    mdp: &TabularMdp,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut out = serde_json::json!({
        "value": solution.value,
        "policy": solution.policy,
        "worst_kernel": nested_kernel(&solution.worst_kernel, mdp.n_states, mdp.n_actions),
        "iterations": solution.iterations,
        "residual": solution.residual,
        "gamma": mdp.gamma,
    });
    if let (Some(o), serde_json::Value::Object(e)) = (out.as_object_mut(), extra) {
        o.extend(e);
    }
    out
}
