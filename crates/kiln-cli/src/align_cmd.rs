//! `kiln align <algorithm> --config file.json`: align a character-vocabulary Llama on a
//! verifiable task into a run directory (`config.json` with every resolved value,
//! `metrics.jsonl`, `learning_curve.png`, `summary.json` and `checkpoint/`, a Hugging Face
//! model directory that `kiln generate --model <run>/checkpoint` and a later
//! `kiln align ... "model": {"path": "<run>"}` load).
//!
//! The config file holds only what differs from the defaults of the subcommand; every key is
//! checked (an unknown key or an out-of-range value is an error naming the key):
//!
//! ```json
//! {
//!   "task": {"kind": "addition", "difficulty": 1, "train": 80, "test": 20, "split_seed": 0},
//!   "model": {"tiny": {"width": 32, "layers": 2}},
//!   "seed": 1,
//!   "trainer": {"steps": 100, "lr": 1e-3}
//! }
//! ```
//!
//! `model` is `{"tiny": {"width": W, "layers": L}}` (a fresh model) or `{"path": P}` with `P`
//! a Hugging Face directory, a GGUF file, or an earlier `kiln align` run directory (its
//! `checkpoint/` is loaded). A model whose tokenizer is the tasks' character vocabulary
//! reads and writes the task text directly; any other (a pretrained model such as
//! SmolLM2-135M-Instruct) gets the prompts through its chat template when it has one
//! (`"chat": false` turns that off), ends completions at its end-of-sequence token, and is
//! judged on the answer its prose states (`Problem::extract_answer`).
//! `trainer` is the algorithm's config (`SftConfig`, `PgConfig`, `NftConfig`, `CapoConfig`,
//! `DpoConfig` of `kiln-align`); in `sft`, `grpo`, `dapo` and `lite-ppo` its `"engine"` is
//! `"auto"` (the default: the host training engine for a Llama on a CPU device, burn
//! otherwise), `"host"` or `"burn"`. `dpo` and `rdpo` also take `preferences`: pairs built
//! from the task (a verified-correct completion over a wrong one, each sampled from the
//! starting model when it has one, the order flipped at `flip_rate`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use clap::{Args, Subcommand};
use kiln_align::SampleOptions;
use kiln_align::SequencePolicy;
use kiln_align::llama::{TokenizedLlama, tiny_char_llama};
use kiln_align::losses::PreferenceLoss;
use kiln_align::tasks::{TaskKind, TaskSpec, TaskSplits};
use kiln_align::trainers::capo::{CapoConfig, train_capo};
use kiln_align::trainers::dpo::{
    DpoConfig, PreferencePair, implicit_margins, train_dpo, verifiable_pairs,
};
use kiln_align::trainers::greedy_accuracy;
use kiln_align::trainers::grpo::{PgConfig, PgVariant, train_pg};
use kiln_align::trainers::nft::{NftConfig, train_nft};
use kiln_align::trainers::sft::{SftConfig, sft_examples, train_sft};
use kiln_align::vocab::{CHARS, CharVocab, Codec, TextCodec};
use kiln_rl::Callback;
use kiln_track::plot::{Curve, PlotOptions, learning_curves};
use kiln_track::{Counter, Progress, RunDir, RunSpec, RunStatus};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::train_cmd::{INTERRUPTED, install_interrupt_handler};

/// The algorithms of `kiln align`.
#[derive(Debug, Subcommand)]
pub enum AlignCommand {
    /// Supervised fine-tuning on the reference answers (Step-Law lr and batch when absent).
    Sft(AlignArgs),
    /// GRPO (DeepSeekMath): group-normalised advantages, seq-mean clipped surrogate, k3 KL.
    Grpo(AlignArgs),
    /// DAPO: clip-higher, token-mean loss, dynamic sampling, soft overlong punishment.
    Dapo(AlignArgs),
    /// Lite PPO ("Tricks or Traps?"): group-mean advantages with batch std, token-mean loss.
    LitePpo(AlignArgs),
    /// NFT: negative-aware fine-tuning on verified samples.
    Nft(AlignArgs),
    /// CAPO: GRPO with curvature-aware token masking.
    Capo(AlignArgs),
    /// DPO (or cDPO via `"loss": {"kind": "cdpo", "eps": ..}`) on pairs built from the task.
    Dpo(AlignArgs),
    /// rDPO (Provably Robust DPO) on pairs built from the task, eps = the flip rate.
    Rdpo(AlignArgs),
}

