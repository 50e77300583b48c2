//! The `kiln` binary end to end.

use std::path::Path;
use std::process::{Command, Output};

use kiln_track::{Counter, RunDir, RunSpec, RunStatus};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env_remove("KILN_DEVICE")
        .output()
        .expect("kiln runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn info_json_names_version_backends_and_device() {
    let o = kiln(&["info", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["kiln_version"], env!("CARGO_PKG_VERSION"));
    let compiled: Vec<&str> = v["compiled_backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(compiled.contains(&"flex"));
    assert!(compiled.contains(&v["backend"].as_str().unwrap()));
    assert!(!v["reason"].as_str().unwrap().is_empty());
}

#[test]
fn info_text_and_bad_device_error() {
    let o = kiln(&["info"]);
    assert!(stdout(&o).contains("compiled backends"));
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["info"])
        .env("KILN_DEVICE", "tpu")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tpu"));
}

#[test]
fn unknown_subcommands_and_flags_are_usage_errors() {
    for args in [&["frobnicate"][..], &["info", "--nope"], &["runs", "show"]] {
        let o = kiln(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Usage"),
            "{args:?}"
        );
    }
}

fn make_run(root: &Path, seed: u64, offset: f64) -> std::path::PathBuf {
    let mut run = RunDir::create(
        root,
        RunSpec {
            name: "ppo-CartPole-v1".into(),
            command: "test".into(),
            seed,
            backend: "flex".into(),
            config: serde_json::json!({"lr": 3e-4}),
            kiln_version: "0.1.0".into(),
        },
    )
    .unwrap();
    for step in 1..=5u64 {
        run.log(
            step * 100,
            &[("episode_return", offset + step as f64 * 10.0)],
        )
        .unwrap();
    }
    let path = run.path().to_path_buf();
    let mut fin = serde_json::Map::new();
    fin.insert("eval_return_mean".into(), (offset + 50.0).into());
    run.finish(RunStatus::Finished, Counter::EnvSteps(500), fin)
        .unwrap();
    path
}

#[test]
fn runs_list_show_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_run(dir.path(), 1, 0.0);
    let b = make_run(dir.path(), 2, 5.0);
    let root = dir.path().to_str().unwrap();

    let o = kiln(&["runs", "list", "--out", root]);
    assert!(o.status.success(), "{o:?}");
    let s = stdout(&o);
    assert!(
        s.contains("ppo-CartPole-v1-s1") && s.contains("ppo-CartPole-v1-s2"),
        "{s}"
    );
    assert!(
        s.contains("finished") && s.contains("eval_return_mean=50"),
        "{s}"
    );

    let o = kiln(&["runs", "show", a.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("\"status\": \"finished\""));

    let fig = dir.path().join("fig.png");
    let o = kiln(&[
        "runs",
        "plot",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        fig.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(std::fs::metadata(&fig).unwrap().len() > 10_000);
    assert!(dir.path().join("fig.svg").exists());

    let o = kiln(&["runs", "plot", a.to_str().unwrap(), "--metric", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
    let o = kiln(&["runs", "show", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn env_list_rollout_and_errors() {
    let o = kiln(&["env", "list"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("CartPole-v1"));
    // CartPole from a given state: one JSON line per step, stopping at termination.
    let o = kiln(&[
        "env",
        "rollout",
        "--env",
        "CartPole-v1",
        "--state",
        "0,0,0.2,0",
        "--actions",
        "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
    ]);
    assert!(o.status.success(), "{o:?}");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty() && lines.len() < 20, "{}", lines.len());
    assert_eq!(lines.last().unwrap()["terminated"], true);
    assert_eq!(lines[0]["t"], 0);
    let o = kiln(&[
        "env",
        "rollout",
        "--env",
        "Nope-v0",
        "--seed",
        "0",
        "--actions",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CartPole-v1"));
}

#[test]
fn env_render_writes_a_gif() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("ep.gif");
    let o = kiln(&[
        "--out",
        gif.to_str().unwrap(),
        "env",
        "render",
        "--env",
        "CartPole-v1",
        "--episodes",
        "1",
    ]);
    assert!(o.status.success(), "{o:?}");
    let bytes = std::fs::read(&gif).unwrap();
    assert_eq!(&bytes[..6], b"GIF89a");
}

#[test]
fn robust_solve_and_repro() {
    let dir = tempfile::tempdir().unwrap();
    let mdp = dir.path().join("mdp.json");
    std::fs::write(
        &mdp,
        r#"{"n_states": 2, "n_actions": 2, "gamma": 0.9,
           "transitions": [[[1.0, 0.0], [0.9, 0.1]], [[0.0, 1.0], [0.0, 1.0]]],
           "rewards": [[0.5, 1.0], [0.0, 0.0]], "initial": [1.0, 0.0]}"#,
    )
    .unwrap();
    let o = kiln(&[
        "robust",
        "solve",
        "--mdp",
        mdp.to_str().unwrap(),
        "--set",
        "l1",
        "--radius",
        "0.1",
    ]);
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
    assert!(v["worst_kernel"].is_array() && v["policy"].is_array());
    // A row that does not sum to one names the state and action.
    std::fs::write(
        &mdp,
        r#"{"n_states": 2, "n_actions": 2, "gamma": 0.9,
           "transitions": [[[1.0, 0.0], [0.8, 0.1]], [[0.0, 1.0], [0.0, 1.0]]],
           "rewards": [[0.5, 1.0], [0.0, 0.0]], "initial": [1.0, 0.0]}"#,
    )
    .unwrap();
    let o = kiln(&[
        "robust",
        "solve",
        "--mdp",
        mdp.to_str().unwrap(),
        "--set",
        "l1",
        "--radius",
        "0.1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("s=0") && err.contains("a=1"), "{err}");

    let o = kiln(&["repro", "--list"]);
    assert!(stdout(&o).contains("iwocs"));
    let root = dir.path().to_str().unwrap();
    let o = kiln(&["--quiet", "--out", root, "repro", "causal-ivl", "--quick"]);
    assert!(o.status.success(), "{o:?}");
    assert!(dir.path().join("repro/causal-ivl.md").exists());
    let o = kiln(&["--quiet", "--out", root, "repro", "fishery", "--quick"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("CMort"), "{o:?}");
    assert!(dir.path().join("repro/fishery_policy.png").exists());
    let o = kiln(&["repro", "no-such-row"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("iwocs"));
}

#[test]
fn train_ppo_writes_a_complete_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let o = kiln(&[
        "--quiet",
        "--out",
        root,
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--steps",
        "1024",
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{o:?}");
    let run = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    for f in [
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "learning_curve.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing in {}", run.display());
    }
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    for key in [
        "kiln_version",
        "command",
        "seed",
        "backend",
        "wall_time_s",
        "env_steps",
        "status",
    ] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}: {s}");
    }
    assert_eq!(s["status"], "finished");
    assert_eq!(s["seed"], 3);
    let trained_mean = s["final"]["eval_return_mean"].as_f64().unwrap();
    assert!(trained_mean > 0.0);
    let o = kiln(&["train", "--algo", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ppo"), "{o:?}");

    // `kiln eval` reloads the checkpoint: the same seeds give the same returns as the summary.
    let run_s = run.to_str().unwrap();
    let o = kiln(&[
        "--quiet",
        "eval",
        "--run",
        run_s,
        "--episodes",
        "20",
        "--render",
    ]);
    assert!(o.status.success(), "{o:?}");
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(e["eval_return_mean"].as_f64().unwrap(), trained_mean);
    assert_eq!(e["algo"], "ppo");
    assert!(run.join("eval.gif").exists());
    let o = kiln(&["eval", "--run", root]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("checkpoint.json"),
        "{o:?}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_flushes_metrics_and_writes_a_final_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["--quiet", "--out", root, "train", "--algo", "ppo"])
        .args([
            "--env",
            "CartPole-v1",
            "--steps",
            "100000000",
            "--seed",
            "2",
        ])
        .env_remove("KILN_DEVICE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kiln runs");
    // Wait for the first logged update, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let metrics = loop {
        let found = std::fs::read_dir(dir.path())
            .ok()
            .and_then(|mut d| d.find_map(|e| e.ok().map(|e| e.path().join("metrics.jsonl"))))
            .filter(|m| std::fs::metadata(m).map(|md| md.len() > 0).unwrap_or(false));
        if let Some(m) = found {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no metrics after 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("kiln exits");
    assert!(out.status.success(), "{out:?}");
    let run = metrics.parent().unwrap();
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "interrupted", "{s}");
    assert!(s["env_steps"].as_u64().unwrap() < 100_000_000);
    assert!(run.join("checkpoint.json").exists());
    assert!(run.join("checkpoint.safetensors").exists());
    let lines = std::fs::read_to_string(&metrics).unwrap().lines().count();
    assert!(lines >= 1);
}

#[test]
fn generate_streams_a_tiny_gguf_and_rejects_bad_input() {
    let device = kiln_tensor::testing::cpu();
    let dir = tempfile::tempdir().unwrap();
    let model = kiln_lm::testing::tiny_model(3, &device).unwrap();
    let path = dir.path().join("tiny.gguf");
    kiln_lm::testing::write_tiny_gguf(&model, kiln_lm::GgmlType::Q8_0, &path).unwrap();
    let p = path.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            p,
            "--prompt",
            "the answer",
            "--max-tokens",
            "6",
        ];
        args.extend_from_slice(extra);
        kiln(&args)
    };
    let a = run(&["--greedy"]);
    assert!(a.status.success(), "{a:?}");
    let err = String::from_utf8_lossy(&a.stderr);
    assert!(err.contains("tok/s"), "{err}");
    // Greedy output equals the library's greedy continuation.
    let lm = kiln_lm::load(&path, &device).unwrap();
    let prompt = lm.tokenizer.encode("the answer").unwrap();
    let (g, _) = kiln_lm::generate(
        &lm.model,
        &lm.tokenizer,
        &[prompt],
        &kiln_lm::GenerateOptions::greedy(6),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(stdout(&a), format!("{}\n", g[0].text));
    let t = run(&["--greedy", "--engine", "tensor"]);
    assert_eq!(
        stdout(&t),
        stdout(&a),
        "both engines decode the same tokens"
    );
    // Seeded sampling is reproducible; the chat template applies with --chat.
    let s1 = run(&["--seed", "4", "--temperature", "1.0"]);
    let s2 = run(&["--seed", "4", "--temperature", "1.0"]);
    assert_eq!(stdout(&s1), stdout(&s2));
    assert!(run(&["--chat", "--greedy"]).status.success());
    let bad = run(&["--top-p", "1.5"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("top_p"));
    let missing = kiln(&[
        "generate",
        "--model",
        "/nonexistent/m.gguf",
        "--prompt",
        "x",
    ]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/m.gguf"));
}
