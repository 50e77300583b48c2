//! Offline episode datasets: the type, its on-disk format, generation from
//! behaviour policies ([`generation`]) and the dataset measures TQ and SACo
//! of Schweighofer et al., "A Dataset Perspective on Offline Reinforcement
//! Learning" (CoLLAs 2022) ([`measures`]).
//!
//! # On-disk format (version 1)
//!
//! One [safetensors](https://github.com/huggingface/safetensors) file, so
//! Python reads it without Kiln:
//!
//! | tensor | dtype | shape |
//! |---|---|---|
//! | `observations` | F64 | `[T, obs_dim]` |
//! | `actions` | F64 | `[T, act_dim]` (discrete actions as their integer value) |
//! | `rewards` | F64 | `[T]` |
//! | `next_observations` | F64 | `[T, obs_dim]` |
//! | `terminations` | U8 | `[T]` (1 = terminal state reached) |
//! | `truncations` | U8 | `[T]` (1 = time limit; bootstrap from `next_observations`) |
//! | `episode_returns` | F64 | `[E]` (undiscounted, one per complete episode) |
//!
//! The header's `__metadata__` holds one key, `kiln_dataset`, whose value is
//! the JSON of [`DatasetMetadata`] (format version, env id and params,
//! spaces, behaviour policy, seed, notes).
//!
//! ```python
//! from safetensors.numpy import load_file
//! from safetensors import safe_open
//! import json
//! d = load_file("random.safetensors")
//! meta = json.loads(safe_open("random.safetensors", "np").metadata()["kiln_dataset"])
//! ```
//!
//! Files are written atomically (temporary file in the same directory, then rename).

pub mod generation;
pub mod measures;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::env::Action;
use crate::space::Space;

/// Current format version.
pub const FORMAT_VERSION: u32 = 1;