/// Arguments shared by every `kiln align` subcommand.
#[derive(Debug, Clone, Args)]
pub struct AlignArgs {
    /// JSON config: only what differs from the defaults (unknown keys are errors).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides the config's `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The verifiable task and its fixed splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// `addition`, `multiplication`, `countdown` or `linear`.
    pub kind: TaskKind,
    /// Difficulty level, 1..=6.
    pub difficulty: u32,
    /// Training problems.
    pub train: usize,
    /// Held-out problems (greedy accuracy in `summary.json`).
    pub test: usize,
    /// Seed of the splits (independent of the run seed, so runs share their problems).
    pub split_seed: u64,
}

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSource {
    /// A fresh character-vocabulary Llama.
    Tiny {
        /// Hidden width (a multiple of 8: 4 heads with an even head dimension).
        width: usize,
        /// Transformer blocks.
        layers: usize,
    },
    /// A Hugging Face directory, a GGUF file or an earlier `kiln align` run directory.
    Path(PathBuf),
}

/// How `dpo` and `rdpo` build their preference pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceData {
    /// Probability that a pair's order is flipped (the rDPO noise rate), in [0, 0.5).
    pub flip_rate: f64,
    /// Completions sampled per problem from the starting model to find a correct and a wrong
    /// one (0: the reference answer and a perturbed one).
    pub samples: usize,
    /// Sampling of those completions.
    pub sampling: SampleOptions,
}

/// A `kiln align` config: shared keys and the algorithm's `trainer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignConfig<T> {
    /// The task.
    pub task: TaskConfig,
    /// The starting model.
    pub model: ModelSource,
    /// Run seed: model initialisation, sampling and batch order.
    pub seed: u64,
    /// Longest completion in the greedy evaluation.
    pub eval_max_new_tokens: usize,
    /// Prompts through the model's chat template (default: when a pretrained tokenizer has
    /// one; ignored for the character vocabulary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<bool>,
    /// Preference data (`dpo`, `rdpo` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<PreferenceData>,
    /// The algorithm's hyperparameters.
    pub trainer: T,
}

/// Keys whose objects are enums: a user value replaces the default instead of merging.
const REPLACED: &[&str] = &["model", "trainer.loss", "trainer.optimizer_model"];

/// Writes `over` into `base`, key by key for objects (except at [`REPLACED`] paths).
fn merge(base: &mut Value, over: Value, path: &str) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) if !REPLACED.contains(&path) => {
            for (k, v) in o {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v, &sub),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn shared_defaults<T>(trainer: T) -> AlignConfig<T> {
    AlignConfig {
        task: TaskConfig {
            kind: TaskKind::Addition,
            difficulty: 1,
            train: 80,
            test: 20,
            split_seed: 0,
        },
        model: ModelSource::Tiny {
            width: 32,
            layers: 2,
        },
        seed: 1,
        eval_max_new_tokens: 6,
        chat: None,
        preferences: None,
        trainer,
    }
}

/// Reads the user's file over `defaults`, then checks the shared keys.
fn read_config<T: Serialize + DeserializeOwned>(
    args: &AlignArgs,
    defaults: AlignConfig<T>,
    validate: fn(&T) -> kiln_align::Result<()>,
) -> Result<(AlignConfig<T>, Value)> {
    let mut value = serde_json::to_value(&defaults).context("serializing the defaults")?;
    let user = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --config {}", path.display()))?;
            let user: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing --config {} as JSON", path.display()))?;
            if !user.is_object() {
                bail!("--config {}: expected a JSON object", path.display());
            }
            user
        }
        None => json!({}),
    };
    merge(&mut value, user.clone(), "");
    let name = args
        .config
        .as_ref()
        .map_or_else(|| "the defaults".to_string(), |p| p.display().to_string());
    let mut config: AlignConfig<T> =
        serde_json::from_value(value).with_context(|| format!("config {name}"))?;
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let t = &config.task;
    TaskSpec::new(t.kind, t.difficulty).with_context(|| format!("config {name}"))?;
    for (key, v) in [("task.train", t.train), ("task.test", t.test)] {
        if v == 0 {
            bail!("config {name}: `{key}` = 0: must be at least 1");
        }
    }
    if config.eval_max_new_tokens == 0 {
        bail!("config {name}: `eval_max_new_tokens` = 0: must be at least 1");
    }
    if let ModelSource::Tiny { width, layers } = config.model {
        if width < 8 || width % 8 != 0 {
            bail!("config {name}: `model.tiny.width` = {width}: must be a positive multiple of 8");
        }
        if layers == 0 {
            bail!("config {name}: `model.tiny.layers` = 0: must be at least 1");
        }
    }
    if let Some(p) = &config.preferences {
        if !(0.0..0.5).contains(&p.flip_rate) {
            bail!(
                "config {name}: `preferences.flip_rate` = {}: flip rate must lie in [0, 0.5)",
                p.flip_rate
            );
        }
        p.sampling
            .validate()
            .with_context(|| format!("config {name}: `preferences`"))?;
    }
    validate(&config.trainer).with_context(|| format!("config {name}: in `trainer`"))?;
    Ok((config, user))
}

