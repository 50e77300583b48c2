//! Run directories: one directory per training run holding `config.json`,
//! `metrics.jsonl` (one JSON object per logged step) and `summary.json`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::atomic::{write_bytes_atomic, write_json_atomic};
use crate::error::TrackError;

/// File name of the run's configuration inside a run directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the per-step metrics log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// File name of the end-of-run summary inside a run directory.
pub const SUMMARY_FILE: &str = "summary.json";

/// Keys every metrics line has; [`RunDir::log`] refuses metrics with these names.
const RESERVED_KEYS: [&str; 2] = ["step", "wall_time_s"];

/// Everything needed to start a run directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Human-readable run name, e.g. `"ppo-CartPole-v1"`. Characters other
    /// than ASCII letters, digits, `-`, `_` and `.` become `_` in the
    /// directory name (so `"ALE/Pong-v5"` is safe).
    pub name: String,
    /// The command line that started the run.
    pub command: String,
    /// The run's random seed.
    pub seed: u64,
    /// The compute backend, e.g. `"ndarray"` or `"cuda"`.
    pub backend: String,
    /// The full configuration; written verbatim to `config.json`.
    pub config: Value,
    /// Version of the program that runs the experiment (usually the
    /// caller's `env!("CARGO_PKG_VERSION")`).
    pub kiln_version: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The run completed its budget.
    Finished,
    /// The run was stopped early (Ctrl-C, early return) without a panic.
    Interrupted,
    /// The run panicked or hit an error.
    Failed,
}

/// How much training a run did, in the unit natural to the algorithm.
/// Serialized as a single key of the summary: `"env_steps": n` or `"updates": n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    /// Environment steps taken (RL).
    EnvSteps(u64),
    /// Optimizer updates made (supervised / preference learning).
    Updates(u64),
}

/// Contents of `summary.json`, written once when a run ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Run name as given in [`RunSpec::name`] (empty in summaries written by
    /// other tools that lack it).
    #[serde(default)]
    pub name: String,
    /// Version of the program that ran the experiment.
    pub kiln_version: String,
    /// The command line that started the run.
    pub command: String,
    /// The run's random seed.
    pub seed: u64,
    /// The compute backend.
    pub backend: String,
    /// Wall-clock seconds from the creation of the run directory to its end.
    pub wall_time_s: f64,
    /// Amount of training done: key `env_steps` or `updates`.
    #[serde(flatten)]
    pub counter: Counter,
    /// How the run ended.
    pub status: RunStatus,
    /// Headline metrics, e.g. `eval_return_mean`, `eval_return_std`,
    /// `eval_episodes` for RL. Empty when the run did not finish.
    #[serde(rename = "final")]
    pub final_metrics: Map<String, Value>,
    /// Any other keys found in the file; kept so that they survive a
    /// read-modify-write.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A live run directory: created by [`RunDir::create`], fed by
/// [`RunDir::log`], closed by [`RunDir::finish`].
///
/// If it is dropped without `finish` (early return, `?`, panic), its `Drop`
/// writes a summary with status [`RunStatus::Failed`] when the thread is
/// panicking and [`RunStatus::Interrupted`] otherwise.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics_path: PathBuf,
    metrics: File,
    spec: RunSpec,
    started: Instant,
    last_step: u64,
    counter: Option<Counter>,
    finished: bool,
}

