//! `kiln align` end to end on a tiny model: every subcommand writes its run directory, bad
//! configs are rejected naming the key, runs chain through checkpoints, and `kiln generate`
//! loads a checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kiln(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--out")
        .arg(out)
        .args(args)
        .env_remove("KILN_DEVICE")
        .output()
        .expect("kiln runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_config(dir: &Path, name: &str, json: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, json).unwrap();
    p
}

/// Runs `kiln align <algo>` with `json` and returns its run directory.
fn align(root: &Path, algo: &str, json: &str) -> PathBuf {
    let cfg = write_config(root, &format!("{algo}.json"), json);
    let runs = root.join("runs");
    let before: Vec<PathBuf> = list(&runs);
    let o = kiln(&runs, &["align", algo, "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{algo}: {}", stderr(&o));
    let mut made: Vec<PathBuf> = list(&runs)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(made.len(), 1, "{algo}: one new run directory");
    made.remove(0)
}

fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const TINY: &str = r#""model": {"tiny": {"width": 16, "layers": 1}}, "task": {"kind": "addition", "difficulty": 1, "train": 24, "test": 8, "split_seed": 0}"#;

fn rl_config() -> String {
    format!(r#"{{{TINY}, "trainer": {{"steps": 2, "prompts_per_step": 3, "group": 3}}}}"#)
}

#[test]
fn every_subcommand_writes_its_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let epochs = format!(r#"{{{TINY}, "trainer": {{"epochs": 1}}}}"#);
    for (algo, cfg) in [
        ("sft", epochs.clone()),
        ("grpo", rl_config()),
        ("dapo", rl_config()),
        ("lite-ppo", rl_config()),
        ("nft", rl_config()),
        ("capo", rl_config()),
        ("dpo", epochs.clone()),
        ("rdpo", epochs.clone()),
    ] {
        let run = align(dir.path(), algo, &cfg);
        for f in [
            "config.json",
            "metrics.jsonl",
            "summary.json",
            "learning_curve.png",
            "checkpoint/config.json",
            "checkpoint/model.safetensors",
            "checkpoint/tokenizer.json",
        ] {
            assert!(run.join(f).is_file(), "{algo}: {f} missing");
        }
        let summary = json(&run.join("summary.json"));
        assert_eq!(summary["status"], "finished", "{algo}");
        assert!(summary["updates"].as_u64().unwrap() >= 1, "{algo}");
        assert!(summary["final"]["eval_accuracy"].is_number(), "{algo}");
        let config = json(&run.join("config.json"));
        assert_eq!(config["algorithm"], algo);
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
        let key = match algo {
            "sft" => "train/loss",
            // A fresh model solves nothing: dynamic sampling (DAPO) and
            // the all-equal filter (NFT) drop every group.
            "dapo" | "nft" => "train/filtered_groups",
            "dpo" | "rdpo" => "train/preference_accuracy",
            _ => "train/reward",
        };
        assert!(first[key].is_number(), "{algo}: {key} in {first}");
        if algo == "capo" {
            assert!(first["train/masked_token_fraction"].is_number());
        }
        if matches!(algo, "grpo" | "lite-ppo") {
            for k in [
                "train/kl",
                "train/clip_fraction",
                "train/entropy",
                "train/response_length",
            ] {
                assert!(first[k].is_number(), "{algo}: {k}");
            }
        }
        match algo {
            "sft" => {
                // Absent lr and batch size come from the Step Law, with their source recorded.
                assert!(config["config"]["trainer"]["lr"].as_f64().unwrap() > 0.0);
                let src = config["resolved"]["lr"]["source"].as_str().unwrap();
                assert!(src.starts_with("step_law(N="), "{src}");
            }
            "rdpo" => {
                assert_eq!(config["config"]["trainer"]["loss"]["kind"], "rdpo");
                assert_eq!(config["config"]["trainer"]["loss"]["eps"], 0.1);
                let acc = summary["final"]["heldout_preference_accuracy"]
                    .as_f64()
                    .unwrap();
                assert!((0.0..=1.0).contains(&acc));
            }
            _ => {}
        }
    }
}

#[test]
fn same_seed_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = rl_config();
    let strip = |run: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("wall_time_s");
                v
            })
            .collect()
    };
    let a = align(dir.path(), "grpo", &cfg);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = align(dir.path(), "grpo", &cfg);
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn bad_configs_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    for (algo, cfg, key) in [
        ("grpo", r#"{"trainer": {"bogus": 1}}"#, "bogus"),
        ("sft", r#"{"modle": {}}"#, "modle"),
        ("grpo", r#"{"trainer": {"eps_low": 0.0}}"#, "eps_low"),
        ("dapo", r#"{"trainer": {"eps_high": -0.1}}"#, "eps_high"),
        ("capo", r#"{"trainer": {"eps_clip": 0.0}}"#, "eps_clip"),
        (
            "rdpo",
            r#"{"preferences": {"flip_rate": 0.5}}"#,
            "preferences.flip_rate",
        ),
        (
            "dpo",
            r#"{"trainer": {"loss": {"kind": "cdpo", "eps": 0.6}}}"#,
            "loss.eps",
        ),
        ("sft", r#"{"trainer": {"lr": 0.0}}"#, "lr"),
        ("nft", r#"{"trainer": {"lr": -1e-3}}"#, "lr"),
        ("grpo", r#"{"task": {"difficulty": 0}}"#, "task.difficulty"),
        (
            "sft",
            r#"{"model": {"tiny": {"width": 12, "layers": 1}}}"#,
            "model.tiny.width",
        ),
    ] {
        let p = write_config(dir.path(), "bad.json", cfg);
        let o = kiln(&runs, &["align", algo, "--config", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{algo} {cfg}");
        let e = stderr(&o);
        assert!(e.contains(&format!("`{key}`")), "{algo} {cfg}: {e}");
    }
    assert!(
        list(&runs).is_empty(),
        "no run directory for a rejected config"
    );
}

#[test]
fn sft_checkpoint_chains_into_grpo_and_generate() {
    let dir = tempfile::tempdir().unwrap();
    let sft = align(
        dir.path(),
        "sft",
        &format!(r#"{{{TINY}, "trainer": {{"epochs": 6, "lr": 0.01, "batch_size": 8}}}}"#),
    );
    let sft_acc = json(&sft.join("summary.json"))["final"]["eval_accuracy"].clone();
    let grpo_cfg = format!(
        r#"{{"model": {{"path": {:?}}}, "task": {{"kind": "addition", "difficulty": 1, "train": 24, "test": 8, "split_seed": 0}},
            "trainer": {{"steps": 2, "prompts_per_step": 3, "group": 3}}}}"#,
        sft.to_str().unwrap()
    );
    let grpo = align(dir.path(), "grpo", &grpo_cfg);
    let config = json(&grpo.join("config.json"));
    assert!(
        config["model_source"]
            .as_str()
            .unwrap()
            .ends_with("checkpoint")
    );
    // The GRPO run starts from exactly the SFT weights: same greedy accuracy before training.
    assert_eq!(
        json(&grpo.join("summary.json"))["final"]["initial_eval_accuracy"],
        sft_acc
    );

    let ckpt = sft.join("checkpoint");
    let mut texts = Vec::new();
    for engine in ["host", "tensor"] {
        let o = kiln(
            &dir.path().join("runs"),
            &[
                "generate",
                "--model",
                ckpt.to_str().unwrap(),
                "--prompt",
                "3+4=",
                "--greedy",
                "--max-tokens",
                "4",
                "--engine",
                engine,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout).trim_end().to_string();
        assert!(
            text.chars().all(|c| "0123456789+-*/=()x,:".contains(c)),
            "{text:?}"
        );
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1], "host and burn engines agree");

    let o = kiln(
        &dir.path().join("runs"),
        &[
            "align",
            "sft",
            "--config",
            write_config(
                dir.path(),
                "missing.json",
                r#"{"model": {"path": "/nonexistent/model"}}"#,
            )
            .to_str()
            .unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("model.path"), "{}", stderr(&o));
}

/// A model with a pretrained-style tokenizer (byte-level BPE with SmolLM2's chat template,
/// written as GGUF) trains through `kiln align`: prompts go through the chat template, the
/// checkpoint keeps the model's own tokenizer, and `kiln generate --chat` loads it.
#[test]
fn a_pretrained_tokenizer_model_trains() {
    let dir = tempfile::tempdir().unwrap();
    let device = kiln_tensor::testing::cpu();
    let m = kiln_lm::testing::tiny_model(5, &device).unwrap();
    let gguf = dir.path().join("tiny-bpe.gguf");
    kiln_lm::testing::write_tiny_gguf(&m, kiln_lm::GgmlType::F32, &gguf).unwrap();
    let cfg = format!(
        r#"{{"model": {{"path": {:?}}}, "task": {{"kind": "addition", "difficulty": 1, "train": 8, "test": 4, "split_seed": 0}},
            "eval_max_new_tokens": 8, "trainer": {{"steps": 2, "prompts_per_step": 2, "group": 3}}}}"#,
        gguf.to_str().unwrap()
    );
    let run = align(dir.path(), "grpo", &cfg);
    let config = json(&run.join("config.json"));
    assert_eq!(
        config["tokenization"].as_str(),
        Some("its own tokenizer, chat template")
    );
    let summary = json(&run.join("summary.json"));
    assert!(summary["final"]["eval_accuracy"].is_number(), "{summary}");
    let ckpt = run.join("checkpoint");
    let tok: serde_json::Value = json(&ckpt.join("tokenizer.json"));
    assert_eq!(tok["model"]["type"], "BPE");
    let o = kiln(
        &dir.path().join("runs"),
        &[
            "generate",
            "--model",
            ckpt.to_str().unwrap(),
            "--prompt",
            "3+4=",
            "--chat",
            "--max-tokens",
            "3",
            "--seed",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // `"chat": false` gives the raw task prompts (SFT here).
    let raw = cfg
        .replace(
            r#""eval_max_new_tokens""#,
            r#""chat": false, "eval_max_new_tokens""#,
        )
        .replace(
            r#""steps": 2, "prompts_per_step": 2, "group": 3"#,
            r#""epochs": 1"#,
        );
    let run = align(dir.path(), "sft", &raw);
    assert_eq!(
        json(&run.join("config.json"))["tokenization"].as_str(),
        Some("its own tokenizer")
    );
}