/// The checkpoint directory inside a run directory, or `path` itself.
fn model_path(path: &Path) -> PathBuf {
    let inner = path.join("checkpoint");
    if inner.join("config.json").is_file() {
        inner
    } else {
        path.to_path_buf()
    }
}

/// Builds or loads the starting model on `device` with its task codec; returns it, where it
/// came from and how task text is tokenized.
fn starting_model(
    source: &ModelSource,
    chat: Option<bool>,
    device: &burn::tensor::Device,
) -> Result<(TokenizedLlama, String, String)> {
    match source {
        ModelSource::Tiny { width, layers } => Ok((
            TokenizedLlama::new(tiny_char_llama(*width, *layers, device)?, Codec::Char)?,
            format!("tiny char Llama (width {width}, {layers} layers)"),
            "character vocabulary".to_string(),
        )),
        ModelSource::Path(path) => {
            let dir = model_path(path);
            let loaded = kiln_lm::load(&dir, device)
                .with_context(|| format!("loading the model `model.path` = {}", dir.display()))?;
            let probe = loaded.tokenizer.encode(CHARS).ok();
            let char_vocab = loaded.model.config().vocab_size == CharVocab::SIZE
                && probe == CharVocab.encode(CHARS).ok();
            let (codec, what) = if char_vocab {
                (Codec::Char, "character vocabulary".to_string())
            } else {
                let chat = chat.unwrap_or(loaded.tokenizer.chat.is_some());
                let codec = TextCodec::new(loaded.tokenizer, chat)
                    .with_context(|| format!("`model.path` = {}", dir.display()))?;
                (
                    Codec::Text(Box::new(codec)),
                    format!(
                        "its own tokenizer{}",
                        if chat { ", chat template" } else { "" }
                    ),
                )
            };
            let model = TokenizedLlama::new(loaded.model, codec)
                .with_context(|| format!("`model.path` = {}", dir.display()))?;
            Ok((model, dir.display().to_string(), what))
        }
    }
}

/// Feeds the run directory, the progress bar and the learning curve after each update.
struct AlignLog<'a> {
    run: &'a mut RunDir,
    progress: &'a Progress,
    started: Instant,
    tokens: f64,
    /// Completions per update (rollout rows), to turn the mean length into tokens.
    rows: f64,
    /// Tokens per update when no metric says it (preference pairs).
    tokens_per_update: f64,
    headline: &'static str,
    curve: Vec<(f64, f64)>,
    /// The first metric of each update, plotted when the headline metric never appeared
    /// (DAPO steps whose groups were all filtered log only `train/filtered_groups`).
    fallback: Vec<(f64, f64)>,
    fallback_key: Option<String>,
    updates: u64,
}

