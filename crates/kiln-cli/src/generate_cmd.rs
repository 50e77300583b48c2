//! `kiln generate`: continue a prompt with a language model (a GGUF file or a Hugging Face
//! directory), streaming the text to stdout and the speed to stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kiln_lm::{ChatMessage, GenerateOptions, ModelFile, generate};

/// Which implementation runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// The host engine on a CPU backend, the burn model on a GPU.
    Auto,
    /// The host-memory inference engine (CPU, multithreaded).
    Host,
    /// The burn model on the selected backend (`KILN_DEVICE`).
    Tensor,
}

/// Arguments of `kiln generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A `.gguf` file or a Hugging Face model directory (`config.json`, `*.safetensors`,
    /// `tokenizer.json`).
    #[arg(long)]
    model: PathBuf,
    /// The prompt (tokenized as is, with no BOS unless the model asks for one).
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user turn in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// A system message for `--chat` (default: the template's own).
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// Greedy decoding (temperature 0).
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "top_k"])]
    greedy: bool,
    /// Most new tokens.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Softmax temperature.
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 0.9)]
    top_p: f64,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Stop when this string appears (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which implementation runs the model (both give the same logits to float rounding).
    #[arg(long, value_enum, default_value_t = Engine::Auto)]
    engine: Engine,
}

enum Loaded {
    Host(Box<kiln_lm::CpuLlama>),
    Tensor(Box<kiln_lm::Llama>),
}

/// Runs `kiln generate`.
pub fn run(args: GenerateArgs, quiet: bool) -> anyhow::Result<()> {
    let choice = kiln_tensor::select_device()?;
    let t0 = std::time::Instant::now();
    let file = ModelFile::open(&args.model)?;
    let host = match args.engine {
        Engine::Host => true,
        Engine::Tensor => false,
        Engine::Auto => choice.backend != kiln_tensor::Backend::Wgpu,
    };
    let engine = if host {
        Loaded::Host(Box::new(file.cpu_model()?))
    } else {
        Loaded::Tensor(Box::new(file.model(&choice.device)?))
    };
    if !quiet {
        let c = file.config;
        eprintln!(
            "loaded {} ({:.1} M parameters, {} layers, vocabulary {}) in {:.2} s; engine: {}",
            args.model.display(),
            c.total_params() as f64 / 1e6,
            c.num_hidden_layers,
            c.vocab_size,
            t0.elapsed().as_secs_f64(),
            if host {
                "host".to_string()
            } else {
                format!("burn on {:?}", choice.backend)
            }
        );
    }
    let tokenizer = &file.tokenizer;
    let opts = GenerateOptions {
        temperature: if args.greedy { 0.0 } else { args.temperature },
        top_k: args.top_k,
        top_p: if args.greedy { 1.0 } else { args.top_p },
        max_new_tokens: args.max_tokens,
        stop: args.stop,
        seed: args.seed,
    };
    let prompt = if args.chat {
        let mut messages = Vec::new();
        if let Some(s) = args.system {
            messages.push(ChatMessage {
                role: "system".into(),
                content: s,
            });
        }
        messages.push(ChatMessage::user(&args.prompt));
        tokenizer.encode_chat(&messages)?
    } else {
        tokenizer.encode(&args.prompt)?
    };
    let mut out = std::io::stdout().lock();
    let mut write_err = None;
    let sink = |_: usize, piece: &str| {
        if write_err.is_none() {
            write_err = out
                .write_all(piece.as_bytes())
                .and_then(|()| out.flush())
                .err();
        }
    };
    let (_, stats) = match &engine {
        Loaded::Host(m) => generate(m.as_ref(), tokenizer, &[prompt], &opts, sink)?,
        Loaded::Tensor(m) => generate(m.as_ref(), tokenizer, &[prompt], &opts, sink)?,
    };
    if let Some(e) = write_err {
        return Err(e).context("writing to stdout");
    }
    writeln!(out).context("writing to stdout")?;
    if !quiet {
        eprintln!(
            "prompt: {} tokens at {:.1} tok/s; generated: {} tokens at {:.1} tok/s",
            stats.prompt_tokens,
            stats.prompt_tps(),
            stats.new_tokens,
            stats.decode_tps()
        );
    }
    Ok(())
}
