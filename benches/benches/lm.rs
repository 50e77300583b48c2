//! Language-model throughput on the CPU for a tiny Llama (about 3.4 M parameters: width 256,
//! 4 layers, GQA 8/4 heads, a 4096-entry vocabulary): decode with the KV cache at batch 1 and
//! 8 on both engines (the burn model and the host engine), a 128-token prompt, and training
//! steps (8 x 128 tokens, next-token loss, forward + backward + AdamW) through burn autodiff
//! (`adamw_step_8x128`) and on the host training engine (`host_adamw_step_8x128`).
//!
//! `cargo bench -p kiln-benches --bench lm`. Criterion's "elem/s" is tokens per second. The
//! SmolLM2-135M figures against PyTorch and llama.cpp come from `benches/peers/lm_peers.py`.

use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_lm::generate::argmax;
use kiln_lm::{CpuLlama, CpuTrainer, Decoder, Llama, LlamaConfig, NextTokenBatch};

const DECODE: usize = 32;
const PROMPT: usize = 128;
const TRAIN_B: usize = 8;
const TRAIN_T: usize = 128;

fn config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 256,
        intermediate_size: 768,
        num_hidden_layers: 4,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        ..LlamaConfig::tiny(4096)
    }
}

fn prompt(len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| (i * 37 + 11) % 4096).collect()
}

/// Prefills `rows` copies of a 16-token prompt, then decodes `DECODE` tokens greedily.
fn decode<M: Decoder>(m: &M, rows: usize) {
    let v = m.config().vocab_size;
    let mut cache = m.new_cache(rows);
    let ids: Vec<u32> = (0..rows).flat_map(|_| prompt(16)).collect();
    let mut logits = m
        .step(&ids, &vec![true; ids.len()], &mut cache)
        .expect("prefill");
    for _ in 0..DECODE {
        let next: Vec<u32> = (0..rows)
            .map(|r| argmax(&logits[r * v..(r + 1) * v]))
            .collect();
        logits = m
            .step(&next, &vec![true; rows], &mut cache)
            .expect("decode");
    }
}

fn inference(c: &mut Criterion) {
    let device = kiln_tensor::device().expect("device");
    let burn_model = Llama::init(&config(), &device).expect("model");
    let host = CpuLlama::from_model(&burn_model).expect("host engine");
    let mut g = c.benchmark_group("lm_tiny_decode");
    g.sample_size(10);
    for rows in [1usize, 8] {
        g.throughput(Throughput::Elements((rows * DECODE) as u64));
        g.bench_function(format!("host_b{rows}"), |b| b.iter(|| decode(&host, rows)));
        g.bench_function(format!("burn_b{rows}"), |b| {
            b.iter(|| decode(&burn_model, rows))
        });
    }
    g.finish();
    let long = prompt(PROMPT);
    let mut g = c.benchmark_group("lm_tiny_prompt128");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PROMPT as u64));
    g.bench_function("host", |b| {
        b.iter(|| {
            let mut cache = host.new_cache(1);
            host.step(&long, &[true; PROMPT], &mut cache)
                .expect("prompt")
        })
    });
    g.bench_function("burn", |b| {
        b.iter(|| {
            let mut cache = burn_model.new_cache(1);
            burn_model
                .step(&long, &[true; PROMPT], &mut cache)
                .expect("prompt")
        })
    });
    g.finish();
}

fn training(c: &mut Criterion) {
    let ad = kiln_tensor::device().expect("device").autodiff();
    let mut model = Some(Llama::init(&config(), &ad).expect("model"));
    let mut optim = kiln_tensor::AdamSettings {
        decoupled: true,
        weight_decay: 0.01,
        ..Default::default()
    }
    .build()
    .expect("optimizer");
    let ids: Vec<i64> = prompt(TRAIN_B * (TRAIN_T + 1))
        .into_iter()
        .map(i64::from)
        .collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [TRAIN_B, TRAIN_T + 1]), &ad);
    let mut g = c.benchmark_group("lm_tiny_train");
    g.sample_size(10);
    g.throughput(Throughput::Elements((TRAIN_B * TRAIN_T) as u64));
    g.bench_function("adamw_step_8x128", |b| {
        b.iter(|| {
            let m = model.take().expect("model");
            let inputs = ids.clone().slice([0..TRAIN_B, 0..TRAIN_T]);
            let targets = ids
                .clone()
                .slice([0..TRAIN_B, 1..TRAIN_T + 1])
                .reshape([TRAIN_B, TRAIN_T, 1]);
            let loss = log_softmax(m.forward(inputs), 2)
                .gather(2, targets)
                .mean()
                .neg();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            model = Some(optim.step(1e-4, m, grads));
        })
    });
    let settings = kiln_tensor::AdamSettings {
        decoupled: true,
        weight_decay: 0.01,
        ..Default::default()
    };
    let start = Llama::init(&config(), &kiln_tensor::device().expect("device")).expect("model");
    let mut host = CpuTrainer::from_model(&start, &settings).expect("host trainer");
    let seqs = prompt(TRAIN_B * (TRAIN_T + 1));
    let (inputs, targets) = NextTokenBatch::shift(&seqs, TRAIN_B).expect("batch");
    let batch = NextTokenBatch::new(TRAIN_B, &inputs, &targets, None);
    g.bench_function("host_adamw_step_8x128", |b| {
        b.iter(|| host.train_step(&batch, 1e-4).expect("host step"))
    });
    g.finish();
}

criterion_group!(benches, inference, training);
criterion_main!(benches);