impl Callback for AlignLog<'_> {
    fn on_update(&mut self, step: u64, metrics: &[(&str, f64)]) -> kiln_rl::Result<bool> {
        self.run.log(step, metrics)?;
        self.updates = step;
        let get = |key: &str| metrics.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        self.tokens += get("train/tokens")
            .or_else(|| get("train/response_length").map(|l| l * self.rows))
            .unwrap_or(self.tokens_per_update);
        if let Some(v) = get(self.headline) {
            self.curve.push((step as f64, v));
        }
        if let Some((k, v)) = metrics.first() {
            let key = self.fallback_key.get_or_insert_with(|| (*k).to_string());
            if key == k {
                self.fallback.push((step as f64, *v));
            }
        }
        let rate = self.tokens / self.started.elapsed().as_secs_f64().max(1e-9);
        let mut msg = format!("{rate:.0} tok/s");
        for (key, label) in [
            ("train/reward", "reward"),
            ("train/accuracy", "acc"),
            ("train/preference_accuracy", "pref acc"),
            ("train/loss", "loss"),
        ] {
            if let Some(v) = get(key) {
                msg.push_str(&format!(" | {label} {v:.3}"));
            }
        }
        self.progress.set_position(step);
        self.progress.set_message(msg);
        Ok(!INTERRUPTED.load(Ordering::SeqCst))
    }
}

/// Everything a subcommand's training needs, prepared the same way for each.
struct Prepared<T> {
    config: AlignConfig<T>,
    user: Value,
    splits: TaskSplits,
    model: TokenizedLlama,
    source: String,
    tokenization: String,
    rng: StdRng,
    backend: String,
}

fn prepare<T: Serialize + DeserializeOwned>(
    args: &AlignArgs,
    defaults: AlignConfig<T>,
    validate: fn(&T) -> kiln_align::Result<()>,
) -> Result<Prepared<T>> {
    let (config, user) = read_config(args, defaults, validate)?;
    let t = &config.task;
    let splits = TaskSplits::new(
        TaskSpec::new(t.kind, t.difficulty)?,
        t.split_seed,
        t.train,
        t.test,
    )?;
    let choice = kiln_tensor::select_device()?;
    let device = choice.autodiff();
    kiln_tensor::Seeds::new(config.seed).seed_device(&device);
    let (model, source, tokenization) = starting_model(&config.model, config.chat, &device)?;
    Ok(Prepared {
        rng: StdRng::seed_from_u64(config.seed),
        config,
        user,
        splits,
        model,
        source,
        tokenization,
        backend: choice.backend.name().to_string(),
    })
}

/// What a subcommand hands to [`finish`].
struct Outcome {
    model: TokenizedLlama,
    initial_accuracy: f64,
    extra: serde_json::Map<String, Value>,
    /// The learning curve and its y label.
    curve: Vec<(f64, f64)>,
    curve_label: String,
    updates: u64,
}

