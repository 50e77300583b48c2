//! Row Step Law (Li et al. 2025, "Predictable Scale: Part I"; reference note `step-law.md`
//! Sec. 4): pretrain the tiny character Llama on a seeded synthetic corpus (a random
//! order-2 Markov source over the task characters, so the loss has a known floor) with a
//! fixed token budget `D`, over a grid of peak learning rates x batch sizes at two model
//! sizes. Schedule as in the paper's protocol: short linear warm-up, cosine decay to a fixed
//! minimum of 1e-5, AdamW, one epoch of fresh data. Each run is scored by its loss on a
//! fixed held-out set of sequences; the grid optimum is compared with the Step-Law
//! prediction `eta = 1.79 N^-0.713 D^0.307`, `B = 0.58 D^0.571` tokens
//! ([`kiln_tensor::step_law`], constants untouched, `N` = non-embedding parameters).

use std::path::Path;

use burn::module::Module;
use burn::optim::GradientsParams;
use kiln_lm::Llama;
use kiln_track::{Curve, PlotOptions, markdown_table};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::error::{AlignError, Result};
use crate::llama::tiny_char_llama;
use crate::losses::sft_loss;
use crate::policy::{SequencePolicy, TokenBatch, host_logprobs};
use crate::vocab::CharVocab;

/// Shape of the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLawConfig {
    /// Model sizes `(width, layers)`.
    pub sizes: Vec<(usize, usize)>,
    /// Peak learning rates.
    pub lrs: Vec<f64>,
    /// Batch sizes in sequences.
    pub batches: Vec<usize>,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Token budget `D` of every run.
    pub tokens: usize,
    /// Held-out sequences.
    pub val_seqs: usize,
    /// Seed of the corpus and the models.
    pub seed: u64,
}

impl StepLawConfig {
    /// The full grid (2 sizes x 5 learning rates x 3 batch sizes) or a seconds-long one.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                sizes: vec![(16, 1)],
                lrs: vec![3e-3, 3e-2],
                batches: vec![4, 16],
                seq_len: 24,
                tokens: 6_144,
                val_seqs: 16,
                seed: 0,
            }
        } else {
            Self {
                sizes: vec![(16, 1), (48, 2)],
                lrs: vec![1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                batches: vec![4, 16, 64],
                seq_len: 32,
                tokens: 262_144,
                val_seqs: 64,
                seed: 0,
            }
        }
    }
}

/// A seeded order-2 Markov source over the task characters: each context's next-token
/// distribution is a softmax of `3 z`, `z ~ N(0, 1)`, so every context has a few likely
/// successors.
#[derive(Debug, Clone)]
pub struct MarkovSource {
    /// Symbols (token ids).
    symbols: Vec<u32>,
    /// `probs[a * k + b]`: distribution of the next symbol after `a, b`.
    probs: Vec<Vec<f64>>,
}

impl MarkovSource {
    /// The source of `seed`.
    pub fn new(seed: u64) -> Self {
        let symbols: Vec<u32> = (2..CharVocab::SIZE as u32).collect();
        let k = symbols.len();
        let mut rng = StdRng::seed_from_u64(seed);
        let probs = (0..k * k)
            .map(|_| {
                let w: Vec<f64> = (0..k)
                    .map(|_| {
                        let z: f64 =
                            rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
                        (3.0 * z).exp()
                    })
                    .collect();
                let s: f64 = w.iter().sum();
                w.into_iter().map(|x| x / s).collect()
            })
            .collect();
        Self { symbols, probs }
    }

    /// One sequence of `len` symbols and its true mean negative log-likelihood of symbols 2..
    pub fn sample(&self, len: usize, rng: &mut StdRng) -> (Vec<u32>, f64) {
        let k = self.symbols.len();
        let mut idx = vec![rng.random_range(0..k), rng.random_range(0..k)];
        let mut nll = 0.0;
        while idx.len() < len {
            let p = &self.probs[idx[idx.len() - 2] * k + idx[idx.len() - 1]];
            let mut u = rng.random::<f64>();
            let mut next = k - 1;
            for (j, &q) in p.iter().enumerate() {
                u -= q;
                if u <= 0.0 {
                    next = j;
                    break;
                }
            }
            nll -= p[next].ln();
            idx.push(next);
        }
        let n = len.saturating_sub(2).max(1) as f64;
        (idx.into_iter().map(|i| self.symbols[i]).collect(), nll / n)
    }
}

/// The batch scoring every token after the first.
fn lm_batch(seqs: &[Vec<u32>]) -> Result<TokenBatch> {
    let p: Vec<&[u32]> = seqs.iter().map(|s| &s[..1]).collect();
    let c: Vec<&[u32]> = seqs.iter().map(|s| &s[1..]).collect();
    TokenBatch::from_pairs(&p, &c)
}