/// Dataset errors, naming the file and the field.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Not a valid safetensors file (truncated, corrupted header, ...).
    #[error("{path}: not a valid dataset file ({reason})")]
    Format {
        /// Path.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A tensor is missing or has the wrong dtype or shape.
    #[error("{path}: tensor `{field}`: {reason}")]
    Field {
        /// Path (or "<memory>").
        path: String,
        /// Tensor name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The metadata is missing or invalid.
    #[error("{path}: metadata: {reason}")]
    Metadata {
        /// Path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A transition does not fit the dataset's dimensions.
    #[error("transition {index}: `{field}` has {got} components, the dataset has {expected}")]
    Transition {
        /// Transition index.
        index: usize,
        /// Field.
        field: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// The environment failed during generation.
    #[error(transparent)]
    Env(#[from] crate::error::EnvError),
}

/// Dataset metadata (stored as JSON in the file header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMetadata {
    /// Format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Environment id.
    pub env_id: String,
    /// Environment parameters (`null` for defaults).
    pub env_params: serde_json::Value,
    /// Observation space.
    pub observation_space: Space,
    /// Action space.
    pub action_space: Space,
    /// Behaviour policy: `random`, `expert`, `noisy`, `mixed`, `replay` or a free name.
    pub behaviour_policy: String,
    /// Seed of the generation run.
    pub seed: u64,
    /// Free-form extra information (e.g. the online agent's best return for TQ).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An episode dataset of `T` transitions `(s, a, r, s', terminated, truncated)`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeDataset {
    /// Metadata.
    pub metadata: DatasetMetadata,
    obs_dim: usize,
    act_dim: usize,
    observations: Vec<f64>,
    actions: Vec<f64>,
    rewards: Vec<f64>,
    next_observations: Vec<f64>,
    terminations: Vec<bool>,
    truncations: Vec<bool>,
}

impl EpisodeDataset {
    /// An empty dataset for the spaces in `metadata`.
    pub fn new(metadata: DatasetMetadata) -> Self {
        Self {
            obs_dim: metadata.observation_space.raw_len(),
            act_dim: metadata.action_space.raw_len(),
            metadata,
            observations: vec![],
            actions: vec![],
            rewards: vec![],
            next_observations: vec![],
            terminations: vec![],
            truncations: vec![],
        }
    }

    /// Append one transition.
    pub fn push(
        &mut self,
        obs: &[f64],
        action: &Action,
        reward: f64,
        next_obs: &[f64],
        terminated: bool,
        truncated: bool,
    ) -> Result<(), DatasetError> {
        let index = self.len();
        let a = action.to_vec();
        for (field, got, expected) in [
            ("observation", obs.len(), self.obs_dim),
            ("next_observation", next_obs.len(), self.obs_dim),
            ("action", a.len(), self.act_dim),
        ] {
            if got != expected {
                return Err(DatasetError::Transition {
                    index,
                    field,
                    expected,
                    got,
                });
            }
        }
        self.observations.extend_from_slice(obs);
        self.actions.extend_from_slice(&a);
        self.rewards.push(reward);
        self.next_observations.extend_from_slice(next_obs);
        self.terminations.push(terminated);
        self.truncations.push(truncated);
        Ok(())
    }

    /// Number of transitions `T`.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }
    /// Whether there are no transitions.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }
    /// Observation length.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }
    /// Action length.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }
    /// Observation of transition `i`.
    pub fn observation(&self, i: usize) -> &[f64] {
        &self.observations[i * self.obs_dim..(i + 1) * self.obs_dim]
    }
    /// Action of transition `i` (as reals).
    pub fn action(&self, i: usize) -> &[f64] {
        &self.actions[i * self.act_dim..(i + 1) * self.act_dim]
    }
    /// Next observation of transition `i`.
    pub fn next_observation(&self, i: usize) -> &[f64] {
        &self.next_observations[i * self.obs_dim..(i + 1) * self.obs_dim]
    }
    /// All observations (`T × obs_dim`, row-major).
    pub fn observations(&self) -> &[f64] {
        &self.observations
    }
    /// All actions (`T × act_dim`).
    pub fn actions(&self) -> &[f64] {
        &self.actions
    }
    /// Rewards.
    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }
    /// All next observations.
    pub fn next_observations(&self) -> &[f64] {
        &self.next_observations
    }
    /// Termination flags.
    pub fn terminations(&self) -> &[bool] {
        &self.terminations
    }
    /// Truncation flags.
    pub fn truncations(&self) -> &[bool] {
        &self.truncations
    }

    /// Undiscounted returns of the complete episodes: rewards summed up to
    /// each `terminated || truncated`; a trailing partial episode is dropped
    /// (as `Evaluator.get_returns` in the paper's code).
    pub fn episode_returns(&self) -> Vec<f64> {
        let mut out = vec![];
        let mut g = 0.0;
        for i in 0..self.len() {
            g += self.rewards[i];
            if self.terminations[i] || self.truncations[i] {
                out.push(g);
                g = 0.0;
            }
        }
        out
    }

    /// Transitions `range` as a new dataset with the same metadata.
    pub fn slice(&self, range: std::ops::Range<usize>) -> EpisodeDataset {
        let (o, a) = (self.obs_dim, self.act_dim);
        let r = range.start.min(self.len())..range.end.min(self.len());
        EpisodeDataset {
            metadata: self.metadata.clone(),
            obs_dim: o,
            act_dim: a,
            observations: self.observations[r.start * o..r.end * o].to_vec(),
            actions: self.actions[r.start * a..r.end * a].to_vec(),
            rewards: self.rewards[r.clone()].to_vec(),
            next_observations: self.next_observations[r.start * o..r.end * o].to_vec(),
            terminations: self.terminations[r.clone()].to_vec(),
            truncations: self.truncations[r].to_vec(),
        }
    }

    /// Append all transitions of `other` (same dimensions required).
    pub fn extend(&mut self, other: &EpisodeDataset) -> Result<(), DatasetError> {
        if other.obs_dim != self.obs_dim || other.act_dim != self.act_dim {
            return Err(DatasetError::Transition {
                index: self.len(),
                field: "observation",
                expected: self.obs_dim,
                got: other.obs_dim,
            });
        }
        self.observations.extend_from_slice(&other.observations);
        self.actions.extend_from_slice(&other.actions);
        self.rewards.extend_from_slice(&other.rewards);
        self.next_observations
            .extend_from_slice(&other.next_observations);
        self.terminations.extend_from_slice(&other.terminations);
        self.truncations.extend_from_slice(&other.truncations);
        Ok(())
    }

    /// Write the dataset atomically (see the module docs for the format).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DatasetError> {
        let path = path.as_ref();
        let p = path.display().to_string();
        let t = self.len();
        let f64_bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let u8_bytes = |v: &[bool]| v.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>();
        let returns = self.episode_returns();
        let buffers: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
            (
                "observations",
                Dtype::F64,
                vec![t, self.obs_dim],
                f64_bytes(&self.observations),
            ),
            (
                "actions",
                Dtype::F64,
                vec![t, self.act_dim],
                f64_bytes(&self.actions),
            ),
            ("rewards", Dtype::F64, vec![t], f64_bytes(&self.rewards)),
            (
                "next_observations",
                Dtype::F64,
                vec![t, self.obs_dim],
                f64_bytes(&self.next_observations),
            ),
            (
                "terminations",
                Dtype::U8,
                vec![t],
                u8_bytes(&self.terminations),
            ),
            (
                "truncations",
                Dtype::U8,
                vec![t],
                u8_bytes(&self.truncations),
            ),
            (
                "episode_returns",
                Dtype::F64,
                vec![returns.len()],
                f64_bytes(&returns),
            ),
        ];
        let mut views = Vec::with_capacity(buffers.len());
        for (name, dtype, shape, data) in &buffers {
            let v =
                TensorView::new(*dtype, shape.clone(), data).map_err(|e| DatasetError::Format {
                    path: p.clone(),
                    reason: e.to_string(),
                })?;
            views.push((name.to_string(), v));
        }
        let meta_json =
            serde_json::to_string(&self.metadata).map_err(|e| DatasetError::Metadata {
                path: p.clone(),
                reason: e.to_string(),
            })?;
        let meta = HashMap::from([("kiln_dataset".to_string(), meta_json)]);
        let bytes = safetensors::tensor::serialize(views, Some(meta)).map_err(|e| {
            DatasetError::Format {
                path: p.clone(),
                reason: e.to_string(),
            }
        })?;
        write_atomically(path, &bytes)
    }

    /// Read a dataset written by [`EpisodeDataset::save`] (or by Python in the same layout).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let path = path.as_ref();
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
            path: p.clone(),
            source,
        })?;
        Self::from_bytes(&bytes, &p)
    }

    /// Parse the file contents; `path` only labels errors.
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, DatasetError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| DatasetError::Format {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| DatasetError::Format {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let meta_json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("kiln_dataset"))
            .ok_or_else(|| DatasetError::Metadata {
                path: path.to_string(),
                reason: "no `kiln_dataset` entry in __metadata__".into(),
            })?;
        let metadata: DatasetMetadata =
            serde_json::from_str(meta_json).map_err(|e| DatasetError::Metadata {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        if metadata.format_version != FORMAT_VERSION {
            return Err(DatasetError::Metadata {
                path: path.to_string(),
                reason: format!(
                    "format version {} (this Kiln reads {FORMAT_VERSION})",
                    metadata.format_version
                ),
            });
        }
        let mut ds = EpisodeDataset::new(metadata);
        let field_err = |field: &'static str, reason: String| DatasetError::Field {
            path: path.to_string(),
            field,
            reason,
        };
        let get = |field: &'static str,
                   dtype: Dtype,
                   cols: Option<usize>|
         -> Result<(usize, Vec<u8>), DatasetError> {
            let t = st
                .tensor(field)
                .map_err(|e| field_err(field, e.to_string()))?;
            if t.dtype() != dtype {
                return Err(field_err(
                    field,
                    format!("dtype {:?}, expected {dtype:?}", t.dtype()),
                ));
            }
            let shape = t.shape();
            let ok = match cols {
                Some(c) => shape.len() == 2 && shape[1] == c,
                None => shape.len() == 1,
            };
            if !ok {
                return Err(field_err(
                    field,
                    format!(
                        "shape {shape:?}, expected [T{}]",
                        cols.map(|c| format!(", {c}")).unwrap_or_default()
                    ),
                ));
            }
            Ok((shape[0], t.data().to_vec()))
        };
        let to_f64 = |b: Vec<u8>| {
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect::<Vec<f64>>()
        };
        let (t, obs) = get("observations", Dtype::F64, Some(ds.obs_dim))?;
        let (ta, act) = get("actions", Dtype::F64, Some(ds.act_dim))?;
        let (tr, rew) = get("rewards", Dtype::F64, None)?;
        let (tn, next) = get("next_observations", Dtype::F64, Some(ds.obs_dim))?;
        let (tt, term) = get("terminations", Dtype::U8, None)?;
        let (tu, trunc) = get("truncations", Dtype::U8, None)?;
        for (field, n) in [
            ("actions", ta),
            ("rewards", tr),
            ("next_observations", tn),
            ("terminations", tt),
            ("truncations", tu),
        ] {
            if n != t {
                return Err(field_err(
                    field,
                    format!("{n} rows, but `observations` has {t}"),
                ));
            }
        }
        ds.observations = to_f64(obs);
        ds.actions = to_f64(act);
        ds.rewards = to_f64(rew);
        ds.next_observations = to_f64(next);
        ds.terminations = term.iter().map(|&b| b != 0).collect();
        ds.truncations = trunc.iter().map(|&b| b != 0).collect();
        Ok(ds)
    }
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed and synced, then renamed over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let p = path.display().to_string();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |source| DatasetError::Io {
        path: p.clone(),
        source,
    };
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        DatasetError::Io {
            path: p.clone(),
            source,
        }
    })
}
