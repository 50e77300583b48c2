//! Plumbing shared by the RL rows (`tricks-or-traps`, `nft`, `capo`): the SFT warm start of
//! a [`TinyLm`] on a verifiable task (reference note `grpo-family.md` Sec. 4: RL needs a
//! partly-right start), held-out evaluation during training, and one RL arm run to a fixed
//! budget of sampled completions with its evaluation curve.
//!
//! Every arm starts from the same warm checkpoint; the arm's seed drives the training
//! problems drawn and the completions sampled, so the same seed gives the same numbers.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use kiln_rl::{Callback, FnCallback, NoCallback};
use kiln_track::{Curve, PlotOptions};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::{AlignError, Result, invalid};
use crate::policy::{SampleOptions, SequencePolicy, TokenBatch, to_host};
use crate::tasks::{Problem, TaskSpec, TaskSplits};
use crate::trainers::Probe;
use crate::trainers::greedy_accuracy;
use crate::trainers::grpo::{PgConfig, PgVariant};
use crate::trainers::sft::{SftConfig, sft_examples, train_sft};
use crate::{TinyLm, TinyLmConfig};

/// The task, model and SFT run of the warm start.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStartConfig {
    /// The task RL trains and is evaluated on.
    pub task: TaskSpec,
    /// Seed of the fixed train/test split.
    pub split_seed: u64,
    /// Training problems (RL draws prompts from all of them).
    pub n_train: usize,
    /// Held-out problems (greedy test accuracy).
    pub n_test: usize,
    /// How many of the training problems SFT sees (few, so the warm model stays partly right).
    pub sft_problems: usize,
    /// The SFT run.
    pub sft: SftConfig,
    /// The policy's shape.
    pub model: TinyLmConfig,
    /// Seed of the initial weights and of the SFT shuffling.
    pub model_seed: u64,
    /// Longest completion when sampling or decoding greedily.
    pub max_new_tokens: usize,
}

impl WarmStartConfig {
    /// The warm start of the RL rows: 2-digit addition (`37+48=` -> `85`), a 1-layer,
    /// width-32 transformer, SFT on a few hundred reference answers for a few epochs, so the
    /// warm policy answers part (not all) of the held-out problems correctly.
    pub fn addition(quick: bool) -> Self {
        Self {
            task: TaskSpec {
                kind: crate::tasks::TaskKind::Addition,
                difficulty: 2,
            },
            split_seed: 17,
            n_train: 2_000,
            n_test: if quick { 100 } else { 400 },
            sft_problems: 1_000,
            sft: SftConfig {
                epochs: 10,
                batch_size: Some(16),
                lr: Some(1e-2),
                ..SftConfig::default()
            },
            model: TinyLmConfig::default(),
            model_seed: 3,
            max_new_tokens: 6,
        }
    }
}

/// The warm checkpoint and its data.
#[derive(Debug, Clone)]
pub struct WarmStart {
    /// Train and held-out problems.
    pub splits: TaskSplits,
    /// The SFT-warmed policy (autodiff device).
    pub policy: TinyLm,
    /// Its greedy held-out accuracy.
    pub accuracy: f64,
    /// Wall-clock seconds of the SFT run.
    pub seconds: f64,
}