/// Learning rate at `step` of `total`: linear warm-up over 5% of the steps, then cosine
/// decay from `peak` to the fixed minimum 1e-5 (the Step-Law protocol's final LR).
pub fn schedule(peak: f64, step: usize, total: usize) -> f64 {
    let warm = (total / 20).max(1);
    if step < warm {
        return peak * (step + 1) as f64 / warm as f64;
    }
    let t = (step - warm) as f64 / (total - warm).max(1) as f64;
    let min = 1e-5f64.min(peak);
    min + 0.5 * (peak - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Trains one model with `(lr, batch)` on `D` fresh tokens; returns the held-out loss.
fn train_cell(
    model: Llama,
    source: &MarkovSource,
    config: &StepLawConfig,
    lr: f64,
    batch: usize,
    val: &TokenBatch,
    seed: u64,
) -> Result<f64> {
    let mut model = model;
    let steps = (config.tokens / (batch * config.seq_len)).max(1);
    let mut optim = kiln_tensor::AdamSettings {
        weight_decay: 0.1,
        decoupled: true,
        ..kiln_tensor::AdamSettings::default()
    }
    .build()?;
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..steps {
        let seqs: Vec<Vec<u32>> = (0..batch)
            .map(|_| source.sample(config.seq_len, &mut rng).0)
            .collect();
        let b = lm_batch(&seqs)?;
        let device = model.device();
        let loss = sft_loss(model.token_scores(&b)?.logprobs, b.mask_tensor(&device));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let grads = kiln_tensor::clip_grad_norm(&model, grads, 1.0).0;
        model = optim.step(schedule(lr, step, steps), model, grads);
    }
    let lp = host_logprobs(&model.valid(), val)?;
    let n: f32 = val.mask.iter().sum();
    let loss = -f64::from(lp.iter().sum::<f32>() / n.max(1.0));
    Ok(if loss.is_finite() {
        loss
    } else {
        f64::INFINITY
    })
}

/// One model size's grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeGrid {
    /// `(width, layers)`.
    pub size: (usize, usize),
    /// Non-embedding parameters `N`.
    pub n: usize,
    /// `loss[lr][batch]` on the held-out set.
    pub loss: Vec<Vec<f64>>,
    /// The Step-Law prediction for `(N, D)`.
    pub law: kiln_tensor::StepLaw,
}

/// Runs the grid (no files); `progress` gets one line per model size.
pub fn run_grid(
    config: &StepLawConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<SizeGrid>, f64)> {
    let device = kiln_tensor::autodiff_device()?;
    let source = MarkovSource::new(config.seed);
    let mut val_rng = StdRng::seed_from_u64(config.seed + 1);
    let (val_seqs, floors): (Vec<Vec<u32>>, Vec<f64>) = (0..config.val_seqs)
        .map(|_| source.sample(config.seq_len, &mut val_rng))
        .unzip();
    let floor = floors.iter().sum::<f64>() / floors.len().max(1) as f64;
    let val = lm_batch(&val_seqs)?;
    let mut out = Vec::new();
    for &(width, layers) in &config.sizes {
        kiln_tensor::Seeds::new(config.seed).seed_device(&device);
        let init = tiny_char_llama(width, layers, &device)?;
        let n = init.non_embedding_params();
        let law = kiln_tensor::step_law(n as f64, config.tokens as f64, config.seq_len)?;
        let mut loss = Vec::new();
        for &lr in &config.lrs {
            let mut row = Vec::new();
            for (bi, &b) in config.batches.iter().enumerate() {
                row.push(train_cell(
                    init.clone(),
                    &source,
                    config,
                    lr,
                    b,
                    &val,
                    100 + bi as u64,
                )?);
            }
            loss.push(row);
        }
        progress(&format!("model width {width}, {layers} layers done"));
        out.push(SizeGrid {
            size: (width, layers),
            n,
            loss,
            law,
        });
    }
    Ok((out, floor))
}

/// Runs the experiment, writes `step_law_<width>x<layers>.{png,svg}` into `out_dir`, and
/// returns the Markdown report.
pub fn step_law_row(out_dir: &Path, quick: bool, progress: &mut dyn FnMut(&str)) -> Result<String> {
    let config = StepLawConfig::new(quick);
    let (grids, floor) = run_grid(&config, progress)?;
    std::fs::create_dir_all(out_dir).map_err(|source| AlignError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut rows = Vec::new();
    let mut grid_rows = Vec::new();
    let mut plots = Vec::new();
    for g in &grids {
        let mut best = (0, 0, f64::INFINITY);
        for (li, row) in g.loss.iter().enumerate() {
            for (bi, &l) in row.iter().enumerate() {
                if l < best.2 {
                    best = (li, bi, l);
                }
            }
            let mut cells = vec![
                format!("{}x{}", g.size.0, g.size.1),
                format!("{}", config.lrs[li]),
            ];
            cells.extend(row.iter().map(|l| format!("{l:.4}")));
            grid_rows.push(cells);
        }
        // The grid point nearest the prediction (in log lr, log batch): its loss is the
        // Step-Law configuration's loss on this grid.
        let nearest = |xs: &[f64], x: f64| {
            (0..xs.len())
                .min_by(|&a, &b| {
                    (xs[a].ln() - x.ln())
                        .abs()
                        .total_cmp(&(xs[b].ln() - x.ln()).abs())
                })
                .unwrap_or(0)
        };
        let bf: Vec<f64> = config.batches.iter().map(|&b| b as f64).collect();
        let (pl, pb) = (
            nearest(&config.lrs, g.law.lr),
            nearest(&bf, g.law.batch_seqs),
        );
        let at_pred = g.loss[pl][pb];
        rows.push(vec![
            format!("{}x{}", g.size.0, g.size.1),
            g.n.to_string(),
            format!("{}", config.lrs[best.0]),
            config.batches[best.1].to_string(),
            format!("{:.4}", best.2),
            format!("{:.3e}", g.law.lr),
            format!("{:.1}", g.law.batch_seqs),
            format!("{} / {}", config.lrs[pl], config.batches[pb]),
            format!("{at_pred:.4}"),
            format!("{:.2}%", 100.0 * (at_pred / best.2 - 1.0)),
            format!("{:.2}", (g.law.lr / config.lrs[best.0]).log2()),
        ]);
        let finite_max = g
            .loss
            .iter()
            .flatten()
            .copied()
            .filter(|l| l.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let mut curves: Vec<Curve> = config
            .batches
            .iter()
            .enumerate()
            .map(|(bi, b)| Curve {
                label: format!("batch {b} seqs"),
                runs: vec![
                    config
                        .lrs
                        .iter()
                        .enumerate()
                        .map(|(li, lr)| (lr.log10(), g.loss[li][bi].min(finite_max)))
                        .collect(),
                ],
            })
            .collect();
        let x = g.law.lr.log10();
        curves.push(Curve {
            label: format!("Step-Law lr (batch {:.1} seqs)", g.law.batch_seqs),
            runs: vec![vec![(x, best.2), (x + 1e-3, finite_max)]],
        });
        let stem = format!("step_law_{}x{}", g.size.0, g.size.1);
        kiln_track::learning_curves(
            &curves,
            &PlotOptions {
                title: format!(
                    "Step Law, width {} x {} layers, N = {}, D = {}",
                    g.size.0, g.size.1, g.n, config.tokens
                ),
                x_label: "log10 peak learning rate".into(),
                y_label: "held-out loss (nats/token)".into(),
                ..PlotOptions::default()
            },
            &out_dir.join(&stem),
        )?;
        plots.push(format!("`{stem}.png`"));
    }
    let mut md = format!(
        "# Step Law on a tiny Llama — `kiln repro step-law`\n\n\
         Setting (reference note `step-law.md` Sec. 4): character Llamas pretrained on a seeded order-2 Markov source \
         over 20 symbols (true entropy on the held-out set {floor:.4} nats/token), sequences of {} tokens, token budget \
         D = {} per run, AdamW (weight decay 0.1), 5% linear warm-up then cosine decay to 1e-5, gradient clip 1, one \
         epoch of fresh data, one seed; score = loss on {} fixed held-out sequences. The Step-Law constants are not \
         tuned; at this scale (N and D far below the fitted range) the law is an extrapolation.\n\n",
        config.seq_len, config.tokens, config.val_seqs
    );
    md.push_str(&markdown_table(
        &[
            "model",
            "N (non-emb.)",
            "best lr",
            "best batch",
            "best loss",
            "Step-Law lr",
            "Step-Law batch (seqs)",
            "nearest grid point",
            "loss there",
            "gap",
            "log2(lr_law / lr_best)",
        ],
        &rows,
    ));
    md.push_str("\nHeld-out loss over the grid (columns: batch sizes in sequences ");
    md.push_str(&format!("{:?}):\n\n", config.batches));
    let mut header = vec!["model".to_string(), "lr".to_string()];
    header.extend(config.batches.iter().map(|b| format!("B = {b}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    md.push_str(&markdown_table(&header, &grid_rows));
    md.push_str(&format!("\nPlots: {}.\n", plots.join(", ")));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_and_ends_at_the_minimum() {
        assert!((schedule(1e-2, 0, 100) - 2e-3).abs() < 1e-12);
        assert!((schedule(1e-2, 4, 100) - 1e-2).abs() < 1e-12);
        assert!((schedule(1e-2, 100, 100) - 1e-5).abs() < 1e-12);
        let (a, fa) = MarkovSource::new(3).sample(10, &mut StdRng::seed_from_u64(0));
        let (b, fb) = MarkovSource::new(3).sample(10, &mut StdRng::seed_from_u64(0));
        assert_eq!((a, fa), (b, fb), "same seed, same corpus");
    }

    /// The quick grid runs and reports the optimum next to the prediction.
    #[test]
    fn quick_grid_writes_table_and_plot() {
        let dir = tempfile::tempdir().unwrap();
        let md = step_law_row(dir.path(), true, &mut |_| {}).unwrap();
        assert!(md.contains("Step-Law lr") && md.contains("gap"), "{md}");
        assert!(dir.path().join("step_law_16x1.png").exists());
    }
}