impl RunDir {
    /// Creates `root/<name>-s<seed>-<YYYYmmdd-HHMMSS>` (UTC; `-2`, `-3`, ...
    /// appended if that exists), writes `config.json` atomically and opens
    /// `metrics.jsonl` for appending. `root` is created if missing.
    ///
    /// # Errors
    /// [`TrackError::Io`] naming the directory or file that could not be
    /// created, [`TrackError::Json`] if the config cannot be serialized.
    pub fn create(root: &Path, spec: RunSpec) -> Result<RunDir, TrackError> {
        fs::create_dir_all(root).map_err(|e| TrackError::io(root, e))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let base = format!(
            "{}-s{}-{}",
            sanitize_name(&spec.name),
            spec.seed,
            utc_timestamp(now)
        );
        let path = create_unique_dir(root, &base)?;
        let metrics_path = path.join(METRICS_FILE);
        let opened = write_json_atomic(&path.join(CONFIG_FILE), &spec.config).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&metrics_path)
                .map_err(|e| TrackError::io(&metrics_path, e))
        });
        let metrics = match opened {
            Ok(file) => file,
            Err(e) => {
                // Leave no half-made run behind; the directory is ours, just created.
                let _ = fs::remove_dir_all(&path);
                return Err(e);
            }
        };
        Ok(RunDir {
            path,
            metrics_path,
            metrics,
            spec,
            started: Instant::now(),
            last_step: 0,
            counter: None,
            finished: false,
        })
    }

    /// The run directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seconds since [`RunDir::create`].
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Records how much training has been done so far; used by the summary
    /// that `Drop` writes if the run never reaches [`RunDir::finish`].
    /// Without it, that summary reports the last logged step as `env_steps`.
    pub fn set_counter(&mut self, counter: Counter) {
        self.counter = Some(counter);
    }

    /// Appends one line `{"step": step, "wall_time_s": .., "<name>": value, ...}`
    /// to `metrics.jsonl` with a single write, so a crash leaves every line
    /// written before it intact. Non-finite values are written as `null`.
    ///
    /// # Errors
    /// [`TrackError::InvalidKey`] for an empty, duplicated or reserved
    /// (`step`, `wall_time_s`) metric name; [`TrackError::Io`] if the write fails.
    pub fn log(&mut self, step: u64, metrics: &[(&str, f64)]) -> Result<(), TrackError> {
        let mut seen = HashSet::with_capacity(metrics.len());
        for (key, _) in metrics {
            let reason = if key.is_empty() {
                Some("metric names must not be empty")
            } else if RESERVED_KEYS.contains(key) {
                Some("`step` and `wall_time_s` are written by the logger itself")
            } else if !seen.insert(*key) {
                Some("metric logged twice in one call")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(TrackError::InvalidKey {
                    path: self.metrics_path.clone(),
                    key: (*key).to_string(),
                    reason,
                });
            }
        }
        let wall = (self.elapsed_s() * 1000.0).round() / 1000.0;
        let mut line = format!("{{\"step\":{step},\"wall_time_s\":{}", Value::from(wall));
        for (key, value) in metrics {
            line.push(',');
            line.push_str(&Value::from(*key).to_string());
            line.push(':');
            line.push_str(&Value::from(*value).to_string());
        }
        line.push_str("}\n");
        self.metrics
            .write_all(line.as_bytes())
            .and_then(|()| self.metrics.flush())
            .map_err(|e| TrackError::io(&self.metrics_path, e))?;
        self.last_step = step;
        Ok(())
    }

    /// Ends the run: fsyncs `metrics.jsonl` and writes `summary.json`
    /// atomically. Returns the summary written.
    ///
    /// # Errors
    /// [`TrackError::Io`] naming the file that could not be synced or written.
    pub fn finish(
        mut self,
        status: RunStatus,
        counter: Counter,
        final_metrics: Map<String, Value>,
    ) -> Result<Summary, TrackError> {
        // Whatever happens below, Drop must not write a second summary.
        self.finished = true;
        let synced = self
            .metrics
            .sync_all()
            .map_err(|e| TrackError::io(&self.metrics_path, e));
        let summary = self.summary(status, counter, final_metrics);
        write_json_atomic(&self.path.join(SUMMARY_FILE), &summary)?;
        synced.map(|()| summary)
    }

    fn summary(
        &self,
        status: RunStatus,
        counter: Counter,
        final_metrics: Map<String, Value>,
    ) -> Summary {
        Summary {
            name: self.spec.name.clone(),
            kiln_version: self.spec.kiln_version.clone(),
            command: self.spec.command.clone(),
            seed: self.spec.seed,
            backend: self.spec.backend.clone(),
            wall_time_s: self.elapsed_s(),
            counter,
            status,
            final_metrics,
            extra: Map::new(),
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let status = if std::thread::panicking() {
            RunStatus::Failed
        } else {
            RunStatus::Interrupted
        };
        let counter = self.counter.unwrap_or(Counter::EnvSteps(self.last_step));
        let _ = self.metrics.sync_all();
        let summary = self.summary(status, counter, Map::new());
        if let Err(e) = write_json_atomic(&self.path.join(SUMMARY_FILE), &summary) {
            eprintln!("kiln-track: could not write the summary of an unfinished run: {e}");
        }
    }
}

/// A run directory read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The run directory.
    pub path: PathBuf,
    /// Contents of `config.json`.
    pub config: Value,
    /// Contents of `summary.json`, `None` if the run never wrote one
    /// (killed with SIGKILL, still running).
    pub summary: Option<Summary>,
    /// The lines of `metrics.jsonl` in order (empty if the file is missing).
    pub metrics: Vec<Map<String, Value>>,
}

