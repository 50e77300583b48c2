//! Kiln's side of `benches/peers/lm_peers.py`: logits and greedy continuations of given
//! prompt ids, Kiln's own tokenization of given texts, and timings (decode at batch 1 and 8,
//! prompt processing, training tokens/s on the burn model and on the host training engine).
//!
//! `cargo run --release -p kiln-lm --example lm_peer -- <model> <request.json> <out_dir>`
//!
//! `request.json`: `{"texts": [..], "prompts": [[ids..], ..], "greedy_tokens": 32,
//! "time": {"decode_tokens": 64, "prompt_len": 128, "train_batch": 8, "train_len": 128,
//! "train_steps": 3}}` (`time` optional). Writes `kiln_logits.safetensors` (tensor `p<i>`:
//! `[T_i, V]` logits of prompt `i`) and `kiln.json`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use kiln_lm::generate::argmax;
use kiln_lm::{Decoder, ModelFile};
use serde_json::{Value, json};

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Greedy continuation with the KV cache, ignoring EOS, `n` steps, for `rows` copies of
/// `prompt`; returns (tokens of row 0, prefill seconds, decode seconds).
fn decode<M: Decoder>(m: &M, prompt: &[u32], rows: usize, n: usize) -> (Vec<u32>, f64, f64) {
    let v = m.config().vocab_size;
    let mut cache = m.new_cache(rows);
    let ids: Vec<u32> = (0..rows).flat_map(|_| prompt.iter().copied()).collect();
    let t0 = Instant::now();
    let mut logits = m
        .step(&ids, &vec![true; ids.len()], &mut cache)
        .expect("prefill");
    let prefill = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut out = Vec::with_capacity(n);
    for step in 0..n {
        let next: Vec<u32> = (0..rows)
            .map(|r| argmax(&logits[r * v..(r + 1) * v]))
            .collect();
        out.push(next[0]);
        if step + 1 == n {
            break;
        }
        logits = m
            .step(&next, &vec![true; rows], &mut cache)
            .expect("decode");
    }
    (out, prefill, t1.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        return Err("usage: lm_peer <model> <request.json> <out_dir>".into());
    }
    let (model_path, req_path, out_dir) = (
        PathBuf::from(&args[0]),
        PathBuf::from(&args[1]),
        PathBuf::from(&args[2]),
    );
    let req: Value = serde_json::from_str(&std::fs::read_to_string(&req_path)?)?;
    std::fs::create_dir_all(&out_dir)?;
    let device = kiln_tensor::device()?;
    let t0 = Instant::now();
    let file = ModelFile::open(&model_path)?;
    let engine = file.cpu_model()?;
    let load_s = t0.elapsed().as_secs_f64();
    let burn_model = file.model(&device)?;
    let m = &burn_model;
    let lm = &file;
    let v = m.config().vocab_size;
    let texts: Vec<String> = req["texts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let tokenized: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| lm.tokenizer.encode(t))
        .collect::<Result<_, _>>()?;
    let prompts: Vec<Vec<u32>> = req["prompts"]
        .as_array()
        .ok_or("request.prompts")?
        .iter()
        .map(|p| {
            p.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64().map(|x| x as u32))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let n_greedy = req["greedy_tokens"].as_u64().unwrap_or(32) as usize;
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut greedy = Vec::new();
    let mut greedy_burn = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let data: Vec<i64> = p.iter().map(|&x| i64::from(x)).collect();
        let logits = host(m.forward(Tensor::<2, Int>::from_data(
            TensorData::new(data, [1, p.len()]),
            &device,
        )));
        blobs.push((
            format!("p{i}"),
            vec![p.len(), v],
            logits.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
        greedy.push(decode(&engine, p, 1, n_greedy).0);
        greedy_burn.push(decode(m, p, 1, n_greedy).0);
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = blobs
        .iter()
        .map(|(n, s, b)| {
            Ok((
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?,
            ))
        })
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    std::fs::write(
        out_dir.join("kiln_logits.safetensors"),
        safetensors::serialize(views, None::<HashMap<String, String>>)?,
    )?;
    let mut timing = json!({"load_seconds": load_s});
    if let Some(t) = req.get("time").filter(|t| t.is_object()) {
        let n = t["decode_tokens"].as_u64().unwrap_or(64) as usize;
        let plen = t["prompt_len"].as_u64().unwrap_or(128) as usize;
        let p0 = &prompts[0];
        let long: Vec<u32> = p0.iter().copied().cycle().take(plen).collect();
        // Decode from the first prompt at batch 1 and 8 (one warm-up run first), and a
        // `plen`-token prompt in one pass, on both engines.
        fn speeds<M: Decoder>(m: &M, p0: &[u32], long: &[u32], n: usize) -> Value {
            let _ = decode(m, p0, 1, 4);
            let (_, _, d1) = decode(m, p0, 1, n);
            let (_, _, d8) = decode(m, p0, 8, n);
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let mut cache = m.new_cache(1);
                let s = Instant::now();
                let _ = m
                    .step(long, &vec![true; long.len()], &mut cache)
                    .expect("prompt");
                best = best.min(s.elapsed().as_secs_f64());
            }
            json!({"decode_b1_tok_s": (n - 1) as f64 / d1, "decode_b8_tok_s": 8.0 * (n - 1) as f64 / d8,
                   "prompt_tok_s": long.len() as f64 / best})
        }
        timing["host"] = speeds(&engine, p0, &long, n);
        timing["burn"] = speeds(m, p0, &long, n);
        timing["prompt_tokens"] = json!(plen);
        // Training: next-token cross-entropy over `batch x len` tokens, AdamW.
        let (tb, tl) = (
            t["train_batch"].as_u64().unwrap_or(8) as usize,
            t["train_len"].as_u64().unwrap_or(128) as usize,
        );
        let steps = t["train_steps"].as_u64().unwrap_or(3) as usize;
        let adam = kiln_tensor::AdamSettings {
            decoupled: true,
            weight_decay: 0.01,
            ..Default::default()
        };
        let ids: Vec<u32> = (0..tb * (tl + 1))
            .map(|i| (long[i % long.len()] + (i / (tl + 1)) as u32) % v as u32)
            .collect();
        // The mean seconds per step after one warm-up step.
        let mean = |times: &[f64]| times[1..].iter().sum::<f64>() / steps as f64;
        // The host engine first, then burn, back to back in this process.
        let mut trainer = kiln_lm::CpuTrainer::from_model(&burn_model, &adam)?;
        let (inputs, targets) = kiln_lm::NextTokenBatch::shift(&ids, tb)?;
        let batch = kiln_lm::NextTokenBatch::new(tb, &inputs, &targets, None);
        let mut times = Vec::new();
        for _ in 0..steps + 1 {
            let s = Instant::now();
            trainer.train_step(&batch, 1e-5)?;
            times.push(s.elapsed().as_secs_f64());
        }
        let host_s = mean(&times);
        drop(trainer);
        let ad = device.clone().autodiff();
        let mut model = file.model(&ad)?;
        let mut optim = adam.build()?;
        let ids: Vec<i64> = ids.iter().map(|&x| i64::from(x)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [tb, tl + 1]), &ad);
        let mut times = Vec::new();
        for _ in 0..steps + 1 {
            let s = Instant::now();
            let inputs = ids.clone().slice([0..tb, 0..tl]);
            let targets = ids.clone().slice([0..tb, 1..tl + 1]).reshape([tb, tl, 1]);
            let logp = log_softmax(model.forward(inputs), 2);
            let loss = logp.gather(2, targets).mean().neg();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-5, model, grads);
            times.push(s.elapsed().as_secs_f64());
        }
        let burn_s = mean(&times);
        timing["train_tok_s"] = json!((tb * tl) as f64 / burn_s);
        timing["train_host_tok_s"] = json!((tb * tl) as f64 / host_s);
        timing["train_batch"] = json!(tb);
        timing["train_len"] = json!(tl);
    }
    let out = json!({"tokenized": tokenized, "greedy": greedy, "greedy_burn": greedy_burn, "timing": timing,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)});
    std::fs::write(
        out_dir.join("kiln.json"),
        serde_json::to_string_pretty(&out)?,
    )?;
    println!("{}", serde_json::to_string(&out["timing"])?);
    Ok(())
}