/// Creates the run directory (config.json with the resolved values).
fn open_run<T: Serialize>(
    out: &Path,
    algo: &str,
    p: &Prepared<T>,
    resolved: Option<Value>,
) -> Result<RunDir> {
    let mut config = json!({
        "algorithm": algo,
        "model_source": p.source,
        "tokenization": p.tokenization,
        "non_embedding_params": p.model.non_embedding_params(),
        "config": p.config,
        "user_config": p.user,
    });
    if let (Some(r), Some(obj)) = (resolved, config.as_object_mut()) {
        obj.insert("resolved".into(), r);
    }
    let spec = RunSpec {
        name: format!("align-{algo}-{:?}", p.config.task.kind).to_lowercase(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        seed: p.config.seed,
        backend: p.backend.clone(),
        config,
        kiln_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(RunDir::create(out, spec)?)
}

/// Evaluates, writes the checkpoint, the plot and the summary.
fn finish<T>(
    algo: &str,
    p: &mut Prepared<T>,
    run: RunDir,
    outcome: Outcome,
    quiet: bool,
) -> Result<()> {
    let Outcome {
        model,
        initial_accuracy,
        extra,
        curve: log_curve,
        curve_label: headline,
        updates,
    } = outcome;
    let frozen = model.valid();
    let acc = greedy_accuracy(
        &frozen,
        &p.splits.test,
        p.config.eval_max_new_tokens,
        &mut p.rng,
    )?;
    let dir = run.path().to_path_buf();
    frozen
        .codec()
        .save_checkpoint(&frozen.model, &dir.join("checkpoint"))
        .context("writing the checkpoint")?;
    if !log_curve.is_empty() {
        let opts = PlotOptions {
            title: format!("kiln align {algo} (seed {})", p.config.seed),
            x_label: "update".into(),
            y_label: headline,
            ..PlotOptions::default()
        };
        let curves = [Curve {
            label: algo.to_string(),
            runs: vec![log_curve],
        }];
        learning_curves(&curves, &opts, &dir.join("learning_curve"))?;
    }
    let mut fin = extra;
    fin.insert("eval_accuracy".into(), acc.into());
    fin.insert(
        "initial_eval_accuracy".into(),
        outcome.initial_accuracy.into(),
    );
    fin.insert("eval_problems".into(), p.splits.test.len().into());
    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    let status = if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    run.finish(status, Counter::Updates(updates), fin)?;
    if interrupted {
        eprintln!("interrupted after {updates} updates; metrics flushed, checkpoint written");
    }
    if !quiet {
        println!(
            "kiln align {algo}: greedy test accuracy {:.3} -> {acc:.3} on {} problems after {updates} updates",
            initial_accuracy,
            p.splits.test.len()
        );
        println!("run directory: {}", dir.display());
    }
    Ok(())
}

/// Final metrics for `summary.json`.
type Headline = serde_json::Map<String, Value>;

/// How a subcommand's updates are counted and shown.
struct Plan {
    /// Updates the progress bar counts to.
    total: u64,
    /// Completions per update (rollout rows).
    rows: f64,
    /// Tokens per update when no metric says it.
    tokens_per_update: f64,
    /// The metric of the learning curve.
    headline: &'static str,
    /// Resolved values recorded in `config.json`.
    resolved: Option<Value>,
}

impl Plan {
    /// An RL run: `steps` updates of `rows` sampled completions each, reward on the curve.
    fn sampled(steps: usize, rows: usize) -> Self {
        Self {
            total: steps as u64,
            rows: rows as f64,
            tokens_per_update: 0.0,
            headline: "train/reward",
            resolved: None,
        }
    }
}

/// Trains with `train` (which returns the model and extra final metrics) and finishes the
/// run: the part every subcommand shares.
fn execute<T: Serialize>(
    out: &Path,
    algo: &str,
    mut p: Prepared<T>,
    plan: Plan,
    quiet: bool,
    train: impl FnOnce(
        TokenizedLlama,
        &mut StdRng,
        &mut dyn Callback,
    ) -> kiln_align::Result<(TokenizedLlama, Headline)>,
) -> Result<()> {
    let Plan {
        total,
        rows,
        tokens_per_update,
        headline,
        resolved,
    } = plan;
    let initial = greedy_accuracy(
        &p.model.valid(),
        &p.splits.test,
        p.config.eval_max_new_tokens,
        &mut p.rng,
    )?;
    let mut run = open_run(out, algo, &p, resolved)?;
    install_interrupt_handler()?;
    let progress = Progress::new(total, algo, quiet);
    let mut log = AlignLog {
        run: &mut run,
        progress: &progress,
        started: Instant::now(),
        tokens: 0.0,
        rows,
        tokens_per_update,
        headline,
        curve: Vec::new(),
        fallback: Vec::new(),
        fallback_key: None,
        updates: 0,
    };
    let model = p.model.clone();
    let (trained, extra) =
        train(model, &mut p.rng, &mut log).with_context(|| format!("training {algo}"))?;
    progress.finish();
    let updates = log.updates;
    let (curve, key) = if log.curve.is_empty() {
        let key = log
            .fallback_key
            .take()
            .unwrap_or_else(|| headline.to_string());
        (std::mem::take(&mut log.fallback), key)
    } else {
        (std::mem::take(&mut log.curve), headline.to_string())
    };
    let outcome = Outcome {
        model: trained,
        initial_accuracy: initial,
        extra,
        curve,
        curve_label: key.trim_start_matches("train/").replace('_', " "),
        updates,
    };
    finish(algo, &mut p, run, outcome, quiet)
}

/// Runs `kiln align`, writing the run directory under `out`.
pub fn run(cmd: AlignCommand, out: &Path, quiet: bool) -> Result<()> {
    match cmd {
        AlignCommand::Sft(a) => sft(&a, out, quiet),
        AlignCommand::Grpo(a) => pg(&a, out, PgVariant::Grpo, "grpo", quiet),
        AlignCommand::Dapo(a) => pg(&a, out, PgVariant::Dapo, "dapo", quiet),
        AlignCommand::LitePpo(a) => pg(&a, out, PgVariant::LitePpo, "lite-ppo", quiet),
        AlignCommand::Nft(a) => nft(&a, out, quiet),
        AlignCommand::Capo(a) => capo(&a, out, quiet),
        AlignCommand::Dpo(a) => dpo(&a, out, false, quiet),
        AlignCommand::Rdpo(a) => dpo(&a, out, true, quiet),
    }
}

fn sft(args: &AlignArgs, out: &Path, quiet: bool) -> Result<()> {
    let mut p = prepare(
        args,
        shared_defaults(SftConfig {
            epochs: 20,
            ..SftConfig::default()
        }),
        SftConfig::validate,
    )?;
    let examples = sft_examples(p.model.codec(), &p.splits.train)?;
    let joined: Vec<Vec<u32>> = examples
        .iter()
        .map(|(a, b)| a.iter().chain(b).copied().collect())
        .collect();
    let resolved = p
        .config
        .trainer
        .resolve(p.model.non_embedding_params(), &joined)
        .context("config: in `trainer`")?;
    let bs = resolved.batch_size.value;
    // config.json shows the values used; `resolved` says where each came from.
    p.config.trainer.lr = Some(resolved.lr.value);
    p.config.trainer.batch_size = Some(bs);
    let total = (p.config.trainer.epochs * examples.len().div_ceil(bs)) as u64;
    let trainer = p.config.trainer.clone();
    let problems = p.splits.train.clone();
    let plan = Plan {
        total,
        rows: 0.0,
        tokens_per_update: 0.0,
        headline: "train/loss",
        resolved: Some(serde_json::to_value(&resolved)?),
    };
    execute(out, "sft", p, plan, quiet, move |m, rng, cb| {
        let (m, r) = train_sft(m, &problems, &trainer, rng, cb)?;
        let mut extra = Headline::new();
        extra.insert("lr".into(), r.lr.value.into());
        extra.insert("batch_size".into(), r.batch_size.value.into());
        Ok((m, extra))
    })
}

fn pg(args: &AlignArgs, out: &Path, variant: PgVariant, algo: &str, quiet: bool) -> Result<()> {
    let preset = PgConfig {
        sampling: SampleOptions {
            max_new_tokens: 6,
            ..SampleOptions::default()
        },
        ..PgConfig::preset(variant)
    };
    let p = prepare(args, shared_defaults(preset), PgConfig::validate)?;
    let trainer = p.config.trainer.clone();
    if trainer.variant != variant {
        bail!(
            "config: `trainer.variant` = {:?}: `kiln align {algo}` trains {variant:?}",
            trainer.variant
        );
    }
    let problems = p.splits.train.clone();
    let plan = Plan::sampled(trainer.steps, trainer.prompts_per_step * trainer.group);
    execute(out, algo, p, plan, quiet, move |m, rng, cb| {
        Ok((train_pg(m, &problems, &trainer, rng, cb)?, Headline::new()))
    })
}

fn nft(args: &AlignArgs, out: &Path, quiet: bool) -> Result<()> {
    let defaults = NftConfig {
        sampling: SampleOptions {
            max_new_tokens: 6,
            ..SampleOptions::default()
        },
        ..NftConfig::default()
    };
    let p = prepare(args, shared_defaults(defaults), NftConfig::validate)?;
    let trainer = p.config.trainer.clone();
    let problems = p.splits.train.clone();
    let plan = Plan::sampled(trainer.steps, trainer.prompts_per_step * trainer.group);
    execute(out, "nft", p, plan, quiet, move |m, rng, cb| {
        Ok((train_nft(m, &problems, &trainer, rng, cb)?, Headline::new()))
    })
}

fn capo(args: &AlignArgs, out: &Path, quiet: bool) -> Result<()> {
    let defaults = CapoConfig {
        sampling: SampleOptions {
            max_new_tokens: 6,
            ..SampleOptions::default()
        },
        ..CapoConfig::default()
    };
    let p = prepare(args, shared_defaults(defaults), CapoConfig::validate)?;
    let trainer = p.config.trainer.clone();
    let problems = p.splits.train.clone();
    let plan = Plan::sampled(trainer.steps, trainer.prompts_per_step * trainer.group);
    execute(out, "capo", p, plan, quiet, move |m, rng, cb| {
        Ok((
            train_capo(m, &problems, &trainer, rng, cb)?,
            Headline::new(),
        ))
    })
}

fn dpo(args: &AlignArgs, out: &Path, robust: bool, quiet: bool) -> Result<()> {
    let algo = if robust { "rdpo" } else { "dpo" };
    let flip = 0.1;
    let mut defaults = shared_defaults(DpoConfig {
        loss: if robust {
            PreferenceLoss::Rdpo { eps: flip }
        } else {
            PreferenceLoss::Dpo
        },
        beta: 0.1,
        epochs: 5,
        batch_size: 16,
        lr: 1e-3,
        max_grad_norm: 1.0,
        adam: kiln_tensor::AdamSettings::default(),
    });
    defaults.preferences = Some(PreferenceData {
        flip_rate: flip,
        samples: 4,
        sampling: SampleOptions {
            max_new_tokens: 6,
            ..SampleOptions::default()
        },
    });
    let mut p = prepare(args, defaults, DpoConfig::validate)?;
    let prefs = p
        .config
        .preferences
        .clone()
        .context("config: `preferences` is required for dpo and rdpo")?;
    // rDPO's eps is the known flip rate unless the config sets the loss itself.
    let loss_given = p.user.pointer("/trainer/loss").is_some();
    if robust && !loss_given {
        p.config.trainer.loss = PreferenceLoss::Rdpo {
            eps: prefs.flip_rate,
        };
    }
    if robust && !matches!(p.config.trainer.loss, PreferenceLoss::Rdpo { .. }) {
        bail!(
            "config: `trainer.loss`: `kiln align rdpo` trains the rdpo loss; use `kiln align dpo` for dpo and cdpo"
        );
    }
    let trainer = p.config.trainer.clone();
    let sampler = p.model.valid();
    let train_pairs = verifiable_pairs(
        &sampler,
        &p.splits.train,
        prefs.samples,
        &prefs.sampling,
        prefs.flip_rate,
        &mut p.rng,
    )?;
    let test_pairs: Vec<PreferencePair> = verifiable_pairs(
        &sampler,
        &p.splits.test,
        prefs.samples,
        &prefs.sampling,
        0.0,
        &mut p.rng,
    )?
    .into_iter()
    .map(|n| n.pair)
    .collect();
    let flipped = train_pairs.iter().filter(|n| n.flipped).count();
    let pairs: Vec<PreferencePair> = train_pairs.into_iter().map(|n| n.pair).collect();
    let pair_tokens = pairs
        .iter()
        .map(|q| 2 * q.prompt.len() + q.chosen.len() + q.rejected.len())
        .sum::<usize>() as f64
        / pairs.len().max(1) as f64;
    let total = (trainer.epochs * pairs.len().div_ceil(trainer.batch_size)) as u64;
    let resolved = json!({
        "train_pairs": pairs.len(),
        "flipped_pairs": flipped,
        "loss": trainer.loss,
    });
    let plan = Plan {
        total,
        rows: 0.0,
        tokens_per_update: pair_tokens * trainer.batch_size as f64,
        headline: "train/preference_accuracy",
        resolved: Some(resolved),
    };
    let reference = sampler;
    execute(out, algo, p, plan, quiet, move |m, rng, cb| {
        let trained = train_dpo(m, &pairs, &trainer, rng, cb)?;
        let h = implicit_margins(&trained.valid(), &reference, &test_pairs, 32)?;
        let n = h.len().max(1) as f64;
        let mut extra = Headline::new();
        extra.insert("train_pairs".into(), pairs.len().into());
        extra.insert("flipped_pairs".into(), flipped.into());
        extra.insert(
            "heldout_preference_accuracy".into(),
            (h.iter().filter(|&&x| x > 0.0).count() as f64 / n).into(),
        );
        extra.insert(
            "heldout_reward_margin".into(),
            (h.iter().map(|x| trainer.beta * x).sum::<f64>() / n).into(),
        );
        Ok((trained, extra))
    })
}
