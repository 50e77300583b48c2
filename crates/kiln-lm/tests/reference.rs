//! Known answer: Hugging Face `transformers`' logits for a tiny Llama with formula weights
//! (`tests/data/tiny_reference.json`, recorded by `benches/peers/lm_tiny_reference.py`).
//! Checks the rotary layout, grouped-query attention, RMSNorm, SwiGLU and the untied head.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use kiln_lm::model::hf_layer_tensors;
use kiln_lm::{KvCache, Llama, LlamaConfig};
use kiln_tensor::testing::cpu;

#[test]
fn logits_match_transformers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny_reference.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = LlamaConfig::from_hf_json(&path, &v["config"].to_string()).unwrap();
    let mut names: Vec<String> = (0..c.num_hidden_layers)
        .flat_map(|l| hf_layer_tensors(&c, l).into_iter().map(|(n, _)| n))
        .collect();
    names.extend(
        [
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
        ]
        .map(String::from),
    );
    let mut get = |name: &str, shape: &[usize]| -> kiln_lm::Result<Vec<f32>> {
        let k = names.iter().position(|n| n == name).unwrap() as f64;
        let n: usize = shape.iter().product();
        Ok((0..n)
            .map(|i| {
                let s = (0.37 * i as f64 + 1.3 * k).sin();
                (if name.contains("norm") {
                    1.0 + 0.1 * s
                } else {
                    0.05 * s
                }) as f32
            })
            .collect())
    };
    let device = cpu();
    let m = Llama::from_weights(&c, &device, &mut get).unwrap();
    let mut worst = 0f64;
    for (ids, want) in v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v["logits"].as_array().unwrap())
    {
        let ids: Vec<u32> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let got: Vec<f32> = m
            .forward(Tensor::<2, Int>::from_data(
                TensorData::new(data, [1, ids.len()]),
                &device,
            ))
            .into_data()
            .iter::<f32>()
            .collect();
        let want: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((f64::from(*g) - w).abs());
        }
        // The cached path gives the last position's logits too.
        let mut cache = KvCache::new(&m, 1);
        let last: Vec<f32> = m
            .forward_cached(&ids, &vec![true; ids.len()], &mut cache, false)
            .unwrap()
            .into_data()
            .iter::<f32>()
            .collect();
        let vocab = c.vocab_size;
        for (g, w) in last.iter().zip(&want[want.len() - vocab..]) {
            worst = worst.max((f64::from(*g) - w).abs());
        }
    }
    assert!(worst < 1e-5, "max |kiln - transformers| = {worst:e}");
}
