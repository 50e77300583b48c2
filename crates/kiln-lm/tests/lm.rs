//! Loading, tokenization and generation on tiny model files the tests write themselves.

use burn::tensor::{Int, Tensor, TensorData};
use kiln_lm::testing::{self, TINY_VOCAB};
use kiln_lm::{ChatMessage, GenerateOptions, GgmlType, Llama, StopReason, generate, load};
use kiln_tensor::testing::cpu;
use proptest::prelude::*;

fn logits(m: &Llama, ids: &[u32]) -> Vec<f32> {
    let device = m.device();
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    m.forward(Tensor::<2, Int>::from_data(
        TensorData::new(data, [1, ids.len()]),
        &device,
    ))
    .into_data()
    .iter::<f32>()
    .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn gguf_of_every_type_loads_back_to_the_same_model() {
    let device = cpu();
    let m = testing::tiny_model(7, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ids = [40u32, 41, 72, 100, 5, 200];
    let want = logits(&m, &ids);
    let scale = want.iter().fold(0f32, |a, x| a.max(x.abs()));
    for (ty, tol) in [
        (GgmlType::F32, 0.0),
        (GgmlType::F16, 2e-3),
        (GgmlType::Bf16, 2e-2),
        (GgmlType::Q8_0, 2e-2),
        (GgmlType::Q4_1, 0.2),
        (GgmlType::Q4_0, 0.25),
    ] {
        let p = dir.path().join(format!("tiny-{ty:?}.gguf"));
        testing::write_tiny_gguf(&m, ty, &p).unwrap();
        let got = load(&p, &device).unwrap();
        // GGUF stores the epsilon as f32.
        let mut c = *got.model.config();
        assert_eq!(c.rms_norm_eps as f32, m.config().rms_norm_eps as f32);
        c.rms_norm_eps = m.config().rms_norm_eps;
        assert_eq!(&c, m.config());
        let d = max_diff(&logits(&got.model, &ids), &want);
        assert!(
            d <= tol * scale.max(1.0),
            "{ty:?}: max logit difference {d} (scale {scale})"
        );
        assert_eq!(got.tokenizer.eos, Some(2));
        assert!(!got.tokenizer.add_bos);
    }
}

#[test]
fn hf_directory_round_trip_and_matching_tokenizers() {
    let device = cpu();
    let m = testing::tiny_model(8, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    testing::write_tiny_hf_dir(&m, &hf).unwrap();
    let gg = dir.path().join("tiny.gguf");
    testing::write_tiny_gguf(&m, GgmlType::F32, &gg).unwrap();
    let a = load(&hf, &device).unwrap();
    let b = load(&gg, &device).unwrap();
    let ids = [3u32, 9, 27, 81, 243];
    assert_eq!(logits(&a.model, &ids), logits(&m, &ids));
    assert_eq!(logits(&b.model, &ids), logits(&m, &ids));
    for text in [
        "the theory 12345",
        "Hello, world!\n  x",
        "<|im_start|>user\nhi<|im_end|>",
        "é ü 日本",
    ] {
        assert_eq!(
            a.tokenizer.encode(text).unwrap(),
            b.tokenizer.encode(text).unwrap(),
            "{text}"
        );
    }
    let chat = a.tokenizer.encode_chat(&[ChatMessage::user("hi")]).unwrap();
    assert_eq!(
        chat,
        b.tokenizer.encode_chat(&[ChatMessage::user("hi")]).unwrap()
    );
    assert_eq!(chat[0], 1, "<|im_start|> is one special token");
}

#[test]
fn tokenizer_follows_the_byte_level_bpe_rules() {
    let device = cpu();
    let m = testing::tiny_model(1, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.gguf");
    testing::write_tiny_gguf(&m, GgmlType::Q8_0, &p).unwrap();
    let t = load(&p, &device).unwrap().tokenizer;
    let id = |s: &str| t.token_to_id(s).unwrap();
    // " the" merges into one token through "Ġ t" -> "Ġt", "h e" -> "he", "Ġt he" -> "Ġthe".
    assert_eq!(t.encode(" the").unwrap(), vec![id("Ġthe")]);
    // Digits are split one by one before the byte-level regex (SmolLM2's pre-tokenizer).
    assert_eq!(t.encode("123").unwrap(), vec![id("1"), id("2"), id("3")]);
    // Special tokens in the text map to their ids.
    assert_eq!(t.encode("<|im_end|>").unwrap(), vec![2]);
    assert_eq!(t.vocab_size(), TINY_VOCAB);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn decode_inverts_encode(s in "[ -~éü日\n]{0,40}") {
        let device = cpu();
        let m = testing::tiny_model(1, &device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.gguf");
        testing::write_tiny_gguf(&m, GgmlType::Q8_0, &p).unwrap();
        let t = load(&p, &device).unwrap().tokenizer;
        let ids = t.encode(&s).unwrap();
        prop_assert_eq!(t.decode(&ids, true).unwrap(), s);
    }
}

#[test]
fn generation_is_seeded_batched_and_stops() {
    let device = cpu();
    let m = testing::tiny_model(5, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.gguf");
    testing::write_tiny_gguf(&m, GgmlType::F32, &p).unwrap();
    let lm = load(&p, &device).unwrap();
    let tok = &lm.tokenizer;
    let prompts = vec![
        tok.encode("the answer is").unwrap(),
        tok.encode("hi").unwrap(),
    ];
    // Greedy: each token is the argmax of the full (uncached) forward of the prefix.
    let (g, stats) = generate(
        &lm.model,
        tok,
        &prompts[..1],
        &GenerateOptions::greedy(6),
        |_, _| {},
    )
    .unwrap();
    let mut seq = prompts[0].clone();
    for &t in &g[0].tokens {
        let l = logits(&lm.model, &seq);
        let v = TINY_VOCAB;
        let last = &l[(seq.len() - 1) * v..seq.len() * v];
        assert_eq!(t, kiln_lm::generate::argmax(last));
        seq.push(t);
    }
    assert_eq!(stats.prompt_tokens, prompts[0].len());
    // A left-padded batch gives each row what it gets alone.
    let (batch, _) = generate(
        &lm.model,
        tok,
        &prompts,
        &GenerateOptions::greedy(6),
        |_, _| {},
    )
    .unwrap();
    let (alone, _) = generate(
        &lm.model,
        tok,
        &prompts[1..],
        &GenerateOptions::greedy(6),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(batch[0].tokens, g[0].tokens);
    assert_eq!(batch[1].tokens, alone[0].tokens);
    // Same seed, same sample; streaming pieces add up to the text.
    let opts = GenerateOptions {
        temperature: 1.0,
        top_p: 0.95,
        max_new_tokens: 12,
        seed: 11,
        ..Default::default()
    };
    let mut streamed = String::new();
    let (a, _) = generate(&lm.model, tok, &prompts[..1], &opts, |_, s| {
        streamed.push_str(s)
    })
    .unwrap();
    let (b, _) = generate(&lm.model, tok, &prompts[..1], &opts, |_, _| {}).unwrap();
    assert_eq!(a, b);
    assert_eq!(streamed, a[0].text);
    // A stop string cuts the text before it.
    if a[0].text.chars().count() > 3 {
        let stop: String = a[0].text.chars().skip(2).take(1).collect();
        let cut = a[0].text.find(&stop).unwrap();
        let mut s = String::new();
        let stopped = GenerateOptions {
            stop: vec![stop],
            ..opts.clone()
        };
        let (c, _) = generate(&lm.model, tok, &prompts[..1], &stopped, |_, x| {
            s.push_str(x)
        })
        .unwrap();
        assert_eq!(c[0].stop, StopReason::StopString);
        assert_eq!(c[0].text, a[0].text[..cut]);
        assert_eq!(s, c[0].text);
    }
}

#[test]
fn broken_files_name_the_tensor_and_file() {
    let device = cpu();
    let m = testing::tiny_model(2, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.gguf");
    testing::write_tiny_gguf(&m, GgmlType::Q4_1, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let msg = load(&cut, &device).unwrap_err().to_string();
    assert!(
        msg.contains("cut.gguf") && msg.contains("tensor `") && msg.contains("truncated"),
        "{msg}"
    );
    // A safetensors file with a wrongly shaped tensor.
    let hf = dir.path().join("hf");
    testing::write_tiny_hf_dir(&m, &hf).unwrap();
    let cfg = std::fs::read_to_string(hf.join("config.json")).unwrap();
    std::fs::write(
        hf.join("config.json"),
        cfg.replace("\"intermediate_size\": 128", "\"intermediate_size\": 96"),
    )
    .unwrap();
    let msg = load(&hf, &device).unwrap_err().to_string();
    assert!(
        msg.contains("model.safetensors")
            && msg.contains("mlp.gate_proj.weight")
            && msg.contains("shape"),
        "{msg}"
    );
    // A truncated safetensors file.
    std::fs::write(hf.join("config.json"), cfg).unwrap();
    let st = std::fs::read(hf.join("model.safetensors")).unwrap();
    std::fs::write(hf.join("model.safetensors"), &st[..st.len() / 2]).unwrap();
    let msg = load(&hf, &device).unwrap_err().to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("truncated"),
        "{msg}"
    );
    let msg = load(&dir.path().join("nope.gguf"), &device)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("nope.gguf"), "{msg}");
}

#[test]
fn host_engine_generates_what_the_burn_model_generates() {
    let device = cpu();
    let m = testing::tiny_model(12, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.gguf");
    testing::write_tiny_gguf(&m, GgmlType::Q8_0, &p).unwrap();
    let f = kiln_lm::ModelFile::open(&p).unwrap();
    let (burn_m, host_m) = (f.model(&device).unwrap(), f.cpu_model().unwrap());
    let tok = &f.tokenizer;
    let prompts = vec![
        tok.encode("the theory of").unwrap(),
        tok.encode("on and an").unwrap(),
        tok.encode("x").unwrap(),
    ];
    let opts = GenerateOptions {
        temperature: 0.8,
        top_p: 0.9,
        max_new_tokens: 10,
        seed: 3,
        ..Default::default()
    };
    let (a, _) = generate(&burn_m, tok, &prompts, &opts, |_, _| {}).unwrap();
    let (b, _) = generate(&host_m, tok, &prompts, &opts, |_, _| {}).unwrap();
    assert_eq!(a, b);
}