impl RunRecord {
    /// One metric over steps: `(step, value)` for every line that has a
    /// numeric `step` and a numeric `key` (lines where it is missing or
    /// `null` are skipped).
    pub fn series(&self, key: &str) -> Vec<(f64, f64)> {
        self.metrics
            .iter()
            .filter_map(|row| Some((row.get("step")?.as_f64()?, row.get(key)?.as_f64()?)))
            .collect()
    }
}

/// Reads a run directory: `config.json` (required), `summary.json` and
/// `metrics.jsonl` (optional).
///
/// A last line of `metrics.jsonl` without a terminating newline that does not
/// parse is a write cut short by a crash and is skipped.
///
/// # Errors
/// [`TrackError::Io`] if `config.json` is missing or a file cannot be read,
/// [`TrackError::Json`] if config or summary are malformed,
/// [`TrackError::MetricsLine`] naming the file and line of any other
/// malformed metrics line.
pub fn read_run(dir: &Path) -> Result<RunRecord, TrackError> {
    let config_path = dir.join(CONFIG_FILE);
    let config_bytes = fs::read(&config_path).map_err(|e| TrackError::io(&config_path, e))?;
    let config =
        serde_json::from_slice(&config_bytes).map_err(|e| TrackError::json(&config_path, e))?;

    let summary_path = dir.join(SUMMARY_FILE);
    let summary = match fs::read(&summary_path) {
        Ok(bytes) => {
            Some(serde_json::from_slice(&bytes).map_err(|e| TrackError::json(&summary_path, e))?)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(TrackError::io(&summary_path, e)),
    };

    let metrics_path = dir.join(METRICS_FILE);
    let metrics = match fs::read(&metrics_path) {
        Ok(bytes) => parse_json_lines(&metrics_path, &bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(TrackError::io(&metrics_path, e)),
    };

    Ok(RunRecord {
        path: dir.to_path_buf(),
        config,
        summary,
        metrics,
    })
}

/// Reads every run directory directly under `root` (sub-directories that
/// contain `config.json`), sorted by directory name.
///
/// # Errors
/// [`TrackError::Io`] if `root` cannot be listed, or any error of
/// [`read_run`] for the first run that cannot be read.
pub fn list_runs(root: &Path) -> Result<Vec<RunRecord>, TrackError> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root).map_err(|e| TrackError::io(root, e))? {
        let entry = entry.map_err(|e| TrackError::io(root, e))?;
        let path = entry.path();
        if path.is_dir() && path.join(CONFIG_FILE).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    dirs.iter().map(|d| read_run(d)).collect()
}

/// Parses JSON lines, each an object. Blank lines are ignored; an unparsable
/// final line without a newline is taken as a crash mid-write and skipped.
fn parse_json_lines(path: &Path, bytes: &[u8]) -> Result<Vec<Map<String, Value>>, TrackError> {
    let mut rows = Vec::new();
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let is_last = lines.peek().is_none();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(row)) => rows.push(row),
            Ok(_) => {
                return Err(TrackError::MetricsLine {
                    path: path.to_path_buf(),
                    line: index + 1,
                    message: "not a JSON object".to_string(),
                });
            }
            // `is_last` here means the file did not end with '\n'.
            Err(_) if is_last => {}
            Err(e) => {
                return Err(TrackError::MetricsLine {
                    path: path.to_path_buf(),
                    line: index + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(rows)
}

/// Makes `root/base`, or `root/base-2`, `root/base-3`, ... if taken.
fn create_unique_dir(root: &Path, base: &str) -> Result<PathBuf, TrackError> {
    const MAX_ATTEMPTS: u32 = 10_000;
    for n in 1..=MAX_ATTEMPTS {
        let name = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        let path = root.join(name);
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TrackError::io(&path, e)),
        }
    }
    Err(TrackError::io(
        root.join(base),
        io::Error::new(io::ErrorKind::AlreadyExists, "too many runs with this name"),
    ))
}

/// Keeps ASCII letters, digits, `-`, `_`, `.`; replaces anything else by `_`.
fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "run".to_string()
    } else {
        cleaned
    }
}

