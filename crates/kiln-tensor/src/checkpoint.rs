//! Checkpoints: any module's weights as safetensors plus its JSON config, written atomically.
//!
//! `save_checkpoint(&module, &config, "runs/x/policy")` writes `runs/x/policy.safetensors` and
//! `runs/x/policy.json`. Loading applies the weights onto a module built from the config and
//! fails, naming the tensor, when a shape or a tensor does not match.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ApplyError, ModuleSnapshot, SafetensorsStore};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, TensorError};

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The weights file of a checkpoint stem.
pub fn weights_path(stem: &Path) -> PathBuf {
    with_ext(stem, "safetensors")
}

/// The config file of a checkpoint stem.
pub fn config_path(stem: &Path) -> PathBuf {
    with_ext(stem, "json")
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| TensorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// Saves a module's weights and its config under `stem` (`.safetensors` and `.json`).
pub fn save_checkpoint<M: Module, C: Serialize>(module: &M, config: &C, stem: &Path) -> Result<()> {
    let weights = weights_path(stem);
    let mut store = SafetensorsStore::from_bytes(None);
    module
        .save_into(&mut store)
        .map_err(|e| TensorError::Checkpoint {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    let bytes = store.get_bytes().map_err(|e| TensorError::Checkpoint {
        path: weights.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&weights, &bytes)?;
    let cfg = config_path(stem);
    let json = serde_json::to_vec_pretty(config).map_err(|source| TensorError::Json {
        path: cfg.clone(),
        source,
    })?;
    write_atomic(&cfg, &json)
}

/// Reads the JSON config of a checkpoint.
pub fn load_checkpoint_config<C: DeserializeOwned>(stem: &Path) -> Result<C> {
    let path = config_path(stem);
    let bytes = std::fs::read(&path).map_err(|source| TensorError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| TensorError::Json { path, source })
}

/// Loads the weights saved under `stem` into `module` (built with the same config).
pub fn load_checkpoint<M: Module>(mut module: M, stem: &Path) -> Result<M> {
    let path = weights_path(stem);
    let bytes = std::fs::read(&path).map_err(|source| TensorError::Io {
        path: path.clone(),
        source,
    })?;
    let fail = |message: String| TensorError::Checkpoint {
        path: path.clone(),
        message,
    };
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = module
        .load_from(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    if let Some(err) = result.errors.first() {
        return Err(fail(match err {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => format!(
                "tensor `{path}` has shape {found:?} in the file but the module expects {expected:?}"
            ),
            other => other.to_string(),
        }));
    }
    if let Some((name, _)) = result.missing.first() {
        return Err(fail(format!("tensor `{name}` is missing from the file")));
    }
    if let Some(name) = result.unused.first() {
        return Err(fail(format!(
            "tensor `{name}` in the file matches no parameter of the module"
        )));
    }
    Ok(module)
}
