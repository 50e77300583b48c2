//! Atomic file writes: a reader sees either the old file or the complete new
//! one, never a half-written file, even if the process dies mid-write.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::TrackError;

/// Serializes `value` as pretty JSON (with a trailing newline) and writes it
/// to `path` atomically (see [`write_bytes_atomic`]).
///
/// # Errors
/// [`TrackError::Json`] if `value` cannot be serialized (e.g. a map with
/// non-string keys), [`TrackError::Io`] if the file cannot be written.
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), TrackError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| TrackError::json(path, e))?;
    bytes.push(b'\n');
    write_bytes_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically: the data goes to a temporary file in
/// the same directory, which is fsynced and then renamed over `path`; the
/// directory is fsynced afterwards (best effort) so the rename survives a
/// power loss.
///
/// # Errors
/// [`TrackError::Io`] naming the temporary file or `path`. On error the
/// temporary file is removed and `path` is left untouched.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrackError> {
    let tmp = temp_sibling(path, "")?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| TrackError::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| TrackError::io(&tmp, e))?;
        file.sync_all().map_err(|e| TrackError::io(&tmp, e))?;
        drop(file);
        commit_temp(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A fresh, unused path in the same directory as `path`, for a temporary
/// file that will be renamed onto `path`. `extension` (e.g. `".png"`) is
/// appended so that writers which pick a format from the extension work.
pub(crate) fn temp_sibling(path: &Path, extension: &str) -> Result<PathBuf, TrackError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        TrackError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}-{n}{extension}", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

/// Renames a finished temporary file onto `path` and fsyncs the directory.
pub(crate) fn commit_temp(tmp: &Path, path: &Path) -> Result<(), TrackError> {
    fs::rename(tmp, path).map_err(|e| TrackError::io(path, e))?;
    sync_parent_dir(path);
    Ok(())
}

/// Fsyncs the directory containing `path` so a rename in it is durable.
/// Best effort: not every platform lets a directory be opened for syncing.
fn sync_parent_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leaving_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.md");
        write_bytes_atomic(&path, b"first").unwrap();
        write_bytes_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("table.md")]);
    }

    #[test]
    fn json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        let value = serde_json::json!({"a": [1, 2.5, null], "b": "text"});
        write_json_atomic(&path, &value).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("x.json");
        let err = write_bytes_atomic(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }
}