/// Formats UNIX seconds as a UTC `YYYYmmdd-HHMMSS` timestamp.
fn utc_timestamp(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Gregorian (year, month, day) of a day count since 1970-01-01, after
/// Howard Hinnant's `civil_from_days` (restricted to dates from 1970 on).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str) -> RunSpec {
        RunSpec {
            name: name.to_string(),
            command: "kiln train ppo --env CartPole-v1".to_string(),
            seed: 7,
            backend: "ndarray".to_string(),
            config: json!({"lr": 3e-4, "env": "CartPole-v1"}),
            kiln_version: "0.1.0".to_string(),
        }
    }

    #[test]
    fn utc_timestamps_known_dates() {
        assert_eq!(utc_timestamp(0), "19700101-000000");
        assert_eq!(utc_timestamp(951_782_400), "20000229-000000"); // leap day
        assert_eq!(utc_timestamp(951_868_799), "20000229-235959");
        assert_eq!(utc_timestamp(951_868_800), "20000301-000000");
        assert_eq!(utc_timestamp(1_700_000_000), "20231114-221320");
        assert_eq!(utc_timestamp(4_107_542_399), "21000228-235959"); // 2100 is no leap year
        assert_eq!(utc_timestamp(1_709_208_000), "20240229-120000");
    }

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize_name("ppo-CartPole-v1"), "ppo-CartPole-v1");
        assert_eq!(sanitize_name("dqn-ALE/Pong-v5"), "dqn-ALE_Pong-v5");
        assert_eq!(sanitize_name(""), "run");
    }

    #[test]
    fn create_log_finish_read_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(root.path(), spec("ppo-CartPole-v1")).unwrap();
        let dir_name = run
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(dir_name.starts_with("ppo-CartPole-v1-s7-"), "{dir_name}");
        assert_eq!(dir_name.len(), "ppo-CartPole-v1-s7-".len() + 15);

        run.log(100, &[("return", 12.5), ("loss", 0.25)]).unwrap();
        run.log(
            200,
            &[("return", 30.0), ("loss", f64::NAN), ("kl", f64::INFINITY)],
        )
        .unwrap();
        let mut final_metrics = Map::new();
        final_metrics.insert("eval_return_mean".into(), json!(187.2));
        final_metrics.insert("eval_return_std".into(), json!(3.5));
        final_metrics.insert("eval_episodes".into(), json!(10));
        let path = run.path().to_path_buf();
        let written = run
            .finish(RunStatus::Finished, Counter::EnvSteps(200), final_metrics)
            .unwrap();

        let raw: Value =
            serde_json::from_slice(&fs::read(path.join(SUMMARY_FILE)).unwrap()).unwrap();
        for key in [
            "kiln_version",
            "command",
            "seed",
            "backend",
            "wall_time_s",
            "env_steps",
            "status",
            "final",
        ] {
            assert!(raw.get(key).is_some(), "summary lacks {key}: {raw}");
        }
        assert_eq!(raw["status"], "finished");
        assert_eq!(raw["env_steps"], 200);
        assert_eq!(raw["final"]["eval_episodes"], 10);

        let record = read_run(&path).unwrap();
        assert_eq!(record.config, json!({"lr": 3e-4, "env": "CartPole-v1"}));
        assert_eq!(record.summary.as_ref(), Some(&written));
        assert_eq!(record.metrics.len(), 2);
        assert_eq!(record.metrics[1]["loss"], Value::Null);
        assert_eq!(record.metrics[1]["kl"], Value::Null);
        assert!(record.metrics[0]["wall_time_s"].as_f64().unwrap() >= 0.0);
        assert_eq!(record.series("return"), vec![(100.0, 12.5), (200.0, 30.0)]);
        assert_eq!(record.series("loss"), vec![(100.0, 0.25)]);
        assert!(record.series("absent").is_empty());
    }

    #[test]
    fn every_line_is_valid_json_as_written() {
        let root = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(root.path(), spec("x")).unwrap();
        run.log(1, &[("weird \"name\"\n", -0.0), ("big", 1e308)])
            .unwrap();
        let text = fs::read_to_string(run.path().join(METRICS_FILE)).unwrap();
        let row: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(row["big"], 1e308);
        assert!(row.get("weird \"name\"\n").is_some());
    }

    #[test]
    fn rejects_reserved_duplicate_and_empty_keys() {
        let root = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(root.path(), spec("x")).unwrap();
        for bad in [
            &[("step", 1.0)][..],
            &[("a", 1.0), ("a", 2.0)],
            &[("", 1.0)],
        ] {
            match run.log(1, bad) {
                Err(TrackError::InvalidKey { path, .. }) => assert!(path.ends_with(METRICS_FILE)),
                other => panic!("expected InvalidKey, got {other:?}"),
            }
        }
    }

    #[test]
    fn same_name_same_second_gets_suffix() {
        let root = tempfile::tempdir().unwrap();
        let base = "ppo-s7-20240229-120000";
        let a = create_unique_dir(root.path(), base).unwrap();
        let b = create_unique_dir(root.path(), base).unwrap();
        let c = create_unique_dir(root.path(), base).unwrap();
        assert!(a.ends_with(base));
        assert!(b.ends_with(format!("{base}-2")));
        assert!(c.ends_with(format!("{base}-3")));
    }

    #[test]
    fn drop_without_finish_writes_interrupted() {
        let root = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(root.path(), spec("x")).unwrap();
        run.log(500, &[("return", 1.0)]).unwrap();
        let path = run.path().to_path_buf();
        drop(run);
        let summary = read_run(&path).unwrap().summary.unwrap();
        assert_eq!(summary.status, RunStatus::Interrupted);
        assert_eq!(summary.counter, Counter::EnvSteps(500));
        assert!(summary.final_metrics.is_empty());
    }

    #[test]
    fn drop_while_panicking_writes_failed() {
        let root = tempfile::tempdir().unwrap();
        let root_path = root.path().to_path_buf();
        let result = std::panic::catch_unwind(move || {
            let mut run = RunDir::create(&root_path, spec("x")).unwrap();
            run.set_counter(Counter::Updates(3));
            panic!("training diverged");
        });
        assert!(result.is_err());
        let runs = list_runs(root.path()).unwrap();
        let summary = runs[0].summary.as_ref().unwrap();
        assert_eq!(summary.status, RunStatus::Failed);
        assert_eq!(summary.counter, Counter::Updates(3));
    }

    #[test]
    fn truncated_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CONFIG_FILE), "{}").unwrap();
        fs::write(
            dir.path().join(METRICS_FILE),
            "{\"step\":1,\"r\":1.0}\n{\"step\":2,\"r\":2.0}\n{\"step\":3,\"r\":3.",
        )
        .unwrap();
        let record = read_run(dir.path()).unwrap();
        assert_eq!(record.series("r"), vec![(1.0, 1.0), (2.0, 2.0)]);
        assert!(record.summary.is_none());
    }

    #[test]
    fn malformed_middle_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CONFIG_FILE), "{}").unwrap();
        fs::write(
            dir.path().join(METRICS_FILE),
            "{\"step\":1}\n{\"step\":2,\n{\"step\":3}\n",
        )
        .unwrap();
        let err = read_run(dir.path()).unwrap_err();
        match &err {
            TrackError::MetricsLine { path, line, .. } => {
                assert!(path.ends_with(METRICS_FILE));
                assert_eq!(*line, 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("line 2"), "{err}");

        // A complete but malformed last line (it has its newline) is an error too.
        fs::write(dir.path().join(METRICS_FILE), "{\"step\":1}\n[1,2]\n").unwrap();
        assert!(matches!(
            read_run(dir.path()),
            Err(TrackError::MetricsLine { line: 2, .. })
        ));
    }

    #[test]
    fn missing_config_and_bad_summary_name_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_run(dir.path()).unwrap_err();
        assert!(err.to_string().contains(CONFIG_FILE), "{err}");
        fs::write(dir.path().join(CONFIG_FILE), "{}").unwrap();
        fs::write(dir.path().join(SUMMARY_FILE), "{\"status\": 3}").unwrap();
        let err = read_run(dir.path()).unwrap_err();
        assert!(matches!(&err, TrackError::Json { path, .. } if path.ends_with(SUMMARY_FILE)));
    }

    #[test]
    fn summary_keeps_unknown_keys_and_updates_counter() {
        let text = r#"{"kiln_version":"0.1.0","command":"c","seed":1,"backend":"b",
            "wall_time_s":2.5,"updates":40,"status":"interrupted","final":{},
            "git_commit":"abc123"}"#;
        let summary: Summary = serde_json::from_str(text).unwrap();
        assert_eq!(summary.counter, Counter::Updates(40));
        assert_eq!(summary.status, RunStatus::Interrupted);
        assert_eq!(summary.name, "");
        assert_eq!(summary.extra.get("git_commit"), Some(&json!("abc123")));
        assert!(!summary.extra.contains_key("updates"));
        let back = serde_json::to_value(&summary).unwrap();
        assert_eq!(back["git_commit"], "abc123");
        assert_eq!(back["updates"], 40);
    }

    #[test]
    fn list_runs_sorted_and_ignores_other_entries() {
        let root = tempfile::tempdir().unwrap();
        for name in ["b-run", "a-run"] {
            let d = root.path().join(name);
            fs::create_dir(&d).unwrap();
            fs::write(d.join(CONFIG_FILE), "{}").unwrap();
        }
        fs::create_dir(root.path().join("not-a-run")).unwrap();
        fs::write(root.path().join("stray.txt"), "x").unwrap();
        let runs = list_runs(root.path()).unwrap();
        let names: Vec<_> = runs
            .iter()
            .map(|r| r.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a-run", "b-run"]);
    }
}