/// SFT-warms a fresh [`TinyLm`] on the first `sft_problems` training problems.
pub fn warm_start(config: &WarmStartConfig) -> Result<WarmStart> {
    if config.sft_problems == 0 || config.sft_problems > config.n_train {
        return Err(invalid(
            "sft_problems",
            config.sft_problems,
            "must lie in 1..=n_train",
        ));
    }
    if config.n_test == 0 {
        return Err(invalid("n_test", 0, "must be at least 1"));
    }
    let started = Instant::now();
    let splits = TaskSplits::new(
        config.task,
        config.split_seed,
        config.n_train,
        config.n_test,
    )?;
    let device = kiln_tensor::autodiff_device()?;
    kiln_tensor::Seeds::new(config.model_seed).seed_device(&device);
    let policy = config.model.init(&device)?;
    let sft_set = &splits.train[..config.sft_problems.min(splits.train.len())];
    let mut rng = StdRng::seed_from_u64(config.model_seed);
    let (policy, _) = train_sft(policy, sft_set, &config.sft, &mut rng, &mut NoCallback)?;
    let accuracy = greedy_accuracy(
        &policy.valid(),
        &splits.test,
        config.max_new_tokens,
        &mut rng,
    )?;
    Ok(WarmStart {
        splits,
        policy,
        accuracy,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One evaluation of a policy on the held-out problems.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalPoint {
    /// Completions sampled for training so far.
    pub samples: f64,
    /// Greedy held-out accuracy.
    pub accuracy: f64,
    /// Mean next-token entropy (nats) on the held-out reference answers.
    pub entropy: f64,
    /// Mean per-token `KL(pi_theta || pi_warm)` on the held-out reference answers: how far
    /// the policy has drifted from the warm start.
    pub kl_to_warm: f64,
}

/// The held-out problems with the warm policy's next-token log-probabilities on their
/// reference answers (teacher-forced), for accuracy, entropy and drift.
#[derive(Debug, Clone)]
pub struct HeldOut {
    problems: Vec<Problem>,
    batch: TokenBatch,
    warm_logp: Vec<f32>,
    max_new_tokens: usize,
}

fn next_token_logp(policy: &TinyLm, batch: &TokenBatch) -> Vec<f32> {
    let ids = batch.ids_tensor(&policy.device());
    to_host(log_softmax(policy.forward(ids).logits, 2))
}

impl HeldOut {
    /// The warm start's test split.
    pub fn new(warm: &WarmStart, max_new_tokens: usize) -> Result<Self> {
        let examples = sft_examples(&crate::vocab::Codec::Char, &warm.splits.test)?;
        let p: Vec<&[u32]> = examples.iter().map(|e| e.0.as_slice()).collect();
        let a: Vec<&[u32]> = examples.iter().map(|e| e.1.as_slice()).collect();
        let batch = TokenBatch::from_pairs(&p, &a)?;
        let warm_logp = next_token_logp(&warm.policy.valid(), &batch);
        Ok(Self {
            problems: warm.splits.test.clone(),
            batch,
            warm_logp,
            max_new_tokens,
        })
    }

    /// Accuracy, entropy and drift of `policy` after `samples` training completions.
    pub fn evaluate(&self, policy: &TinyLm, samples: f64) -> Result<EvalPoint> {
        let policy = policy.valid();
        let accuracy = greedy_accuracy(
            &policy,
            &self.problems,
            self.max_new_tokens,
            &mut StdRng::seed_from_u64(0),
        )?;
        let logp = next_token_logp(&policy, &self.batch);
        let (t, v) = (self.batch.len, policy.vocab_size());
        let (mut entropy, mut kl, mut n) = (0.0f64, 0.0f64, 0usize);
        for i in 0..self.batch.batch {
            for j in 1..t {
                if self.batch.mask[i * t + j] <= 0.0 {
                    continue;
                }
                let at = (i * t + j - 1) * v;
                for k in 0..v {
                    let lp = f64::from(logp[at + k]);
                    let p = lp.exp();
                    entropy -= p * lp;
                    kl += p * (lp - f64::from(self.warm_logp[at + k]));
                }
                n += 1;
            }
        }
        let n = n.max(1) as f64;
        Ok(EvalPoint {
            samples,
            accuracy,
            entropy: entropy / n,
            kl_to_warm: kl / n,
        })
    }
}

/// The record of one arm (method, seed) trained to a sample budget.
#[derive(Debug, Clone)]
pub struct ArmRun {
    /// Held-out evaluations, the warm start first, the budget last.
    pub curve: Vec<EvalPoint>,
    /// Per training step: cumulative samples and the trainer's metrics.
    pub train: Vec<(f64, Vec<(String, f64)>)>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

impl ArmRun {
    /// The evaluation at the end of the budget.
    pub fn last(&self) -> EvalPoint {
        self.curve.last().copied().unwrap_or(EvalPoint {
            samples: 0.0,
            accuracy: 0.0,
            entropy: 0.0,
            kl_to_warm: 0.0,
        })
    }

    /// Mean of trainer metric `key` over the steps that reported it (NaN if none did).
    pub fn mean_metric(&self, key: &str) -> f64 {
        let v: Vec<f64> = self
            .train
            .iter()
            .filter_map(|(_, m)| m.iter().find(|(k, _)| k == key).map(|x| x.1))
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }

    /// The lowest held-out accuracy after the warm start.
    pub fn min_accuracy(&self) -> f64 {
        self.curve
            .iter()
            .skip(1)
            .map(|p| p.accuracy)
            .fold(f64::INFINITY, f64::min)
    }
}

/// Runs one arm from the warm checkpoint: `train` gets the policy, a callback and a probe
/// and must run a trainer with both (e.g. [`crate::trainers::grpo::train_pg_probed`] with
/// enough steps to spend the budget). The probe evaluates on `held_out` every `eval_every`
/// sampled completions (counted from the trainers' `train/samples`) and stops the run once
/// `budget` completions have been sampled.
pub fn run_arm<F>(
    warm: &WarmStart,
    held_out: &HeldOut,
    budget: usize,
    eval_every: usize,
    train: F,
) -> Result<ArmRun>
where
    F: FnOnce(TinyLm, &mut dyn Callback, Probe<'_, TinyLm>) -> Result<TinyLm>,
{
    if budget == 0 || eval_every == 0 {
        return Err(invalid(
            "budget",
            budget,
            "budget and eval_every must be at least 1",
        ));
    }
    let started = Instant::now();
    let samples = Cell::new(0usize);
    let train_log = RefCell::new(Vec::new());
    let curve = RefCell::new(vec![held_out.evaluate(&warm.policy, 0.0)?]);
    let next_eval = Cell::new(eval_every);
    let mut callback = FnCallback(|_, metrics: &[(&str, f64)]| {
        let drawn = metrics
            .iter()
            .find(|(k, _)| *k == "train/samples")
            .map_or(0.0, |x| x.1);
        samples.set(samples.get() + drawn as usize);
        train_log.borrow_mut().push((
            samples.get() as f64,
            metrics
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
        ));
        true
    });
    let mut probe = |_: u64, policy: &TinyLm| -> Result<bool> {
        let n = samples.get();
        let done = n >= budget;
        if n >= next_eval.get() || done {
            curve
                .borrow_mut()
                .push(held_out.evaluate(policy, n as f64)?);
            while next_eval.get() <= n {
                next_eval.set(next_eval.get() + eval_every);
            }
        }
        Ok(!done)
    };
    let policy = train(warm.policy.clone(), &mut callback, &mut probe)?;
    let mut curve = curve.into_inner();
    // A trainer that ran out of steps before the budget still gets its final evaluation.
    if curve
        .last()
        .is_some_and(|p| p.samples < samples.get() as f64)
    {
        curve.push(held_out.evaluate(&policy, samples.get() as f64)?);
    }
    Ok(ArmRun {
        curve,
        train: train_log.into_inner(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What every arm of a row shares: its seeds, its budget of sampled completions, the
/// evaluation cadence and the batch shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmSchedule {
    /// First seed of the RL runs.
    pub seed: u64,
    /// Number of seeds.
    pub seeds: u64,
    /// Sampled completions per run.
    pub budget: usize,
    /// Held-out evaluation every this many sampled completions.
    pub eval_every: usize,
    /// Prompts per step.
    pub prompts_per_step: usize,
    /// Completions per prompt (G).
    pub group: usize,
}

impl ArmSchedule {
    /// 3 seeds (1 when `quick`), 16 prompts x 8 completions a step; `budget` and
    /// `eval_every` are `[quick, full]`.
    pub fn new(quick: bool, budget: [usize; 2], eval_every: [usize; 2]) -> Self {
        let pick = |x: [usize; 2]| if quick { x[0] } else { x[1] };
        Self {
            seed: 0,
            seeds: if quick { 1 } else { 3 },
            budget: pick(budget),
            eval_every: pick(eval_every),
            prompts_per_step: 16,
            group: 8,
        }
    }

    /// Training steps that spend the budget.
    pub fn steps(&self) -> usize {
        steps_for(self.budget, self.prompts_per_step * self.group)
    }

    /// The paper preset of `variant` at this schedule's scale and rate `lr`.
    pub fn pg_config(&self, variant: PgVariant, lr: f64, max_new_tokens: usize) -> PgConfig {
        PgConfig {
            steps: self.steps(),
            prompts_per_step: self.prompts_per_step,
            group: self.group,
            lr,
            sampling: completion_sampling(max_new_tokens),
            ..PgConfig::preset(variant)
        }
    }
}

/// Temperature-1 sampling of completions of at most `max_new_tokens` tokens.
pub fn completion_sampling(max_new_tokens: usize) -> SampleOptions {
    SampleOptions {
        max_new_tokens,
        ..SampleOptions::default()
    }
}

/// Training steps that spend `budget` completions at `per_step` completions a step (the
/// probe of [`run_arm`] stops earlier when a trainer resamples).
pub fn steps_for(budget: usize, per_step: usize) -> usize {
    budget.div_ceil(per_step.max(1)).max(1)
}

/// One curve per method over its seeds: `value` of each held-out evaluation against the
/// sampled completions.
pub fn eval_curves(
    labels: &[&str],
    runs: &[Vec<ArmRun>],
    value: fn(&EvalPoint) -> f64,
) -> Vec<Curve> {
    labels
        .iter()
        .zip(runs)
        .map(|(label, seeds)| Curve {
            label: (*label).to_string(),
            runs: seeds
                .iter()
                .map(|r| r.curve.iter().map(|p| (p.samples, value(p))).collect())
                .collect(),
        })
        .collect()
}

/// Plot options with a title and axis labels, x = sampled completions.
pub fn sample_axis(title: &str, y_label: &str) -> PlotOptions {
    PlotOptions {
        title: title.into(),
        x_label: "sampled completions".into(),
        y_label: y_label.into(),
        ..PlotOptions::default()
    }
}

/// Creates `out_dir` (and parents).
pub fn ensure_dir(out_dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(out_dir).map_err(|source| AlignError::Io {
        path: out_dir.to_path_buf(),
        source,
    })
}
